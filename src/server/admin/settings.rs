//! The saved settings (`GET`/`PUT /api/settings`) and launch at login (`/api/autostart`).
//! Saving writes the config file; engine settings apply at the next model load, the port and
//! LAN serving at the next start.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{self, RawSettings, Settings};
use crate::engine::model_id;

use super::super::error::ApiError;
use super::super::json::{from_value, Json};
use super::super::state::AppState;
use super::Admin;

/// The settings the UI edits, resolved (defaults filled in).
#[derive(Debug, Serialize)]
struct View {
    port: u16,
    lan: bool,
    api_key: Option<String>,
    model: Option<String>,
    ctx_size: u32,
    parallel: u32,
    cache_type_k: &'static str,
    cache_type_v: &'static str,
    flash_attn: String,
    mlock: bool,
    /// RPC workers (`host:port`) the configured model is spread over (docs/rpc.md).
    rpc: Vec<String>,
    /// Speculative decoding (docs/configuration.md): guesses from the request's own text,
    spec_ngram: bool,
    /// from the model's MTP heads (where it has them and runs one slot),
    spec_mtp: bool,
    /// from this draft model (a library id),
    model_draft: Option<String>,
    /// at most this many per step (0: off),
    draft_max: u32,
    /// the draft model's while its top token is at least this likely.
    draft_p_min: f32,
}

/// A change: any subset of the view's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    port: Option<u16>,
    lan: Option<bool>,
    /// An empty string removes the key.
    api_key: Option<String>,
    model: Option<String>,
    ctx_size: Option<u32>,
    parallel: Option<u32>,
    cache_type_k: Option<String>,
    cache_type_v: Option<String>,
    flash_attn: Option<String>,
    mlock: Option<bool>,
    /// Applies when the configured model loads next; empty: this machine only.
    rpc: Option<Vec<String>>,
    spec_ngram: Option<bool>,
    spec_mtp: Option<bool>,
    /// A library id; an empty string removes the draft model.
    model_draft: Option<String>,
    draft_max: Option<u32>,
    draft_p_min: Option<f32>,
}

pub async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    answer(&state, &admin, saved(&admin)?)
}

pub async fn put(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    // Accept the view's shape back (`{"settings": {...}}`) as well as the bare fields.
    let body = match body {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("settings") => {
            o.remove("settings").unwrap_or_default()
        }
        other => other,
    };
    let patch: Patch = from_value(&body)?;
    save(&admin, patch)?;
    answer(&state, &admin, saved(&admin)?)
}

/// Saves `model` as the one to serve at the next start.
pub(super) fn remember_model(admin: &Admin, id: &str) -> Result<(), ApiError> {
    save(
        admin,
        Patch {
            model: Some(id.into()),
            ..Patch::default()
        },
    )
}

fn save(admin: &Admin, patch: Patch) -> Result<(), ApiError> {
    let path = admin
        .config_file
        .clone()
        .ok_or_else(|| ApiError::bad_request("this server has no config file to save to"))?;
    let mut file = if path.is_file() {
        config::read_file(&path).map_err(|e| ApiError::internal(e.to_string()))?
    } else {
        RawSettings::default()
    };
    // Merging only overlays set values: removing the draft model must also reach the settings
    // this process started with.
    let no_draft = patch.model_draft.as_deref() == Some("");
    apply(admin, &mut file, patch)?;
    // Check the result by the same rules as at start-up before anything is written.
    let effective = admin.raw().merge(file.clone());
    resolve(effective)?;
    config::write_file(&path, &file).map_err(|e| ApiError::internal(e.to_string()))?;
    {
        // Engine settings and workers take effect at the next load.
        let mut raw = admin
            .raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let engine = RawSettings {
            engine: file.engine.clone(),
            server: config::RawServer {
                rpc: file.server.rpc.clone(),
                ..config::RawServer::default()
            },
            ..RawSettings::default()
        };
        *raw = raw.clone().merge(engine);
        if no_draft {
            raw.engine.model_draft = None;
        }
    }
    Ok(())
}

pub async fn autostart(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let Some(autostart) = &admin.autostart else {
        return Ok(
            axum::Json(json!({"supported": false, "enabled": false, "mechanism": null}))
                .into_response(),
        );
    };
    let now = autostart.state().map_err(ApiError::internal)?;
    Ok(
        axum::Json(json!({"supported": true, "enabled": now.enabled, "mechanism": now.mechanism}))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutostartChange {
    enabled: bool,
}

pub async fn set_autostart(
    State(state): State<AppState>,
    Json(change): Json<AutostartChange>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let autostart = admin
        .autostart
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("launch at login is not available in this build"))?;
    let now = autostart.set(change.enabled).map_err(ApiError::internal)?;
    Ok(
        axum::Json(json!({"supported": true, "enabled": now.enabled, "mechanism": now.mechanism}))
            .into_response(),
    )
}

/// What is saved: the settings this process started with, overlaid by the config file as it
/// is now (saving changes the file).
fn saved(admin: &Admin) -> Result<RawSettings, ApiError> {
    let raw = admin.raw();
    match admin.config_file.as_ref().filter(|p| p.is_file()) {
        Some(path) => {
            Ok(raw.merge(config::read_file(path).map_err(|e| ApiError::internal(e.to_string()))?))
        }
        None => Ok(raw),
    }
}

/// Resolves by the start-up rules; a 400 naming the setting when one is wrong.
pub(super) fn resolve(mut raw: RawSettings) -> Result<Settings, ApiError> {
    if raw.model.path.is_none() {
        // Settings without a model are still worth checking and showing, and budgets need
        // engine settings only: any name satisfies the "which model" rule.
        raw.model.path = Some("model.gguf".into());
    }
    Settings::resolve(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn apply(admin: &Admin, file: &mut RawSettings, patch: Patch) -> Result<(), ApiError> {
    if let Some(port) = patch.port {
        file.server.port = Some(port);
    }
    if let Some(key) = patch.api_key {
        file.server.api_key = Some(key).filter(|k| !k.is_empty());
    }
    if let Some(lan) = patch.lan {
        file.server.host = Some(if lan { "0.0.0.0" } else { "127.0.0.1" }.into());
        let has_key = file.server.api_key.is_some() || admin.raw().server.api_key.is_some();
        if lan && !has_key {
            file.server.api_key = Some(new_key());
        }
    }
    if let Some(id) = patch.model {
        file.model.path = Some(library_file(admin, "model", &id)?);
        file.model.alias = None;
    }
    if let Some(id) = patch.model_draft {
        file.engine.model_draft = match id.as_str() {
            "" => None,
            id => Some(library_file(admin, "model_draft", id)?),
        };
    }
    if let Some(workers) = patch.rpc {
        if let Some(bad) = workers.iter().find(|w| !crate::engine::rpc::is_endpoint(w)) {
            return Err(ApiError::invalid(
                "rpc",
                format!("workers are host:port, such as 192.168.1.20:50052, not {bad:?}"),
            ));
        }
        file.server.rpc = Some(workers);
    }
    let engine = &mut file.engine;
    engine.ctx_size = patch.ctx_size.or(engine.ctx_size);
    engine.parallel = patch.parallel.or(engine.parallel);
    engine.cache_type_k = patch.cache_type_k.or(engine.cache_type_k.take());
    engine.cache_type_v = patch.cache_type_v.or(engine.cache_type_v.take());
    engine.flash_attn = patch.flash_attn.or(engine.flash_attn.take());
    engine.mlock = patch.mlock.or(engine.mlock);
    engine.spec_ngram = patch.spec_ngram.or(engine.spec_ngram);
    engine.spec_mtp = patch.spec_mtp.or(engine.spec_mtp);
    engine.draft_max = patch.draft_max.or(engine.draft_max);
    engine.draft_p_min = patch.draft_p_min.or(engine.draft_p_min);
    Ok(())
}

/// The first file of the library's model `id`; `field` names the request field on a miss.
fn library_file(admin: &Admin, field: &str, id: &str) -> Result<std::path::PathBuf, ApiError> {
    admin
        .library
        .files()
        .into_iter()
        .find(|f| f.id == id)
        .and_then(|f| f.parts.first().cloned())
        .ok_or_else(|| ApiError::invalid(field, format!("the model `{id}` does not exist")))
}

/// `pk-` and 128 random bits in hex.
fn new_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("pk-{hex}")
}

fn answer(state: &AppState, admin: &Admin, saved_raw: RawSettings) -> Result<Response, ApiError> {
    let model = saved_raw.model.path.as_deref().map(model_id);
    let saved = resolve(saved_raw)?;
    let running = resolve(admin.raw())?;
    let e = &saved.engine;
    let view = View {
        port: saved.listen.port(),
        lan: !saved.listen.ip().is_loopback(),
        api_key: saved.api_key.clone(),
        model,
        ctx_size: e.n_ctx,
        parallel: e.n_parallel,
        cache_type_k: e.cache_type_k.name(),
        cache_type_v: e.cache_type_v.name(),
        flash_attn: format!("{:?}", e.flash_attn).to_lowercase(),
        mlock: e.mlock,
        rpc: saved.rpc.clone(),
        spec_ngram: e.speculation.ngram,
        spec_mtp: e.speculation.mtp,
        model_draft: e.speculation.draft_model.as_deref().map(model_id),
        draft_max: e.speculation.draft_max,
        draft_p_min: e.speculation.draft_p_min,
    };
    // The port and LAN serving are bound at start; a saved change waits for a restart.
    let restart_required =
        saved.listen != running.listen || saved.api_key.as_deref() != state.api_key.as_deref();
    Ok(axum::Json(json!({
        "settings": view,
        "config_file": admin.config_file,
        "restart_required": restart_required,
    }))
    .into_response())
}
