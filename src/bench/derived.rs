//! What the source document worked out from its tables by hand: how much prompt speed is kept
//! at long context (retention = largest pp ÷ pp512) and how close generation comes to its
//! memory-bandwidth ceiling.

use serde::{Deserialize, Serialize};

use super::BenchResult;
use crate::catalog::ModelFacts;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// Context-scaling retention: the largest prompt's t/s ÷ the smallest's (pp512 with the
    /// default sizes), at depth 0. `None` with fewer than two prompt sizes.
    pub retention: Option<Retention>,
    /// Bandwidth ÷ active bytes per token (from the budget module), tokens/s.
    pub tg_ceiling_ts: Option<f64>,
    /// The generation speed compared with it: tg128 at depth 0, else the shortest tg run.
    pub tg_best_ts: Option<f64>,
    /// `tg_best_ts` as a percentage of the ceiling.
    pub tg_ceiling_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retention {
    pub from: String,
    pub to: String,
    pub ratio: f64,
}

impl Derived {
    pub fn new(results: &[BenchResult], tg_ceiling: Option<f64>) -> Self {
        let shallow = || results.iter().filter(|r| r.n_depth == 0);
        let mut pp: Vec<&BenchResult> = shallow().filter(|r| r.n_gen == 0).collect();
        pp.sort_by_key(|r| r.n_prompt);
        let retention = match (pp.first(), pp.last()) {
            (Some(small), Some(large)) if large.n_prompt > small.n_prompt && small.avg_ts > 0.0 => {
                Some(Retention {
                    from: small.test.clone(),
                    to: large.test.clone(),
                    ratio: large.avg_ts / small.avg_ts,
                })
            }
            _ => None,
        };
        let tg = shallow()
            .filter(|r| r.n_prompt == 0 && r.n_gen > 0)
            .min_by_key(|r| (r.n_gen != 128, r.n_gen))
            .map(|r| r.avg_ts);
        let tg_ceiling_ts = tg_ceiling.filter(|c| c.is_finite() && *c > 0.0);
        Self {
            retention,
            tg_ceiling_ts,
            tg_best_ts: tg,
            tg_ceiling_pct: tg.zip(tg_ceiling_ts).map(|(t, c)| 100.0 * t / c),
        }
    }
}

/// MoE or dense, in the source document's terms: what a generated token has to read.
pub fn model_note(facts: &ModelFacts) -> Option<String> {
    let gb = |b: u64| b as f64 / 1e9;
    Some(match &facts.moe {
        Some(moe) => format!(
            "MoE: {} of {} experts per token, so a token reads {:.2} GB of {:.2} GB of weights; the tg ceiling is set by the active bytes",
            moe.expert_used_count,
            moe.expert_count,
            gb(facts.active_bytes),
            gb(facts.tensor_bytes)
        ),
        None => format!(
            "dense: every token reads all {:.2} GB of weights",
            gb(facts.active_bytes)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample_run;
    use super::*;

    #[test]
    fn retention_is_largest_pp_over_smallest_and_ceiling_uses_tg128() {
        let run = sample_run("x");
        let d = Derived::new(&run.results, Some(180.0));
        let r = d.retention.unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str()), ("pp512", "pp4096"));
        assert_eq!(r.ratio, 0.75);
        assert_eq!(d.tg_best_ts, Some(90.0));
        assert_eq!(d.tg_ceiling_pct, Some(50.0));
    }

    #[test]
    fn one_prompt_size_or_no_ceiling_gives_no_figure() {
        let run = sample_run("x");
        let d = Derived::new(&run.results[..1], None);
        assert_eq!(d.retention, None);
        assert_eq!(d.tg_best_ts, None);
        assert_eq!(d.tg_ceiling_pct, None);
    }
}
