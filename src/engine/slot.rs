//! One sequence of the shared context: its cached tokens and, while busy, the job it runs.

use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::output::OutputText;
use super::sampling::TokenSampler;
use super::speculation::DraftPolicy;
use super::types::{Completion, Event, FinishReason, Request, Timings, TokenDelta, TokenId, Usage};

/// A slot is one llama.cpp sequence id. Its KV cache outlives the job so that the next request
/// on the same conversation decodes only what is new.
///
/// ```text
/// Idle (cache kept) --admit--> Prompt --last prompt chunk decoded--> Generating --finish--> Idle
///                                 \____________cancel / error_______________________/
/// ```
pub struct Slot {
    /// llama.cpp sequence id.
    pub seq: i32,
    /// Tokens whose KV is in the cache for this sequence, position `i` holding `cache[i]`.
    pub cache: Vec<TokenId>,
    /// Scheduler clock value of the last admission or finish; larger = more recent.
    pub last_used: u64,
    pub job: Option<Job>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Prompt tokens from `next` on still need decoding.
    Prompt { next: usize },
    /// `token` was sampled and goes into the next batch.
    Generating { token: TokenId },
}

pub struct Job {
    pub request: Request,
    pub events: UnboundedSender<Event>,
    pub state: SlotState,
    pub sampler: TokenSampler,
    pub output: OutputText,
    pub cached_tokens: u32,
    pub generated: u32,
    /// Index in the current batch whose logits this job samples from after decode.
    pub logits_at: Option<i32>,
    /// Guessed tokens in the current batch right after `logits_at`, to verify after decode.
    pub draft: Vec<TokenId>,
    pub draft_policy: DraftPolicy,
    pub prompt_started: Instant,
    pub first_token_at: Option<Instant>,
    pub timings: Timings,
}

/// A slot as monitoring sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlotStatus {
    pub id: i32,
    /// `idle`, `prompt` or `generating`.
    #[serde(deserialize_with = "known_state")]
    pub state: State,
    /// Tokens held in the KV cache for this slot (kept after a request for prefix reuse).
    pub n_cached: usize,
    /// Prompt and generated tokens of the running request (0 when idle).
    pub n_prompt: usize,
    pub n_generated: u32,
}

/// An alias, so serde's derive does not take it for borrowed data.
type State = &'static str;

/// A slot state reported by another process (`hosted`), as one of these.
fn known_state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let name = <String as serde::Deserialize>::deserialize(d)?;
    Ok(["idle", "prompt", "generating"]
        .into_iter()
        .find(|s| *s == name)
        .unwrap_or("idle"))
}

impl Slot {
    pub fn status(&self) -> SlotStatus {
        let (state, n_prompt, n_generated) = match &self.job {
            None => ("idle", 0, 0),
            Some(job) => {
                let state = match job.state {
                    SlotState::Prompt { .. } => "prompt",
                    SlotState::Generating { .. } => "generating",
                };
                (state, job.request.prompt.len(), job.generated)
            }
        };
        SlotStatus {
            id: self.seq,
            state,
            n_cached: self.cache.len(),
            n_prompt,
            n_generated,
        }
    }

    pub fn new(seq: i32) -> Self {
        Self {
            seq,
            cache: Vec::new(),
            last_used: 0,
            job: None,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.job.is_none()
    }
}

impl Job {
    pub fn new(
        request: Request,
        events: UnboundedSender<Event>,
        sampler: TokenSampler,
        cached: usize,
        draft_max: u32,
    ) -> Self {
        let output = OutputText::new(request.stop.clone());
        Self {
            request,
            events,
            state: SlotState::Prompt { next: cached },
            sampler,
            output,
            cached_tokens: u32::try_from(cached).unwrap_or(u32::MAX),
            generated: 0,
            logits_at: None,
            draft: Vec::new(),
            draft_policy: DraftPolicy::new(draft_max as usize),
            prompt_started: Instant::now(),
            first_token_at: None,
            timings: Timings::default(),
        }
    }

    /// The client went away (its receiver was dropped): the slot can be freed.
    pub fn is_cancelled(&self) -> bool {
        self.events.is_closed()
    }

    pub fn send_text(&self, delta: TokenDelta) {
        // A closed channel is noticed as a cancellation at the next step.
        let _ = self.events.send(Event::Token(delta));
    }

    /// Sends the rest of the text and the final event, and logs the request's one summary line.
    /// Returns the generation speed (tokens/s).
    pub fn finish(mut self, reason: FinishReason) -> f64 {
        let rest = self.output.finish();
        if !rest.is_empty() {
            self.send_text(TokenDelta {
                text: rest,
                logprob: None,
            });
        }
        if let Some(first) = self.first_token_at {
            self.timings.generation_time = first.elapsed();
        }
        let usage = Usage {
            prompt_tokens: u32::try_from(self.request.prompt.len()).unwrap_or(u32::MAX),
            cached_tokens: self.cached_tokens,
            completion_tokens: self.generated,
        };
        tracing::info!(
            parent: &self.request.span,
            prompt = usage.prompt_tokens,
            cached = usage.cached_tokens,
            generated = usage.completion_tokens,
            prefill_tps = format_args!("{:.1}", self.timings.prompt_tokens_per_second()),
            decode_tps = format_args!("{:.1}", self.timings.generation_tokens_per_second(self.generated)),
            drafted = self.timings.draft.drafted,
            accepted = self.timings.draft.accepted,
            finish = ?reason,
            "request done"
        );
        let _ = self.events.send(Event::Done(Completion {
            finish_reason: reason,
            usage,
            timings: self.timings,
        }));
        self.timings.generation_tokens_per_second(self.generated)
    }
}
