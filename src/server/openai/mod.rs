//! The OpenAI-compatible API under `/v1`: wire types, and the conversion of requests into
//! engine requests and of engine results into OpenAI responses and stream chunks.

pub mod chat;
mod chat_output;
pub mod completions;
pub mod embeddings;
pub mod models;
pub mod types;

use crate::engine::{
    Completion, EngineHandle, FinishReason, Request, SamplingParams, TokenId, TokenLogprob,
};

use super::error::ApiError;
pub use super::ids::{new_id, unix_now};
use types::{
    CompletionTokensDetails, Content, Prediction, PromptTokensDetails, SamplingFields, Stop,
    TimingsBody, UsageBody,
};

/// Most stop strings a request may give, and their longest length (OpenAI allows 4; agents
/// send a few more, so the bound is looser but still keeps the per-token check cheap).
const MAX_STOP: usize = 16;
const MAX_STOP_LEN: usize = 256;

impl SamplingFields {
    /// Checks the fields and builds the engine request around an already tokenized prompt.
    pub fn into_engine_request(
        self,
        prompt: Vec<TokenId>,
        logprobs: Option<u8>,
        span: tracing::Span,
        engine: &EngineHandle,
    ) -> Result<Request, ApiError> {
        let defaults: &SamplingParams = &engine.info().sampling;
        let prediction = match self.prediction {
            None => Vec::new(),
            Some(p) => engine.tokenize(&prediction_text(p)?, false),
        };
        // Searched at every step: bounded like a prompt.
        if prediction.len() > engine.info().n_ctx as usize {
            return Err(ApiError::invalid(
                "prediction",
                format!(
                    "the prediction has {} tokens, more than the context of {}",
                    prediction.len(),
                    engine.info().n_ctx
                ),
            ));
        }
        if let Some(n) = self.n.filter(|&n| n != 1) {
            return Err(ApiError::invalid(
                "n",
                format!("only n=1 is supported, not {n}; send separate requests"),
            ));
        }
        let temperature = self.temperature.unwrap_or(defaults.temperature);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                "temperature",
                "temperature must be between 0 and 2",
            ));
        }
        let logit_bias = self
            .logit_bias
            .unwrap_or_default()
            .into_iter()
            .map(|(token, bias)| {
                let id = token.parse::<TokenId>().map_err(|_| {
                    ApiError::invalid(
                        "logit_bias",
                        format!("logit_bias keys are token ids, not {token:?}"),
                    )
                })?;
                if !(-100.0..=100.0).contains(&bias) {
                    return Err(ApiError::invalid(
                        "logit_bias",
                        "biases must be between -100 and 100",
                    ));
                }
                Ok((id, bias))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        };
        if stop.len() > MAX_STOP || stop.iter().any(|s| s.len() > MAX_STOP_LEN) {
            return Err(ApiError::invalid(
                "stop",
                format!("at most {MAX_STOP} stop strings of at most {MAX_STOP_LEN} bytes each"),
            ));
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        if max_tokens == Some(0) {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens must be at least 1",
            ));
        }
        Ok(Request {
            prompt,
            sampling: SamplingParams {
                temperature,
                top_p: self.top_p.unwrap_or(defaults.top_p),
                top_k: self.top_k.unwrap_or(defaults.top_k),
                min_p: self.min_p.unwrap_or(defaults.min_p),
                typical_p: self.typical_p.unwrap_or(defaults.typical_p),
                repeat_penalty: self.repeat_penalty.unwrap_or(defaults.repeat_penalty),
                repeat_last_n: self.repeat_last_n.unwrap_or(defaults.repeat_last_n),
                presence_penalty: self.presence_penalty.unwrap_or(defaults.presence_penalty),
                frequency_penalty: self.frequency_penalty.unwrap_or(defaults.frequency_penalty),
                // Negative seeds (llama-server's -1) mean "random".
                seed: self.seed.filter(|&s| s >= 0).map(|s| s as u32),
                logit_bias,
                grammar: None,
            },
            max_tokens,
            stop,
            logprobs,
            ignore_eos: self.ignore_eos.unwrap_or(false),
            prediction,
            draft_max: self.speculative_n_max,
            span,
        })
    }
}

/// The text of a predicted output; only OpenAI's one kind, `content`, exists.
fn prediction_text(p: Prediction) -> Result<String, ApiError> {
    if p.kind != "content" {
        return Err(ApiError::invalid(
            "prediction.type",
            format!("prediction type must be \"content\", not {:?}", p.kind),
        ));
    }
    match p.content {
        Content::Text(t) => Ok(t),
        Content::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| match (part.kind.as_str(), part.text) {
                ("text", Some(t)) => Ok(t),
                _ => Err(ApiError::invalid(
                    format!("prediction.content[{j}]"),
                    "prediction parts must be {\"type\": \"text\", \"text\": ...}",
                )),
            })
            .collect(),
    }
}

/// Token ids from JSON numbers; ids that do not even fit llama.cpp's type are refused here,
/// the vocabulary check is the engine's.
pub fn token_ids(ids: Vec<i64>, param: &str) -> Result<Vec<TokenId>, ApiError> {
    ids.into_iter()
        .map(|id| {
            TokenId::try_from(id)
                .map_err(|_| ApiError::invalid(param, format!("token id {id} is out of range")))
        })
        .collect()
}

pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

pub fn usage(done: &Completion) -> UsageBody {
    let u = done.usage;
    UsageBody {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens + u.completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: u.cached_tokens,
        },
        completion_tokens_details: CompletionTokensDetails {
            accepted_prediction_tokens: done.timings.draft.accepted,
            rejected_prediction_tokens: done.timings.draft.drafted - done.timings.draft.accepted,
        },
    }
}

pub fn timings(done: &Completion) -> TimingsBody {
    let t = done.timings;
    let generated = done.usage.completion_tokens;
    TimingsBody {
        prompt_n: t.prompt_decoded,
        prompt_ms: t.prompt_time.as_secs_f64() * 1e3,
        prompt_per_second: t.prompt_tokens_per_second(),
        predicted_n: generated,
        predicted_ms: t.generation_time.as_secs_f64() * 1e3,
        predicted_per_second: t.generation_tokens_per_second(generated),
        draft_n: (t.draft.drafted > 0).then_some(t.draft.drafted),
        draft_n_accepted: (t.draft.drafted > 0).then_some(t.draft.accepted),
    }
}

/// Chat-style log-probabilities: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
pub fn chat_logprobs(items: &[TokenLogprob]) -> serde_json::Value {
    let entry = |c: &crate::engine::Candidate| {
        serde_json::json!({
            "token": String::from_utf8_lossy(&c.bytes),
            "logprob": c.logprob,
            "bytes": c.bytes,
        })
    };
    let content: Vec<_> = items
        .iter()
        .map(|lp| {
            let mut e = entry(&lp.token);
            e["top_logprobs"] = lp.top.iter().map(entry).collect();
            e
        })
        .collect();
    serde_json::json!({ "content": content })
}

/// What every chunk of one streamed response repeats, and the closing chunks both APIs share.
pub struct StreamHeader {
    pub id: String,
    /// `chat.completion.chunk` or `text_completion`.
    pub object: &'static str,
    pub model: String,
    pub created: u64,
    /// With `stream_options.include_usage`, every chunk has `"usage": null` but the last.
    pub include_usage: bool,
}

impl StreamHeader {
    pub fn chunk(&self, choices: serde_json::Value) -> serde_json::Value {
        let mut chunk = serde_json::json!({
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = serde_json::Value::Null;
        }
        chunk
    }

    /// The finish chunk (`last_choice` carries the finish reason; llama-server's `timings`
    /// ride along), then the usage chunk with no choices when asked for.
    pub fn closing(
        &self,
        last_choice: serde_json::Value,
        done: &Completion,
    ) -> Vec<serde_json::Value> {
        let mut last = self.chunk(serde_json::json!([last_choice]));
        last["timings"] = serde_json::json!(timings(done));
        let mut chunks = vec![last];
        if self.include_usage {
            let mut usage_chunk = self.chunk(serde_json::json!([]));
            usage_chunk["usage"] = serde_json::json!(usage(done));
            chunks.push(usage_chunk);
        }
        chunks
    }
}
