//! Speculative decoding: guess the next few tokens cheaply, then let one decode of the model
//! check them all. Guesses come from the request's own text (n-gram lookup: coding agents
//! rewrite files that are already in the prompt) or from a small draft model that shares the
//! vocabulary. Every token the client sees is still sampled from the model's own logits, in
//! order, with the same sampler; a guess only saves a decode when it equals that sample. So
//! the output is the one decoding without speculation gives; only the number of decodes drops.

use std::path::PathBuf;

use super::types::TokenId;

/// How an engine speculates. Defaults are llama-server's where it has the setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Speculation {
    /// Draft from earlier text of the same request (prompt, prediction, output).
    pub ngram: bool,
    /// A smaller model with the same vocabulary that drafts where the lookup finds nothing.
    pub draft_model: Option<PathBuf>,
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
            ..Self::default()
        }
    }

    pub fn is_on(&self) -> bool {
        (self.ngram || self.draft_model.is_some()) && self.draft_max > 0
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

/// How many tokens to guess next for one request: grows while guesses are all taken, falls
/// back to just past the last accepted one when they are not, so text where guessing fails
/// costs little (a verification of one or two extra tokens) and copied text gets long drafts.
#[derive(Debug, Clone, Copy)]
pub struct DraftLength {
    now: usize,
    max: usize,
}

impl DraftLength {
    pub fn new(max: usize) -> Self {
        Self { now: max, max }
    }

    pub fn get(&self) -> usize {
        self.now
    }

    pub fn update(&mut self, drafted: usize, accepted: usize) {
        self.now = if accepted == drafted {
            (self.now * 2).clamp(1, self.max)
        } else {
            (accepted + 1).min(self.max)
        };
    }
}

/// Guesses made and taken for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    Some((TokenId::try_from(best).ok()?, (1.0 / sum) as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn draft_length_grows_on_success_and_falls_on_failure() {
        let mut len = DraftLength::new(16);
        assert_eq!(len.get(), 16);
        len.update(16, 0);
        assert_eq!(len.get(), 1);
        len.update(1, 1);
        assert_eq!(len.get(), 2);
        len.update(2, 2);
        len.update(4, 4);
        assert_eq!(len.get(), 8);
        len.update(8, 5);
        assert_eq!(len.get(), 6);
        len.update(6, 6);
        len.update(12, 12);
        assert_eq!(len.get(), 16, "capped at the maximum");
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
