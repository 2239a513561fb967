//! Benchmarks through the admin API: start one on a library model (it runs alone: the served
//! model is unloaded and requests get 503 until it ends, then the model is loaded again),
//! follow it on `/api/events`, cancel it, and read or export the history.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bench::{self, BenchError, History, Plan, Progress, Run};

use super::super::error::ApiError;
use super::super::json::Json;
use super::super::state::AppState;
use super::models::model_file;
use super::{Admin, Choice};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchState {
    Running,
    Done,
    Failed,
    Cancelled,
}

/// The benchmark of this run (the last one, until another starts), as `/api/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BenchStatus {
    pub state: BenchState,
    pub model: String,
    pub done: u64,
    pub total: u64,
    /// The test running now.
    pub current: Option<String>,
    /// The run in the history, once saved.
    pub run_id: Option<String>,
    pub error: Option<String>,
    pub notes: Vec<String>,
}

/// The benchmark slot: one at a time.
pub struct Benchmarks {
    history: Option<History>,
    status: Mutex<Option<BenchStatus>>,
    cancel: Arc<AtomicBool>,
    changes: watch::Sender<u64>,
}

impl Benchmarks {
    pub fn new(history: Option<PathBuf>) -> Self {
        Self {
            history: history.map(History::new),
            status: Mutex::default(),
            cancel: Arc::default(),
            changes: watch::channel(0).0,
        }
    }

    pub fn status(&self) -> Option<BenchStatus> {
        self.lock().clone()
    }

    /// Wakes on every change of [`Benchmarks::status`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BenchStatus>> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut BenchStatus)) {
        if let Some(status) = self.lock().as_mut() {
            change(status);
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn history(&self) -> Result<&History, ApiError> {
        self.history.as_ref().ok_or_else(|| {
            ApiError::not_found("this machine has no data folder for a benchmark history")
        })
    }
}

/// `POST /api/bench`: the model and, optionally, llama-bench's lists.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    model: String,
    n_prompt: Option<Vec<u32>>,
    n_gen: Option<Vec<u32>>,
    n_depth: Option<Vec<u32>>,
    repetitions: Option<u32>,
}

/// `POST /api/bench`: checks the request, takes the machine (unloading what is served), and
/// answers 202 with the status; the benchmark runs in the background.
pub async fn start(
    State(state): State<AppState>,
    Json(start): Json<Start>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let plan = Plan::given(
        start.n_prompt,
        start.n_gen,
        start.n_depth,
        start.repetitions,
    );
    plan.check()
        .map_err(|e| ApiError::bad_request(e).with_code("invalid_plan"))?;
    let (file, settings) = model_file(&admin, &Choice::model(&start.model))?;
    if admin
        .bench
        .status()
        .is_some_and(|s| s.state == BenchState::Running)
    {
        return Err(ApiError::bad_request("a benchmark is already running")
            .with_status(StatusCode::CONFLICT)
            .with_code("benchmark_running"));
    }
    let pause = state
        .router
        .pause(&format!("a benchmark of {} is running", file.id))
        .map_err(ApiError::from)?;
    let mut notes = Vec::new();
    if !pause.unloaded.is_empty() {
        notes.push(format!(
            "unloaded {} for the benchmark (it runs alone); loaded again afterwards",
            pause.unloaded.join(", ")
        ));
    }
    let status = BenchStatus {
        state: BenchState::Running,
        model: file.id.clone(),
        done: 0,
        total: 0,
        current: None,
        run_id: None,
        error: None,
        notes: notes.clone(),
    };
    *admin.bench.lock() = Some(status.clone());
    admin.bench.cancel.store(false, Ordering::SeqCst);
    admin.bench.changes.send_modify(|n| *n = n.wrapping_add(1));

    let worker = Arc::clone(&admin);
    tokio::spawn(async move {
        let outcome = tokio::task::spawn_blocking(move || {
            let mut job = bench::prepare(&worker.library, file, settings.engine, plan)?;
            job.notes = notes;
            let cancel = Arc::clone(&worker.bench.cancel);
            let run = bench::run(job, |p: &Progress| {
                worker.bench.update(|s| {
                    s.done = p.done;
                    s.total = p.total;
                    s.current.clone_from(&p.current);
                });
                !cancel.load(Ordering::SeqCst)
            })?;
            Ok::<_, BenchError>(run)
        })
        .await;
        finish(&admin, outcome);
        let unloaded = pause.unloaded.clone();
        drop(pause);
        for id in unloaded {
            if let Err(e) = state.router.acquire(Some(&id)).await {
                tracing::warn!(model = %id, "could not load the model again after the benchmark: {e}");
            }
        }
    });
    Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response())
}

/// Saves a finished run and sets the final status.
fn finish(admin: &Admin, outcome: Result<Result<Run, BenchError>, tokio::task::JoinError>) {
    let result = match outcome {
        Ok(Ok(run)) => match admin.bench.history() {
            Ok(history) => history
                .append(&run)
                .map(|()| run)
                .map_err(|e| format!("the benchmark ran but could not be saved: {e}")),
            Err(_) => Err("this machine has no data folder for a benchmark history".into()),
        },
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the benchmark stopped unexpectedly: {e}")),
    };
    let cancelled = admin.bench.cancel.load(Ordering::SeqCst);
    admin.bench.update(|s| {
        s.current = None;
        match result {
            Ok(run) => {
                s.state = BenchState::Done;
                s.run_id = Some(run.id);
                // The run's warnings stay with the run, shown beside its results.
                s.notes = run.notes;
            }
            Err(_) if cancelled => s.state = BenchState::Cancelled,
            Err(e) => {
                s.state = BenchState::Failed;
                s.error = Some(e);
            }
        }
    });
}

/// `DELETE /api/bench`: stops the running benchmark after its current repetition.
pub async fn cancel(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    if !admin
        .bench
        .status()
        .is_some_and(|s| s.state == BenchState::Running)
    {
        return Err(ApiError::not_found("no benchmark is running"));
    }
    admin.bench.cancel.store(true, Ordering::SeqCst);
    Ok((StatusCode::ACCEPTED, axum::Json(admin.bench.status())).into_response())
}

/// `GET /api/bench/runs`: the history, oldest first.
pub async fn runs(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let runs = admin.bench.history()?.list().map_err(ApiError::internal)?;
    Ok(axum::Json(serde_json::json!({ "runs": runs })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Format {
    format: Option<String>,
}

/// `GET /api/bench/runs/{id}?format=json|md|csv`.
pub async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(format): Query<Format>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    let run = admin
        .bench
        .history()?
        .get(&id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no benchmark run {id:?}")))?;
    let text =
        |mime: &'static str, body: String| ([(header::CONTENT_TYPE, mime)], body).into_response();
    Ok(match format.format.as_deref().unwrap_or("json") {
        "json" => axum::Json(run).into_response(),
        "md" => text("text/markdown; charset=utf-8", bench::markdown(&run)),
        "csv" => text("text/csv; charset=utf-8", bench::csv(&[run])),
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be json, md or csv, not {other:?}"),
            ))
        }
    })
}

/// `DELETE /api/bench/runs/{id}`.
pub async fn delete_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let admin = state.admin()?;
    if admin
        .bench
        .history()?
        .remove(&id)
        .map_err(ApiError::internal)?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no benchmark run {id:?}")))
    }
}
