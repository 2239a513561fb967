//! The admin API under `/api`, for the web UI, the tray and scripts: what the OpenAI API does
//! not cover. The model library with budgets, what-if budgets, loading and unloading, the live
//! status and its event stream, the saved settings and launch at login. `docs/api.md` lists
//! the routes.

mod bench;
mod downloads;
mod models;
mod settings;
mod status;
mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::routing::{get, post};
use axum::Router;

use crate::autostart::Autostart;
use crate::config::{RawSettings, Settings};
use crate::discovery::Browser;
use crate::engine::rpc::{self, Workers};
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
    /// Devices lent by RPC workers, as each reported when first asked (at start, or when
    /// the model was first planned over it), and the workers that did not answer.
    workers: Mutex<Workers>,
    /// Workers advertised on the local network; listened for from the first look.
    browser: OnceLock<Result<Browser, String>>,
    /// This machine lent to another Paddock as a worker (`PUT /api/lend`).
    pub lending: crate::lend::Lending,
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
            workers: Mutex::default(),
            browser: OnceLock::new(),
            lending: crate::lend::Lending::default(),
        }
    }

    /// What the workers asked at start reported.
    pub fn set_workers(&self, workers: Workers) {
        *self.workers.lock().unwrap_or_else(PoisonError::into_inner) = workers;
    }

    pub fn workers(&self) -> Workers {
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The devices of these workers: as they reported before, or asked now (blocking) for
    /// those never reached. A worker serving this server's model cannot answer, so what it
    /// said before stands.
    pub fn workers_for(&self, endpoints: &[String]) -> Workers {
        let known = self.workers();
        let new: Vec<String> = endpoints
            .iter()
            .filter(|e| !known.devices.iter().any(|d| &d.endpoint == *e))
            .cloned()
            .collect();
        let mut all = known;
        if !new.is_empty() {
            let asked = rpc::survey(&new);
            all.devices.extend(asked.devices);
            all.missing
                .retain(|m| !new.iter().any(|e| m.contains(e.as_str())));
            all.missing.extend(asked.missing);
            self.set_workers(all.clone());
        }
        Workers {
            devices: all
                .devices
                .into_iter()
                .filter(|d| endpoints.contains(&d.endpoint))
                .collect(),
            missing: all
                .missing
                .into_iter()
                .filter(|m| endpoints.iter().any(|e| m.contains(e.as_str())))
                .collect(),
        }
    }

    /// The workers advertised on the local network now, or why none can be listened for.
    pub fn found_workers(&self) -> Result<Vec<crate::discovery::Found>, String> {
        match self.browser.get_or_init(Browser::start) {
            Ok(browser) => Ok(browser.found()),
            Err(e) => Err(e.clone()),
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
        .route("/workers", get(workers::get))
        .route("/lend", get(workers::lending).put(workers::lend))
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
