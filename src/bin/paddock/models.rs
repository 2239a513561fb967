//! `paddock models` (the library), `paddock models pull` (a download from Hugging Face) and
//! `paddock budget` (one model's memory budget).

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ModelsArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ModelsCommand>,
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
pub(crate) enum ModelsCommand {
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
pub(crate) struct BudgetArgs {
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
pub(crate) struct BudgetFlags {
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

pub(crate) fn list(args: ModelsArgs) -> anyhow::Result<()> {
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

pub(crate) fn budget(args: BudgetArgs) -> anyhow::Result<()> {
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
pub(crate) fn pull(repo: &str, wanted: &str) -> anyhow::Result<()> {
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
