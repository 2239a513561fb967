//! Which models are loaded and under which names. A request names a model; the router hands
//! back that model's engine. Loading and switching happen here too, with progress and every
//! change announced on a watch channel (the tray and the web UI's event stream listen).
//! Knows nothing of HTTP.
//!
//! One model is loaded at a time: loading another unloads the current one first, so its
//! memory is free for the new one. Requests already running keep their engine until they end.
//! A request naming a model that is on disk but not loaded loads it first ([`ModelRouter::acquire`],
//! "just in time", as llama-swap does), and an idle model can be unloaded after a while.

use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::budget::Budget;
use crate::engine::{ActivityHook, EngineHandle, EngineSpec, LoadProgress};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    #[error("the model `{name}` does not exist")]
    UnknownModel { name: String },
    #[error("no model is loaded")]
    NoModel,
    #[error("`{model}` is loading; try again when it is done")]
    Busy { model: String },
    #[error("loading `{model}` failed: {reason}")]
    Load { model: String, reason: String },
    /// The machine is lent to something that must run alone (a benchmark).
    #[error("{reason}; models are unloaded until it ends, try again in a few minutes")]
    Paused { reason: String },
}

/// A model ready to serve.
#[derive(Clone)]
pub struct LoadedModel {
    pub id: String,
    pub aliases: Vec<String>,
    pub engine: EngineHandle,
    /// When it was loaded (OpenAI's `created`).
    pub loaded_at: SystemTime,
    /// What the memory budget said it would take, for comparing with what it took.
    pub predicted: Option<Budget>,
    /// The settings it was loaded with.
    pub spec: EngineSpec,
}

/// A load in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Loading {
    pub model: String,
    /// 0.0 to 1.0, as llama.cpp reports reading the weights.
    pub progress: f32,
}

/// What to load.
pub struct LoadRequest {
    pub id: String,
    pub aliases: Vec<String>,
    pub spec: EngineSpec,
    pub predicted: Option<Budget>,
}

/// Turns a name a request used into what to load; `UnknownModel` when nothing by that name
/// is on disk.
pub type Planner = Box<dyn Fn(&str) -> Result<LoadRequest, RouterError> + Send + Sync>;

/// How often a request waits for someone else's load before it gives up.
const MAX_LOAD_WAITS: usize = 3;

pub struct ModelRouter {
    models: RwLock<Vec<LoadedModel>>,
    planner: OnceLock<Planner>,
    /// When a request last started or ended (idle time counts from the end of the last one).
    last_used: Arc<Mutex<Instant>>,
    /// Shared with the load's progress hook.
    loading: Arc<Mutex<Option<Loading>>>,
    last_error: Mutex<Option<String>>,
    /// Why requests are refused and nothing loads, while something runs alone.
    paused: Arc<Mutex<Option<String>>>,
    /// Bumped on every change: models, load progress, engine activity.
    changes: Arc<watch::Sender<u64>>,
}

/// The router held for something that must run alone (see [`ModelRouter::pause`]); dropping
/// it lets requests and loads in again.
pub struct Pause {
    paused: Arc<Mutex<Option<String>>>,
    changes: Arc<watch::Sender<u64>>,
    /// The models that were loaded when the pause began, to load again after it.
    pub unloaded: Vec<String>,
}

impl Drop for Pause {
    fn drop(&mut self) {
        *lock(&self.paused) = None;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Default for ModelRouter {
    fn default() -> Self {
        Self {
            models: RwLock::default(),
            planner: OnceLock::new(),
            last_used: Arc::new(Mutex::new(Instant::now())),
            loading: Arc::default(),
            last_error: Mutex::default(),
            paused: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
        }
    }
}

impl ModelRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves an already loaded engine (tests, tools that load themselves).
    pub fn insert(&self, id: String, aliases: Vec<String>, engine: EngineHandle, spec: EngineSpec) {
        let mut models = write(&self.models);
        models.retain(|m| m.id != id);
        models.push(LoadedModel {
            id,
            aliases,
            engine,
            loaded_at: SystemTime::now(),
            predicted: None,
            spec,
        });
        drop(models);
        self.changed();
    }

    /// Lets requests load models by name (once; later calls are ignored).
    pub fn set_planner(&self, planner: Planner) {
        let _ = self.planner.set(planner);
    }

    /// The model a request named, loaded first if it is on disk but not loaded.
    pub async fn acquire(self: &Arc<Self>, name: Option<&str>) -> Result<LoadedModel, RouterError> {
        for _ in 0..MAX_LOAD_WAITS {
            if let Some(reason) = self.paused() {
                return Err(RouterError::Paused { reason });
            }
            if self.loading().is_some() {
                self.load_finished().await;
            }
            let missing = match self.get(name) {
                Ok(model) => {
                    *lock(&self.last_used) = Instant::now();
                    return Ok(model);
                }
                Err(RouterError::UnknownModel { name }) => name,
                Err(e) => return Err(e),
            };
            let Some(planner) = self.planner.get() else {
                return Err(RouterError::UnknownModel { name: missing });
            };
            let request = planner(&missing)?;
            let router = Arc::clone(self);
            let loaded = tokio::task::spawn_blocking(move || router.load(request))
                .await
                .map_err(|e| RouterError::Load {
                    model: missing.clone(),
                    reason: e.to_string(),
                })?;
            match loaded {
                // Serve this request with it even if another request switches models next.
                Ok(model) => return Ok(model),
                Err(RouterError::Busy { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RouterError::Busy {
            model: self.loading().map_or_else(String::new, |l| l.model),
        })
    }

    /// Unloads the model when no request has used it for `idle` and none is running.
    pub fn unload_if_idle(&self, idle: Duration) -> bool {
        let quiet = lock(&self.last_used).elapsed() >= idle;
        let models = self.list();
        // Two handles are the router's and `models`' own; more are requests on their way.
        let busy = models
            .iter()
            .any(|m| m.engine.activity().busy_slots > 0 || m.engine.handles() > 2);
        if models.is_empty() || !quiet || busy || self.loading().is_some() {
            return false;
        }
        tracing::info!(idle_secs = idle.as_secs(), "unloading the idle model");
        self.unload();
        true
    }

    async fn load_finished(&self) {
        let mut changes = self.subscribe();
        while self.loading().is_some() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Unloads every model and refuses requests and loads until the returned [`Pause`] is
    /// dropped: for work that must have the machine to itself. Refused while a load or a
    /// request runs (so nobody's answer is cut off) or another pause holds.
    pub fn pause(&self, reason: &str) -> Result<Pause, RouterError> {
        let mut paused = lock(&self.paused);
        if let Some(reason) = paused.as_ref() {
            return Err(RouterError::Paused {
                reason: reason.clone(),
            });
        }
        if let Some(current) = self.loading() {
            return Err(RouterError::Busy {
                model: current.model,
            });
        }
        let models = self.list();
        if let Some(m) = models.iter().find(|m| m.engine.activity().busy_slots > 0) {
            return Err(RouterError::Busy {
                model: m.id.clone(),
            });
        }
        *paused = Some(reason.to_string());
        drop(paused);
        self.unload();
        Ok(Pause {
            paused: Arc::clone(&self.paused),
            changes: Arc::clone(&self.changes),
            unloaded: models.into_iter().map(|m| m.id).collect(),
        })
    }

    /// Why requests are refused now, if they are.
    pub fn paused(&self) -> Option<String> {
        lock(&self.paused).clone()
    }

    /// Unloads what is loaded, then loads `request` (blocking: seconds for large models; call
    /// from a blocking task). Refused while another load runs.
    pub fn load(&self, request: LoadRequest) -> Result<LoadedModel, RouterError> {
        if let Some(reason) = self.paused() {
            return Err(RouterError::Paused { reason });
        }
        {
            let mut loading = lock(&self.loading);
            if let Some(current) = loading.as_ref() {
                return Err(RouterError::Busy {
                    model: current.model.clone(),
                });
            }
            *loading = Some(Loading {
                model: request.id.clone(),
                progress: 0.0,
            });
        }
        *lock(&self.last_error) = None;
        write(&self.models).clear();
        self.changed();

        let result = EngineHandle::spawn(self.instrument(request.spec.clone()));
        *lock(&self.loading) = None;
        let outcome = match result {
            Ok(engine) => {
                let model = LoadedModel {
                    id: request.id,
                    aliases: request.aliases,
                    engine,
                    loaded_at: SystemTime::now(),
                    predicted: request.predicted,
                    spec: request.spec,
                };
                write(&self.models).push(model.clone());
                *lock(&self.last_used) = Instant::now();
                Ok(model)
            }
            Err(e) => {
                let error = RouterError::Load {
                    model: request.id,
                    reason: e.to_string(),
                };
                *lock(&self.last_error) = Some(error.to_string());
                Err(error)
            }
        };
        self.changed();
        outcome
    }

    /// Unloads every model (their memory is freed once running requests end).
    pub fn unload(&self) {
        write(&self.models).clear();
        self.changed();
    }

    /// Unloads every model and waits up to `timeout` for their engine threads to end (blocks:
    /// call from a blocking task). Whether they all did; a request still holding a model keeps
    /// its thread going.
    pub fn unload_and_wait(&self, timeout: Duration) -> bool {
        let exits: Vec<_> = write(&self.models)
            .drain(..)
            .map(|m| m.engine.exited())
            .collect();
        self.changed();
        let deadline = Instant::now() + timeout;
        exits
            .iter()
            .all(|e| e.wait(deadline.saturating_duration_since(Instant::now())))
    }

    /// The model a request named, by id or alias. With no name given and one model loaded,
    /// that one (clients that omit `model` mean "whatever is running").
    pub fn get(&self, name: Option<&str>) -> Result<LoadedModel, RouterError> {
        let models = read(&self.models);
        match name {
            Some(name) => models
                .iter()
                .find(|m| m.id == name || m.aliases.iter().any(|a| a == name))
                .cloned()
                .ok_or_else(|| RouterError::UnknownModel {
                    name: name.to_string(),
                }),
            None if models.len() == 1 => Ok(models[0].clone()),
            None => Err(RouterError::NoModel),
        }
    }

    pub fn list(&self) -> Vec<LoadedModel> {
        read(&self.models).clone()
    }

    pub fn loading(&self) -> Option<Loading> {
        lock(&self.loading).clone()
    }

    /// Why the last load failed, until the next one starts.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// A receiver that wakes on every change (its value is only a counter).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The spec with hooks that report progress and activity here (and still to the
    /// caller's own progress hook, e.g. the CLI's progress bar).
    fn instrument(&self, mut spec: EngineSpec) -> EngineSpec {
        let changes = Arc::clone(&self.changes);
        let last_used = Arc::clone(&self.last_used);
        spec.on_activity = Some(ActivityHook(Arc::new(move || {
            *lock(&last_used) = Instant::now();
            changes.send_modify(|n| *n = n.wrapping_add(1));
        })));
        let outer = spec.load_progress.take();
        let changes = Arc::clone(&self.changes);
        let loading = Arc::clone(&self.loading);
        spec.load_progress = Some(LoadProgress(Arc::new(move |p| {
            if let Some(LoadProgress(outer)) = &outer {
                outer(p);
            }
            let mut loading = lock(&loading);
            let Some(current) = loading.as_mut() else {
                return;
            };
            // Announce every 2 %: enough for a smooth bar, few enough events.
            if p - current.progress >= 0.02 || (p >= 1.0 && current.progress < 1.0) {
                current.progress = p.min(1.0);
                drop(loading);
                changes.send_modify(|n| *n = n.wrapping_add(1));
            }
        })));
        spec
    }
}

/// Poisoned locks only mean another thread panicked mid-update of plain data; carry on.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
