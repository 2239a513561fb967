//! `GET /api/workers`: the RPC workers advertised on the local network (`paddock worker
//! --lan`), the ones the configured model is spread over (`[server] rpc`, saved through
//! `PUT /api/settings`), and what each of those reported. The web UI's Workers page.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::error::ApiError;
use super::super::state::AppState;

pub async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let configured = admin.raw().server.rpc.unwrap_or_default();
    let looker = std::sync::Arc::clone(&admin);
    let found = tokio::task::spawn_blocking(move || looker.found_workers())
        .await
        .map_err(ApiError::internal)?;
    let (found, discovery_error) = match found {
        Ok(found) => (found, None),
        Err(e) => (Vec::new(), Some(format!("cannot listen for workers: {e}"))),
    };
    let found: Vec<_> = found
        .into_iter()
        .map(|f| {
            let in_use = configured.contains(&f.endpoint);
            json!({
                "name": f.name,
                "endpoint": f.endpoint,
                "memory_free": f.memory_free,
                "memory_total": f.memory_total,
                "in_use": in_use,
            })
        })
        .collect();
    let workers = admin.workers();
    Ok(axum::Json(json!({
        "found": found,
        "discovery_error": discovery_error,
        "configured": configured,
        "devices": workers.devices,
        "missing": workers.missing,
    }))
    .into_response())
}
