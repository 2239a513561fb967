//! What to measure: llama-bench's `-p`, `-n`, `-d` and `-r`, with the source document's lists
//! as defaults, and the tests they expand to on a given model.

use serde::{Deserialize, Serialize};

use crate::engine::probe::ProbeTest;

/// The source document's prompt sizes (pp512 … pp65536) and generation lengths.
pub const DEFAULT_N_PROMPT: &[u32] = &[512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
pub const DEFAULT_N_GEN: &[u32] = &[128, 256, 512, 1024];
pub const DEFAULT_REPETITIONS: u32 = 3;

/// Bounds that keep a request from asking for a week of work or a context no machine holds.
const MAX_TESTS: usize = 64;
const MAX_TOKENS: u32 = 1 << 20;
const MAX_REPETITIONS: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default = "default_n_prompt")]
    pub n_prompt: Vec<u32>,
    #[serde(default = "default_n_gen")]
    pub n_gen: Vec<u32>,
    /// Tokens already in the context before each test (llama-bench's `-d`).
    #[serde(default = "default_n_depth")]
    pub n_depth: Vec<u32>,
    #[serde(default = "default_repetitions")]
    pub repetitions: u32,
}

fn default_n_prompt() -> Vec<u32> {
    DEFAULT_N_PROMPT.to_vec()
}
fn default_n_gen() -> Vec<u32> {
    DEFAULT_N_GEN.to_vec()
}
fn default_n_depth() -> Vec<u32> {
    vec![0]
}
fn default_repetitions() -> u32 {
    DEFAULT_REPETITIONS
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            n_prompt: default_n_prompt(),
            n_gen: default_n_gen(),
            n_depth: default_n_depth(),
            repetitions: default_repetitions(),
        }
    }
}

/// The tests a plan runs on a model, and what it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tests {
    pub tests: Vec<ProbeTest>,
    /// Tests longer than the model's trained context, by name.
    pub skipped: Vec<String>,
}

impl Plan {
    /// The lists given, the defaults for those not given.
    pub fn given(
        n_prompt: Option<Vec<u32>>,
        n_gen: Option<Vec<u32>>,
        n_depth: Option<Vec<u32>>,
        repetitions: Option<u32>,
    ) -> Self {
        Self {
            n_prompt: n_prompt.unwrap_or_else(default_n_prompt),
            n_gen: n_gen.unwrap_or_else(default_n_gen),
            n_depth: n_depth.unwrap_or_else(default_n_depth),
            repetitions: repetitions.unwrap_or_else(default_repetitions),
        }
    }

    /// Refuses plans that measure nothing or too much. Sizes of 0 are dropped, as llama-bench
    /// does with `-p 0` / `-n 0`.
    pub fn check(&self) -> Result<(), String> {
        let lists = [
            ("n_prompt", &self.n_prompt),
            ("n_gen", &self.n_gen),
            ("n_depth", &self.n_depth),
        ];
        for (name, list) in lists {
            if let Some(n) = list.iter().find(|&&n| n > MAX_TOKENS) {
                return Err(format!("{name}: {n} tokens is more than {MAX_TOKENS}"));
            }
        }
        if !(1..=MAX_REPETITIONS).contains(&self.repetitions) {
            return Err(format!(
                "repetitions must be 1 to {MAX_REPETITIONS}, not {}",
                self.repetitions
            ));
        }
        let sizes = self.sizes().count();
        if sizes == 0 {
            return Err("nothing to measure: give a prompt size or a generation length".into());
        }
        if sizes * self.n_depth.len().max(1) > MAX_TESTS {
            return Err(format!("more than {MAX_TESTS} tests; split the benchmark"));
        }
        Ok(())
    }

    /// Every test in llama-bench's order (pp sizes, then tg lengths, each at every depth),
    /// leaving out those that do not fit the model's trained context: the source document's
    /// tables stop there too.
    pub fn tests(&self, n_ctx_train: u32) -> Tests {
        let depths = if self.n_depth.is_empty() {
            vec![0]
        } else {
            self.n_depth.clone()
        };
        let mut out = Tests {
            tests: Vec::new(),
            skipped: Vec::new(),
        };
        for (n_prompt, n_gen) in self.sizes() {
            for &n_depth in &depths {
                let test = ProbeTest {
                    n_prompt,
                    n_gen,
                    n_depth,
                };
                if n_depth + n_prompt + n_gen <= n_ctx_train {
                    out.tests.push(test);
                } else {
                    out.skipped.push(test_name(&test));
                }
            }
        }
        out
    }

    fn sizes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let pp = self.n_prompt.iter().filter(|&&n| n > 0).map(|&n| (n, 0));
        let tg = self.n_gen.iter().filter(|&&n| n > 0).map(|&n| (0, n));
        pp.chain(tg)
    }
}

/// llama-bench's test name: `pp512`, `tg128`, `pp512+tg128`, and ` @ d4096` after a depth.
pub fn test_name(test: &ProbeTest) -> String {
    let name = match (test.n_prompt, test.n_gen) {
        (p, 0) => format!("pp{p}"),
        (0, g) => format!("tg{g}"),
        (p, g) => format!("pp{p}+tg{g}"),
    };
    match test.n_depth {
        0 => name,
        d => format!("{name} @ d{d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_source_documents_lists_capped_at_the_trained_context() {
        let t = Plan::default().tests(8192);
        let names: Vec<_> = t.tests.iter().map(test_name).collect();
        assert_eq!(
            names,
            [
                "pp512", "pp1024", "pp2048", "pp4096", "pp8192", "tg128", "tg256", "tg512",
                "tg1024"
            ]
        );
        assert_eq!(t.skipped, ["pp16384", "pp32768", "pp65536"]);
    }

    #[test]
    fn depth_multiplies_tests_and_counts_against_the_context() {
        let plan = Plan {
            n_prompt: vec![512],
            n_gen: vec![128],
            n_depth: vec![0, 4096],
            repetitions: 1,
        };
        let t = plan.tests(4224);
        let names: Vec<_> = t.tests.iter().map(test_name).collect();
        assert_eq!(names, ["pp512", "tg128", "tg128 @ d4096"]);
        assert_eq!(t.skipped, ["pp512 @ d4096"]);
    }

    #[test]
    fn empty_huge_and_endless_plans_are_refused() {
        let none = Plan {
            n_prompt: vec![0],
            n_gen: vec![],
            ..Plan::default()
        };
        assert!(none.check().unwrap_err().contains("nothing to measure"));
        let huge = Plan {
            n_prompt: vec![u32::MAX],
            ..Plan::default()
        };
        assert!(huge.check().unwrap_err().contains("n_prompt"));
        let endless = Plan {
            repetitions: 0,
            ..Plan::default()
        };
        assert!(endless.check().is_err());
        let many = Plan {
            n_depth: (0..20).collect(),
            ..Plan::default()
        };
        assert!(many.check().unwrap_err().contains("tests"));
        assert_eq!(Plan::default().check(), Ok(()));
    }

    #[test]
    fn a_json_plan_fills_in_defaults_and_rejects_unknown_fields() {
        let plan: Plan = serde_json::from_str(r#"{"n_prompt":[64]}"#).unwrap();
        assert_eq!(plan.n_gen, DEFAULT_N_GEN);
        assert_eq!(plan.repetitions, 3);
        assert!(serde_json::from_str::<Plan>(r#"{"n_promt":[64]}"#).is_err());
    }
}
