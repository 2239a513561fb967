//! The admin API under `/api`, for the web UI, the tray and scripts: what the OpenAI API does
//! not cover. The model library with budgets, what-if budgets, loading and unloading, the live
//! status and its event stream, the saved settings and launch at login. `docs/api.md` lists
//! the routes.

mod bench;
mod downloads;
mod models;
mod settings;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;

use crate::autostart::Autostart;
use crate::config::{RawSettings, Settings};
use crate::library::Library;

pub use bench::{BenchState, BenchStatus};
pub use downloads::DownloadStatus;
pub use models::{library_now, load_model, load_planner, Choice};
pub use status::{status, LoadedStatus, Measured, ModelStatus, ServerState, Status};

use super::state::AppState;

/// What the admin API needs beyond the router.
pub struct Admin {
    pub library: Library,
    /// Where the server listens (the real port when 0 was asked for).
    pub listen: SocketAddr,
    /// The settings as given (file + flags). Saving engine settings updates them, so the
    /// next load uses the new values; the server section is what this process runs with.
    pub raw: Mutex<RawSettings>,
    /// Where `PUT /api/settings` saves.
    pub config_file: Option<PathBuf>,
    pub autostart: Option<Arc<dyn Autostart>>,
    pub downloads: downloads::Downloads,
    pub bench: bench::Benchmarks,
    /// Devices lent by RPC workers, as they reported when the server started.
    pub workers: crate::engine::rpc::Workers,
}

impl Admin {
    pub fn new(settings: &Settings, listen: SocketAddr, library: Library) -> Self {
        Self {
            library,
            listen,
            raw: Mutex::new(settings.raw.clone()),
            config_file: settings.config_file.clone(),
            autostart: None,
            downloads: downloads::Downloads::new(crate::config::paths::models_dir()),
            bench: bench::Benchmarks::new(settings.bench_history.clone()),
            workers: Default::default(),
        }
    }

    pub fn raw(&self) -> RawSettings {
        self.raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status::get))
        .route("/events", get(status::events))
        .route("/models", get(models::list))
        .route("/models/load", post(models::load))
        .route("/models/unload", post(models::unload))
        .route("/models/{id}", axum::routing::delete(models::delete))
        .route("/budget", get(models::budget))
        .route("/hub", get(downloads::hub_models))
        .route("/downloads", get(downloads::list).post(downloads::start))
        .route("/downloads/{id}", axum::routing::delete(downloads::cancel))
        .route("/settings", get(settings::get).put(settings::put))
        .route("/bench", post(bench::start).delete(bench::cancel))
        .route("/bench/runs", get(bench::runs))
        .route(
            "/bench/runs/{id}",
            get(bench::run).delete(bench::delete_run),
        )
        .route(
            "/autostart",
            get(settings::autostart).put(settings::set_autostart),
        )
}
