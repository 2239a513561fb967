//! The live status (what is loaded or loading, what it takes, what the server is doing) and
//! its event stream: one `status` event on connect and one on every change.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use tokio_stream::wrappers::WatchStream;

use crate::budget::{Budget, Machine};
use crate::router::LoadedModel;

use super::super::error::ApiError;
use super::super::state::AppState;
use super::{BenchStatus, DownloadStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    NoModel,
    Loading,
    Idle,
    Generating,
    /// The last load failed and nothing is loaded.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Over every model: loading while a load runs, generating while any model is.
    pub state: ServerState,
    /// Every loaded model, in load order.
    pub models: Vec<LoadedStatus>,
    /// The most recently used loaded model (what the tray's status line names).
    pub model: Option<LoadedStatus>,
    pub loading: Option<LoadingStatus>,
    pub error: Option<String>,
    pub memory: Memory,
    pub server: ServerInfo,
    /// Generation tokens/s of the most recently used model's last finished request.
    pub last_tps: Option<f64>,
    /// Share of that request's speculative guesses that were accepted (none if it made none).
    pub last_acceptance: Option<f64>,
    /// Model downloads of this run, newest last.
    pub downloads: Vec<DownloadStatus>,
    /// The running benchmark, or the last one of this run.
    pub bench: Option<BenchStatus>,
    /// Why requests are refused now (a benchmark has the machine).
    pub paused: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub id: String,
    pub path: String,
    pub aliases: Vec<String>,
    pub n_ctx: u32,
    pub n_parallel: u32,
    pub cache_type_k: &'static str,
    pub cache_type_v: &'static str,
    pub flash_attn: String,
    pub loaded_at: u64,
    pub speculation: SpeculationStatus,
}

/// A loaded model: its settings, what it was predicted to take and what it took, and what
/// it is doing.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedStatus {
    #[serde(flatten)]
    pub model: ModelStatus,
    /// Never unloaded when idle or to make room for another model.
    pub pinned: bool,
    pub idle_unload_secs: Option<u64>,
    pub busy_slots: usize,
    /// Seconds since a request for it last started or ended.
    pub idle_secs: u64,
    /// Generation tokens/s of its last finished request.
    pub last_tps: Option<f64>,
    /// Share of its last request's speculative guesses that were accepted.
    pub last_acceptance: Option<f64>,
    /// The budget computed before loading.
    pub predicted: Option<Budget>,
    /// What llama.cpp reports for it.
    pub measured: Measured,
    /// The RPC workers it is spread over (`host:port`), from a process of its own; empty
    /// when it runs in the server's process, on this machine only.
    pub workers: Vec<String>,
}

/// How the loaded model speculates (off for models that cannot drop a rejected guess).
#[derive(Debug, Clone, Serialize)]
pub struct SpeculationStatus {
    /// Guesses from the request's own text.
    pub ngram: bool,
    /// The draft model's id, when one is loaded.
    pub draft_model: Option<String>,
    /// The model's own multi-token-prediction heads guess.
    pub mtp: bool,
    /// Most tokens guessed per step; 0 when speculation is off.
    pub draft_max: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadingStatus {
    pub model: String,
    pub progress: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub machine: Option<Machine>,
    /// This process's resident memory, as the OS counts it (weights paged in, KV caches,
    /// compute buffers, the server itself).
    pub process_resident: Option<u64>,
    /// Devices lent by RPC workers (`serve --rpc`), with the memory they had free at start
    /// (the budget of the model spread over them counts it), and the workers that did not
    /// answer.
    pub workers: crate::engine::rpc::Workers,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// llama.cpp's size of the loaded weights.
    pub weights: u64,
    /// What llama.cpp allocated for the context, from its own accounting.
    pub kv_cache: Option<u64>,
    pub recurrent_state: Option<u64>,
    pub compute: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub url: String,
    pub api_url: String,
    pub lan: bool,
    /// The address other machines use, when serving the LAN.
    pub lan_url: Option<String>,
    pub key_required: bool,
}

/// The status as of now.
pub fn status(state: &AppState) -> Status {
    let router = &state.router;
    let (models, recent) = router.with_models(|ms| {
        let recent = (0..ms.len()).min_by_key(|&i| ms[i].idle_for());
        (ms.iter().map(loaded_status).collect::<Vec<_>>(), recent)
    });
    let model = recent.map(|i| models[i].clone());
    let loading = router.loading();
    let error = router.last_error();
    let server_state = match (models.is_empty(), &loading, &error) {
        (_, Some(_), _) => ServerState::Loading,
        (false, ..) if models.iter().any(|m| m.busy_slots > 0) => ServerState::Generating,
        (false, ..) => ServerState::Idle,
        (true, None, Some(_)) => ServerState::Error,
        (true, None, None) => ServerState::NoModel,
    };
    let listen = state.admin.as_ref().map(|a| a.listen);
    Status {
        state: server_state,
        loading: loading.map(|l| LoadingStatus {
            model: l.model,
            progress: l.progress,
        }),
        error,
        memory: Memory {
            machine: state.admin.as_ref().map(|a| a.library.machine.clone()),
            process_resident: process_resident(),
            workers: state
                .admin
                .as_ref()
                .map(|a| a.workers())
                .unwrap_or_default(),
        },
        server: server_info(listen, state.api_key.is_some()),
        last_tps: model.as_ref().and_then(|m| m.last_tps),
        last_acceptance: model.as_ref().and_then(|m| m.last_acceptance),
        downloads: state
            .admin
            .as_ref()
            .map(|a| a.downloads.list())
            .unwrap_or_default(),
        bench: state.admin.as_ref().and_then(|a| a.bench.status()),
        paused: router.paused(),
        models,
        model,
    }
}

fn loaded_status(m: &LoadedModel) -> LoadedStatus {
    let info = m.engine.info();
    let activity = m.engine.activity();
    LoadedStatus {
        model: model_status(m),
        pinned: m.pinned,
        idle_unload_secs: m.idle_unload.map(|d| d.as_secs()),
        busy_slots: activity.busy_slots,
        idle_secs: m.idle_for().as_secs(),
        last_tps: activity.last_tps,
        last_acceptance: activity.last_acceptance,
        predicted: m.predicted.clone(),
        measured: Measured {
            weights: info.size_bytes,
            kv_cache: info.allocated.map(|a| a.kv_cache),
            recurrent_state: info.allocated.map(|a| a.recurrent_state),
            compute: info.allocated.map(|a| a.compute),
        },
        workers: m
            .remote
            .as_ref()
            .map(|r| r.workers.clone())
            .unwrap_or_default(),
    }
}

fn model_status(m: &LoadedModel) -> ModelStatus {
    let info = m.engine.info();
    ModelStatus {
        id: m.id.clone(),
        path: m.spec.model_path.display().to_string(),
        aliases: m.aliases.clone(),
        n_ctx: info.n_ctx,
        n_parallel: info.n_parallel,
        cache_type_k: m.spec.cache_type_k.name(),
        cache_type_v: m.spec.cache_type_v.name(),
        flash_attn: format!("{:?}", m.spec.flash_attn).to_lowercase(),
        loaded_at: m
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        speculation: {
            let s = &info.speculation;
            SpeculationStatus {
                ngram: s.is_on() && s.ngram,
                draft_model: s
                    .draft_model
                    .as_deref()
                    .filter(|_| s.is_on())
                    .map(crate::engine::model_id),
                mtp: s.is_on() && s.mtp,
                draft_max: if s.is_on() { s.draft_max } else { 0 },
            }
        },
    }
}

fn server_info(listen: Option<SocketAddr>, key_required: bool) -> ServerInfo {
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let lan = !listen.ip().is_loopback();
    // On 0.0.0.0 the browser on this machine still reaches it on loopback.
    let local = if listen.ip().is_unspecified() || !lan {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), listen.port())
    } else {
        listen
    };
    let lan_ip = match listen.ip() {
        ip if ip.is_unspecified() => lan_address(),
        ip if lan => Some(ip),
        _ => None,
    };
    ServerInfo {
        url: format!("http://{local}"),
        api_url: format!("http://{local}/v1"),
        lan,
        lan_url: lan_ip.map(|ip| format!("http://{}/v1", SocketAddr::new(ip, listen.port()))),
        key_required,
    }
}

fn process_resident() -> Option<u64> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let pid = sysinfo::get_current_pid().ok()?;
    let mut system = System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_memory(),
    );
    system.process(pid).map(|p| p.memory())
}

/// This machine's address on the network with the default route (no packet is sent: a UDP
/// "connect" only picks the interface).
fn lan_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// `GET /api/status`.
pub async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(axum::Json(status(&state)).into_response())
}

/// `GET /api/events`: `event: status` with the status JSON, on connect and on every change.
pub async fn events(State(state): State<AppState>) -> Response {
    let mut last = String::new();
    let router = WatchStream::new(state.router.subscribe());
    let changes = match &state.admin {
        Some(admin) => futures::stream::select_all([
            router.boxed(),
            WatchStream::new(admin.downloads.subscribe()).boxed(),
            WatchStream::new(admin.bench.subscribe()).boxed(),
        ])
        .boxed(),
        None => router.boxed(),
    };
    let stopping = state.stopping.clone().cancelled_owned();
    let stream = changes.take_until(stopping).filter_map(move |_| {
        let json = serde_json::to_string(&status(&state)).unwrap_or_default();
        let changed = json != last;
        last.clone_from(&json);
        std::future::ready(
            changed.then(|| Ok::<_, Infallible>(Event::default().event("status").data(json))),
        )
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
