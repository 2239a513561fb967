//! Memory bandwidth, for the tg ceiling (bandwidth ÷ bytes read per token). Apple chips: the
//! published figure of the chip (the source document uses 546 GB/s for an M4 Max). NVIDIA
//! cards: the published figure of the card, since with the layers offloaded the weights are
//! read from its memory. Elsewhere: measured, STREAM-copy style, once per process.

use std::sync::OnceLock;
use std::time::Instant;

use serde::Serialize;

/// A bandwidth figure and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bandwidth {
    pub bytes_per_sec: f64,
    pub source: BandwidthSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BandwidthSource {
    /// Apple's published figure for the chip.
    AppleTable,
    /// NVIDIA's published figure for the GPU llama.cpp sees.
    GpuTable,
    /// [`measure`] on this machine.
    Measured,
}

/// Apple's published unified-memory bandwidth, GB/s, by the chip's marketing name as
/// `machdep.cpu.brand_string` gives it. Where a tier ships in two memory configurations (the
/// binned M3 Max and M4 Max have 300 and 410 GB/s) the full chip's figure is listed: the
/// ceiling is an upper bound.
const APPLE_CHIPS: &[(&str, f64)] = &[
    ("Apple M1 Ultra", 800.0),
    ("Apple M1 Max", 400.0),
    ("Apple M1 Pro", 200.0),
    ("Apple M1", 68.25),
    ("Apple M2 Ultra", 800.0),
    ("Apple M2 Max", 400.0),
    ("Apple M2 Pro", 200.0),
    ("Apple M2", 100.0),
    ("Apple M3 Ultra", 819.0),
    ("Apple M3 Max", 400.0),
    ("Apple M3 Pro", 150.0),
    ("Apple M3", 100.0),
    ("Apple M4 Max", 546.0),
    ("Apple M4 Pro", 273.0),
    ("Apple M4", 120.0),
    ("Apple M5", 153.0),
];

/// NVIDIA's published memory bandwidth, GB/s, by a part of the name the driver gives the card
/// ("NVIDIA H100 80GB HBM3"). More specific names come first: "H100 PCIe" before "H100".
const NVIDIA_CARDS: &[(&str, f64)] = &[
    ("H200", 4800.0),
    ("H100 NVL", 3900.0),
    ("H100 PCIe", 2000.0),
    ("H100", 3350.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100-PCIE-80GB", 1935.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),
    ("L40S", 864.0),
    ("L40", 864.0),
    ("L4", 300.0),
    ("A10G", 600.0),
    ("A10", 600.0),
    ("RTX 5090", 1792.0),
    ("RTX 4090", 1008.0),
    ("RTX 4080 SUPER", 736.0),
    ("RTX 4080", 717.0),
    ("RTX 3090 Ti", 1008.0),
    ("RTX 3090", 936.0),
];

/// The published bandwidth of an NVIDIA card, bytes/s.
pub fn nvidia_card(description: &str) -> Option<f64> {
    let words: Vec<&str> = description.split_whitespace().collect();
    NVIDIA_CARDS
        .iter()
        .find(|(name, _)| {
            // Whole words ("L4" is not "L40S"); "A100" also names "A100-PCIE-40GB".
            let name: Vec<&str> = name.split_whitespace().collect();
            words.windows(name.len()).any(|w| {
                w.iter().zip(&name).all(|(word, part)| {
                    word == part
                        || word
                            .strip_prefix(part)
                            .is_some_and(|rest| rest.starts_with('-'))
                })
            })
        })
        .map(|(_, gbs)| gbs * 1e9)
}

/// The published bandwidth of an Apple chip, bytes/s. Longest names are listed first within
/// a generation, so "Apple M4 Max" never matches "Apple M4".
pub fn apple_chip(brand: &str) -> Option<f64> {
    let brand = brand.trim();
    APPLE_CHIPS
        .iter()
        .find(|(name, _)| {
            brand == *name
                || brand
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' '))
        })
        .map(|(_, gbs)| gbs * 1e9)
}

/// What is known without measuring: the chip table on Apple Silicon, the card table for a
/// discrete NVIDIA GPU, else a figure measured earlier in this process.
pub fn known() -> Option<Bandwidth> {
    let brand = cpu_brand();
    let table = |bytes_per_sec, source| Bandwidth {
        bytes_per_sec,
        source,
    };
    apple_chip(&brand)
        .map(|b| table(b, BandwidthSource::AppleTable))
        .or_else(|| {
            let gpus = crate::engine::gpus();
            let card = gpus.iter().find(|g| !g.integrated && !g.remote)?;
            nvidia_card(&card.description).map(|b| table(b, BandwidthSource::GpuTable))
        })
        .or_else(|| MEASURED.get().copied().flatten())
}

static MEASURED: OnceLock<Option<Bandwidth>> = OnceLock::new();

/// [`known`], measuring once if nothing is known (about a second; memory-bound, so run it
/// when nothing else is busy, e.g. before a benchmark).
pub fn known_or_measure() -> Option<Bandwidth> {
    known().or_else(|| {
        *MEASURED.get_or_init(|| {
            measure(256 << 20).map(|bytes_per_sec| Bandwidth {
                bytes_per_sec,
                source: BandwidthSource::Measured,
            })
        })
    })
}

/// Copies a `bytes`-sized buffer with one thread per core, best of three passes, and counts
/// read + written bytes (STREAM's "copy"). `memcpy` is the libc one, so the figure does not
/// depend on how Paddock itself was optimised.
pub fn measure(bytes: usize) -> Option<f64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let chunk = bytes.div_ceil(threads).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                scope.spawn(move || d.copy_from_slice(s));
            }
        });
        best = best.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    (best > 0.0 && best.is_finite()).then(|| 2.0 * bytes as f64 / best)
}

/// The CPU's marketing name ("Apple M4 Max", "AMD EPYC 7B13").
pub fn cpu_brand() -> String {
    let mut system = sysinfo::System::new();
    system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    system
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_tiers_match_whole_names_only() {
        assert_eq!(apple_chip("Apple M4 Max"), Some(546e9));
        assert_eq!(apple_chip("Apple M4"), Some(120e9));
        assert_eq!(apple_chip("Apple M4 Pro"), Some(273e9));
        assert_eq!(apple_chip("Apple M3 Ultra"), Some(819e9));
        assert_eq!(apple_chip("Apple M1"), Some(68.25e9));
        assert_eq!(apple_chip("Apple M10"), None);
        assert_eq!(apple_chip("AMD EPYC 7B13"), None);
        assert_eq!(apple_chip(""), None);
    }

    #[test]
    fn nvidia_cards_match_the_drivers_names() {
        assert_eq!(nvidia_card("NVIDIA H100 80GB HBM3"), Some(3350e9));
        assert_eq!(nvidia_card("NVIDIA H100 PCIe"), Some(2000e9));
        assert_eq!(nvidia_card("NVIDIA H200"), Some(4800e9));
        assert_eq!(nvidia_card("NVIDIA A100-SXM4-80GB"), Some(2039e9));
        assert_eq!(nvidia_card("NVIDIA A100-PCIE-40GB"), Some(1555e9));
        assert_eq!(nvidia_card("NVIDIA GeForce RTX 4090"), Some(1008e9));
        assert_eq!(nvidia_card("NVIDIA GeForce RTX 3090 Ti"), Some(1008e9));
        assert_eq!(nvidia_card("NVIDIA L4"), Some(300e9));
        assert_eq!(nvidia_card("NVIDIA L40S"), Some(864e9));
        assert_eq!(nvidia_card("NVIDIA GeForce GTX 1080"), None);
        assert_eq!(nvidia_card("AMD Radeon RX 7900 XTX"), None);
    }

    #[test]
    fn measuring_gives_a_plausible_figure() {
        // 16 MiB keeps the test quick; any real machine copies faster than 100 MB/s and
        // slower than 100 TB/s.
        let b = measure(16 << 20).expect("a figure");
        assert!((1e8..1e14).contains(&b), "{b}");
    }
}
