//! A running Paddock: the model loaded, the HTTP server listening. Used by `paddock serve`,
//! by the desktop shell and by the integration tests alike.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::engine::{model_id, EngineHandle};
use crate::error::{Error, Result};
use crate::library::{self, Library};
use crate::router::ModelRouter;
use crate::server::{self, AppState};

pub struct App {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl App {
    /// Loads the model, binds the listener and starts serving. Returns once requests can be
    /// answered. Port 0 picks a free port; `addr()` says which.
    pub async fn start(settings: Settings) -> Result<Self> {
        let spec = settings.engine.clone();
        let engine = tokio::task::spawn_blocking(move || EngineHandle::spawn(spec))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let mut router = ModelRouter::new();
        router.insert(
            model_id(&settings.model_path),
            settings.aliases.clone(),
            engine,
        );
        let state = AppState::new(
            router,
            settings.api_key.clone(),
            settings.listen.ip().is_loopback(),
        )
        .with_library(Library::new(
            Some(&settings.model_path),
            library::budget_settings(&settings.engine),
        ));
        let app = server::router(state, settings.max_body_bytes);
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(listener, app, async {
            let _ = stopped.await;
        }));
        tracing::info!(%addr, "listening");
        Ok(Self {
            addr,
            stop: Some(stop),
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits up to `grace` for open requests and streams to
    /// finish. Returns whether everything finished in time.
    pub async fn stop(mut self, grace: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(grace, &mut self.server).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "requests still open after the grace period; exiting anyway"
                );
                self.server.abort();
                false
            }
        }
    }
}
