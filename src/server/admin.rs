//! The admin API under `/api`, for the web UI and scripts: what the OpenAI API does not
//! cover. Today: the model library with each model's facts and memory budget.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;

/// `GET /api/models`: every model on disk with its facts and its budget on this machine under
/// the serving settings, plus the machine and settings the budgets are for.
pub async fn models(State(state): State<AppState>) -> Result<Response, ApiError> {
    let library = state
        .library
        .clone()
        .ok_or_else(|| ApiError::not_found("this server has no model library"))?;
    let entries = tokio::task::spawn_blocking({
        let library = library.clone();
        move || library.scan()
    })
    .await
    .map_err(ApiError::internal)?;
    let loaded: Vec<&str> = state.router.list().iter().map(|m| m.id.as_str()).collect();
    Ok(axum::Json(json!({
        "machine": library.machine,
        "settings": library.settings,
        "loaded": loaded,
        "models": entries,
    }))
    .into_response())
}
