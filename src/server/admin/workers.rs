//! `GET /api/workers`: the RPC workers advertised on the local network (`paddock worker
//! --lan`), the ones the configured model is spread over (`[server] rpc`, saved through
//! `PUT /api/settings`), and what each of those reported. `/api/lend`: this machine lent as
//! a worker itself. The web UI's Workers page.

use std::net::Ipv4Addr;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::error::ApiError;
use super::super::json::Json;
use super::super::state::AppState;
use super::Admin;
use crate::lend::Lend;

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
    let spread = spread_budget(&state);
    let remote_free: u64 = workers.devices.iter().map(|d| d.memory_free).sum();
    let devices: Vec<Value> = workers
        .devices
        .iter()
        .map(|d| {
            // llama.cpp splits offloaded layers by free memory: this device's part of the
            // model's GPU side, as predicted.
            let predicted = spread
                .filter(|_| remote_free > 0)
                .map(|remote| (remote as f64 * d.memory_free as f64 / remote_free as f64) as u64);
            let mut device = json!(d);
            device["predicted"] = json!(predicted);
            device
        })
        .collect();
    Ok(axum::Json(json!({
        "found": found,
        "discovery_error": discovery_error,
        "configured": configured,
        "devices": devices,
        "missing": workers.missing,
        "lending": lend_view(&admin),
    }))
    .into_response())
}

/// What the loaded model spread over workers is predicted to put on them, in all.
fn spread_budget(state: &AppState) -> Option<u64> {
    state.router.with_models(|models| {
        models.iter().find_map(|m| {
            let remote = m.remote.as_ref()?;
            let on_gpu = m.predicted.as_ref()?.on_gpu as f64;
            Some((on_gpu * (1.0 - remote.local_share.clamp(0.0, 1.0))) as u64)
        })
    })
}

/// `PUT /api/lend`: lend this machine, or stop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LendChoice {
    on: bool,
    /// Listen on every address instead of loopback (other machines can then use this one).
    #[serde(default)]
    lan: bool,
    port: Option<u16>,
    #[serde(default)]
    cache: bool,
}

pub async fn lending(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    Ok(axum::Json(lend_view(&admin)).into_response())
}

pub async fn lend(
    State(state): State<AppState>,
    Json(choice): Json<LendChoice>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let worker = std::sync::Arc::clone(&admin);
    tokio::task::spawn_blocking(move || match choice.on {
        false => {
            worker.lending.stop();
            Ok(())
        }
        true => worker.lending.start(Lend {
            host: if choice.lan {
                Ipv4Addr::UNSPECIFIED
            } else {
                Ipv4Addr::LOCALHOST
            },
            lan: choice.lan,
            port: choice.port.unwrap_or(crate::engine::rpc::DEFAULT_PORT),
            cache: choice.cache,
            ..Lend::default()
        }),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::invalid("on", e))?;
    Ok(axum::Json(lend_view(&admin)).into_response())
}

fn lend_view(admin: &Admin) -> Value {
    match admin.lending.now() {
        Some(lend) => json!({
            "on": true,
            "endpoint": lend.addr().to_string(),
            "lan": lend.lan,
            "cache": lend.cache,
        }),
        None => json!({ "on": false }),
    }
}
