//! `POST /v1/completions`: the legacy text completion API (raw prompt, no template).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::engine::{Completion, TokenDelta, TokenLogprob};
use crate::server::error::ApiError;
use crate::server::json::{from_value, Json};
use crate::server::sse::{self, ChunkEncoder};
use crate::server::state::AppState;

use super::types::{CompletionRequest, Prompt, SamplingFields};
use super::{finish_reason, new_id, timings, token_ids, unix_now, usage, StreamHeader};

/// OpenAI's legacy API allows up to 5 alternatives per token.
const MAX_LOGPROBS: u8 = 5;

pub async fn completions(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let req: CompletionRequest = from_value(&body)?;
    let sampling: SamplingFields = from_value(&body)?;
    let model = state.router.acquire(req.model.as_deref()).await?;
    if req.echo {
        return Err(ApiError::invalid("echo", "echo is not supported"));
    }
    if req.suffix.is_some() {
        return Err(ApiError::invalid(
            "suffix",
            "suffix (fill-in-the-middle) is not supported",
        ));
    }
    if req.logprobs.is_some_and(|n| n > MAX_LOGPROBS) {
        return Err(ApiError::invalid(
            "logprobs",
            format!("logprobs must be 0 to {MAX_LOGPROBS}"),
        ));
    }
    let prompt = match req.prompt {
        Prompt::Text(text) => model.engine.tokenize(&text, true),
        Prompt::Tokens(ids) => token_ids(ids, "prompt")?,
        Prompt::TextBatch(mut batch) if batch.len() == 1 => {
            model.engine.tokenize(&batch.remove(0), true)
        }
        Prompt::TokenBatch(mut batch) if batch.len() == 1 => token_ids(batch.remove(0), "prompt")?,
        Prompt::TextBatch(_) | Prompt::TokenBatch(_) => {
            return Err(ApiError::invalid(
                "prompt",
                "only one prompt per request is supported",
            ))
        }
    };
    let id = new_id("cmpl-");
    let span = tracing::info_span!("request", id = %id, model = %model.id);
    let stream = sampling.stream;
    let include_usage = sampling
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let request = sampling.into_engine_request(prompt, req.logprobs, span, &model.engine)?;
    let rx = model.engine.submit(request)?;
    let encoder = TextChunks {
        header: StreamHeader {
            id,
            object: "text_completion",
            model: model.id.clone(),
            created: unix_now(),
            include_usage,
        },
        logprobs: req.logprobs.is_some(),
    };
    if stream {
        return Ok(sse::openai(sse::chunks(rx, encoder)));
    }
    let out = sse::collect(rx).await?;
    let logprobs = if encoder.logprobs {
        legacy_logprobs(&out.logprobs)
    } else {
        Value::Null
    };
    Ok(axum::Json(json!({
        "id": encoder.header.id,
        "object": "text_completion",
        "created": encoder.header.created,
        "model": encoder.header.model,
        "choices": [{
            "index": 0,
            "text": out.text,
            "logprobs": logprobs,
            "finish_reason": finish_reason(out.done.finish_reason),
        }],
        "usage": usage(&out.done),
        "timings": timings(&out.done),
    }))
    .into_response())
}

/// The legacy shape: parallel arrays of tokens, their log-probabilities and the alternatives.
fn legacy_logprobs(items: &[TokenLogprob]) -> Value {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let mut offset = 0;
    let mut offsets = Vec::new();
    for lp in items {
        offsets.push(offset);
        offset += text(&lp.token.bytes).len();
    }
    let top: Vec<Value> = items
        .iter()
        .map(|lp| {
            Value::Object(
                lp.top
                    .iter()
                    .map(|c| (text(&c.bytes), json!(c.logprob)))
                    .collect::<Map<_, _>>(),
            )
        })
        .collect();
    json!({
        "tokens": items.iter().map(|lp| text(&lp.token.bytes)).collect::<Vec<_>>(),
        "token_logprobs": items.iter().map(|lp| lp.token.logprob).collect::<Vec<_>>(),
        "top_logprobs": top,
        "text_offset": offsets,
    })
}

struct TextChunks {
    header: StreamHeader,
    logprobs: bool,
}

impl ChunkEncoder for TextChunks {
    fn start(&mut self) -> Vec<Value> {
        Vec::new()
    }

    fn delta(&mut self, delta: &TokenDelta) -> Vec<Value> {
        if delta.text.is_empty() && !(self.logprobs && delta.logprob.is_some()) {
            return Vec::new();
        }
        let logprobs = match (&delta.logprob, self.logprobs) {
            (Some(lp), true) => legacy_logprobs(std::slice::from_ref(lp)),
            _ => Value::Null,
        };
        vec![self.header.chunk(json!([{ "index": 0, "text": delta.text, "logprobs": logprobs, "finish_reason": null }]))]
    }

    fn finish(&mut self, done: &Completion) -> Vec<Value> {
        let last = json!({
            "index": 0,
            "text": "",
            "logprobs": null,
            "finish_reason": finish_reason(done.finish_reason),
        });
        self.header.closing(last, done)
    }
}
