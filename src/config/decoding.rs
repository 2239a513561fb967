//! How tokens are chosen, from the raw settings: sampling defaults for requests that give
//! none, and speculative decoding. Both over llama-server's defaults, with its limits.

use super::RawEngine;
use crate::engine::{SamplingDefaults, Speculation};

/// Guesses per step beyond this cost more to verify than they can save.
const MAX_DRAFT: u32 = 64;

/// Speculative decoding settings over llama-server's defaults.
pub(super) fn speculation(e: &RawEngine) -> Result<Speculation, String> {
    let d = Speculation::default();
    let s = Speculation {
        ngram: e.spec_ngram.unwrap_or(d.ngram),
        draft_model: e.model_draft.clone(),
        mtp: e.spec_mtp.unwrap_or(d.mtp),
        draft_max: e.draft_max.unwrap_or(d.draft_max),
        draft_min: e.draft_min.unwrap_or(d.draft_min),
        draft_p_min: e.draft_p_min.unwrap_or(d.draft_p_min),
    };
    if s.draft_max > MAX_DRAFT {
        return Err(format!(
            "draft-max must be at most {MAX_DRAFT}, not {}",
            s.draft_max
        ));
    }
    if s.draft_min > s.draft_max {
        return Err(format!(
            "draft-min ({}) must not exceed draft-max ({})",
            s.draft_min, s.draft_max
        ));
    }
    if !(0.0..=1.0).contains(&s.draft_p_min) {
        return Err(format!(
            "draft-p-min is a probability, 0 to 1, not {}",
            s.draft_p_min
        ));
    }
    Ok(s)
}

/// The sampling defaults the settings give, checked as a request's values are.
pub(super) fn sampling(e: &RawEngine) -> Result<SamplingDefaults, String> {
    let s = SamplingDefaults {
        temperature: e.temp,
        top_k: e.top_k,
        top_p: e.top_p,
        min_p: e.min_p,
        repeat_penalty: e.repeat_penalty,
    };
    let bad = |name: &str, rule: &str, v: f64| Err(format!("{name} must be {rule}, not {v}"));
    if let Some(t) = s.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return bad("temp", "from 0 (greedy) to 2", t.into());
    }
    if let Some(k) = s.top_k.filter(|k| *k < 0) {
        return bad("top-k", "0 (off) or more", k.into());
    }
    if let Some(p) = s.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        return bad("top-p", "above 0 and at most 1", p.into());
    }
    if let Some(p) = s.min_p.filter(|p| !(0.0..=1.0).contains(p)) {
        return bad("min-p", "from 0 to 1", p.into());
    }
    if let Some(r) = s.repeat_penalty.filter(|r| !(*r > 0.0 && r.is_finite())) {
        return bad("repeat-penalty", "above 0 (1 = off)", r.into());
    }
    Ok(s)
}
