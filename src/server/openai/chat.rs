//! `POST /v1/chat/completions`: messages through the model's chat template into the engine,
//! answered as one `chat.completion` or a stream of `chat.completion.chunk`s.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::engine::{Completion, TokenDelta};
use crate::server::error::ApiError;
use crate::server::json::{from_value, Json};
use crate::server::sse::{self, ChunkEncoder};
use crate::server::state::AppState;

use super::types::{ChatCompletionRequest, Content, Message, SamplingFields};
use super::{chat_logprobs, finish_reason, new_id, timings, unix_now, usage, StreamHeader};

/// OpenAI allows 20 alternatives per token.
const MAX_TOP_LOGPROBS: u8 = 20;

pub async fn chat_completions(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let req: ChatCompletionRequest = from_value(&body)?;
    let sampling: SamplingFields = from_value(&body)?;
    let model = state.router.get(req.model.as_deref())?;
    let messages = template_messages(req.messages)?;
    let logprobs = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (_, Some(n)) if n > MAX_TOP_LOGPROBS => {
            return Err(ApiError::invalid(
                "top_logprobs",
                format!("top_logprobs must be 0 to {MAX_TOP_LOGPROBS}"),
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                "top_logprobs needs logprobs: true",
            ))
        }
        (true, n) => Some(n.unwrap_or(0)),
        (false, None) => None,
    };
    let template = state.template(model)?;
    let info = model.engine.info();
    let tools = req.tools.map(Value::Array);
    let text = crate::chat::prompt_text(&template, &messages, tools.as_ref(), info)
        .map_err(|e| ApiError::invalid("messages", e.to_string()))?;
    let prompt = model.engine.tokenize(&text, true);

    let id = new_id("chatcmpl");
    let span = tracing::info_span!("request", id = %id, model = %model.id);
    let stream = sampling.stream;
    let include_usage = sampling
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let request = sampling.into_engine_request(prompt, logprobs, span)?;
    let rx = model.engine.submit(request)?;
    let encoder = ChatChunks {
        header: StreamHeader {
            id,
            object: "chat.completion.chunk",
            model: model.id.clone(),
            created: unix_now(),
            include_usage,
        },
        logprobs: logprobs.is_some(),
    };
    if stream {
        return Ok(sse::stream(rx, encoder).into_response());
    }
    let out = sse::collect(rx).await?;
    let logprobs = if logprobs.is_some() {
        chat_logprobs(&out.logprobs)
    } else {
        Value::Null
    };
    Ok(axum::Json(json!({
        "id": encoder.header.id,
        "object": "chat.completion",
        "created": encoder.header.created,
        "model": encoder.header.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": out.text },
            "logprobs": logprobs,
            "finish_reason": finish_reason(out.done.finish_reason),
        }],
        "usage": usage(&out.done),
        "timings": timings(&out.done),
    }))
    .into_response())
}

/// Checks roles and content and turns messages into the plain objects templates expect:
/// text parts joined into one string, `developer` (OpenAI's newer name) rendered as `system`.
fn template_messages(messages: Vec<Message>) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages must contain at least one message",
        ));
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "developer" => "system",
                r @ ("system" | "user" | "assistant" | "tool") => r,
                other => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].role"),
                        format!("unknown role {other:?}: use system, developer, user, assistant or tool"),
                    ))
                }
            };
            let content = match m.content {
                None => Value::Null,
                Some(Content::Text(t)) => Value::String(t),
                Some(Content::Parts(parts)) => {
                    let mut texts = Vec::new();
                    for (j, part) in parts.into_iter().enumerate() {
                        match (part.kind.as_str(), part.text) {
                            ("text", Some(t)) => texts.push(t),
                            (kind, _) => {
                                return Err(ApiError::invalid(
                                    format!("messages[{i}].content[{j}]"),
                                    format!("content parts of type {kind:?} are not supported by this model; send text"),
                                ))
                            }
                        }
                    }
                    // Joined by newlines, as llama.cpp does for templates that take plain strings.
                    Value::String(texts.join("\n"))
                }
            };
            if content.is_null() && role != "assistant" {
                return Err(ApiError::invalid(format!("messages[{i}].content"), "content is required for this role"));
            }
            let mut object = m.extra;
            object.insert("role".into(), role.into());
            object.insert("content".into(), content);
            Ok(Value::Object(object))
        })
        .collect()
}

/// `chat.completion.chunk`s: role first, then content deltas, then the finish reason and,
/// with `stream_options.include_usage`, a usage chunk with no choices.
struct ChatChunks {
    header: StreamHeader,
    logprobs: bool,
}

impl ChunkEncoder for ChatChunks {
    fn start(&mut self) -> Vec<Value> {
        vec![self.header.chunk(json!([{
            "index": 0,
            "delta": { "role": "assistant", "content": "" },
            "logprobs": null,
            "finish_reason": null,
        }]))]
    }

    fn delta(&mut self, delta: &TokenDelta) -> Option<Value> {
        if delta.text.is_empty() && !(self.logprobs && delta.logprob.is_some()) {
            return None;
        }
        let logprobs = match (&delta.logprob, self.logprobs) {
            (Some(lp), true) => chat_logprobs(std::slice::from_ref(lp)),
            _ => Value::Null,
        };
        Some(self.header.chunk(json!([{
            "index": 0,
            "delta": { "content": delta.text },
            "logprobs": logprobs,
            "finish_reason": null,
        }])))
    }

    fn finish(&mut self, done: &Completion) -> Vec<Value> {
        let last = json!({
            "index": 0,
            "delta": {},
            "logprobs": null,
            "finish_reason": finish_reason(done.finish_reason),
        });
        self.header.closing(last, done)
    }
}
