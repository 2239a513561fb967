//! `paddock budget MODEL`: one model's memory budget on this machine, as the source document's
//! budget table lays it out (weights, KV cache, compute, OS reserve, total, headroom), plus the
//! verdict, the largest context that fits and the generation ceiling. Figures come from the
//! budget module through [`Library::describe`]; this only lays them out.

use serde::Serialize;

use super::{Entry, Library};
use crate::budget::{self, Fit, Machine, Pool};

/// One model's budget with the settings and machine it is for.
#[derive(Debug, Serialize)]
pub struct Report {
    pub model: Entry,
    pub settings: budget::Settings,
    pub machine: Machine,
}

impl Report {
    /// `model` is a GGUF path (any part of a split set) or the id of a model in the library.
    pub fn new(library: &Library, model: &str) -> Result<Report, String> {
        let path = std::path::Path::new(model);
        let file = if path.is_file() {
            Library::file_at(path)
        } else {
            library
                .files()
                .into_iter()
                .find(|f| f.id == model)
                .ok_or_else(|| {
                    format!("no model file {model:?} and no model with that id in the library (see `paddock models`)")
                })?
        };
        let entry = library.describe(file, &library.settings);
        if let Some(error) = &entry.error {
            return Err(format!("{}: {error}", entry.id));
        }
        Ok(Report {
            model: entry,
            settings: library.settings,
            machine: library.machine.clone(),
        })
    }

    /// The table, in Markdown.
    pub fn markdown(&self) -> String {
        let (e, s, m) = (&self.model, &self.settings, &self.machine);
        let (Some(f), Some(b)) = (&e.facts, &e.budget) else {
            return format!("{}: {}\n", e.id, e.error.as_deref().unwrap_or("unreadable"));
        };
        let kv = |t: budget::KvType| {
            serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let mut out = format!(
            "{} ({}, {:.2}B params, {}) on this machine: {} GiB memory{}\n\n",
            e.id,
            f.architecture,
            f.total_params as f64 / 1e9,
            f.quantization.label,
            gib(m.total_memory),
            if m.unified { " (unified)" } else { "" },
        );
        out.push_str("| Component | Size |\n|---|---|\n");
        let mut row =
            |name: String, value: String| out.push_str(&format!("| {name} | {value} |\n"));
        let weights = b.weights_gpu + b.weights_cpu;
        let split = if b.weights_gpu > 0 && b.weights_cpu > 0 {
            format!(
                " (GPU {} GiB, CPU {} GiB)",
                gib(b.weights_gpu),
                gib(b.weights_cpu)
            )
        } else {
            String::new()
        };
        row("Model weights".into(), format!("{}{split}", sized(weights)));
        row(
            format!(
                "KV cache ({} ctx, {}/{}, {} slot{})",
                s.n_ctx,
                kv(s.cache_type_k),
                kv(s.cache_type_v),
                s.n_parallel,
                if s.n_parallel == 1 { "" } else { "s" }
            ),
            sized(b.kv_cache),
        );
        if b.recurrent_state > 0 {
            row("Recurrent state".into(), sized(b.recurrent_state));
        }
        row("Compute buffer (estimate)".into(), sized(b.compute));
        row("OS reserve".into(), sized(b.os_reserve));
        let pool = match b.pool {
            Pool::Unified => "unified memory",
            Pool::Gpu => "GPU memory",
            Pool::Ram => "RAM",
        };
        row(format!("Total ({pool})"), sized(b.total));
        row(format!("Machine limit ({pool})"), sized(b.limit));
        row(
            "Headroom".into(),
            format!("{:.2} GiB", b.headroom as f64 / f64::from(1u32 << 30)),
        );
        let verdict = match b.fits {
            Fit::Fits => "fits".to_owned(),
            Fit::Tight => "tight (less than 10% of the limit left)".to_owned(),
            Fit::DoesNotFit { short_by } => format!("does not fit: short by {} GiB", gib(short_by)),
        };
        row("Verdict".into(), verdict);
        row(
            "Largest context that fits".into(),
            match e.largest_context {
                Some(n) => format!("{n} tokens (trained context {})", f.n_ctx_train),
                None => "none (not even 256 tokens)".to_owned(),
            },
        );
        if let Some(tg) = e.tg_ceiling {
            // The machine's figure is `bandwidth::known()`: Apple's table, or a measurement.
            let gbs = m.bandwidth.unwrap_or(0.0);
            row(
                "tg ceiling".into(),
                format!("~{tg:.0} tokens/s ({:.0} GB/s memory bandwidth)", gbs / 1e9),
            );
        }
        out
    }
}

/// `0.09 GiB (94,371,840 B)`.
fn sized(bytes: u64) -> String {
    format!("{} GiB ({} B)", gib(bytes), grouped(bytes))
}

fn gib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / f64::from(1u32 << 30))
}

/// `94371840` → `94,371,840`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn byte_counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(94_371_840), "94,371,840");
    }
}
