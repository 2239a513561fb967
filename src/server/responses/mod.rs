//! OpenAI's Responses API (`POST /v1/responses`), stateless, as Codex CLI and openai-agents use
//! it: every request carries the whole history. An adapter over the one chat pipeline, like
//! the Anthropic API; errors keep OpenAI's shape.

#[cfg(test)]
mod convert_tests;
mod request;
mod response;
mod stream;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use super::json::Json;
use super::openai::chat::{run_chat, ChatOutcome};
use super::sse::{self, Translator};
use super::state::AppState;

use stream::ResponseStream;

pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let chat =
        request::to_chat_request(&body).map_err(|e| ApiError::invalid(e.param, e.message))?;
    Ok(match run_chat(&state, &chat).await? {
        ChatOutcome::Complete(answer) => {
            axum::Json(response::from_chat_response(&answer, &body)).into_response()
        }
        ChatOutcome::Stream { chunks, .. } => sse::named(chunks, ResponseStream::new(&body)),
    })
}

impl Translator for ResponseStream {
    fn push(&mut self, chunk: &Value) -> Vec<(&'static str, Value)> {
        ResponseStream::push(self, chunk)
    }
    fn finish(&mut self) -> Vec<(&'static str, Value)> {
        ResponseStream::finish(self)
    }
}
