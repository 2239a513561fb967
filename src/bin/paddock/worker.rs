//! `paddock worker`: lends this machine's GPU (or CPU) to a Paddock on another machine, which
//! spreads a model's layers over it (`paddock serve --rpc HOST:PORT`). docs/rpc.md.

use std::net::Ipv4Addr;

use clap::Args;
use paddock::engine::rpc;
use paddock::lend::Lend;

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
    let lend = Lend {
        host: args.host,
        port: args.port,
        lan: args.lan,
        cache: args.cache,
        threads: args.threads,
        advertise: !args.no_advertise,
    };
    paddock::lend::serve(&lend).map_err(anyhow::Error::msg)
}
