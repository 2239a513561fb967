//! The library's server inside the app: one control task owns `paddock::App` and runs the
//! tray's commands in order, so a click during a model load waits for the load instead of racing it.
//!
//! ```text
//! Stopped -> Starting -> Running -> Stopping -> Stopped
//!               |
//!               +-> Failed (bad config, model load or bind error; Start tries again)
//! ```
//!
//! While it runs, the server may lend this machine to another Paddock as an RPC worker (the
//! tray's "Lend this machine", the web UI's Workers page); stopping it stops lending.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use paddock::app::Extras;
use paddock::autostart::Autostart;
use paddock::budget::Fit;
use paddock::config::{ServeArgs, Settings};
use paddock::engine::LoadProgress;
use paddock::lend::Lend;
use paddock::server::Status;
use paddock::App;
use tokio::sync::{mpsc, oneshot, watch};

/// Served when neither flags, environment nor config file name a model: the small model that
/// `scripts/run.sh` fetches, looked up in `models/` beside the executable, then in the working dir.
const FALLBACK_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Debug, Clone)]
pub enum Phase {
    Stopped,
    /// The configured model is loading; how far, 0 to 1.
    Starting {
        progress: f32,
    },
    /// Serving; the library's status (the web UI's `/api/status`) as of the last change.
    Running(Box<Status>),
    Stopping,
    Failed(String),
}

impl Phase {
    pub fn status(&self) -> Option<&Status> {
        match self {
            Phase::Running(status) => Some(status),
            _ => None,
        }
    }
}

/// The web UI, for the window (the server's own address as this machine reaches it).
pub fn ui_url(status: &Status) -> String {
    format!("{}/", status.server.url)
}

/// The OpenAI base URL agents are given: the network address when serving the LAN.
pub fn api_url(status: &Status) -> &str {
    status
        .server
        .lan_url
        .as_deref()
        .unwrap_or(&status.server.api_url)
}

/// This machine lent as an RPC worker, as the tray shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lending {
    /// Where the worker listens (`127.0.0.1:50052`) while lent.
    pub endpoint: Option<String>,
    /// Why the last try from the tray failed.
    pub error: Option<String>,
}

/// How often lending is looked at while serving: the web UI may turn it on or off, and the
/// worker may die.
const LENDING_POLL: Duration = Duration::from_secs(2);

/// One model of the library, as the Model menu lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    pub id: String,
    /// Loaded now (several models may be).
    pub loaded: bool,
    /// The budget's verdict under the current settings: "fits", "tight", "too big".
    pub fit: &'static str,
}

enum Command {
    Start,
    /// Load this model beside the loaded ones, or unload it if it is loaded.
    Toggle(String),
    /// Lend this machine on loopback (the default port), or stop if it is lent.
    ToggleLend,
    /// Stop (letting open requests finish), then answer on `done` if given.
    Stop(Option<oneshot::Sender<()>>),
}

/// Managed Tauri state: commands in, phase out. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    commands: mpsc::UnboundedSender<Command>,
    phase: watch::Receiver<Phase>,
    models: watch::Receiver<Vec<ModelChoice>>,
    lending: watch::Receiver<Lending>,
}

impl Server {
    /// Starts the control task on Tauri's runtime; the server itself starts on `start()`.
    /// `autostart` is the login item, which the web UI shows and changes too.
    pub fn spawn(args: ServeArgs, autostart: Arc<dyn Autostart>) -> Self {
        let (commands, inbox) = mpsc::unbounded_channel();
        let (phase_tx, phase) = watch::channel(Phase::Stopped);
        let (models_tx, models) = watch::channel(Vec::new());
        let (lending_tx, lending) = watch::channel(Lending::default());
        let outputs = Outputs {
            phase: Arc::new(phase_tx),
            models: models_tx,
            lending: lending_tx,
        };
        tauri::async_runtime::spawn(control(args, autostart, inbox, outputs));
        Self {
            commands,
            phase,
            models,
            lending,
        }
    }

    /// Lends this machine as an RPC worker on loopback (`Lend::default()`), or stops lending
    /// when it is lent (by the tray or the web UI): the tray's "Lend this machine". Decided
    /// when the command runs.
    pub fn toggle_lend(&self) {
        let _ = self.commands.send(Command::ToggleLend);
    }

    /// Whether and where this machine is lent, for the tray.
    pub fn lending(&self) -> watch::Receiver<Lending> {
        self.lending.clone()
    }

    /// Loads `id` beside the loaded models (and remembers it for the next start), or unloads
    /// it when it is loaded: what choosing it in the Model menu does. Decided when the command
    /// runs, on the status as it is then.
    pub fn toggle(&self, id: &str) {
        let _ = self.commands.send(Command::Toggle(id.to_string()));
    }

    /// The library as the Model menu shows it, refreshed on start and whenever the set of
    /// loaded models changes (the menu, the web UI, a request's own load, idle unloading).
    pub fn models(&self) -> watch::Receiver<Vec<ModelChoice>> {
        self.models.clone()
    }

    pub fn start(&self) {
        let _ = self.commands.send(Command::Start);
    }

    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop(None));
    }

    /// Stops the server and returns once open requests have finished (or the grace period ran out).
    pub async fn stop_and_wait(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Stop(Some(done))).is_ok() {
            let _ = stopped.await;
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    /// Changes of phase, for the tray.
    pub fn watch(&self) -> watch::Receiver<Phase> {
        self.phase.clone()
    }
}

struct Running {
    app: App,
    grace: Duration,
    changes: watch::Receiver<u64>,
    /// The loaded models the Model menu was last built with.
    loaded: Vec<String>,
}

impl Running {
    /// Passes the status on, and the library when the loaded models changed (or `always`).
    fn publish(&mut self, outputs: &Outputs, always: bool) {
        let status = self.app.status();
        let loaded = loaded_ids(&status);
        outputs.phase.send_replace(Phase::Running(Box::new(status)));
        if always || loaded != self.loaded {
            outputs.models.send_replace(model_choices(&self.app));
            self.loaded = loaded;
        }
    }
}

/// The loaded models' ids, in load order.
fn loaded_ids(status: &Status) -> Vec<String> {
    status.models.iter().map(|m| m.model.id.clone()).collect()
}

/// What the control task tells the tray.
struct Outputs {
    phase: Arc<watch::Sender<Phase>>,
    models: watch::Sender<Vec<ModelChoice>>,
    lending: watch::Sender<Lending>,
}

impl Outputs {
    /// Passes on where the app lends this machine now, if that changed; an error stays shown
    /// until lending starts.
    fn follow_lending(&self, app: &App) {
        let endpoint = app.lending().map(|l| l.addr().to_string());
        self.lending.send_if_modified(|shown| {
            if shown.endpoint == endpoint {
                return false;
            }
            if endpoint.is_some() {
                shown.error = None;
            }
            shown.endpoint = endpoint;
            true
        });
    }
}

/// Lends this machine (`Some`) or stops (`None`). `App::lend` blocks until the worker listens
/// (a second at most, normally); the control task runs commands in order, so it waits here.
fn lend(app: &App, lend: Option<Lend>) -> paddock::Result<()> {
    tokio::task::block_in_place(|| app.lend(lend))
}

async fn control(
    args: ServeArgs,
    autostart: Arc<dyn Autostart>,
    mut inbox: mpsc::UnboundedReceiver<Command>,
    outputs: Outputs,
) {
    let phase = &outputs.phase;
    let mut running: Option<Running> = None;
    let mut lending_poll = tokio::time::interval(LENDING_POLL);
    lending_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let command = match running.as_mut() {
            // While serving, every change of the library's status is passed on.
            Some(r) => tokio::select! {
                command = inbox.recv() => command,
                Ok(()) = r.changes.changed() => {
                    r.publish(&outputs, false);
                    continue;
                }
                _ = lending_poll.tick() => {
                    outputs.follow_lending(&r.app);
                    continue;
                }
            },
            None => inbox.recv().await,
        };
        let Some(command) = command else { break };
        match command {
            Command::Start if running.is_none() => {
                phase.send_replace(Phase::Starting { progress: 0.0 });
                match start(&args, &autostart, phase).await {
                    Ok((app, grace)) => {
                        let changes = app.changes();
                        let status = app.status();
                        let loaded = loaded_ids(&status);
                        phase.send_replace(Phase::Running(Box::new(status)));
                        outputs.models.send_replace(model_choices(&app));
                        running = Some(Running {
                            app,
                            grace,
                            changes,
                            loaded,
                        });
                    }
                    Err(message) => {
                        tracing::error!("server did not start: {message}");
                        phase.send_replace(Phase::Failed(message));
                    }
                }
            }
            Command::Start => {}
            Command::Toggle(id) => {
                let Some(r) = running.as_mut() else { continue };
                if loaded_ids(&r.app.status()).contains(&id) {
                    if let Err(e) = r.app.unload(&id).await {
                        tracing::error!("unloading {id} failed: {e}");
                    }
                } else {
                    // Keep passing the status on while it loads: the menu shows the progress.
                    let load = r.app.load(&id);
                    tokio::pin!(load);
                    loop {
                        tokio::select! {
                            result = &mut load => {
                                if let Err(e) = result {
                                    tracing::error!("loading {id} failed: {e}");
                                }
                                break;
                            }
                            Ok(()) = r.changes.changed() => {
                                phase.send_replace(Phase::Running(Box::new(r.app.status())));
                            }
                        }
                    }
                }
                // Even a failed load, which changes nothing that is loaded, rebuilds the menu:
                // the click toggled the item's check mark.
                r.publish(&outputs, true);
            }
            Command::ToggleLend => {
                let Some(r) = running.as_ref() else {
                    // Only lent while serving; the click toggled the check mark: undo it.
                    outputs.lending.send_replace(Lending::default());
                    continue;
                };
                let choice = r.app.lending().is_none().then(Lend::default);
                let error = lend(&r.app, choice).err().map(|e| {
                    tracing::error!("lending this machine: {e}");
                    e.to_string()
                });
                outputs.lending.send_replace(Lending {
                    endpoint: r.app.lending().map(|l| l.addr().to_string()),
                    error,
                });
            }
            Command::Stop(done) => {
                if let Some(Running { app, grace, .. }) = running.take() {
                    phase.send_replace(Phase::Stopping);
                    // The worker is a child process: it must not outlive the server.
                    if let Err(e) = lend(&app, None) {
                        tracing::warn!("stopping lending: {e}");
                    }
                    outputs.lending.send_replace(Lending::default());
                    // Stopping waits for the engine thread to free the model, so a restart
                    // or a quit never overlaps the old context.
                    let clean = app.stop(grace).await;
                    tracing::info!(clean, "server stopped");
                }
                phase.send_replace(Phase::Stopped);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The library for the Model menu (reads model headers: quick for local files).
fn model_choices(app: &App) -> Vec<ModelChoice> {
    let loaded = loaded_ids(&app.status());
    let entries = app.models().unwrap_or_else(|e| {
        tracing::warn!("cannot list the models: {e}");
        Vec::new()
    });
    entries
        .into_iter()
        .filter(|e| e.error.is_none())
        .map(|e| ModelChoice {
            loaded: loaded.contains(&e.id),
            fit: match e.budget.map(|b| b.fits) {
                Some(Fit::Fits) => "fits",
                Some(Fit::Tight) => "tight",
                Some(Fit::DoesNotFit { .. }) => "too big",
                None => "unknown size",
            },
            id: e.id,
        })
        .collect()
}

async fn start(
    args: &ServeArgs,
    autostart: &Arc<dyn Autostart>,
    phase: &Arc<watch::Sender<Phase>>,
) -> Result<(App, Duration), String> {
    let mut settings = settings(args).map_err(|e| e.to_string())?;
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let loading = Arc::clone(phase);
    settings.engine.load_progress = Some(LoadProgress(Arc::new(move |progress| {
        loading.send_if_modified(|phase| match phase {
            // Whole percents: enough for the menu, few enough redraws.
            Phase::Starting { progress: shown } if (progress - *shown).abs() >= 0.01 => {
                *shown = progress;
                true
            }
            _ => false,
        });
    })));
    let extras = Extras {
        autostart: Some(Arc::clone(autostart)),
    };
    let app = App::start_with(settings, extras)
        .await
        .map_err(|e| e.to_string())?;
    Ok((app, grace))
}

/// The config as `paddock serve` reads it; when it names no model, the fallback model if present.
fn settings(args: &ServeArgs) -> Result<Settings, paddock::config::ConfigError> {
    let first = Settings::load(args);
    // Every other setting is checked regardless of the model, so retrying with the fallback
    // can only succeed when the missing model was the one problem.
    match (&first, &args.model, fallback_model(&search_dirs())) {
        (Err(_), None, Some(model)) => Settings::load(&ServeArgs {
            model: Some(model),
            ..args.clone()
        }),
        _ => first,
    }
}

fn search_dirs() -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    exe_dir
        .into_iter()
        .chain(std::env::current_dir().ok())
        .collect()
}

fn fallback_model(dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|dir| dir.join(FALLBACK_MODEL))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_model_is_found_in_the_first_dir_that_has_it() {
        let root = std::env::temp_dir().join(format!("paddock-app-test-{}", std::process::id()));
        let (empty, full) = (root.join("empty"), root.join("full"));
        std::fs::create_dir_all(full.join("models")).unwrap();
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(full.join(FALLBACK_MODEL), b"GGUF").unwrap();
        assert_eq!(
            fallback_model(&[empty.clone(), full.clone()]),
            Some(full.join(FALLBACK_MODEL))
        );
        assert_eq!(fallback_model(&[empty]), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
