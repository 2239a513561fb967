//! `GET /v1/models` and `GET /v1/models/{id}`.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::router::LoadedModel;
use crate::server::error::ApiError;
use crate::server::state::AppState;

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state.router.list().iter().map(model_object).collect();
    Json(json!({ "object": "list", "data": data }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(model_object(&state.router.get(Some(&id))?)))
}

/// OpenAI's model object, plus what a client needs to size its requests (`meta`).
fn model_object(m: &LoadedModel) -> Value {
    let info = m.engine.info();
    let created = m
        .loaded_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "id": m.id,
        "object": "model",
        "created": created,
        "owned_by": "paddock",
        "aliases": m.aliases,
        "meta": {
            "architecture": info.architecture,
            "n_ctx": info.n_ctx,
            "n_ctx_train": info.n_ctx_train,
            "n_parallel": info.n_parallel,
            "n_vocab": info.n_vocab,
            "n_params": info.n_params,
            "size": info.size_bytes,
        },
    })
}
