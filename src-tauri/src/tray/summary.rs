//! The status line of a running server: the loaded models, their memory, the last speed and
//! drafts' acceptance, or what the server is busy with (a load, a benchmark, an error).

use paddock::server::{BenchState, Measured, Status};

use super::IconState;

/// What the tray shows of a running server, taken from the library's status.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Summary {
    state: Served,
    /// The most recently used loaded model.
    model: Option<String>,
    /// How many other models are loaded beside it.
    others: usize,
    loading: Option<(String, f32)>,
    error: Option<String>,
    /// What llama.cpp allocated for every loaded model together (weights, KV cache, state,
    /// compute) and the machine's memory, bytes.
    memory: Option<(u64, u64)>,
    tokens_per_second: Option<f64>,
    /// The share of guessed tokens the model took (speculative decoding), last request.
    acceptance: Option<f64>,
    /// A benchmark that has the machine: model, repetitions done and in all.
    bench: Option<(String, u64, u64)>,
}

/// The library's `ServerState`, which `paddock::server` does not export: read by its wire
/// name, as `/api/status` sends it to the web UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    NoModel,
    Loading,
    Idle,
    Generating,
    Error,
}

impl Summary {
    pub(super) fn of(status: &Status) -> Self {
        let state = match serde_json::to_value(status.state) {
            Ok(serde_json::Value::String(name)) => match name.as_str() {
                "no_model" => Served::NoModel,
                "loading" => Served::Loading,
                "generating" => Served::Generating,
                "error" => Served::Error,
                _ => Served::Idle,
            },
            _ => Served::Idle,
        };
        let used = in_use(status.models.iter().map(|m| &m.measured));
        let total = status.memory.machine.as_ref().map(|m| m.total_memory);
        let model = status.model.as_ref().map(|m| m.model.id.clone());
        Self {
            state,
            others: status
                .models
                .iter()
                .filter(|m| Some(&m.model.id) != model.as_ref())
                .count(),
            model,
            loading: status
                .loading
                .as_ref()
                .map(|l| (l.model.clone(), l.progress)),
            error: status.error.clone(),
            memory: total
                .filter(|_| !status.models.is_empty())
                .map(|total| (used, total)),
            tokens_per_second: status.last_tps,
            acceptance: status.last_acceptance,
            bench: status
                .bench
                .as_ref()
                .filter(|b| b.state == BenchState::Running)
                .map(|b| (b.model.clone(), b.done, b.total)),
        }
    }

    pub(super) fn line(&self) -> (IconState, String) {
        if let Some((model, done, total)) = &self.bench {
            return (
                IconState::Generating,
                format!("Benchmarking {model}… {done}/{total}"),
            );
        }
        match (self.state, &self.loading, &self.model) {
            (Served::Loading, Some((model, progress)), _) => (
                IconState::Generating,
                format!("Loading {model}… {:.0} %", progress * 100.0),
            ),
            (Served::Error, ..) => (
                IconState::Error,
                format!("Error: {}", self.error.as_deref().unwrap_or("unknown")),
            ),
            (Served::Idle | Served::Generating, _, Some(model)) => {
                let mut line = model.clone();
                if self.others > 0 {
                    line += &format!(" +{}", self.others);
                }
                if let Some((used, total)) = self.memory {
                    line += &format!(" · {} of {}", size(used), size(total));
                }
                if let Some(tps) = self.tokens_per_second {
                    line += &format!(" · {tps:.0} t/s");
                }
                if let Some(acceptance) = self.acceptance {
                    line += &format!(" · {:.0} % drafts accepted", acceptance * 100.0);
                }
                let icon = match self.state {
                    Served::Generating => IconState::Generating,
                    _ => IconState::Idle,
                };
                (icon, line)
            }
            _ => (IconState::Idle, "Serving, no model loaded".to_string()),
        }
    }
}

/// What llama.cpp allocated for these models together: weights, KV cache, recurrent state and
/// compute, each part it reported.
fn in_use<'a>(measured: impl IntoIterator<Item = &'a Measured>) -> u64 {
    measured
        .into_iter()
        .map(|m| {
            m.weights
                + m.kv_cache.unwrap_or(0)
                + m.recurrent_state.unwrap_or(0)
                + m.compute.unwrap_or(0)
        })
        .sum()
}

/// Binary units, as Activity Monitor and the web UI show them: MiB below 1 GiB.
fn size(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    match bytes as f64 / MIB {
        mib if mib < 1024.0 => format!("{mib:.0} MiB"),
        mib => format!("{:.1} GiB", mib / 1024.0),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{fit, STATUS_CHARS};
    use super::*;

    fn summary(state: Served) -> Summary {
        Summary {
            state,
            model: Some("SmolLM2".into()),
            others: 0,
            loading: None,
            error: None,
            memory: Some((3 << 29, 24 << 30)),
            tokens_per_second: Some(212.4),
            acceptance: None,
            bench: None,
        }
    }

    #[test]
    fn the_status_line_names_the_model_memory_and_speed() {
        let (icon, line) = summary(Served::Generating).line();
        assert_eq!(line, "SmolLM2 · 1.5 GiB of 24.0 GiB · 212 t/s");
        assert_eq!(icon, IconState::Generating);
        let first = Summary {
            tokens_per_second: None,
            ..summary(Served::Idle)
        };
        assert_eq!(
            first.line(),
            (IconState::Idle, "SmolLM2 · 1.5 GiB of 24.0 GiB".into())
        );
        let small = Summary {
            memory: Some((289 << 20, 25_271_000_000)),
            ..first
        };
        assert_eq!(small.line().1, "SmolLM2 · 289 MiB of 23.5 GiB");
        let guessed = Summary {
            acceptance: Some(0.634),
            ..summary(Served::Idle)
        };
        assert_eq!(
            guessed.line().1,
            "SmolLM2 · 1.5 GiB of 24.0 GiB · 212 t/s · 63 % drafts accepted"
        );
        // A long name leaves no room in the menu: the last parts go, whole.
        let long = Summary {
            model: Some("SmolLM2-135M-Instruct.Q4_1".into()),
            ..guessed
        };
        assert_eq!(
            fit(&long.line().1, STATUS_CHARS),
            "SmolLM2-135M-Instruct.Q4_1 · 1.5 GiB of 24.0 GiB · 212 t/s"
        );
    }

    #[test]
    fn with_several_models_loaded_the_line_counts_the_others_and_sums_their_memory() {
        let two = Summary {
            others: 1,
            ..summary(Served::Idle)
        };
        assert_eq!(
            two.line(),
            (
                IconState::Idle,
                "SmolLM2 +1 · 1.5 GiB of 24.0 GiB · 212 t/s".into()
            )
        );
        let smol = Measured {
            weights: 100 << 20,
            kv_cache: Some(20 << 20),
            recurrent_state: None,
            compute: Some(5 << 20),
        };
        // Weights are measured first; parts not reported yet count as nothing.
        let gemma = Measured {
            weights: 240 << 20,
            kv_cache: None,
            recurrent_state: Some(1 << 20),
            compute: None,
        };
        assert_eq!(in_use([&smol, &gemma]), 366 << 20);
        assert_eq!(in_use([]), 0);
    }

    #[test]
    fn a_running_benchmark_is_what_the_status_line_shows() {
        let benching = Summary {
            model: None,
            bench: Some(("SmolLM2".into(), 3, 12)),
            ..summary(Served::NoModel)
        };
        assert_eq!(
            benching.line(),
            (IconState::Generating, "Benchmarking SmolLM2… 3/12".into())
        );
    }

    #[test]
    fn loads_and_load_errors_of_a_running_server_show_as_such() {
        let loading = Summary {
            loading: Some(("Qwen3".into(), 0.456)),
            model: None,
            ..summary(Served::Loading)
        };
        assert_eq!(
            loading.line(),
            (IconState::Generating, "Loading Qwen3… 46 %".into())
        );
        let failed = Summary {
            error: Some("does not fit".into()),
            model: None,
            ..summary(Served::Error)
        };
        assert_eq!(
            failed.line(),
            (IconState::Error, "Error: does not fit".into())
        );
        let unloaded = Summary {
            model: None,
            ..summary(Served::NoModel)
        };
        assert_eq!(unloaded.line().0, IconState::Idle);
    }
}
