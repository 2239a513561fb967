//! Engine events to Server-Sent Events: an API's encoder turns events into JSON chunks, and the
//! wire format (OpenAI's `data:` lines ending in `[DONE]`, or named events) carries them, with
//! keep-alive comments while the prompt is processed. An error after the stream started becomes
//! one `{"error": ...}` chunk, since clients parse every line as JSON.
//! Dropping the stream (client gone) drops the engine receiver, which frees the slot.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Completion, Event, TokenDelta, TokenLogprob};

use super::error::ApiError;

/// Turns one request's engine events into the JSON chunks of one API's stream format.
pub trait ChunkEncoder: Send + 'static {
    /// Chunks sent before any token (e.g. the chat role chunk).
    fn start(&mut self) -> Vec<Value>;
    /// The chunks for one token's text; often none (nothing certain to say yet).
    fn delta(&mut self, delta: &TokenDelta) -> Vec<Value>;
    /// Closing chunks: finish reason, then usage if asked for.
    fn finish(&mut self, done: &Completion) -> Vec<Value>;
}

/// A stream of JSON chunks; an error ends it with one `{"error": ...}` chunk.
pub type Chunks = BoxStream<'static, Value>;

pub fn chunks<E: ChunkEncoder>(rx: UnboundedReceiver<Event>, mut encoder: E) -> Chunks {
    let start = encoder.start();
    let events = stream::unfold(Some((rx, encoder)), |state| async move {
        let (mut rx, mut encoder) = state?;
        loop {
            let chunks = match rx.recv().await {
                Some(Event::Token(delta)) => match encoder.delta(&delta) {
                    chunks if chunks.is_empty() => continue,
                    chunks => chunks,
                },
                Some(Event::Done(done)) => return Some((encoder.finish(&done), None)),
                Some(Event::Error(e)) => return Some((vec![ApiError::from(e).body()], None)),
                None => {
                    let e = ApiError::internal("engine ended the stream without finishing it");
                    return Some((vec![e.body()], None));
                }
            };
            return Some((chunks, Some((rx, encoder))));
        }
    });
    stream::iter(vec![start])
        .chain(events)
        .flat_map(stream::iter)
        .boxed()
}

/// OpenAI's wire format: one `data:` line per chunk, then `data: [DONE]`.
pub fn openai(chunks: Chunks) -> Response {
    let body = chunks
        .map(|c| c.to_string())
        .chain(stream::once(async { "[DONE]".to_string() }))
        .map(|data| Ok::<_, Infallible>(SseEvent::default().data(data)));
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Re-encodes a chat chunk stream as another API's named events (Anthropic, Responses).
pub trait Translator: Send + 'static {
    fn push(&mut self, chunk: &Value) -> Vec<(&'static str, Value)>;
    /// Trailing events once the chunks have ended.
    fn finish(&mut self) -> Vec<(&'static str, Value)>;
}

/// That API's wire format: named events (`event:` + `data:`), no `[DONE]`.
pub fn named<T: Translator>(chunks: Chunks, translator: T) -> Response {
    let events = stream::unfold(Some((chunks, translator)), |state| async move {
        let (mut chunks, mut translator) = state?;
        match chunks.next().await {
            Some(chunk) => Some((translator.push(&chunk), Some((chunks, translator)))),
            None => Some((translator.finish(), None)),
        }
    })
    .flat_map(stream::iter);
    let body = events.map(|(name, data)| {
        Ok::<_, Infallible>(SseEvent::default().event(name).data(data.to_string()))
    });
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Everything a non-streaming response needs, gathered from the events.
pub struct Collected {
    pub text: String,
    pub logprobs: Vec<TokenLogprob>,
    pub done: Completion,
}

pub async fn collect(mut rx: UnboundedReceiver<Event>) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Token(delta) => {
                text.push_str(&delta.text);
                logprobs.extend(delta.logprob);
            }
            Event::Done(done) => {
                return Ok(Collected {
                    text,
                    logprobs,
                    done,
                })
            }
            Event::Error(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal(
        "engine ended the request without finishing it",
    ))
}
