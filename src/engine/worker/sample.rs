//! After each decode: sampling every slot that has logits, checking its guesses on the way
//! (speculative decoding), and making the guesses the next batch checks.

use std::time::Instant;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::Worker;
use crate::engine::output::Output;
use crate::engine::sampling::log_sum_exp;
use crate::engine::slot::SlotState;
use crate::engine::speculation::ngram_draft;
use crate::engine::types::{Candidate, FinishReason, TokenDelta, TokenId, TokenLogprob};

impl Worker<'_> {
    /// Samples every slot whose logits this batch computed. A slot with guesses samples on
    /// down its guesses while each sample equals the guess (that guess's logits are then the
    /// right ones for the next token), so one decode may yield several tokens.
    pub(super) fn sample(&mut self) {
        for i in 0..self.slots.len() {
            let seq = self.slots[i].seq;
            let Some(job) = self.slots[i].job.as_mut() else {
                continue;
            };
            let Some(mut at) = job.logits_at.take() else {
                continue;
            };
            let draft = std::mem::take(&mut job.draft);
            job.timings.draft.drafted += draft.len() as u32;
            let now = Instant::now();
            if job.first_token_at.is_none() {
                job.timings.prompt_decoded = job.request.prompt.len() as u32 - job.cached_tokens;
                job.timings.prompt_time = now - job.prompt_started;
                job.first_token_at = Some(now);
                self.ctx.begin(seq, &job.request.prompt);
            }
            let mut accepted = 0;
            while let Some(token) = self.emit(i, at) {
                if draft.get(accepted) != Some(&token) {
                    break;
                }
                accepted += 1;
                at += 1;
                if let Some(job) = self.slots[i].job.as_mut() {
                    job.timings.draft.accepted += 1;
                }
            }
            // Also when the heads guessed and the guess went unused: they learn the position.
            self.ctx.accept(accepted);
            if !draft.is_empty() {
                self.settle_draft(i, draft.len(), accepted);
            }
        }
    }

    /// Samples slot `i`'s next token from the logits at batch index `at` and hands it to the
    /// client. Returns the token while the request goes on; `None` once it finished.
    fn emit(&mut self, i: usize, at: i32) -> Option<TokenId> {
        let job = self.slots[i].job.as_mut()?;
        let Some(token) = job.sampler.sample(&self.ctx, at) else {
            // The grammar allows nothing more: the constrained output is complete.
            self.finish(i, FinishReason::Stop);
            return None;
        };
        let id = token.0;
        // Sampling reads the logits without changing them.
        let logprob = job
            .request
            .logprobs
            .map(|n| logprobs(self.model, self.ctx.get_logits_ith(at), id, n));
        job.generated += 1;
        let vocab = self.model.vocab();
        if vocab.is_eog(token) && !job.request.ignore_eos {
            if logprob.is_some() {
                job.send_text(TokenDelta {
                    text: String::new(),
                    logprob,
                });
            }
            self.finish(i, FinishReason::Stop);
            return None;
        }
        let piece = vocab.token_to_piece(token, false, None);
        let stopped = match job.output.feed(&piece) {
            Output::Text(text) => {
                job.send_text(TokenDelta { text, logprob });
                false
            }
            Output::Stopped(text) => {
                job.send_text(TokenDelta { text, logprob });
                true
            }
        };
        if stopped {
            self.finish(i, FinishReason::Stop);
            return None;
        }
        if job
            .request
            .max_tokens
            .is_some_and(|max| job.generated >= max)
        {
            self.finish(i, FinishReason::Length);
            return None;
        }
        job.state = SlotState::Generating { token: id };
        Some(id)
    }

    /// Guesses of the tokens after slot `i`'s last one (already in its cache), at most
    /// `spare`: from the request's own text first, else from the model's MTP heads, else from
    /// the draft model. None when the request is near its end, the cache is full, or fewer
    /// than `draft_min` are found.
    pub(super) fn draft(&mut self, i: usize, spare: usize) -> Vec<TokenId> {
        let free = (self.config.n_ctx as usize).saturating_sub(self.used_cells());
        let cost = self.cost.ratio();
        let spec = &self.config.speculation;
        let slot = &mut self.slots[i];
        let Some(job) = slot.job.as_mut() else {
            return Vec::new();
        };
        // Sampling after the last guess gives one more token: leave room for it.
        let left = job
            .request
            .max_tokens
            .map_or(usize::MAX, |max| max.saturating_sub(job.generated) as usize)
            .saturating_sub(1);
        let wanted = job.request.draft_max.map_or(usize::MAX, |n| n as usize);
        let worth = job.draft_policy.length(cost);
        let max = worth.min(wanted).min(left).min(free).min(spare);
        let min = (spec.draft_min as usize).max(1);
        if max < min || !spec.is_on() {
            if worth == 0 {
                job.draft_policy.idle();
            }
            return Vec::new();
        }
        let (slot, job) = (
            &self.slots[i],
            &self.slots[i].job.as_ref().expect("checked above"),
        );
        let mut draft = if spec.ngram {
            ngram_draft(&slot.cache, &job.request.prediction, max)
        } else {
            Vec::new()
        };
        if draft.is_empty() {
            let (pos, last) = (slot.cache.len() - 1, slot.cache[slot.cache.len() - 1]);
            draft = self.ctx.draft(slot.seq, pos, last, &slot.cache, max);
        }
        if draft.is_empty() {
            if let Some(model) = self.draft_model.as_mut() {
                draft = model.draft(slot.seq, &slot.cache, max, spec.draft_p_min);
            }
        }
        if draft.len() < min {
            draft.clear();
        }
        draft
    }

    /// After verification: drops the rejected guesses from the slot's cache and tells the
    /// request's draft policy how its guesses did.
    fn settle_draft(&mut self, i: usize, drafted: usize, accepted: usize) {
        let slot = &mut self.slots[i];
        let keep = slot.cache.len() - (drafted - accepted);
        if keep < slot.cache.len() {
            let _ = self.ctx.seq_rm(slot.seq, u32::try_from(keep).ok(), None);
            slot.cache.truncate(keep);
        }
        if let Some(job) = slot.job.as_mut() {
            job.draft_policy.update(drafted, accepted);
        }
    }
}

/// Log-probabilities from the raw logits (before sampling), as OpenAI reports them: the chosen
/// token's and the top `n`.
fn logprobs(model: &LlamaModel, logits: &[f32], chosen: TokenId, n: u8) -> TokenLogprob {
    let log_z = log_sum_exp(logits);
    let candidate = |id: usize| Candidate {
        id: id as TokenId,
        bytes: model
            .vocab()
            .token_to_piece(LlamaToken(id as TokenId), false, None),
        logprob: logits[id] - log_z,
    };
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    let n = usize::from(n).min(ids.len());
    if n > 0 {
        ids.select_nth_unstable_by(n - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
    }
    ids.truncate(n);
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    TokenLogprob {
        token: candidate(chosen as usize),
        top: ids.into_iter().map(candidate).collect(),
    }
}
