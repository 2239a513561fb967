//! The model library over HTTP: list with budgets, what-if budgets, load and unload.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::budget::{self, Fit};
use crate::catalog::ModelFile;
use crate::config::{RawEngine, RawModel, RawSettings, Settings};
use crate::engine::model_id;
use crate::library::{self, Entry};
use crate::router::{LoadRequest, Planner, Remote, RouterError};

use super::super::error::ApiError;
use super::super::json::Json;
use super::super::state::AppState;
use super::{settings, status, Admin};

/// Serving settings a what-if or a load may change; the rest come from the server's own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    model: Option<String>,
    ctx_size: Option<u32>,
    parallel: Option<u32>,
    cache_type_k: Option<String>,
    cache_type_v: Option<String>,
    flash_attn: Option<String>,
}

/// `GET /api/models`: every model on disk with its facts and its budget on this machine under
/// the current serving settings, plus the machine and settings the budgets are for.
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let (settings, entries) = tokio::task::spawn_blocking({
        let admin = admin.clone();
        move || library_now(&admin)
    })
    .await
    .map_err(ApiError::internal)??;
    let loaded = state.router.ids();
    Ok(axum::Json(json!({
        "machine": admin.library.machine,
        "settings": settings,
        "loaded": loaded,
        "models": entries,
    }))
    .into_response())
}

/// Every model on disk with its budget under the current serving settings (reads headers:
/// call from a blocking task).
pub fn library_now(admin: &Admin) -> Result<(budget::Settings, Vec<Entry>), ApiError> {
    let settings = library::budget_settings(&serving(admin, None, &Choice::default())?.engine);
    let entries = admin
        .library
        .files()
        .into_iter()
        .map(|f| admin.library.describe(f, &settings))
        .collect();
    Ok((settings, entries))
}

/// `GET /api/budget?model=ID&ctx_size=..`: what loading the model with these settings takes.
pub async fn budget(
    State(state): State<AppState>,
    query: Result<Query<Choice>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(choice) = query.map_err(|e| {
        // "Failed to deserialize query string: ctx_size: invalid digit..." -> param ctx_size.
        let text = e.body_text();
        let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
        let param = detail.split_once(": ").map_or("query", |(p, _)| p);
        ApiError::invalid(param, detail)
    })?;
    let admin = state.admin()?;
    let (entry, settings) = tokio::task::spawn_blocking(move || plan(&admin, &choice))
        .await
        .map_err(ApiError::internal)??;
    Ok(axum::Json(json!({
        "model": entry.id,
        "settings": library::budget_settings(&settings.engine),
        "budget": entry.budget,
        "largest_context": entry.largest_context,
        "tg_ceiling": entry.tg_ceiling,
    }))
    .into_response())
}

/// `POST /api/models/load {"model": ID, ...}`: loads this model beside the loaded ones
/// (unloading least recently used idle ones if memory is short); answers once it is loaded
/// (progress goes out on `/api/events` meanwhile).
pub async fn load(
    State(state): State<AppState>,
    Json(choice): Json<Choice>,
) -> Result<Response, ApiError> {
    load_model(&state, choice).await?;
    Ok(axum::Json(status(&state)).into_response())
}

/// Loads the chosen model beside the loaded ones and saves the choice as the model for the
/// next start and for requests that name none (the web UI's Load and the tray's Model menu).
pub async fn load_model(state: &AppState, choice: Choice) -> Result<(), ApiError> {
    if choice.model.is_none() {
        return Err(ApiError::invalid("model", "name the model to load"));
    }
    let admin = state.admin()?;
    if let Some(loading) = state.router.loading() {
        return Err(RouterError::Busy {
            model: loading.model,
        }
        .into());
    }
    let router = state.router.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        let request = plan_load(&admin, &choice)?;
        let id = request.id.clone();
        router.load(request)?;
        router.set_default(&id);
        // The model picked last is the one that comes back after a restart.
        if let Err(e) = settings::remember_model(&admin, &id) {
            tracing::warn!(error = %e.message, "could not save the chosen model");
        }
        Ok(())
    })
    .await
    .map_err(ApiError::internal)?
}

/// `DELETE /api/models/{id}`: removes a model Paddock downloaded (all its parts). Models in
/// other folders (the Hugging Face cache, LM Studio's, the user's) belong to others and are
/// refused, as is the loaded model.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let busy =
        state.router.ids().contains(&id) || state.router.loading().is_some_and(|l| l.model == id);
    if busy {
        return Err(
            ApiError::bad_request(format!("{id} is loaded; unload it first"))
                .with_status(StatusCode::CONFLICT),
        );
    }
    let file = admin
        .library
        .files()
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::from(RouterError::UnknownModel { name: id.clone() }))?;
    if file.read_only {
        return Err(ApiError::forbidden(format!(
            "{id} is not in Paddock's models folder; Paddock deletes only the models it downloaded"
        )));
    }
    for part in &file.parts {
        std::fs::remove_file(part)
            .map_err(|e| ApiError::internal(format!("{}: {e}", part.display())))?;
    }
    // The repo's folder goes too once it is empty (`remove_dir` refuses a non-empty one).
    if let Some(dir) = file.parts.first().and_then(|p| p.parent()) {
        let _ = std::fs::remove_dir(dir);
    }
    tracing::info!(model = %id, "deleted");
    Ok(axum::Json(json!({ "deleted": id, "files": file.parts })).into_response())
}

/// Which model `POST /api/models/unload` unloads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unload {
    model: Option<String>,
}

/// `POST /api/models/unload {"model": ID}`: unloads that model; with no body or no model,
/// every model.
pub async fn unload(
    State(state): State<AppState>,
    body: Option<Json<Unload>>,
) -> Result<Response, ApiError> {
    match body.and_then(|Json(u)| u.model) {
        Some(name) => state.router.unload(&name)?,
        None => state.router.unload_all(),
    }
    Ok(axum::Json(status(&state)).into_response())
}

/// What loading the chosen model takes, refused when the budget says it does not fit.
/// Also what a request naming a model that is not loaded goes through (`ModelRouter::acquire`).
pub fn plan_load(admin: &Admin, choice: &Choice) -> Result<LoadRequest, ApiError> {
    let (entry, settings) = plan(admin, choice)?;
    let remote = remote(admin, &entry.id, &settings);
    if let Some(Fit::DoesNotFit { short_by }) = entry.budget.as_ref().map(|b| b.fits) {
        return Err(ApiError::invalid(
            "model",
            format!(
                "{} does not fit in memory with these settings: {:.2} GiB short (try a smaller context or a quantized KV cache)",
                entry.id,
                short_by as f64 / f64::from(1u32 << 30)
            ),
        )
        .with_code("model_does_not_fit"));
    }
    Ok(LoadRequest {
        id: entry.id,
        aliases: settings.aliases,
        spec: settings.engine,
        predicted: entry.budget,
        pinned: settings.pinned,
        idle_unload: settings.idle_unload,
        remote,
    })
}

/// The workers the model is spread over: `--rpc` (`[server] rpc`) is for the configured
/// model, as llama-server's is for its one model; a worker serves one process at a time.
pub fn remote(admin: &Admin, id: &str, settings: &Settings) -> Option<Remote> {
    let configured = admin.raw().model.path.as_deref().map(model_id);
    if settings.rpc.is_empty() || configured.as_deref() != Some(id) {
        return None;
    }
    let workers = admin.workers_for(&settings.rpc);
    let (_, local_share) = library::with_workers(&admin.library.machine, &workers);
    Some(Remote {
        workers: settings.rpc.clone(),
        local_share,
    })
}

/// Lets requests load the models they name: the same plan, fit check included, as the
/// load route.
pub fn load_planner(admin: Arc<Admin>) -> Planner {
    Box::new(move |name| {
        plan_load(&admin, &Choice::model(name)).map_err(|e| match e.code {
            Some("model_not_found") => RouterError::UnknownModel { name: name.into() },
            Some("model_does_not_fit") => RouterError::TooBig {
                model: name.into(),
                reason: e.message,
            },
            _ => RouterError::Load {
                model: name.into(),
                reason: e.message,
            },
        })
    })
}

impl Choice {
    /// Just a model, with the settings configured for it.
    pub fn model(name: &str) -> Self {
        Self {
            model: Some(name.into()),
            ..Self::default()
        }
    }
}

/// The model a choice names (by id or alias), and the settings it would be served with
/// (validated by the same rules as the config file and flags).
fn plan(admin: &Admin, choice: &Choice) -> Result<(Entry, Settings), ApiError> {
    let (file, settings) = model_file(admin, choice)?;
    let name = file.id.clone();
    let entry = match remote(admin, &name, &settings) {
        Some(_) => {
            admin
                .library
                .describe_spread(file, &settings.engine, &admin.workers_for(&settings.rpc))
        }
        None => admin.library.describe_serving(file, &settings.engine),
    };
    if let Some(why) = &entry.error {
        return Err(ApiError::invalid(
            "model",
            format!("{name} cannot be read: {why}"),
        ));
    }
    Ok((entry, settings))
}

/// The files of the model a choice names, and its serving settings.
pub(super) fn model_file(
    admin: &Admin,
    choice: &Choice,
) -> Result<(ModelFile, Settings), ApiError> {
    let name = choice
        .model
        .as_deref()
        .ok_or_else(|| ApiError::invalid("model", "name the model"))?;
    let raw = admin.raw();
    let configured = raw.model.path.as_deref().map(model_id);
    let id = match raw.model_for_alias(name) {
        Some(id) => id.to_string(),
        None if raw.model.alias.iter().flatten().any(|a| a == name) => {
            configured.clone().unwrap_or_else(|| name.to_string())
        }
        None => name.to_string(),
    };
    let file = admin
        .library
        .files()
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::from(RouterError::UnknownModel { name: name.into() }))?;
    let settings = serving(admin, Some(&file), choice)?;
    Ok((file, settings))
}

/// The server's settings for the model (its own table applied by `Settings::resolve`) with
/// the choice over them. The `[model]`
/// aliases follow the configured model only; a `[models."<id>"]` table's follow its model.
pub(super) fn serving(
    admin: &Admin,
    file: Option<&ModelFile>,
    choice: &Choice,
) -> Result<Settings, ApiError> {
    let mut raw = admin.raw();
    if let Some(file) = file {
        if raw.model.path.as_deref() != file.parts.first().map(|p| p.as_path()) {
            raw.model = RawModel::default();
        }
        raw.model.path = file.parts.first().cloned();
    }
    let over = RawSettings {
        engine: RawEngine {
            ctx_size: choice.ctx_size,
            parallel: choice.parallel,
            cache_type_k: choice.cache_type_k.clone(),
            cache_type_v: choice.cache_type_v.clone(),
            flash_attn: choice.flash_attn.clone(),
            ..RawEngine::default()
        },
        ..RawSettings::default()
    };
    settings::resolve(raw.merge(over))
}
