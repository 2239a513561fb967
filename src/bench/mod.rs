//! `paddock bench`: llama-bench's pp/tg tests on Paddock's own build of llama.cpp, reported in
//! llama-bench's units (tokens per second, mean ± standard deviation over repetitions) so the
//! two compare directly, plus what the source document derived by hand: context-scaling
//! retention and the share of the tg ceiling reached. Each run is kept in a history with the
//! model, settings, machine and versions it was measured with. The CLI and the admin API drive
//! it. [`serve`] is the other benchmark: a server measured over HTTP, as its clients see it.

use serde::{Deserialize, Serialize};

use crate::catalog::ModelFile;
use crate::engine::probe::{Probe, ProbeSample, ProbeTest};
use crate::engine::{EngineError, EngineSpec};
use crate::library::bandwidth::Bandwidth;
use crate::library::{Entry, Library};

mod derived;
mod history;
mod plan;
mod preflight;
mod report;
pub mod serve;

pub use derived::Derived;
pub use history::History;
pub use plan::{test_name, Plan, Tests, DEFAULT_N_GEN, DEFAULT_N_PROMPT};
pub use preflight::preflight;
pub use report::{csv, markdown};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Plan(String),
    /// The model would not fit in memory (or would swap, which makes the numbers meaningless).
    #[error("{0}")]
    Memory(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the benchmark was cancelled")]
    Cancelled,
}

/// One test's result, with llama-bench's JSON field names (and `test`, `n_depth`, and the
/// token counts llama.cpp booked in each repetition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub test: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
    /// Prompt and generated tokens llama.cpp counted as decoded in each repetition (the same
    /// in every repetition, or the measurement is wrong).
    pub n_prompt_decoded: Vec<u32>,
    pub n_gen_decoded: Vec<u32>,
}

/// One benchmark run, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Start time and a random suffix: `20261126T063000Z-3f2a`.
    pub id: String,
    pub started_at: String,
    pub finished_at: String,
    pub model: RunModel,
    pub settings: RunSettings,
    pub machine: RunMachine,
    pub versions: Versions,
    pub results: Vec<BenchResult>,
    pub derived: Derived,
    /// What the run did that a reader should know (tests skipped, models unloaded first).
    pub notes: Vec<String>,
    /// What may have distorted the numbers (busy machine, little free memory).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunModel {
    pub id: String,
    pub file: String,
    pub architecture: String,
    pub quant: String,
    pub size_bytes: u64,
    pub params: u64,
    pub active_params: u64,
    pub active_bytes: u64,
    pub moe: bool,
    pub n_ctx_train: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub n_threads: i32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub flash_attn: String,
    pub type_k: String,
    pub type_v: String,
    pub n_gpu_layers: u32,
    pub repetitions: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMachine {
    pub cpu: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub os: String,
    pub bandwidth_bytes_per_s: Option<f64>,
    /// `apple_table`, `gpu_table` or `measured`.
    pub bandwidth_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub paddock: String,
    pub llama_cpp: String,
}

/// Where a run is: tests done of all (repetitions count), and the test running now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub current: Option<String>,
}

/// What to benchmark: a model from the library (its facts, its budget at the benchmark's
/// context, its tg ceiling computed with the bandwidth below), the engine settings it is
/// served with, and the plan. [`prepare`] makes one.
pub struct Job {
    pub model: Entry,
    pub spec: EngineSpec,
    pub plan: Plan,
    pub bandwidth: Option<Bandwidth>,
    /// Notes and warnings gathered before the run (preflight, models unloaded).
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Loads the model on the calling thread and runs the plan. `progress` is called before each
/// test and after each repetition; returning `false` cancels.
pub fn run(job: Job, mut progress: impl FnMut(&Progress) -> bool) -> Result<Run, BenchError> {
    job.plan.check().map_err(BenchError::Plan)?;
    let facts = job.model.facts.as_ref().ok_or_else(|| {
        BenchError::Plan(format!(
            "{} cannot be read: {}",
            job.model.id,
            job.model.error.as_deref().unwrap_or("unknown error")
        ))
    })?;
    let started_at = now();
    let Tests { tests, skipped } = job.plan.tests(facts.n_ctx_train.max(1));
    let mut notes = job.notes;
    if !skipped.is_empty() {
        notes.push(format!(
            "skipped {} (longer than the model's trained context of {} tokens)",
            skipped.join(", "),
            facts.n_ctx_train
        ));
    }
    if tests.is_empty() {
        return Err(BenchError::Plan(format!(
            "every test is longer than the model's trained context ({} tokens)",
            facts.n_ctx_train
        )));
    }
    let reps = job.plan.repetitions;
    let total = tests.len() as u64 * u64::from(reps);
    let mut state = Progress {
        done: 0,
        total,
        current: None,
    };
    if !progress(&state) {
        return Err(BenchError::Cancelled);
    }
    let probe = Probe::load(job.spec.clone())?;
    let mut results = Vec::with_capacity(tests.len());
    for test in tests {
        state.current = Some(test_name(&test));
        if !progress(&state) {
            return Err(BenchError::Cancelled);
        }
        let mut go_on = true;
        let samples = probe.run(test, reps, || {
            state.done += 1;
            go_on = progress(&state);
            go_on
        })?;
        if !go_on {
            return Err(BenchError::Cancelled);
        }
        results.push(result(test, &samples));
    }
    let derived = Derived::new(&results, job.model.tg_ceiling);
    drop(probe); // the model's memory is free before the caller reloads what it served
    notes.extend(derived::model_note(facts));
    Ok(Run {
        id: run_id(&started_at),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        model: RunModel {
            id: job.model.id.clone(),
            file: file_name(&job.spec.model_path),
            architecture: facts.architecture.clone(),
            quant: facts.quantization.label.clone(),
            size_bytes: facts.file_bytes,
            params: facts.total_params,
            active_params: facts.active_params,
            active_bytes: facts.active_bytes,
            moe: facts.moe.is_some(),
            n_ctx_train: facts.n_ctx_train,
        },
        settings: RunSettings {
            n_threads: job.spec.n_threads,
            n_batch: job.spec.n_batch,
            n_ubatch: job.spec.n_ubatch,
            flash_attn: format!("{:?}", job.spec.flash_attn).to_lowercase(),
            type_k: job.spec.cache_type_k.to_string(),
            type_v: job.spec.cache_type_v.to_string(),
            n_gpu_layers: job.spec.n_gpu_layers,
            repetitions: reps,
        },
        machine: this_machine(job.bandwidth),
        versions: Versions {
            paddock: env!("CARGO_PKG_VERSION").to_string(),
            llama_cpp: crate::engine::llama_cpp_version(),
        },
        results,
        derived,
        notes,
        warnings: job.warnings,
    })
}

/// Checks the plan, learns the memory bandwidth (measuring it once on machines without a
/// table entry), budgets the model at the longest test's context with one slot, and runs the
/// preflight checks.
pub fn prepare(
    library: &Library,
    file: ModelFile,
    spec: EngineSpec,
    plan: Plan,
) -> Result<Job, BenchError> {
    plan.check().map_err(BenchError::Plan)?;
    let bandwidth = crate::library::bandwidth::known_or_measure();
    let mut library = library.clone();
    library.machine.bandwidth = bandwidth.map(|b| b.bytes_per_sec);
    let mut settings = crate::library::budget_settings(&spec);
    settings.n_parallel = 1;
    let first = library.describe(file.clone(), &settings);
    let n_ctx_train = first.facts.as_ref().map_or(0, |f| f.n_ctx_train.max(1));
    settings.n_ctx = plan
        .tests(n_ctx_train)
        .tests
        .iter()
        .map(|t| t.n_depth + t.n_prompt + t.n_gen)
        .max()
        .unwrap_or(1);
    let model = library.describe(file, &settings);
    let warnings = preflight(&model)?;
    Ok(Job {
        model,
        spec,
        plan,
        bandwidth,
        notes: Vec::new(),
        warnings,
    })
}

fn result(test: ProbeTest, samples: &[ProbeSample]) -> BenchResult {
    let n = f64::from(test.n_prompt + test.n_gen);
    let ns: Vec<u64> = samples
        .iter()
        .map(|s| s.elapsed.as_nanos() as u64)
        .collect();
    let ts: Vec<f64> = samples
        .iter()
        .map(|s| n / s.elapsed.as_secs_f64())
        .collect();
    let ns_f: Vec<f64> = ns.iter().map(|&v| v as f64).collect();
    BenchResult {
        test: test_name(&test),
        n_prompt: test.n_prompt,
        n_gen: test.n_gen,
        n_depth: test.n_depth,
        avg_ns: mean(&ns_f) as u64,
        stddev_ns: stddev(&ns_f) as u64,
        avg_ts: mean(&ts),
        stddev_ts: stddev(&ts),
        samples_ns: ns,
        samples_ts: ts,
        n_prompt_decoded: samples.iter().map(|s| s.n_prompt_decoded).collect(),
        n_gen_decoded: samples.iter().map(|s| s.n_gen_decoded).collect(),
    }
}

fn this_machine(bandwidth: Option<Bandwidth>) -> RunMachine {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    RunMachine {
        cpu: crate::library::bandwidth::cpu_brand(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: system.total_memory(),
        os: format!(
            "{} {}",
            sysinfo::System::name().unwrap_or_default(),
            sysinfo::System::kernel_version().unwrap_or_default()
        ),
        bandwidth_bytes_per_s: bandwidth.map(|b| b.bytes_per_sec),
        bandwidth_source: bandwidth.and_then(|b| {
            serde_json::to_value(b.source)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
        }),
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn run_id(started: &chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{:04x}",
        started.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    )
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn statistics_match_llama_bench_definitions() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert!((stddev(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(stddev(&[5.0]), 0.0);
    }

    #[test]
    fn results_are_tokens_over_time_per_repetition() {
        let test = ProbeTest {
            n_prompt: 512,
            n_gen: 0,
            n_depth: 0,
        };
        let sample = |ms| ProbeSample {
            elapsed: std::time::Duration::from_millis(ms),
            n_prompt_decoded: 512,
            n_gen_decoded: 0,
        };
        let r = result(test, &[sample(1000), sample(2000)]);
        assert_eq!(r.test, "pp512");
        assert_eq!(r.samples_ts, vec![512.0, 256.0]);
        assert_eq!(r.avg_ts, 384.0);
        assert_eq!(r.avg_ns, 1_500_000_000);
        assert_eq!(r.n_prompt_decoded, vec![512, 512]);
    }

    /// A run with made-up numbers, for format and storage tests.
    pub(crate) fn sample_run(id: &str) -> Run {
        let row = |test: &str, n_prompt, n_gen, ts: f64| BenchResult {
            test: test.into(),
            n_prompt,
            n_gen,
            n_depth: 0,
            avg_ns: 1_000_000_000,
            stddev_ns: 0,
            avg_ts: ts,
            stddev_ts: 1.5,
            samples_ns: vec![1_000_000_000],
            samples_ts: vec![ts],
            n_prompt_decoded: vec![n_prompt],
            n_gen_decoded: vec![n_gen],
        };
        let results = vec![
            row("pp512", 512, 0, 200.0),
            row("pp4096", 4096, 0, 150.0),
            row("tg128", 0, 128, 90.0),
        ];
        Run {
            id: id.into(),
            started_at: "2026-11-26T06:30:00Z".into(),
            finished_at: "2026-11-26T06:31:00Z".into(),
            model: RunModel {
                id: "tiny".into(),
                file: "tiny.gguf".into(),
                architecture: "llama".into(),
                quant: "Q4_1".into(),
                size_bytes: 90 << 20,
                params: 135_000_000,
                active_params: 135_000_000,
                active_bytes: 90 << 20,
                moe: false,
                n_ctx_train: 8192,
            },
            settings: RunSettings {
                n_threads: 2,
                n_batch: 2048,
                n_ubatch: 512,
                flash_attn: "auto".into(),
                type_k: "f16".into(),
                type_v: "f16".into(),
                n_gpu_layers: 0,
                repetitions: 1,
            },
            machine: RunMachine {
                cpu: "Test CPU".into(),
                cores: 2,
                memory_bytes: 24 << 30,
                os: "Linux".into(),
                bandwidth_bytes_per_s: Some(18e9),
                bandwidth_source: Some("measured".into()),
            },
            versions: Versions {
                paddock: "0.1.0".into(),
                llama_cpp: "test".into(),
            },
            derived: Derived::new(&results, Some(180.0)),
            results,
            notes: vec![],
            warnings: vec![],
        }
    }
}
