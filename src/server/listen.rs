//! The accept loop. axum's own `serve` sets no read timeouts, so a client could hold a
//! connection and a task for ever by sending its headers or body a byte at a time (slowloris);
//! this one gives every request `read_timeout` for its headers and again for its body, and
//! closes keep-alive connections idle that long. It also keeps at most `max_connections` open:
//! past that, new ones wait in the OS's queue until one closes, so a flood of connections
//! cannot take the file descriptors that model files, downloads and logs need. One client
//! address may hold `max_connections_per_client` of them; more from it are answered 429.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Router};
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::Layer as _;

/// What the accept loop allows each client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's headers, and again for its body; idle keep-alive connections close.
    pub read_timeout: Duration,
    pub max_connections: usize,
    /// Of those, how many one client address may hold.
    pub max_connections_per_client: usize,
}

/// On every request of a connection past its client's share: `Some(the share)`. The guard
/// answers those with 429.
#[derive(Debug, Clone, Copy)]
pub struct ClientOverLimit(pub Option<usize>);

/// Open connections by client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of `ip`, given back when dropped.
struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.open();
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            ip,
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.read_timeout,
        body_deadline,
    ));
    let connections = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let (mut full, mut client_full) = (Throttled::default(), Throttled::default());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        if open.available_permits() == 0 && full.due() {
            tracing::warn!(
                max_connections = limits.max_connections,
                "every connection is in use: new ones wait until one closes"
            );
        }
        let slot = tokio::select! {
            slot = Arc::clone(&open).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait for connections to close
                    // rather than spin (as axum::serve does).
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // SSE tokens go out one small write at a time.
        let _ = stream.set_nodelay(true);
        // Past its client's share the connection still gets an answer, the guard's 429 in the
        // API's shape, and is closed after it.
        let client = clients.take(peer.ip(), limits.max_connections_per_client);
        if client.is_none() && client_full.due() {
            tracing::warn!(
                client = %peer.ip(),
                max_connections_per_client = limits.max_connections_per_client,
                "a client has all the connections it may open: more from it get 429"
            );
        }
        let over = client
            .is_none()
            .then_some(limits.max_connections_per_client);
        // The client's address for handlers (`ConnectInfo`: the key lock-out counts by it).
        let app =
            Extension(ClientOverLimit(over)).layer(Extension(ConnectInfo(peer)).layer(app.clone()));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.read_timeout)
            .keep_alive(over.is_none())
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((slot, client));
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// A warning a server that stays at a connection limit gives once a minute, not per connection.
#[derive(Default)]
struct Throttled(Option<Instant>);

impl Throttled {
    /// True at most once a minute; then the minute starts again.
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|t| t.elapsed() > Duration::from_secs(60));
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

/// The body must arrive within `timeout` of the headers, whatever its pace.
async fn body_deadline(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    let req = req.map(|body| {
        Body::new(Deadline {
            body,
            timeout,
            expires: Box::pin(tokio::time::sleep(timeout)),
        })
    });
    next.run(req).await
}

/// What reading a body past its deadline fails with; the JSON extractor answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

struct Deadline {
    body: Body,
    timeout: Duration,
    expires: Pin<Box<Sleep>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.expires.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
