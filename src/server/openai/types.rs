//! OpenAI wire types: serde only, no logic beyond shape. Unknown fields are ignored, as
//! clients send many we have no use for.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sampling and stopping fields shared by chat and text completions, read from the same body
/// as the endpoint's own fields (not `#[serde(flatten)]`ed: that loses the path of a bad field).
/// llama-server's extensions (`top_k`, `min_p`, `repeat_penalty` ...) are accepted too.
#[derive(Debug, Default, Deserialize)]
pub struct SamplingFields {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub min_p: Option<f32>,
    pub typical_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub repeat_last_n: Option<i32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub seed: Option<i64>,
    pub logit_bias: Option<HashMap<String, f32>>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub stop: Option<Stop>,
    pub n: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub ignore_eos: Option<bool>,
    /// OpenAI's predicted outputs: text the answer will largely repeat (a file being edited).
    pub prediction: Option<Prediction>,
    /// llama-server's per-request cap on guessed tokens per step; 0 turns speculation off.
    #[serde(rename = "speculative.n_max")]
    pub speculative_n_max: Option<u32>,
}

/// `{"type": "content", "content": "..." | [{"type": "text", "text": "..."}]}`.
#[derive(Debug, Deserialize)]
pub struct Prediction {
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Content,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u8>,
    #[serde(default)]
    pub tools: Vec<Value>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<Value>,
    /// llama-server extension: a raw GBNF grammar for the answer.
    pub grammar: Option<String>,
    /// llama-server extension: extra template variables, e.g. `{"enable_thinking": false}`.
    #[serde(default)]
    pub chat_template_kwargs: serde_json::Map<String, Value>,
    /// llama-server extension: `"none"` keeps `<think>` text inline in the content.
    pub reasoning_format: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    /// Everything else (name, tool_calls, tool_call_id ...) goes to the template as is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Prompt,
    /// Legacy completions: number of top log-probabilities per token (0-5 in OpenAI).
    pub logprobs: Option<u8>,
    #[serde(default)]
    pub echo: bool,
    pub suffix: Option<String>,
}

/// A legacy prompt: text, token ids, or a one-element batch of either.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<i64>),
    TextBatch(Vec<String>),
    TokenBatch(Vec<Vec<i64>>),
}

#[derive(Debug, Serialize)]
pub struct UsageBody {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
}

#[derive(Debug, Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: u32,
}

/// OpenAI's names for speculative decoding's figures: guessed tokens the model confirmed and
/// those it did not (from the prediction, the prompt or the draft model alike).
#[derive(Debug, Serialize)]
pub struct CompletionTokensDetails {
    pub accepted_prediction_tokens: u32,
    pub rejected_prediction_tokens: u32,
}

/// llama-server's `timings` extension: what the engine measured for this request.
#[derive(Debug, Serialize)]
pub struct TimingsBody {
    pub prompt_n: u32,
    pub prompt_ms: f64,
    pub prompt_per_second: f64,
    pub predicted_n: u32,
    pub predicted_ms: f64,
    pub predicted_per_second: f64,
    /// Speculative decoding, as llama-server reports it: guessed tokens and accepted ones
    /// (absent when nothing was guessed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_n_accepted: Option<u32>,
}
