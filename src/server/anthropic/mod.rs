//! Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`), so Claude Code
//! and the `anthropic` SDKs work unchanged. An adapter: requests become OpenAI chat requests,
//! run through the one chat pipeline, and answers (or stream chunks) are re-encoded. Errors use
//! Anthropic's shape, whichever layer raised them.

mod convert;
mod stream;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::error::ApiError;
use super::json::Json;
use super::openai::chat::{prepare_turn, run_chat, ChatOutcome};
use super::openai::types::ChatCompletionRequest;
use super::sse::{self, Translator};
use super::state::AppState;

use stream::MessageStream;

/// Error bodies are small; anything larger is not one of ours.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn messages(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let chat = convert::to_chat_request(&body).map_err(adapter_error)?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(match run_chat(&state, &chat).await? {
        ChatOutcome::Complete(answer) => {
            axum::Json(convert::from_chat_response(&answer, model)).into_response()
        }
        ChatOutcome::Stream {
            chunks,
            prompt_tokens,
        } => sse::named(chunks, MessageStream::new(model, prompt_tokens)),
    })
}

/// The prompt's token count after the template, tools included.
pub async fn count_tokens(
    State(state): State<AppState>,
    Json(mut body): Json<Value>,
) -> Result<Response, ApiError> {
    if let Some(object) = body.as_object_mut() {
        // count_tokens requests carry no max_tokens; the conversion wants one.
        object.entry("max_tokens").or_insert(json!(1));
    }
    let chat = convert::to_chat_request(&body).map_err(adapter_error)?;
    let req: ChatCompletionRequest = super::json::from_value(&chat)?;
    let model = state.router.acquire(req.model.as_deref()).await?;
    let turn = prepare_turn(&state, &model, req)?;
    let tokens = model.engine.tokenize(&turn.prompt, true).len();
    Ok(axum::Json(json!({ "input_tokens": tokens })).into_response())
}

fn adapter_error(e: convert::AdapterError) -> ApiError {
    ApiError::invalid(e.param, e.message)
}

impl Translator for MessageStream {
    fn push(&mut self, chunk: &Value) -> Vec<(&'static str, Value)> {
        MessageStream::push(self, chunk)
    }
    fn finish(&mut self) -> Vec<(&'static str, Value)> {
        MessageStream::finish(self)
    }
}

/// Outermost middleware: on the Anthropic routes, rewrites OpenAI-shaped error bodies (from
/// the guard, the JSON extractor, the router or the engine) into Anthropic's
/// `{"type":"error",...}`.
pub async fn error_dialect(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let anthropic = path.ends_with("/messages") || path.ends_with("/messages/count_tokens");
    let response = next.run(req).await;
    if !anthropic || response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let message = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => anthropic_message(&v["error"]),
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let body = convert::error_body(parts.status.as_u16(), &message).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The message as Anthropic words it: the field first (`messages.0.content: ...`), and a context
/// overflow as `prompt is too long: N tokens > M maximum`, which Claude Code reads to compact.
fn anthropic_message(error: &Value) -> String {
    let message = error["message"].as_str().unwrap_or("error").to_string();
    if let (Some(n), Some(ctx)) = (error["n_prompt_tokens"].as_u64(), error["n_ctx"].as_u64()) {
        return format!("prompt is too long: {n} tokens > {ctx} maximum");
    }
    match error["param"].as_str() {
        Some(param) if !message.starts_with(param) => format!("{param}: {message}"),
        _ => message,
    }
}
