//! Speculative decoding: guess the next few tokens cheaply, then let one decode of the model
//! check them all. Guesses come from the request's own text (n-gram lookup: coding agents
//! rewrite files that are already in the prompt), from a small draft model that shares the
//! vocabulary, or from the model's own multi-token-prediction (MTP) heads where it has them.
//! Every token the client sees is still sampled from the model's own logits, in order, with
//! the same sampler; a guess only saves a decode when it equals that sample. So the output is
//! the one decoding without speculation gives; only the number of decodes drops.

use std::path::PathBuf;

use super::types::TokenId;

/// How an engine speculates. Defaults are llama-server's where it has the setting.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Speculation {
    /// Draft from earlier text of the same request (prompt, prediction, output).
    pub ngram: bool,
    /// A smaller model with the same vocabulary that drafts where the lookup finds nothing.
    pub draft_model: Option<PathBuf>,
    /// The model's own multi-token-prediction heads draft where the lookup finds nothing. As
    /// a setting: use them where the model has them; once loaded: they are in use.
    #[serde(default)]
    pub mtp: bool,
    /// Most tokens guessed per step.
    pub draft_max: u32,
    /// Fewer guesses than this are not worth a verification: the step decodes one token.
    pub draft_min: u32,
    /// The draft model stops guessing once its top token is less likely than this.
    pub draft_p_min: f32,
}

impl Default for Speculation {
    fn default() -> Self {
        Self {
            ngram: true,
            draft_model: None,
            mtp: true,
            draft_max: 16,
            draft_min: 0,
            draft_p_min: 0.8,
        }
    }
}

impl Speculation {
    /// No speculation at all.
    pub fn off() -> Self {
        Self {
            ngram: false,
            mtp: false,
            ..Self::default()
        }
    }

    pub fn is_on(&self) -> bool {
        (self.ngram || self.draft_model.is_some() || self.mtp) && self.draft_max > 0
    }
}

/// "n-gram lookup + draft model qwen-0.5b, up to 16 tokens", or "off": for logs.
impl std::fmt::Display for Speculation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.is_on() {
            return f.write_str("off");
        }
        let draft = self.draft_model.as_deref().map(super::model_id);
        let sources: Vec<String> = [
            self.ngram.then(|| "n-gram lookup".to_string()),
            draft.map(|id| format!("draft model {id}")),
            self.mtp.then(|| "MTP heads".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        write!(
            f,
            "{}, up to {} tokens",
            sources.join(" + "),
            self.draft_max
        )
    }
}

/// Longest and shortest n-gram looked up. Longer matches are tried first: they predict better.
/// Single tokens match everywhere in ordinary text and rarely predict what follows.
const NGRAM_MAX: usize = 4;
const NGRAM_MIN: usize = 2;

/// Prompt-lookup drafting: finds the latest earlier place where `history`'s last n tokens
/// occurred (in `history` itself, else in `prediction`) and proposes the tokens that followed
/// there, at most `max`. Empty when nothing matches.
pub fn ngram_draft(history: &[TokenId], prediction: &[TokenId], max: usize) -> Vec<TokenId> {
    if max == 0 {
        return Vec::new();
    }
    for n in (NGRAM_MIN..=NGRAM_MAX).rev() {
        let Some(pattern) = history.len().checked_sub(n).map(|at| &history[at..]) else {
            continue;
        };
        // In history, the match must end before the pattern itself does.
        let earlier = &history[..history.len() - 1];
        let found = follow(earlier, history, pattern, max)
            .or_else(|| follow(prediction, prediction, pattern, max));
        if let Some(draft) = found {
            return draft;
        }
    }
    Vec::new()
}

/// The tokens of `text` after the last occurrence of `pattern` in `within` (a prefix of
/// `text`), if any follow.
fn follow(
    within: &[TokenId],
    text: &[TokenId],
    pattern: &[TokenId],
    max: usize,
) -> Option<Vec<TokenId>> {
    let end = within.windows(pattern.len()).rposition(|w| w == pattern)? + pattern.len();
    let draft = &text[end..text.len().min(end + max)];
    (!draft.is_empty()).then(|| draft.to_vec())
}

/// How many tokens to guess for one request, weighing what a guess may save against what
/// checking it costs on this machine. A run of guesses is taken up to its first wrong one, so
/// with a chance `p` that each next guess is right, `k` guesses yield `1 + p + ... + p^k`
/// tokens per step, and the step costs `1 + r·k` single-token decodes ([`DecodeCost`]). The
/// best `k` maximises the ratio; none is drafted when no `k` beats decoding one token. On a GPU
/// checking is nearly free (`r` ≈ 0) and long guesses win; on a CPU each checked token costs
/// half a decode, and only likely guesses pay.
#[derive(Debug, Clone, Copy)]
pub struct DraftPolicy {
    /// Right and wrong guesses seen, fading so the estimate follows the text (an edit's copied
    /// stretches and its new lines), over a prior of [`PRIOR_RIGHT`] to [`PRIOR_WRONG`].
    right: f64,
    wrong: f64,
    max: usize,
}

/// Before any evidence a guess is taken to be right 3 times in 4.
const PRIOR_RIGHT: f64 = 3.0;
const PRIOR_WRONG: f64 = 1.0;
/// Weight left to older evidence at each update (or step without guesses, so a request that
/// stopped guessing tries again once its bad stretch has faded).
const FADE: f64 = 0.9;

impl DraftPolicy {
    pub fn new(max: usize) -> Self {
        Self {
            right: 0.0,
            wrong: 0.0,
            max,
        }
    }

    /// The chance that the next guess is right.
    pub fn p(&self) -> f64 {
        (self.right + PRIOR_RIGHT) / (self.right + self.wrong + PRIOR_RIGHT + PRIOR_WRONG)
    }

    /// How many tokens to guess this step (0: none), given what checking costs.
    pub fn length(&self, cost: f64) -> usize {
        let p = self.p();
        let (mut best, mut best_value) = (0, 1.0);
        let (mut gain, mut pk) = (1.0, 1.0);
        for k in 1..=self.max {
            pk *= p;
            gain += pk;
            let value = gain / (1.0 + cost * k as f64);
            if value > best_value {
                (best, best_value) = (k, value);
            }
        }
        best
    }

    /// After a check: `accepted` of `drafted` guesses were right (the first wrong one ends it).
    pub fn update(&mut self, drafted: usize, accepted: usize) {
        self.right = self.right * FADE + accepted as f64;
        self.wrong = self.wrong * FADE + if accepted < drafted { 1.0 } else { 0.0 };
    }

    /// A step without guesses: older evidence fades toward the prior.
    pub fn idle(&mut self) {
        self.right *= FADE;
        self.wrong *= FADE;
    }
}

/// What checking a guess costs, as a share of a one-token decode: fitted online from the
/// decode steps' times by batch size (`time = fixed + per_token · tokens`, least squares with
/// fading weights, small batches only: those are the ones guesses make).
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeCost {
    w: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
}

/// Until the fit has data: guesses are assumed cheap, so that some are made and measured.
const ASSUMED_COST: f64 = 0.25;
/// The batch sizes' variance (tokens²) the fit needs.
const MIN_SIZE_VARIANCE: f64 = 1.0;
/// Batches above this are prompt chunks, whose cost per token says little about a check's.
const LARGEST_FITTED_BATCH: usize = 64;

impl DecodeCost {
    pub fn observe(&mut self, tokens: usize, seconds: f64) {
        if tokens == 0 || tokens > LARGEST_FITTED_BATCH || !seconds.is_finite() {
            return;
        }
        let (x, y) = (tokens as f64, seconds);
        let fade = 0.98;
        self.w = self.w * fade + 1.0;
        self.x = self.x * fade + x;
        self.y = self.y * fade + y;
        self.xx = self.xx * fade + x * x;
        self.xy = self.xy * fade + x * y;
    }

    /// Per-token time over the time of a one-token step, between 0 and 1.
    pub fn ratio(&self) -> f64 {
        let spread = self.w * self.xx - self.x * self.x;
        // Batch sizes too alike (say, one-token steps and a stray two-token prompt) to tell
        // fixed from per-token cost: then guesses are made, and their checks spread the sizes.
        if self.w < 8.0 || spread < MIN_SIZE_VARIANCE * self.w * self.w {
            return ASSUMED_COST;
        }
        let per_token = (self.w * self.xy - self.x * self.y) / spread;
        let fixed = (self.y - per_token * self.x) / self.w;
        let one = fixed + per_token;
        if one <= 0.0 {
            return ASSUMED_COST;
        }
        (per_token / one).clamp(0.0, 1.0)
    }
}

/// Guesses made and taken for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DraftStats {
    pub drafted: u32,
    pub accepted: u32,
}

impl DraftStats {
    /// Accepted ÷ drafted, `None` before any guess.
    pub fn acceptance(&self) -> Option<f64> {
        (self.drafted > 0).then(|| f64::from(self.accepted) / f64::from(self.drafted))
    }
}

/// The most likely token and its probability: a draft model's greedy guess.
pub fn top_token(logits: &[f32]) -> Option<(TokenId, f32)> {
    let (best, &max) = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let p = (max - super::sampling::log_sum_exp(logits)).exp();
    Some((TokenId::try_from(best).ok()?, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_reads_as_a_sentence() {
        assert_eq!(
            Speculation::default().to_string(),
            "n-gram lookup + MTP heads, up to 16 tokens"
        );
        let both = Speculation {
            draft_model: Some("/m/SmolLM2-135M.gguf".into()),
            mtp: false,
            ..Speculation::default()
        };
        assert_eq!(
            both.to_string(),
            "n-gram lookup + draft model SmolLM2-135M, up to 16 tokens"
        );
        let none = Speculation {
            draft_max: 0,
            ..both
        };
        assert_eq!(none.to_string(), "off");
    }

    #[test]
    fn lookup_continues_the_latest_earlier_occurrence() {
        // "fn a ( ) { x } fn a ( ) {" → after "a ( ) {" came "x }".
        let history = [1, 2, 3, 4, 5, 9, 6, 1, 2, 3, 4, 5];
        assert_eq!(ngram_draft(&history, &[], 3), vec![9, 6, 1]);
        assert_eq!(ngram_draft(&history, &[], 1), vec![9]);
    }

    #[test]
    fn longer_matches_win_over_later_shorter_ones() {
        // "7 8" occurs latest followed by 50, but "6 7 8" occurs earlier followed by 60.
        let history = [6, 7, 8, 60, 0, 7, 8, 50, 0, 6, 7, 8];
        assert_eq!(ngram_draft(&history, &[], 1), vec![60]);
    }

    #[test]
    fn the_prediction_is_searched_when_the_history_has_no_match() {
        let history = [10, 11, 12];
        let prediction = [0, 11, 12, 13, 14];
        assert_eq!(ngram_draft(&history, &prediction, 8), vec![13, 14]);
    }

    #[test]
    fn no_match_or_no_room_gives_no_draft() {
        assert!(ngram_draft(&[1, 2, 3, 4], &[], 8).is_empty());
        assert!(ngram_draft(&[1, 2, 1, 2], &[], 0).is_empty());
        assert!(
            ngram_draft(&[1], &[1, 2], 8).is_empty(),
            "one token is too short a key"
        );
        // The pattern's own place is not a match.
        assert!(ngram_draft(&[5, 6], &[], 4).is_empty());
    }

    #[test]
    fn a_repeating_run_drafts_through_its_own_tail() {
        assert_eq!(ngram_draft(&[3, 3, 3, 3], &[], 4), vec![3]);
        assert_eq!(ngram_draft(&[1, 2, 1, 2, 1, 2], &[], 4), vec![1, 2]);
    }

    #[test]
    fn cheap_checks_guess_long_and_dear_ones_only_likely_guesses() {
        let fresh = DraftPolicy::new(16);
        assert!((fresh.p() - 0.75).abs() < 1e-9);
        assert_eq!(
            fresh.length(0.0),
            16,
            "free checks: guess all that is allowed"
        );
        let cpu = fresh.length(0.5);
        assert!((1..=4).contains(&cpu), "{cpu}");
        let mut copying = fresh;
        for _ in 0..20 {
            copying.update(8, 8);
        }
        assert!(copying.p() > 0.95);
        assert!(
            copying.length(0.5) > cpu,
            "a run of right guesses earns longer drafts"
        );
        let mut wrong = fresh;
        for _ in 0..10 {
            wrong.update(2, 0);
        }
        assert_eq!(wrong.length(0.5), 0, "wrong guesses stop guessing on a CPU");
        assert!(
            wrong.length(0.05) > 0,
            "but not where checks are nearly free"
        );
        for _ in 0..40 {
            wrong.idle();
        }
        assert!(
            wrong.length(0.5) > 0,
            "the bad stretch fades and guessing resumes"
        );
    }

    #[test]
    fn the_decode_cost_fit_finds_fixed_and_per_token_time() {
        let mut cost = DecodeCost::default();
        assert_eq!(cost.ratio(), ASSUMED_COST);
        // 6 ms fixed + 6 ms per token, as SmolLM2 on two cores; prompt chunks ignored.
        for n in [1, 2, 5, 1, 9, 17, 1, 3, 2, 4] {
            cost.observe(n, 0.006 + 0.006 * n as f64);
        }
        cost.observe(512, 2.0);
        assert!((cost.ratio() - 0.5).abs() < 1e-6, "{}", cost.ratio());
        let mut one_size = DecodeCost::default();
        for _ in 0..10 {
            one_size.observe(1, 0.012);
        }
        assert_eq!(
            one_size.ratio(),
            ASSUMED_COST,
            "one batch size tells nothing"
        );
    }

    #[test]
    fn acceptance_is_a_ratio_once_something_was_drafted() {
        assert_eq!(DraftStats::default().acceptance(), None);
        let s = DraftStats {
            drafted: 8,
            accepted: 6,
        };
        assert_eq!(s.acceptance(), Some(0.75));
    }

    #[test]
    fn top_token_is_the_argmax_with_its_softmax_probability() {
        let (id, p) = top_token(&[0.0, 2.0_f32.ln(), 0.0]).unwrap();
        assert_eq!(id, 1);
        assert!((p - 0.5).abs() < 1e-6, "{p}");
        assert_eq!(top_token(&[]), None);
    }
}
