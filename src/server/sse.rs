//! Engine events to Server-Sent Events, OpenAI style: one `data:` JSON chunk per event, a
//! final `data: [DONE]`, keep-alive comments while the prompt is processed. An error after the
//! stream started becomes one `data: {"error": ...}` event, since clients parse every line as JSON.
//! Dropping the stream (client gone) drops the engine receiver, which frees the slot.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Completion, Event, TokenDelta, TokenLogprob};

use super::error::ApiError;

/// Turns one request's engine events into the JSON chunks of one API's stream format.
pub trait ChunkEncoder: Send + 'static {
    /// Chunks sent before any token (e.g. the chat role chunk).
    fn start(&mut self) -> Vec<Value>;
    /// The chunk for one token's text; `None` to skip (nothing to say yet).
    fn delta(&mut self, delta: &TokenDelta) -> Option<Value>;
    /// Closing chunks: finish reason, then usage if asked for.
    fn finish(&mut self, done: &Completion) -> Vec<Value>;
}

pub fn stream<E: ChunkEncoder>(
    rx: UnboundedReceiver<Event>,
    mut encoder: E,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let start = encoder.start();
    let events = stream::unfold(Some((rx, encoder)), |state| async move {
        let (mut rx, mut encoder) = state?;
        loop {
            let chunks = match rx.recv().await {
                Some(Event::Token(delta)) => match encoder.delta(&delta) {
                    Some(chunk) => vec![chunk],
                    None => continue,
                },
                Some(Event::Done(done)) => {
                    let mut chunks = encoder.finish(&done);
                    chunks.push(Value::String("[DONE]".into()));
                    return Some((chunks, None));
                }
                Some(Event::Error(e)) => return Some((vec![ApiError::from(e).body()], None)),
                None => {
                    let e = ApiError::internal("engine ended the stream without finishing it");
                    return Some((vec![e.body()], None));
                }
            };
            return Some((chunks, Some((rx, encoder))));
        }
    });
    let body = stream::iter(vec![start])
        .chain(events)
        .flat_map(|chunks| stream::iter(chunks.into_iter().map(|c| Ok(to_event(c)))));
    Sse::new(body).keep_alive(KeepAlive::default())
}

fn to_event(chunk: Value) -> SseEvent {
    match chunk {
        Value::String(done) => SseEvent::default().data(done),
        other => SseEvent::default().data(other.to_string()),
    }
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
