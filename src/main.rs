//! `paddock`: the headless command line. Parses flags, then hands over to the library.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use paddock::app::Extras;
use paddock::autostart::Autostart;
use paddock::config::{normalize_llama_args, ServeArgs, Settings};
use paddock::engine::LoadProgress;
use paddock::service::{self, Backend, Home, ServiceAutostart, ServiceSpec};
use paddock::App;

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
    /// Run Paddock as a login service: launchd on macOS, systemd --user on Linux.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
}

#[derive(Subcommand)]
enum ServiceAction {
    /// Write the service file and start it, serving with these `serve` flags
    /// (`--config FILE`, or `-m FILE.gguf -c 8192 ...`).
    Install(Box<ServeArgs>),
    /// Stop the service and remove its file.
    Uninstall,
    /// Whether the service file exists and what launchd/systemd say about it.
    Status,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ModelsArgs {
    #[command(subcommand)]
    command: Option<ModelsCommand>,
    /// Another folder to look in (repeatable); Paddock's own, Hugging Face's and LM Studio's
    /// folders are always read.
    #[arg(long = "dir")]
    dirs: Vec<std::path::PathBuf>,
    #[command(flatten)]
    budget: BudgetFlags,
    /// md or json.
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download a GGUF model from Hugging Face into Paddock's models folder (resumes a `.part`,
    /// checks sha256). Endpoint: PADDOCK_HF_ENDPOINT or HF_ENDPOINT; token: HF_TOKEN.
    Pull {
        /// owner/name on the hub.
        repo: String,
        /// A model id or file name as the repo lists it, or a quant tag such as Q4_K_M.
        file: String,
    },
}

#[derive(Args)]
struct BudgetArgs {
    /// A GGUF file, or a model id from `paddock models`.
    model: String,
    #[command(flatten)]
    budget: BudgetFlags,
    /// md or json.
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
}

/// The settings a budget is for.
#[derive(Args)]
struct BudgetFlags {
    /// Context (tokens, shared by the slots).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    ctx_size: u32,
    /// Slots.
    #[arg(long = "parallel", default_value_t = 2)]
    parallel: u32,
    /// KV cache types (f16, q8_0, q4_0 ...).
    #[arg(long = "cache-type-k", default_value = "f16")]
    cache_type_k: String,
    #[arg(long = "cache-type-v", default_value = "f16")]
    cache_type_v: String,
    /// Layers on the GPU (-ngl).
    #[arg(long = "n-gpu-layers", default_value_t = paddock::library::default_budget_settings().n_gpu_layers)]
    n_gpu_layers: i32,
}

impl BudgetFlags {
    fn settings(&self) -> anyhow::Result<paddock::budget::Settings> {
        let kv = |name: &str| {
            serde_json::from_value(serde_json::Value::from(name))
                .with_context(|| format!("unknown KV cache type {name:?}"))
        };
        Ok(paddock::budget::Settings {
            n_ctx: self.ctx_size,
            n_parallel: self.parallel,
            cache_type_k: kv(&self.cache_type_k)?,
            cache_type_v: kv(&self.cache_type_v)?,
            n_gpu_layers: self.n_gpu_layers,
            ..paddock::library::default_budget_settings()
        })
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Prompt sizes to test (pp), comma-separated or repeated
    /// [default: 512,1024,...,65536, capped at the model's trained context].
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',')]
    n_prompt: Vec<u32>,
    /// Generation lengths to test (tg) [default: 128,256,512,1024].
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',')]
    n_gen: Vec<u32>,
    /// Tokens already in the context before each test [default: 0].
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',')]
    n_depth: Vec<u32>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = paddock::bench::Plan::default().repetitions)]
    reps: u32,
    /// md, json or csv.
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
    /// Do not add the run to the benchmark history.
    #[arg(long)]
    no_history: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Print the benchmark history (every run of `paddock bench` and of the web UI).
    History {
        /// md, json or csv.
        #[arg(short = 'o', long = "output", default_value = "md")]
        output: String,
    },
}

fn main() -> anyhow::Result<()> {
    paddock::init_logging();
    match Cli::parse_from(normalize_llama_args(std::env::args())).command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench(args),
        Command::Models(args) => match args.command {
            Some(ModelsCommand::Pull { repo, file }) => pull(&repo, &file),
            None => models(args),
        },
        Command::Budget(args) => budget(args),
        Command::Service { action } => service(action),
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
    let autostart = match (service_spec(&settings, "serve"), Home::from_env()) {
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
        app.stop(grace).await;
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

fn models(args: ModelsArgs) -> anyhow::Result<()> {
    let mut library = paddock::library::Library::new(None, args.budget.settings()?);
    for dir in args.dirs {
        library
            .folders
            .insert(0, (dir, paddock::catalog::Source::UserFolder));
    }
    let entries = library.scan();
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&entries)?),
        _ => print!("{}", paddock::library::markdown(&entries, &library.machine)),
    }
    Ok(())
}

fn budget(args: BudgetArgs) -> anyhow::Result<()> {
    let library = paddock::library::Library::new(None, args.budget.settings()?);
    let report =
        paddock::library::Report::new(&library, &args.model).map_err(anyhow::Error::msg)?;
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print!("{}", report.markdown()),
    }
    Ok(())
}

/// `paddock models pull`: Ctrl-C stops between chunks and keeps the `.part` for the next run.
fn pull(repo: &str, wanted: &str) -> anyhow::Result<()> {
    use paddock::catalog::download::{self, DownloadError};
    let dest = paddock::config::paths::models_dir().context("no data directory for models")?;
    let hub = download::Hub::from_env()?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {prefix}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    let shown = bar.clone();
    let report = move |p: download::Progress| {
        shown.set_length(p.total_bytes);
        shown.set_position(p.done_bytes);
        shown.set_message(p.file);
        let left = p.total_bytes.saturating_sub(p.done_bytes);
        if let Some(secs) = left.checked_div(p.bytes_per_sec) {
            let eta = Duration::from_secs(secs);
            shown.set_prefix(format!(
                "{}/s, ETA {}",
                indicatif::HumanBytes(p.bytes_per_sec),
                indicatif::HumanDuration(eta)
            ));
        }
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let result = tokio::runtime::Runtime::new()?.block_on(async {
        let stop = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        });
        download::pull(&hub, repo, wanted, &dest, report, &cancel).await
    });
    bar.finish_and_clear();
    match result {
        Ok((_, paths)) => paths.iter().for_each(|p| println!("{}", p.display())),
        Err(DownloadError::Cancelled) => {
            eprintln!("interrupted: the partial file stays; run the same command to resume");
            std::process::exit(130);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let history = paddock::config::paths::bench_history_file()
        .map(paddock::bench::History::new)
        .context("no data directory for the benchmark history")?;
    if let Some(BenchCommand::History { output }) = &args.command {
        let runs = history.list()?;
        match output.as_str() {
            "json" => println!("{}", serde_json::to_string_pretty(&runs)?),
            "csv" => print!("{}", paddock::bench::csv(&runs)),
            _ => runs
                .iter()
                .for_each(|r| println!("{}", paddock::bench::markdown(r))),
        }
        return Ok(());
    }
    let settings = Settings::load(&args.serve)?;
    let defaults = paddock::bench::Plan::default();
    let or_default = |given: &[u32], default: Vec<u32>| {
        if given.is_empty() {
            default
        } else {
            given.to_vec()
        }
    };
    let plan = paddock::bench::Plan {
        n_prompt: or_default(&args.n_prompt, defaults.n_prompt),
        n_gen: or_default(&args.n_gen, defaults.n_gen),
        n_depth: or_default(&args.n_depth, defaults.n_depth),
        repetitions: args.reps,
    };
    let library = paddock::library::Library::new(
        Some(&settings.model_path),
        paddock::library::budget_settings(&settings.engine),
    );
    let file = paddock::library::Library::file_at(&settings.model_path);
    let job = paddock::bench::prepare(&library, file, settings.engine.clone(), plan)?;
    for warning in &job.warnings {
        eprintln!("warning: {warning}");
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} benchmarking {msg} [{bar:30}] {pos}/{len} runs ({elapsed})",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let run = paddock::bench::run(job, |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(p.current.clone().unwrap_or_default());
        true
    })?;
    bar.finish_and_clear();
    if !args.no_history {
        history
            .append(&run)
            .with_context(|| format!("cannot add to the history {}", history.path().display()))?;
    }
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&run)?),
        "csv" => print!("{}", paddock::bench::csv(std::slice::from_ref(&run))),
        _ => print!("{}", paddock::bench::markdown(&run)),
    }
    Ok(())
}

fn service(action: ServiceAction) -> anyhow::Result<()> {
    let home = Home::from_env()?;
    match action {
        ServiceAction::Install(serve) => {
            // Refuse settings that would only crash-loop under the manager; learn the grace.
            let settings = Settings::load(&serve)?;
            println!(
                "{}",
                service::install(&service_spec(&settings, "install")?, &home)?
            );
        }
        ServiceAction::Uninstall => println!("{}", service::uninstall(&home)?),
        ServiceAction::Status => println!("{}", service::status(&home)?),
    }
    Ok(())
}

/// A login service that serves with the flags typed after `after` on this command line
/// (clap has checked them), relative paths made absolute: the manager starts it elsewhere.
fn service_spec(settings: &Settings, after: &str) -> anyhow::Result<ServiceSpec> {
    let backend = Backend::current()?;
    let home = Home::from_env()?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let argv = normalize_llama_args(std::env::args());
    let start = argv
        .iter()
        .position(|a| a == after)
        .map_or(argv.len(), |i| i + 1);
    let mut args = vec!["serve".to_string()];
    args.extend(service::absolute_paths(
        &argv[start..],
        &["--config", "--model", "-m"],
        &cwd,
    ));
    // launchd and systemd read no shell profile: keep the PADDOCK_* variables the settings
    // were checked with (the file is mode 0600, as they may hold the API key).
    let env = std::env::vars()
        .filter(|(name, _)| name.starts_with("PADDOCK_"))
        .map(|(name, value)| match name.as_str() {
            "PADDOCK_CONFIG" | "PADDOCK_MODEL" => {
                let value = service::absolute(&value, &cwd);
                (name, value)
            }
            _ => (name, value),
        })
        .collect();
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the path of the paddock binary")?;
    Ok(ServiceSpec {
        exe,
        args,
        log_dir: backend.default_log_dir(&home),
        env,
        shutdown_grace_secs: settings.shutdown_grace_secs,
    })
}
