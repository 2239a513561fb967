//! The source document's hygiene before a benchmark: enough free memory for the model (a
//! swapping model measures the disk), nothing else busy, no other LLM server holding memory.

use crate::budget::Fit;
use crate::library::Entry;

use super::BenchError;

/// Names of processes that hold models in memory and take cores.
const LLM_SERVERS: &[&str] = &[
    "paddock",
    "paddock-app",
    "llama-server",
    "ollama",
    "LM Studio",
];

/// Refuses when the model (budgeted at the benchmark's context) cannot fit in free memory;
/// otherwise the warnings to record with the results.
pub fn preflight(model: &Entry) -> Result<Vec<String>, BenchError> {
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let mut warnings = Vec::new();
    let Some(budget) = &model.budget else {
        return Ok(warnings);
    };
    if let Fit::DoesNotFit { short_by } = budget.fits {
        return Err(BenchError::Memory(format!(
            "{} does not fit in memory for this benchmark: {:.2} GiB short (drop the longest prompt sizes)",
            model.id,
            gib(short_by)
        )));
    }
    let needs = budget.weights_gpu
        + budget.weights_cpu
        + budget.kv_cache
        + budget.recurrent_state
        + budget.compute;
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let free = system.available_memory();
    if free > 0 && needs > free {
        return Err(BenchError::Memory(format!(
            "{} needs {:.2} GiB but only {:.2} GiB is free: it would swap and the numbers would measure the disk; close other apps or unload models first",
            model.id,
            gib(needs),
            gib(free)
        )));
    }
    if free > 0 && needs > free / 10 * 8 {
        warnings.push(format!(
            "memory is tight: the model needs {:.2} GiB of the {:.2} GiB free; results may suffer from memory pressure",
            gib(needs),
            gib(free)
        ));
    }
    let busy = cpu_busy();
    if busy >= 0.25 {
        warnings.push(format!(
            "other work was using {:.0} % of the CPU when the benchmark started: it takes cores and memory bandwidth, so the numbers may be low",
            100.0 * busy
        ));
    }
    let others = other_llm_servers();
    if !others.is_empty() {
        warnings.push(format!(
            "other LLM servers are running ({}): they hold memory and may take cores",
            others.join(", ")
        ));
    }
    Ok(warnings)
}

/// The share of all cores busy now (0 to 1), sampled over half a second. Before the model
/// loads this process is idle, so it is other work; the load average would still count the
/// benchmark that just ended.
fn cpu_busy() -> f32 {
    let mut system = sysinfo::System::new();
    system.refresh_cpu_usage();
    std::thread::sleep(
        sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(std::time::Duration::from_millis(500)),
    );
    system.refresh_cpu_usage();
    system.global_cpu_usage() / 100.0
}

/// `name (pid N)` for every LLM server process but this one.
fn other_llm_servers() -> Vec<String> {
    let mut system = sysinfo::System::new();
    system.refresh_processes(sysinfo::ProcessesToUpdate::All, true);
    let me = sysinfo::get_current_pid().ok();
    let mut found: Vec<String> = system
        .processes()
        .iter()
        .filter(|(pid, _)| Some(**pid) != me)
        .filter_map(|(pid, p)| {
            let name = p.name().to_string_lossy();
            LLM_SERVERS
                .contains(&name.as_ref())
                .then(|| format!("{name} (pid {pid})"))
        })
        .collect();
    found.sort();
    found
}
