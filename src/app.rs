//! A running Paddock: the HTTP server listening, the configured model loaded. Used by `paddock
//! serve`, by the desktop shell and by the integration tests alike. The shell follows the
//! server through [`App::status`] and [`App::changes`], the same status the web UI streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::autostart::Autostart;
use crate::budget::Budget;
use crate::config::Settings;
use crate::engine::model_id;
use crate::engine::rpc::Workers;
use crate::error::{Error, Result};
use crate::library::Entry;
use crate::library::{self, Library};
use crate::router::{LoadRequest, ModelRouter, Remote, RouterError};
use crate::server::{self, Admin, AppState, Choice, Status};

/// How long a stop waits for the engine threads to end once no request holds them: one
/// decode step and freeing the context.
const ENGINE_EXIT: Duration = Duration::from_secs(10);

pub struct App {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

/// What an embedder adds to a plain server.
#[derive(Default)]
pub struct Extras {
    /// Launch at login, shown and changed by the web UI.
    pub autostart: Option<Arc<dyn Autostart>>,
}

impl App {
    /// Binds the listener, loads the model and starts serving. Returns once requests can be
    /// answered. Port 0 picks a free port; `addr()` says which.
    pub async fn start(settings: Settings) -> Result<Self> {
        Self::start_with(settings, Extras::default()).await
    }

    pub async fn start_with(mut settings: Settings, extras: Extras) -> Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        // What the workers have free, for the budget of the model spread over them (it loads
        // in a process of its own, which connects to them).
        let rpc = settings.rpc.clone();
        let workers = tokio::task::spawn_blocking(move || crate::engine::rpc::survey(&rpc))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let mut library = Library::new(
            Some(&settings.model_path),
            library::budget_settings(&settings.engine),
        );
        library.machine.memory_limit = settings.memory_limit;
        let router = Arc::new(ModelRouter::new());
        router.set_machine(library.machine.clone());
        let remote = (!settings.rpc.is_empty()).then(|| Remote {
            workers: settings.rpc.clone(),
            local_share: library::with_workers(&library.machine, &workers).1,
        });
        let first = LoadRequest {
            id: model_id(&settings.model_path),
            aliases: settings.aliases.clone(),
            predicted: predicted(&library, &settings, &workers),
            spec: settings.engine.clone(),
            pinned: settings.pinned,
            idle_unload: settings.idle_unload,
            remote,
        };
        router.set_default(&first.id);
        // The caller's progress hook (a CLI progress bar) is for this first load only.
        settings.engine.load_progress = None;
        let loader = Arc::clone(&router);
        tokio::task::spawn_blocking(move || loader.load(first))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;

        let mut admin = Admin::new(&settings, addr, library);
        admin.autostart = extras.autostart;
        admin.set_workers(workers);
        let admin = Arc::new(admin);
        router.set_planner(server::load_planner(Arc::clone(&admin)));
        tokio::spawn(unload_when_idle(Arc::downgrade(&router)));
        let state = AppState::new(
            router,
            settings.api_key.clone(),
            settings.listen.ip().is_loopback(),
        )
        .with_cors_origins(settings.cors_origins.clone())
        .with_admin(admin);
        let app = server::router(state.clone(), settings.max_body_bytes);
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = server::Limits {
            read_timeout: settings.read_timeout,
            max_connections: server::max_connections(settings.max_connections),
            max_connections_per_client: settings.max_connections_per_client,
        };
        let server = tokio::spawn(server::serve(listener, app, limits, async {
            let _ = stopped.await;
        }));
        tracing::info!(%addr, "listening");
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What is loaded, what it takes, what the server is doing: `GET /api/status`.
    pub fn status(&self) -> Status {
        server::status(&self.state)
    }

    /// Every model on disk with its budget under the current settings (reads every model's
    /// header: call from a blocking task).
    pub fn models(&self) -> Result<Vec<Entry>> {
        let admin = self.state.admin().map_err(admin_error)?;
        Ok(server::library_now(&admin).map_err(admin_error)?.1)
    }

    /// Loads `id` (a model id or alias) beside the loaded models, and remembers it for the
    /// next start: the tray's Model menu.
    pub async fn load(&self, id: &str) -> Result<()> {
        server::load_model(&self.state, Choice::model(id))
            .await
            .map_err(|e| {
                Error::Router(RouterError::Load {
                    model: id.into(),
                    reason: e.message,
                })
            })
    }

    /// Unloads one model (by id or alias); its memory is freed once its requests end.
    pub async fn unload(&self, id: &str) -> Result<()> {
        self.state.router.unload(id).map_err(Error::Router)
    }

    /// Lends this machine to another Paddock as an RPC worker (`Some`), or stops (`None`): the
    /// tray's "Lend this machine". Blocks until the worker listens (call from a blocking task).
    pub fn lend(&self, lend: Option<crate::lend::Lend>) -> Result<()> {
        let admin = self.state.admin().map_err(admin_error)?;
        match lend {
            Some(lend) => admin
                .lending
                .start(lend)
                .map_err(|e| Error::Io(std::io::Error::other(e))),
            None => {
                admin.lending.stop();
                Ok(())
            }
        }
    }

    /// How this machine is lent now, if it is.
    pub fn lending(&self) -> Option<crate::lend::Lend> {
        self.state.admin().ok()?.lending.now()
    }

    /// Wakes on every change of [`App::status`].
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.state.router.subscribe()
    }

    /// Stops accepting connections, waits up to `grace` for open requests and streams to
    /// finish, then unloads the models and waits for their engine threads to free llama.cpp.
    /// Returns whether everything finished in time.
    pub async fn stop(mut self, grace: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.stopping.cancel();
        let drained = match tokio::time::timeout(grace, &mut self.server).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "requests still open after the grace period; exiting anyway"
                );
                self.server.abort();
                false
            }
        };
        let router = Arc::clone(&self.state.router);
        let freed = tokio::task::spawn_blocking(move || router.unload_and_wait(ENGINE_EXIT))
            .await
            .unwrap_or(false);
        if !freed {
            tracing::warn!(timeout = ?ENGINE_EXIT, "an engine thread is still running; exiting anyway");
        }
        drained && freed
    }
}

fn admin_error(e: server::ApiError) -> Error {
    Error::Io(std::io::Error::other(e.message))
}

/// Checks now and then for models idle past their idle time; ends with the router.
async fn unload_when_idle(router: std::sync::Weak<ModelRouter>) {
    loop {
        let every = match router.upgrade() {
            Some(router) => router.shortest_idle_unload(),
            None => return,
        };
        let every = every.map_or(Duration::from_secs(1), |idle| {
            (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
        });
        tokio::time::sleep(every).await;
        let Some(router) = router.upgrade() else {
            return;
        };
        router.unload_idle();
    }
}

/// The budget of the configured model, when the library can read it.
fn predicted(library: &Library, settings: &Settings, workers: &Workers) -> Option<Budget> {
    let id = model_id(&settings.model_path);
    let file = library.files().into_iter().find(|f| f.id == id)?;
    let entry = match settings.rpc.is_empty() {
        true => library.describe_serving(file, &settings.engine),
        false => library.describe_spread(file, &settings.engine, workers),
    };
    entry.budget
}
