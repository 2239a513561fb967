//! `paddock worker`: lends this machine's GPU (or CPU) to a Paddock on another machine, which
//! spreads a model's layers over it (`paddock serve --rpc HOST:PORT`). docs/rpc.md.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::{bail, Context};
use clap::Args;
use paddock::engine::rpc;

#[derive(Args)]
pub(crate) struct WorkerArgs {
    /// IPv4 address to listen on. Anything but loopback needs --lan.
    #[arg(long, default_value = "127.0.0.1", env = "PADDOCK_WORKER_HOST")]
    host: Ipv4Addr,
    #[arg(short, long, default_value_t = rpc::DEFAULT_PORT, env = "PADDOCK_WORKER_PORT")]
    port: u16,
    /// Listen beyond loopback. The RPC protocol has no authentication: anyone who can reach
    /// the port can run computations here and read what they send.
    #[arg(long)]
    lan: bool,
    /// Keep tensors this worker is sent on disk, so a model reloads without resending them.
    #[arg(short, long)]
    cache: bool,
    /// CPU threads for computations (default: the physical cores).
    #[arg(short, long)]
    threads: Option<usize>,
    /// With --lan, do not advertise this worker on the local network (mDNS
    /// `_paddock-rpc._tcp`, which the server's web UI lists).
    #[arg(long)]
    no_advertise: bool,
}

pub(crate) fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if !args.host.is_loopback() && !args.lan {
        bail!(
            "listening on {} lets other machines use this one, and the RPC protocol has no \
             authentication: pass --lan to do so on a network you trust",
            args.host
        );
    }
    if !args.host.is_loopback() {
        tracing::warn!(
            "listening on {}: anyone who can reach port {} can run computations on this \
             machine and read the model and prompts sent to it; use only on a trusted network",
            args.host,
            args.port
        );
    }
    let cache = match args.cache {
        true => {
            let dir = paddock::config::paths::rpc_cache_dir()
                .context("no cache directory on this platform")?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Some(dir)
        }
        false => None,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| paddock::config::default_threads().max(1) as usize);
    let addr = SocketAddrV4::new(args.host, args.port);
    // Only a worker others can reach is worth announcing; kept for as long as it serves.
    let _advert = match args.lan && !args.no_advertise {
        true => {
            let (free, total) = rpc::lent_memory()?;
            paddock::discovery::Advert::start(addr, free, total)
                .map_err(|e| tracing::warn!("not advertised on the local network: {e}"))
                .ok()
        }
        false => None,
    };
    rpc::serve_worker(addr, cache.as_deref(), threads)?;
    Ok(())
}
