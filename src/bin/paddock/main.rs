//! `paddock`: the headless command line. Parses flags, then hands over to the library; one
//! module per command family.

mod bench;
mod models;
mod service;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use paddock::app::Extras;
use paddock::autostart::Autostart;
use paddock::config::{normalize_llama_args, ServeArgs, Settings};
use paddock::engine::LoadProgress;
use paddock::service::{Home, ServiceAutostart};
use paddock::App;

use bench::BenchArgs;
use models::{BudgetArgs, ModelsArgs, ModelsCommand};
use service::ServiceAction;
use worker::WorkerArgs;

#[derive(Parser)]
#[command(
    name = "paddock",
    version,
    about = "An always-on local LLM server for coding agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a model over the OpenAI-compatible HTTP API.
    Serve(ServeArgs),
    /// Measure prompt processing and generation speed, as llama-bench does.
    Bench(BenchArgs),
    /// List the models on disk with what each needs in memory here, before loading any;
    /// `models pull` downloads one from Hugging Face.
    Models(ModelsArgs),
    /// One model's memory budget here (weights, KV cache, compute, headroom, largest context).
    Budget(BudgetArgs),
    /// Lend this machine's GPU (or CPU) to a Paddock on another machine
    /// (`serve --rpc HOST:PORT` there).
    Worker(WorkerArgs),
    /// Run Paddock as a login service: launchd on macOS, systemd --user on Linux.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
}

fn main() -> anyhow::Result<()> {
    paddock::init_logging();
    if let Some(status) = paddock::child_main() {
        std::process::exit(status);
    }
    match Cli::parse_from(normalize_llama_args(std::env::args())).command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
        Command::Models(args) => match args.command {
            Some(ModelsCommand::Pull { repo, file }) => models::pull(&repo, &file),
            None => models::list(args),
        },
        Command::Budget(args) => models::budget(args),
        Command::Worker(args) => worker::run(args),
        Command::Service { action } => service::run(action),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load(&args)?;
    let bar = ProgressBar::new(100).with_style(
        ProgressStyle::with_template("loading {msg} [{bar:30}] {pos}%")
            .context("progress template")?
            .progress_chars("=> "),
    );
    bar.set_message(settings.model_path.display().to_string());
    let shown = bar.clone();
    settings.engine.load_progress = Some(LoadProgress(Arc::new(move |p| {
        shown.set_position((p * 100.0) as u64)
    })));
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    // The web UI's "launch at login" installs the login service with these very flags.
    let autostart = match (service::spec(&settings, "serve"), Home::from_env()) {
        (Ok(spec), Ok(home)) => {
            Some(Arc::new(ServiceAutostart { spec, home }) as Arc<dyn Autostart>)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let app = App::start_with(settings, Extras { autostart }).await?;
        bar.finish_and_clear();
        println!("Paddock is serving on http://{}/v1", app.addr());
        shutdown_signal().await;
        tracing::info!("shutting down: no new requests, letting open ones finish");
        if app.stop(grace).await {
            tracing::info!("stopped: requests finished, models freed");
        }
        Ok(())
    })
}

/// Ctrl-C, or SIGTERM from launchd/systemd.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler only fails outside a Tokio runtime");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
