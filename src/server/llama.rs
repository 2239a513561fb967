//! llama-server's extra endpoints that tools rely on: `/tokenize`, `/detokenize`,
//! `/apply-template` and `/props`, with llama-server's request and response shapes.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::json::{from_value, Json};
use super::openai::chat::prepare_turn;
use super::openai::types::ChatCompletionRequest;
use super::state::AppState;
use crate::engine::TokenId;

#[derive(Deserialize)]
struct TokenizeRequest {
    model: Option<String>,
    content: String,
    #[serde(default)]
    add_special: bool,
    #[serde(default)]
    with_pieces: bool,
}

pub async fn tokenize(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let req: TokenizeRequest = from_value(&body)?;
    let model = state.router.get(req.model.as_deref())?;
    let tokens = model.engine.tokenize(&req.content, req.add_special);
    if !req.with_pieces {
        return Ok(axum::Json(json!({ "tokens": tokens })).into_response());
    }
    let pieces = tokens
        .iter()
        .map(|&id| {
            let bytes = model.engine.piece(id)?;
            // A piece that is not valid UTF-8 alone (part of a character) is given as bytes.
            let piece = match String::from_utf8(bytes) {
                Ok(text) => Value::String(text),
                Err(e) => json!(e.into_bytes()),
            };
            Ok(json!({ "id": id, "piece": piece }))
        })
        .collect::<Result<Vec<_>, crate::engine::EngineError>>()?;
    Ok(axum::Json(json!({ "tokens": pieces })).into_response())
}

#[derive(Deserialize)]
struct DetokenizeRequest {
    model: Option<String>,
    tokens: Vec<TokenId>,
}

pub async fn detokenize(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let req: DetokenizeRequest = from_value(&body)?;
    let model = state.router.get(req.model.as_deref())?;
    let content = model.engine.detokenize(&req.tokens)?;
    Ok(axum::Json(json!({ "content": content })).into_response())
}

/// The prompt a chat request renders to (tools and generic tool prompt included).
pub async fn apply_template(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let req: ChatCompletionRequest = from_value(&body)?;
    let model = state.router.get(req.model.as_deref())?;
    let turn = prepare_turn(&state, &model, req)?;
    Ok(axum::Json(json!({ "prompt": turn.prompt })).into_response())
}

#[derive(Deserialize)]
pub struct PropsQuery {
    model: Option<String>,
}

/// What the server runs, in llama-server's shape (clients read `n_ctx` and `total_slots`).
pub async fn props(
    State(state): State<AppState>,
    Query(q): Query<PropsQuery>,
) -> Result<Response, ApiError> {
    let model = state.router.get(q.model.as_deref())?;
    let info = model.engine.info();
    let template = state.template(&model)?;
    Ok(axum::Json(json!({
        "model_alias": model.id,
        "total_slots": info.n_parallel,
        "default_generation_settings": {
            "n_ctx": info.n_ctx,
            "model": model.id,
            // What a request that leaves sampling out gets (settings, else the GGUF's).
            "params": {
                "temperature": info.sampling.temperature,
                "top_k": info.sampling.top_k,
                "top_p": info.sampling.top_p,
                "min_p": info.sampling.min_p,
                "repeat_penalty": info.sampling.repeat_penalty,
                "repeat_last_n": info.sampling.repeat_last_n,
            },
        },
        "n_ctx_train": info.n_ctx_train,
        "chat_template": info.chat_template.clone().unwrap_or_default(),
        "chat_template_supports_tools": template.supports_tools(),
        "bos_token": info.bos_text,
        "eos_token": info.eos_text,
        "modalities": { "vision": false, "audio": false },
        "build_info": concat!("paddock ", env!("CARGO_PKG_VERSION")),
    }))
    .into_response())
}
