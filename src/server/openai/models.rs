//! `GET /v1/models` and `GET /v1/models/{id}`: the loaded models first (`loaded: true`), then
//! every other model in the library that a request may name to load it (`loaded: false`), as
//! llama-swap and LM Studio list them.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::library::Entry;
use crate::router::{LoadedModel, RouterError};
use crate::server::error::ApiError;
use crate::server::state::AppState;

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    // No copy of a loaded model is held across the await: a held copy counts as in use.
    let mut data: Vec<Value> = state
        .router
        .with_models(|ms| ms.iter().map(model_object).collect());
    let loaded = state.router.ids();
    let others = available(&state).await;
    data.extend(
        others
            .iter()
            .filter(|(e, _)| !loaded.contains(&e.id))
            .map(|(e, aliases)| available_object(e, aliases)),
    );
    Json(json!({ "object": "list", "data": data }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.router.get(Some(&id)) {
        Ok(model) => Ok(Json(model_object(&model))),
        Err(RouterError::UnknownModel { .. }) => available(&state)
            .await
            .iter()
            .find(|(e, aliases)| e.id == id || aliases.contains(&id))
            .map(|(e, aliases)| Json(available_object(e, aliases)))
            .ok_or_else(|| RouterError::UnknownModel { name: id }.into()),
        Err(e) => Err(e.into()),
    }
}

/// The readable library models with the aliases the config gives them (headers are read
/// from disk: off the async threads).
async fn available(state: &AppState) -> Vec<(Entry, Vec<String>)> {
    let Some(admin) = state.admin.clone() else {
        return Vec::new();
    };
    tokio::task::spawn_blocking(move || {
        let raw = admin.raw();
        admin
            .library
            .scan()
            .into_iter()
            .filter(|e| e.error.is_none())
            .map(|e| {
                let aliases = raw.aliases(&e.id);
                (e, aliases)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
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
        "loaded": true,
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

/// A model on disk, not loaded: naming it in a request loads it.
fn available_object(e: &Entry, aliases: &[String]) -> Value {
    let facts = e.facts.as_ref();
    let created = e
        .parts
        .first()
        .and_then(|p| std::fs::metadata(p).ok()?.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    json!({
        "id": e.id,
        "object": "model",
        "created": created,
        "owned_by": "paddock",
        "aliases": aliases,
        "loaded": false,
        "meta": {
            "architecture": facts.map(|f| f.architecture.clone()),
            "n_ctx_train": facts.map(|f| f.n_ctx_train),
            "n_vocab": facts.map(|f| f.vocab_size),
            "n_params": facts.map(|f| f.total_params),
            "size": facts.map(|f| f.file_bytes),
        },
    })
}
