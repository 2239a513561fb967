//! Model downloads from Hugging Face through the admin API: list a repo's GGUF models, fetch
//! one in the background into Paddock's models folder, follow it on `/api/events`, cancel it.
//! Interrupted downloads resume from their `.part` files when started again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalog::download::{self, DownloadError, Hub, Progress};

use super::super::error::ApiError;
use super::super::json::Json;
use super::super::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    Running,
    Done,
    Failed,
    Cancelled,
}

/// One download as the UI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadStatus {
    pub id: u64,
    pub repo: String,
    pub model: String,
    pub state: DownloadState,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub bytes_per_sec: u64,
    pub file: Option<String>,
    pub error: Option<String>,
}

/// The downloads of this run, newest last.
pub struct Downloads {
    /// Where models go: Paddock's own models folder (none: downloads are refused).
    dest: Option<PathBuf>,
    list: Mutex<Vec<(DownloadStatus, CancellationToken)>>,
    next_id: AtomicU64,
    changes: watch::Sender<u64>,
}

impl Downloads {
    pub fn new(dest: Option<PathBuf>) -> Self {
        Self {
            dest,
            list: Mutex::default(),
            next_id: AtomicU64::new(1),
            changes: watch::channel(0).0,
        }
    }

    pub fn list(&self) -> Vec<DownloadStatus> {
        self.lock().iter().map(|(d, _)| d.clone()).collect()
    }

    /// Wakes on every change of [`Downloads::list`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(DownloadStatus, CancellationToken)>> {
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut DownloadStatus)) {
        if let Some((d, _)) = self.lock().iter_mut().find(|(d, _)| d.id == id) {
            change(d);
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoQuery {
    repo: String,
}

/// `GET /api/hub?repo=owner/name`: the GGUF models in a Hugging Face repo.
pub async fn hub_models(Query(q): Query<RepoQuery>) -> Result<Response, ApiError> {
    let hub = Hub::from_env().map_err(hub_error)?;
    let models = download::list_files(&hub, &q.repo)
        .await
        .map_err(hub_error)?;
    Ok(axum::Json(serde_json::json!({ "repo": q.repo, "models": models })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    repo: String,
    /// The model's id as `GET /api/hub` lists it.
    model: String,
}

/// `POST /api/downloads {"repo", "model"}`: starts fetching; answers 202 with its status.
pub async fn start(
    State(state): State<AppState>,
    Json(start): Json<Start>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let dest = admin.downloads.dest.clone().ok_or_else(|| {
        ApiError::bad_request("this machine has no models folder to download into")
    })?;
    let busy = admin
        .downloads
        .list()
        .into_iter()
        .any(|d| d.repo == start.repo && d.state == DownloadState::Running);
    if busy {
        return Err(
            ApiError::bad_request(format!("{} is already downloading", start.repo))
                .with_status(StatusCode::CONFLICT),
        );
    }
    let hub = Hub::from_env().map_err(hub_error)?;
    let models = download::list_files(&hub, &start.repo)
        .await
        .map_err(hub_error)?;
    let model = models
        .into_iter()
        .find(|m| m.id == start.model)
        .ok_or_else(|| {
            ApiError::not_found(format!("{} has no model {}", start.repo, start.model))
        })?;
    // Refused now, with a status, rather than failing in the background.
    download::ensure_space(&dest, &start.repo, &model.files).map_err(hub_error)?;
    let id = admin.downloads.next_id.fetch_add(1, Ordering::Relaxed);
    let status = DownloadStatus {
        id,
        repo: start.repo.clone(),
        model: model.id.clone(),
        state: DownloadState::Running,
        done_bytes: 0,
        total_bytes: model.total_size,
        bytes_per_sec: 0,
        file: None,
        error: None,
    };
    let cancel = CancellationToken::new();
    admin
        .downloads
        .lock()
        .push((status.clone(), cancel.clone()));
    let admin_task = Arc::clone(&admin);
    tokio::spawn(async move {
        let downloads = &admin_task.downloads;
        let report = |p: Progress| {
            downloads.update(id, |d| {
                d.done_bytes = p.done_bytes;
                d.total_bytes = p.total_bytes;
                d.bytes_per_sec = p.bytes_per_sec;
                d.file = Some(p.file);
            });
        };
        let result =
            download::download(&hub, &start.repo, &model.files, &dest, report, &cancel).await;
        downloads.update(id, |d| match result {
            Ok(_) => d.state = DownloadState::Done,
            Err(DownloadError::Cancelled) => d.state = DownloadState::Cancelled,
            Err(e) => {
                d.state = DownloadState::Failed;
                d.error = Some(e.to_string());
            }
        });
        tracing::info!(repo = %start.repo, model = %model.id, "download ended");
    });
    Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response())
}

/// `GET /api/downloads`.
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(axum::Json(state.admin()?.downloads.list()).into_response())
}

/// `DELETE /api/downloads/{id}`: cancels; the `.part` stays, so starting again resumes.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let found = admin
        .downloads
        .lock()
        .iter()
        .find(|(d, _)| d.id == id)
        .map(|(d, token)| {
            token.cancel();
            d.clone()
        });
    let status = found.ok_or_else(|| ApiError::not_found(format!("no download {id}")))?;
    Ok(axum::Json(status).into_response())
}

/// The hub's refusals in the API's terms. Token trouble is 403, not 401: a 401 would read as
/// "Paddock wants its own API key". Too little disk space is WebDAV's 507 Insufficient Storage.
fn hub_error(e: DownloadError) -> ApiError {
    let message = e.to_string();
    match e {
        DownloadError::InvalidRepo { .. } | DownloadError::UnsafePath { .. } => {
            ApiError::invalid("repo", message)
        }
        DownloadError::NotFound { .. } => ApiError::not_found(message),
        DownloadError::NeedsToken { .. } | DownloadError::NoAccess { .. } => {
            ApiError::forbidden(message)
        }
        DownloadError::NoSpace { .. } => ApiError::bad_request(message)
            .with_status(StatusCode::INSUFFICIENT_STORAGE)
            .with_code("insufficient_storage"),
        DownloadError::Ambiguous { .. } => ApiError::invalid("model", message),
        _ => ApiError::bad_request(message).with_status(StatusCode::BAD_GATEWAY),
    }
}
