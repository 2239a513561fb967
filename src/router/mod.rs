//! Which models are loaded and under which names. A request names a model; the router hands
//! back that model's engine, loading it first when it is on disk but not loaded ("just in
//! time", as llama-swap does). Several models can be loaded at once: a load that does not fit
//! beside them first unloads the least recently used idle ones ([`room`]), and each model
//! unloads after its own idle time. Every change is announced on a watch channel (the tray and
//! the web UI's event stream listen). Knows nothing of HTTP.

mod idle;
mod pause;
mod room;

pub use pause::Pause;

use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::budget::{Budget, Machine};
use crate::engine::{ActivityHook, EngineHandle, EngineSpec, LoadProgress};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    #[error("the model `{name}` does not exist")]
    UnknownModel { name: String },
    #[error("no model is loaded")]
    NoModel,
    /// The request named no model and more than one could be meant.
    #[error("several models are loaded ({}); name one in `model`", loaded.join(", "))]
    Ambiguous { loaded: Vec<String> },
    #[error("`{model}` is loading; try again when it is done")]
    Busy { model: String },
    #[error("loading `{model}` failed: {reason}")]
    Load { model: String, reason: String },
    /// The budget says the model does not fit even alone, with these settings.
    #[error("{reason}")]
    TooBig { model: String, reason: String },
    /// Loaded models that cannot be unloaded now (pinned, or serving) leave too little memory.
    #[error(
        "`{model}` does not fit beside the loaded models: {:.2} GiB more memory is needed, and {} cannot be unloaded now; unload one, or load it with a smaller context",
        *short_by as f64 / f64::from(1u32 << 30),
        kept.join(", ")
    )]
    NoRoom {
        model: String,
        short_by: u64,
        /// The models in the way, each with why it stays: `smol (pinned)`, `qwen (in use)`.
        kept: Vec<String>,
    },
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
    /// Never unloaded when idle or to make room for another model.
    pub pinned: bool,
    /// Unloaded after this long without requests.
    pub idle_unload: Option<Duration>,
    /// Spread over RPC workers, from a process of its own.
    pub remote: Option<Remote>,
    /// When a request for it last started or ended (shared with its engine's activity hook).
    last_used: Arc<Mutex<Instant>>,
}

/// A model spread over RPC workers ([`EngineHandle::spawn_hosted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// `host:port` of each worker.
    pub workers: Vec<String>,
    /// The share of its GPU part (`Budget::on_gpu`) held on this machine; llama.cpp splits
    /// offloaded layers by the devices' free memory, so 0 on a machine with no GPU.
    pub local_share: f64,
}

impl LoadedModel {
    /// How long since a request for it last started or ended.
    pub fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Whether a request has it: generating, or holding its engine on the way to a slot. Only
    /// meaningful under the router's write lock, where the list's handle is the only other.
    fn in_use(&self) -> bool {
        self.engine.activity().busy_slots > 0 || self.engine.handles() > 1
    }

    fn answers_to(&self, name: &str) -> bool {
        self.id == name || self.aliases.iter().any(|a| a == name)
    }
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
    pub pinned: bool,
    pub idle_unload: Option<Duration>,
    /// Spread it over RPC workers; `None`: in this process, on this machine only.
    pub remote: Option<Remote>,
}

/// Turns a name a request used into what to load; `UnknownModel` when nothing by that name
/// is on disk.
pub type Planner = Box<dyn Fn(&str) -> Result<LoadRequest, RouterError> + Send + Sync>;

/// How often a request waits for someone else's load before it gives up.
const MAX_LOAD_WAITS: usize = 3;

/// How long a load waits for the models it unloaded to free their memory.
const ENGINE_EXIT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct ModelRouter {
    /// In load order.
    models: RwLock<Vec<LoadedModel>>,
    planner: OnceLock<Planner>,
    /// The memory models share; without it, loads are not checked against each other.
    machine: OnceLock<Machine>,
    /// The model a request that names none gets when several are loaded (the configured one).
    default: Mutex<Option<String>>,
    /// Shared with the load's progress hook.
    loading: Arc<Mutex<Option<Loading>>>,
    last_error: Mutex<Option<String>>,
    /// Why requests are refused and nothing loads, while something runs alone.
    paused: Arc<Mutex<Option<String>>>,
    /// Bumped on every change: models, load progress, engine activity.
    changes: Arc<watch::Sender<u64>>,
}

impl ModelRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves an already loaded engine (tests, tools that load themselves).
    pub fn insert(&self, id: String, aliases: Vec<String>, engine: EngineHandle, spec: EngineSpec) {
        let request = LoadRequest {
            id,
            aliases,
            spec,
            predicted: None,
            pinned: false,
            idle_unload: None,
            remote: None,
        };
        self.add(request, engine, Arc::new(Mutex::new(Instant::now())));
        self.changed();
    }

    /// Lets requests load models by name (once; later calls are ignored).
    pub fn set_planner(&self, planner: Planner) {
        let _ = self.planner.set(planner);
    }

    /// The memory loaded models share, so a load makes room first (once).
    pub fn set_machine(&self, machine: Machine) {
        let _ = self.machine.set(machine);
    }

    /// The model meant by requests that name none, when several are loaded.
    pub fn set_default(&self, id: &str) {
        *lock(&self.default) = Some(id.to_string());
    }

    /// The model a request named, loaded first if it is on disk but not loaded. Naming none
    /// means the one loaded model, else the default one (loaded if need be).
    pub async fn acquire(self: &Arc<Self>, name: Option<&str>) -> Result<LoadedModel, RouterError> {
        for _ in 0..MAX_LOAD_WAITS {
            if let Some(reason) = self.paused() {
                return Err(RouterError::Paused { reason });
            }
            let missing = match self.get(name) {
                Ok(model) => {
                    model.touch();
                    return Ok(model);
                }
                Err(RouterError::UnknownModel { name }) => name,
                Err(RouterError::NoModel) => match lock(&self.default).clone() {
                    Some(default) => default,
                    None => return Err(RouterError::NoModel),
                },
                Err(e) => return Err(e),
            };
            // Someone else's load first: it may be this very model.
            if self.loading().is_some() {
                self.load_finished().await;
                continue;
            }
            if self.planner.get().is_none() {
                return Err(RouterError::UnknownModel { name: missing });
            }
            // Planning reads the model's header and asks llama.cpp for a dry run: off the
            // async threads, with the load.
            let router = Arc::clone(self);
            let name = missing.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let planner = router.planner.get().expect("checked above");
                router.load(planner(&name)?)
            })
            .await
            .map_err(|e| RouterError::Load {
                model: missing.clone(),
                reason: e.to_string(),
            })?;
            match loaded {
                // Serve this request with it even if it is unloaded right after.
                Ok(model) => return Ok(model),
                Err(RouterError::Busy { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RouterError::Busy {
            model: self.loading().map_or_else(String::new, |l| l.model),
        })
    }

    async fn load_finished(&self) {
        let mut changes = self.subscribe();
        while self.loading().is_some() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Loads `request` beside the loaded models, unloading least recently used idle ones
    /// first if memory is short; a model by the same id is replaced. Blocking (seconds for
    /// large models; call from a blocking task). Refused while another load runs.
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
        self.changed();
        let outcome = self.make_room(&request).and_then(|()| self.spawn(request));
        *lock(&self.loading) = None;
        if let Err(e) = &outcome {
            *lock(&self.last_error) = Some(e.to_string());
        }
        self.changed();
        outcome
    }

    fn spawn(&self, request: LoadRequest) -> Result<LoadedModel, RouterError> {
        let last_used = Arc::new(Mutex::new(Instant::now()));
        let spec = self.instrument(request.spec.clone(), Arc::clone(&last_used));
        let engine = match &request.remote {
            None => EngineHandle::spawn(spec),
            Some(remote) => EngineHandle::spawn_hosted(spec, &remote.workers),
        };
        let engine = engine.map_err(|e| RouterError::Load {
            model: request.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(self.add(request, engine, last_used))
    }

    /// Serves `engine` as the model `request` describes, in place of one by the same id.
    fn add(
        &self,
        request: LoadRequest,
        engine: EngineHandle,
        last_used: Arc<Mutex<Instant>>,
    ) -> LoadedModel {
        let model = LoadedModel {
            id: request.id,
            aliases: request.aliases,
            engine,
            loaded_at: SystemTime::now(),
            predicted: request.predicted,
            spec: request.spec,
            pinned: request.pinned,
            idle_unload: request.idle_unload,
            remote: request.remote,
            last_used,
        };
        let mut models = write(&self.models);
        take_models(&mut models, |m| m.id == model.id);
        models.push(model.clone());
        model
    }

    /// Unloads one model, by id or alias (its memory is freed once its running requests end).
    pub fn unload(&self, name: &str) -> Result<(), RouterError> {
        let gone = take_models(&mut write(&self.models), |m| m.answers_to(name));
        if gone.is_empty() {
            return Err(RouterError::UnknownModel { name: name.into() });
        }
        self.changed();
        Ok(())
    }

    /// Unloads every model.
    pub fn unload_all(&self) {
        write(&self.models).clear();
        self.changed();
    }

    /// Unloads every model and waits up to `timeout` for their engine threads to end (blocks:
    /// call from a blocking task). Whether they all did; a request still holding a model keeps
    /// its thread going.
    pub fn unload_and_wait(&self, timeout: Duration) -> bool {
        let gone = take_models(&mut write(&self.models), |_| true);
        self.changed();
        wait_for_exit(gone, timeout)
    }

    /// The model a request named, by id or alias. With no name: the one loaded model, or the
    /// default one when several are (clients that omit `model` mean "whatever is running").
    pub fn get(&self, name: Option<&str>) -> Result<LoadedModel, RouterError> {
        self.drop_lost();
        let models = read(&self.models);
        let found = match name {
            Some(name) => models.iter().find(|m| m.answers_to(name)),
            None if models.len() <= 1 => models.first(),
            None => {
                let default = lock(&self.default).clone();
                let found = default.and_then(|d| models.iter().find(|m| m.id == d));
                if found.is_none() {
                    return Err(RouterError::Ambiguous {
                        loaded: models.iter().map(|m| m.id.clone()).collect(),
                    });
                }
                found
            }
        };
        match (found, name) {
            (Some(m), _) => Ok(m.clone()),
            (None, Some(name)) => Err(RouterError::UnknownModel { name: name.into() }),
            (None, None) => Err(RouterError::NoModel),
        }
    }

    /// The loaded models, in load order. The copies hold their engines: drop them soon, a
    /// held copy counts as a request using the model.
    pub fn list(&self) -> Vec<LoadedModel> {
        self.drop_lost();
        read(&self.models).clone()
    }

    /// The ids of the loaded models, in load order.
    pub fn ids(&self) -> Vec<String> {
        self.drop_lost();
        read(&self.models).iter().map(|m| m.id.clone()).collect()
    }

    /// Reads the loaded models without copying them (the status, shown often).
    pub fn with_models<T>(&self, f: impl FnOnce(&[LoadedModel]) -> T) -> T {
        self.drop_lost();
        f(&read(&self.models))
    }

    /// Takes out the models whose engine ended under them (the process hosting one died:
    /// a worker went away). A request naming one loads it again.
    fn drop_lost(&self) {
        if !read(&self.models).iter().any(|m| m.engine.has_exited()) {
            return;
        }
        let lost = take_models(&mut write(&self.models), |m| m.engine.has_exited());
        if let Some(m) = lost.first() {
            let why = format!(
                "`{}` stopped: its process ended; the next request for it loads it again",
                m.id
            );
            tracing::warn!("{why}");
            *lock(&self.last_error) = Some(why);
            self.changed();
        }
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
    fn instrument(&self, mut spec: EngineSpec, last_used: Arc<Mutex<Instant>>) -> EngineSpec {
        let changes = Arc::clone(&self.changes);
        spec.on_activity = Some(ActivityHook(Arc::new(move |_| {
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

/// Takes the models `which` picks out of the list (unloading them), keeping the others in order.
fn take_models(
    models: &mut Vec<LoadedModel>,
    which: impl Fn(&LoadedModel) -> bool,
) -> Vec<LoadedModel> {
    let (gone, kept) = std::mem::take(models).into_iter().partition(which);
    *models = kept;
    gone
}

/// Waits up to `timeout` for the engine threads of unloaded models to end.
fn wait_for_exit(gone: Vec<LoadedModel>, timeout: Duration) -> bool {
    let exits: Vec<_> = gone.into_iter().map(|m| m.engine.exited()).collect();
    let deadline = Instant::now() + timeout;
    exits
        .iter()
        .all(|e| e.wait(deadline.saturating_duration_since(Instant::now())))
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
