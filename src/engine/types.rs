//! Plain types the engine speaks: what goes in (`Request`), what comes out (`Event`).
//! Nothing here knows HTTP or JSON; the server converts its wire types into these.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::EngineError;

/// A token id in the model's vocabulary (llama.cpp's `llama_token`).
pub type TokenId = i32;

/// How to pick each next token. Defaults are llama-server's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 (or below) = greedy: always the most likely token, deterministic.
    pub temperature: f32,
    /// 0 = disabled.
    pub top_k: i32,
    /// 1.0 = disabled.
    pub top_p: f32,
    /// 0.0 = disabled.
    pub min_p: f32,
    /// Locally typical sampling; 1.0 = disabled.
    pub typical_p: f32,
    /// 1.0 = disabled.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub repeat_last_n: i32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// `None` = a fresh random seed per request.
    pub seed: Option<u32>,
    /// Added to the logits of these tokens; `f32::NEG_INFINITY` bans a token.
    #[serde(with = "ban_as_null")]
    pub logit_bias: Vec<(TokenId, f32)>,
    /// Constrains the output to a GBNF grammar (JSON schemas, forced tool calls).
    pub grammar: Option<Grammar>,
}

/// A llama.cpp GBNF grammar the output must follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grammar {
    /// GBNF text whose start rule is `root`.
    pub gbnf: String,
    /// Empty: the grammar holds from the first token. Otherwise it is lazy: free text until
    /// one of these regexes (matched from the start of the output) matches; the grammar then
    /// applies from the regex's first capture group on (a tool call the model started itself).
    pub triggers: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            logit_bias: Vec::new(),
            grammar: None,
        }
    }
}

/// One generation request: a tokenized prompt plus how to sample and when to stop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Prompt tokens, special tokens included. Never empty.
    pub prompt: Vec<TokenId>,
    pub sampling: SamplingParams,
    /// Upper bound on generated tokens; `None` = until end of generation or of the context.
    pub max_tokens: Option<u32>,
    /// Generation ends before the first occurrence of any of these strings (not included).
    pub stop: Vec<String>,
    /// `Some(n)`: report the chosen token's log-probability and the `n` most likely alternatives.
    pub logprobs: Option<u8>,
    /// Keep generating past end-of-generation tokens (they are masked out); for benchmarks.
    pub ignore_eos: bool,
    /// Text the output is expected to repeat much of (OpenAI's predicted outputs): searched
    /// for guesses like the prompt is.
    pub prediction: Vec<TokenId>,
    /// Most tokens guessed per step for this request (llama-server's `speculative.n_max`);
    /// 0 turns speculation off for it, `None` keeps the server's setting.
    pub draft_max: Option<u32>,
    /// The request's tracing span; the engine thread enters it so slot logs name the request.
    #[serde(skip, default = "tracing::Span::none")]
    pub span: tracing::Span,
}

/// What the engine sends back for a request, in order: any number of `Token`s, then exactly
/// one `Done` or `Error`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Event {
    Token(TokenDelta),
    Done(Completion),
    Error(EngineError),
}

/// Text produced by one sampled token. `text` may be empty: bytes of a character split across
/// tokens, or text held back because it may be the start of a stop string, arrive later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenDelta {
    pub text: String,
    pub logprob: Option<TokenLogprob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: Candidate,
    /// Most likely tokens at this position, best first (`Request::logprobs` of them).
    pub top: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: TokenId,
    /// The token's raw bytes; not always valid UTF-8 on its own.
    pub bytes: Vec<u8>,
    /// Natural log of the probability under the model's raw distribution (before sampling).
    #[serde(with = "ban_as_null::one")]
    pub logprob: f32,
}

/// Why generation ended, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached, or the context is full.
    Length,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV cache was reused from an earlier request (not decoded again).
    pub cached_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Prompt tokens actually decoded (prompt minus cached) and the time that took.
    pub prompt_decoded: u32,
    pub prompt_time: Duration,
    /// Time from the first generated token to the last.
    pub generation_time: Duration,
    /// Speculative decoding: tokens guessed and how many of them were right.
    pub draft: super::speculation::DraftStats,
}

impl Timings {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_decoded, self.prompt_time)
    }

    /// Decode speed over `generated` tokens; the first token comes from the prompt's last batch,
    /// so it is not counted against `generation_time`.
    pub fn generation_tokens_per_second(&self, generated: u32) -> f64 {
        per_second(generated.saturating_sub(1), self.generation_time)
    }
}

fn per_second(tokens: u32, time: Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        f64::from(tokens) / time.as_secs_f64()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub finish_reason: FinishReason,
    pub usage: Usage,
    pub timings: Timings,
}

/// Facts about a loaded model that the server needs (templates, limits, listing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub architecture: String,
    /// Context size the model was trained with.
    pub n_ctx_train: u32,
    /// Context size of the loaded context: shared by all slots (unified KV cache).
    pub n_ctx: u32,
    pub n_parallel: u32,
    pub n_vocab: i32,
    pub n_params: u64,
    pub size_bytes: u64,
    /// The GGUF's `tokenizer.chat_template`, if it has one.
    pub chat_template: Option<String>,
    pub bos_text: String,
    pub eos_text: String,
    /// Sampling used where a request gives none: llama-server's defaults, overridden by the
    /// GGUF's `general.sampling.*` keys (the model author's recommendation) where present.
    pub sampling: SamplingParams,
    /// Whether tokenizing a prompt adds BOS/EOS itself (so a template's own must be stripped).
    pub add_bos: bool,
    pub add_eos: bool,
    /// What llama.cpp allocated for the context (KV cache, recurrent state, compute buffers).
    pub allocated: Option<super::Allocated>,
    /// How this engine speculates (off for models that cannot).
    pub speculation: super::Speculation,
}

/// JSON has no infinities, and a ban (a bias or log-probability of −∞) is one: it travels as
/// `null` to an engine in another process (`hosted`).
mod ban_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::TokenId;

    pub fn serialize<S: Serializer>(bias: &[(TokenId, f32)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(bias.iter().map(|&(t, b)| (t, b.is_finite().then_some(b))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(TokenId, f32)>, D::Error> {
        let bias: Vec<(TokenId, Option<f32>)> = Deserialize::deserialize(d)?;
        Ok(bias
            .into_iter()
            .map(|(t, b)| (t, b.unwrap_or(f32::NEG_INFINITY)))
            .collect())
    }

    pub mod one {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_some(&v.is_finite().then_some(*v))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
            Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NEG_INFINITY))
        }
    }
}
