//! What llama.cpp really allocated for a context, in its own words. While a context is made,
//! llama.cpp logs each buffer it allocates ("CPU KV buffer size = 90.00 MiB", "CPU compute
//! buffer size = 106.77 MiB"); those lines are read back on the making thread and summed. The
//! memory budget's predictions are checked against these figures (the UI's "measured" column).
//! llama.cpp has no C API for them (its `memory_breakdown` is C++ only).

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Bytes, summed over devices (CPU and GPU buffers alike).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocated {
    pub kv_cache: u64,
    /// Recurrent layers' state (Mamba, Qwen3-Next's linear attention).
    pub recurrent_state: u64,
    pub compute: u64,
    /// The part of `compute` in host memory: the CPU backend's, and GPU backends' pinned host
    /// buffers for graph inputs (`CUDA_Host`); the rest is on the GPU.
    pub compute_host: u64,
}

/// Runs `make` (which makes a context) and returns what llama.cpp said it allocated, or none
/// when it logged no buffer sizes. The lines still reach the log: warnings and errors as they
/// were, the rest at debug level.
pub fn capture<T>(make: impl FnOnce() -> T) -> (T, Option<Allocated>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Lines(Arc::clone(&lines)));
    let made = tracing::subscriber::with_default(subscriber, make);
    let lines = std::mem::take(&mut *lines.lock().unwrap_or_else(PoisonError::into_inner));
    for (level, text) in &lines {
        match *level {
            Level::ERROR => tracing::error!(target: "llama.cpp", "{text}"),
            Level::WARN => tracing::warn!(target: "llama.cpp", "{text}"),
            _ => tracing::debug!(target: "llama.cpp", "{text}"),
        }
    }
    (made, parse(lines.iter().map(|(_, t)| t.as_str())))
}

/// Sums the buffer sizes in llama.cpp's context log lines.
fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Allocated> {
    let mut out = Allocated::default();
    let mut seen = false;
    for line in lines {
        let part = if line.contains("KV buffer size") {
            &mut out.kv_cache
        } else if line.contains("RS buffer size") {
            &mut out.recurrent_state
        } else if line.contains("compute buffer size") {
            &mut out.compute
        } else {
            continue;
        };
        if let Some(bytes) = mib_after_equals(line) {
            *part += bytes;
            seen = true;
            if line.contains("compute buffer size") && on_host(line) {
                out.compute_host += bytes;
            }
        }
    }
    seen.then_some(out)
}

/// Whether a buffer line names host memory: `CPU compute buffer size`, `CUDA_Host ...`.
fn on_host(line: &str) -> bool {
    let name = line
        .split(" compute buffer size")
        .next()
        .and_then(|head| head.split_whitespace().last())
        .unwrap_or("");
    name == "CPU" || name.ends_with("_Host")
}

/// `... size =   106.77 MiB` → bytes (to the 1/100 MiB llama.cpp prints).
fn mib_after_equals(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once('=')?;
    let number = rest.trim().strip_suffix("MiB")?.trim();
    let mib: f64 = number.parse().ok()?;
    Some((mib * 1_048_576.0).round() as u64)
}

/// Keeps every event's level and message.
struct Lines(Arc<Mutex<Vec<(Level, String)>>>);

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message(None);
        event.record(&mut message);
        if let Some(text) = message.0 {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((*event.metadata().level(), text));
        }
    }
}

struct Message(Option<String>);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_lines_are_summed_per_part() {
        let lines = [
            "       CPU  output buffer size =     0.38 MiB",
            "       CPU KV buffer size =    90.00 MiB",
            "     CUDA0 KV buffer size =    12.00 MiB",
            "       CPU RS buffer size =     1.50 MiB",
            "       CPU compute buffer size =   106.77 MiB",
            "size =  720.00 MiB ( 32768 cells,  30 layers,  2/1 seqs), K (f16):  360.00 MiB",
        ];
        assert_eq!(
            parse(lines.into_iter()),
            Some(Allocated {
                kv_cache: 102 << 20,
                recurrent_state: 1_572_864,
                compute: 111_956_460,
                compute_host: 111_956_460,
            })
        );
        let gpu = [
            "sched_reserve:      CUDA0 compute buffer size =   300.00 MiB",
            "sched_reserve:  CUDA_Host compute buffer size =    12.00 MiB",
        ];
        let a = parse(gpu.into_iter()).unwrap();
        assert_eq!((a.compute, a.compute_host), (312 << 20, 12 << 20));
        assert_eq!(parse(["llama_context: n_ctx = 4096"].into_iter()), None);
    }

    #[test]
    fn events_on_this_thread_are_captured_and_passed_on() {
        let ((), allocated) = capture(|| {
            tracing::info!("CPU compute buffer size =   10.00 MiB");
        });
        assert_eq!(allocated.map(|a| a.compute), Some(10 << 20));
    }
}
