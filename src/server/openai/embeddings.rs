//! `POST /v1/embeddings`: text or token ids in, one normalised vector per input out, as floats
//! or base64 (little-endian f32, what the OpenAI SDKs request by default).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::server::error::ApiError;
use crate::server::json::{from_value, Json};
use crate::server::state::AppState;

use super::token_ids;

/// OpenAI's limit on inputs per request.
const MAX_INPUTS: usize = 2048;

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: Option<String>,
    input: Input,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

pub async fn embeddings(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let req: EmbeddingsRequest = from_value(&body)?;
    let model = state.router.acquire(req.model.as_deref()).await?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("unknown encoding_format {other:?}: use \"float\" or \"base64\""),
            ))
        }
    };
    let engine = &model.engine;
    let inputs: Vec<Vec<i32>> = match req.input {
        Input::Text(t) => vec![engine.tokenize(&t, true)],
        Input::Texts(ts) => ts.iter().map(|t| engine.tokenize(t, true)).collect(),
        Input::Tokens(ids) => vec![token_ids(ids, "input")?],
        Input::TokenLists(lists) => lists
            .into_iter()
            .map(|ids| token_ids(ids, "input"))
            .collect::<Result<_, _>>()?,
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!("give 1 to {MAX_INPUTS} inputs"),
        ));
    }
    let prompt_tokens: usize = inputs.iter().map(Vec::len).sum();
    let vectors = engine.embed(inputs).await?;
    if let Some(d) = req.dimensions {
        let n = vectors.first().map_or(0, Vec::len);
        if d as usize != n {
            return Err(ApiError::invalid(
                "dimensions",
                format!("this model's embeddings have {n} dimensions; it cannot shorten them"),
            ));
        }
    }
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": model.id,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
    }))
    .into_response())
}
