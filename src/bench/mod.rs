//! `paddock bench`: llama-bench's pp/tg tests on Paddock's own build of llama.cpp, reported in
//! llama-bench's units (tokens per second, mean ± standard deviation over repetitions) so the
//! two compare directly.

use std::time::Duration;

use serde::Serialize;

use crate::engine::probe::{Probe, ProbeTest};
use crate::engine::{EngineError, EngineSpec};

/// One test's result, with llama-bench's JSON field names.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub model_filename: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_threads: i32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub flash_attn: String,
    pub type_k: String,
    pub type_v: String,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
}

impl BenchResult {
    /// llama-bench's test name: `pp512`, `tg128`, or `pp512+tg128`.
    pub fn test_name(&self) -> String {
        match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        }
    }
}

/// Runs every test in order; `progress(done, total)` after each repetition. Tests longer than
/// the model's trained context are skipped, as the source document's tables stop there.
pub fn run(
    spec: &EngineSpec,
    tests: &[ProbeTest],
    reps: u32,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<BenchResult>, EngineError> {
    let probe = Probe::load(spec.clone())?;
    let tests: Vec<_> = tests
        .iter()
        .filter(|t| t.n_prompt + t.n_gen <= probe.n_ctx_train())
        .copied()
        .collect();
    let total = tests.len() as u64 * u64::from(reps);
    let mut done = 0;
    tests
        .iter()
        .map(|&test| {
            let times = probe.run(test, reps, || {
                done += 1;
                progress(done, total);
            })?;
            Ok(result(spec, test, &times))
        })
        .collect()
}

fn result(spec: &EngineSpec, test: ProbeTest, times: &[Duration]) -> BenchResult {
    let n = f64::from(test.n_prompt + test.n_gen);
    let ns: Vec<u64> = times.iter().map(|t| t.as_nanos() as u64).collect();
    let ts: Vec<f64> = times.iter().map(|t| n / t.as_secs_f64()).collect();
    let ns_f: Vec<f64> = ns.iter().map(|&v| v as f64).collect();
    BenchResult {
        model_filename: spec.model_path.display().to_string(),
        n_prompt: test.n_prompt,
        n_gen: test.n_gen,
        n_threads: spec.n_threads,
        n_batch: spec.n_batch,
        n_ubatch: spec.n_ubatch,
        flash_attn: format!("{:?}", spec.flash_attn).to_lowercase(),
        type_k: spec.cache_type_k.to_string(),
        type_v: spec.cache_type_v.to_string(),
        avg_ns: mean(&ns_f) as u64,
        stddev_ns: stddev(&ns_f) as u64,
        avg_ts: mean(&ts),
        stddev_ts: stddev(&ts),
        samples_ns: ns,
        samples_ts: ts,
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (n - 1), as llama-bench computes it.
fn stddev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// A markdown table in llama-bench's layout.
pub fn markdown(results: &[BenchResult]) -> String {
    let mut out = String::from("| model | threads | fa | test | t/s |\n|---|---:|---|---:|---:|\n");
    for r in results {
        let model = std::path::Path::new(&r.model_filename)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push_str(&format!(
            "| {model} | {} | {} | {} | {:.2} ± {:.2} |\n",
            r.n_threads,
            r.flash_attn,
            r.test_name(),
            r.avg_ts,
            r.stddev_ts
        ));
    }
    out
}

pub fn csv(results: &[BenchResult]) -> String {
    let mut out =
        String::from("model_filename,n_prompt,n_gen,n_threads,flash_attn,avg_ts,stddev_ts\n");
    for r in results {
        out.push_str(&format!(
            "{},{},{},{},{},{:.4},{:.4}\n",
            r.model_filename, r.n_prompt, r.n_gen, r.n_threads, r.flash_attn, r.avg_ts, r.stddev_ts
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_match_llama_bench_definitions() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert!((stddev(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(stddev(&[5.0]), 0.0);
    }
}
