//! Lending this machine to another Paddock as an RPC worker: `paddock worker`, or the app's
//! toggle, which runs the same in a child process so that a client crashing the worker (the
//! protocol has no authentication) cannot take the app down. docs/rpc.md.

use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::rpc;

/// The first argument of a process started to lend this machine.
pub const LEND_ARG: &str = "__lend";

/// How to lend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lend {
    /// IPv4 address to listen on; anything but loopback needs `lan`.
    pub host: Ipv4Addr,
    pub port: u16,
    /// Listen beyond loopback, knowing anyone who reaches the port can use this machine.
    pub lan: bool,
    /// Keep tensors sent here on disk, so a model reloads without resending them.
    pub cache: bool,
    /// CPU threads for computations (`None`: the physical cores).
    pub threads: Option<usize>,
    /// With `lan`, announce the worker on the local network (mDNS).
    pub advertise: bool,
}

impl Default for Lend {
    fn default() -> Self {
        Self {
            host: Ipv4Addr::LOCALHOST,
            port: rpc::DEFAULT_PORT,
            lan: false,
            cache: false,
            threads: None,
            advertise: true,
        }
    }
}

impl Lend {
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.host, self.port)
    }

    /// The rule that keeps a worker off the network unless asked.
    pub fn check(&self) -> Result<(), String> {
        if !self.host.is_loopback() && !self.lan {
            return Err(format!(
                "listening on {} lets other machines use this one, and the RPC protocol has no \
                 authentication: pass --lan to do so on a network you trust",
                self.host
            ));
        }
        Ok(())
    }
}

/// Lends this machine until the worker fails (blocks for the life of the process).
pub fn serve(lend: &Lend) -> Result<(), String> {
    lend.check()?;
    if !lend.host.is_loopback() {
        tracing::warn!(
            "listening on {}: anyone who can reach port {} can run computations on this \
             machine and read the model and prompts sent to it; use only on a trusted network",
            lend.host,
            lend.port
        );
    }
    let cache = match lend.cache {
        true => {
            let dir = crate::config::paths::rpc_cache_dir()
                .ok_or("no cache directory on this platform")?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            Some(dir)
        }
        false => None,
    };
    let threads = lend
        .threads
        .unwrap_or_else(|| crate::config::default_threads().max(1) as usize);
    // Only a worker others can reach is worth announcing; kept for as long as it serves.
    let _advert = match lend.lan && lend.advertise {
        true => {
            let (free, total) = rpc::lent_memory().map_err(|e| e.to_string())?;
            crate::discovery::Advert::start(lend.addr(), free, total)
                .map_err(|e| tracing::warn!("not advertised on the local network: {e}"))
                .ok()
        }
        false => None,
    };
    rpc::serve_worker(lend.addr(), cache.as_deref(), threads).map_err(|e| e.to_string())
}

/// In a process started with [`LEND_ARG`]: lends as its second argument (JSON) says.
pub(crate) fn child_main() -> i32 {
    let lend = std::env::args()
        .nth(2)
        .ok_or_else(|| "what to lend is missing".to_string())
        .and_then(|json| serde_json::from_str::<Lend>(&json).map_err(|e| e.to_string()));
    match lend.and_then(|lend| serve(&lend)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("cannot lend this machine: {e}");
            1
        }
    }
}

/// The worker a running server or app lends, in a child process.
#[derive(Default)]
pub struct Lending {
    worker: Mutex<Option<(Child, Lend)>>,
}

impl Lending {
    /// Starts lending (stopping a worker lent before); returns once it listens.
    pub fn start(&self, lend: Lend) -> Result<(), String> {
        lend.check()?;
        self.stop();
        // Anything already listening there would pass for the worker below.
        drop(
            std::net::TcpListener::bind(lend.addr())
                .map_err(|e| format!("cannot listen on {}: {e}", lend.addr()))?,
        );
        let mut child = Command::new(crate::engine::hosted::child_program()?)
            .arg(LEND_ARG)
            .arg(serde_json::to_string(&lend).map_err(|e| e.to_string())?)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let reach = SocketAddrV4::new(
            if lend.host.is_unspecified() {
                Ipv4Addr::LOCALHOST
            } else {
                lend.host
            },
            lend.port,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        // A connection that sends nothing is served and closed at once.
        while TcpStream::connect_timeout(&reach.into(), Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the worker stopped ({status}); is port {} taken?",
                    lend.port
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the worker did not listen on {reach} within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracing::info!(addr = %lend.addr(), lan = lend.lan, "lending this machine");
        *self.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some((child, lend));
        Ok(())
    }

    /// Stops lending (nothing if not lending).
    pub fn stop(&self) {
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((mut child, lend)) = worker {
            // Its mDNS advert then expires with its record's time to live.
            let _ = child.kill();
            let _ = child.wait();
            tracing::info!(addr = %lend.addr(), "stopped lending this machine");
        }
    }

    /// How this machine is lent now; `None` when not, or when the worker has died.
    pub fn now(&self) -> Option<Lend> {
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        let alive = matches!(worker.as_mut().map(|(c, _)| c.try_wait()), Some(Ok(None)));
        if !alive {
            *worker = None;
        }
        worker.as_ref().map(|(_, lend)| lend.clone())
    }
}

impl Drop for Lending {
    fn drop(&mut self) {
        self.stop();
    }
}
