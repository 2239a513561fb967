//! `paddock bench` (llama-bench's tests, with a history) and `paddock bench serve` (a server
//! measured over HTTP).

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use paddock::config::{ServeArgs, Settings};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
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
pub(crate) enum BenchCommand {
    /// Serving benchmark over HTTP: TTFT, inter-token latency and aggregate tokens/s at several
    /// concurrent clients, and an agent loop (warm vs cold TTFT of a growing conversation).
    /// Starts Paddock with the `serve` flags (`-m FILE.gguf ...`), or measures `--url`.
    Serve(Box<BenchServeArgs>),
    /// Print the benchmark history (every run of `paddock bench` and of the web UI).
    History {
        /// md, json or csv.
        #[arg(short = 'o', long = "output", default_value = "md")]
        output: String,
    },
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(BenchCommand::Serve(serve)) = args.command {
        return serve_bench(*serve);
    }
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
    if !settings.rpc.is_empty() {
        // A benchmark over fewer workers than asked would measure something else.
        let workers = paddock::engine::rpc::connect(&settings.rpc)?;
        if let Some(missing) = workers.missing.first() {
            anyhow::bail!("{missing}");
        }
    }
    // An empty list on the command line means "not given".
    let given = |list: Vec<u32>| (!list.is_empty()).then_some(list);
    let plan = paddock::bench::Plan::given(
        given(args.n_prompt),
        given(args.n_gen),
        given(args.n_depth),
        Some(args.reps),
    );
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

#[derive(Args)]
pub(crate) struct BenchServeArgs {
    /// A running OpenAI-compatible server to measure (Paddock, llama-server ...), e.g.
    /// http://127.0.0.1:8080; the serve flags are then ignored. Without it, Paddock is started
    /// here on 127.0.0.1 with the serve flags (`-m FILE.gguf ...`), measured and stopped.
    #[arg(long)]
    url: Option<String>,
    /// The `model` sent in requests (default: the first `/v1/models` lists).
    #[arg(long = "model-name")]
    model_name: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Concurrent client counts, comma-separated; 0 skips the sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    clients: Vec<u32>,
    /// Tokens generated per request (ignore_eos: exactly this many).
    #[arg(short = 'n', long = "max-tokens", default_value_t = 128)]
    max_tokens: u32,
    /// Approximate prompt length in tokens.
    #[arg(short = 'p', long = "prompt-tokens", default_value_t = 512)]
    prompt_tokens: u32,
    /// Waves per client count, and agent conversations.
    #[arg(short = 'r', long, default_value_t = 3)]
    rounds: u32,
    /// Turns of the agent loop (0: skip it).
    #[arg(long, default_value_t = 4)]
    agent_turns: u32,
    /// Approximate tokens each agent turn adds (a tool result).
    #[arg(long, default_value_t = 256)]
    agent_turn_tokens: u32,
    /// Tokens the assistant generates per agent turn.
    #[arg(long, default_value_t = 32)]
    agent_reply_tokens: u32,
    /// Limit on each request, stream included, in seconds.
    #[arg(long = "timeout", default_value_t = 300)]
    timeout_secs: u64,
    /// md, json or csv.
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
}

fn serve_bench(args: BenchServeArgs) -> anyhow::Result<()> {
    use paddock::bench::serve::{self, ServeBenchConfig};
    let cfg = ServeBenchConfig {
        url: args.url.clone().unwrap_or_default(),
        api_key: args.serve.api_key.clone(),
        model: args.model_name,
        clients: args.clients.into_iter().filter(|&c| c > 0).collect(),
        max_tokens: args.max_tokens,
        prompt_tokens: args.prompt_tokens,
        rounds: args.rounds,
        agent_turns: args.agent_turns,
        agent_turn_tokens: args.agent_turn_tokens,
        agent_reply_tokens: args.agent_reply_tokens,
        request_timeout: Duration::from_secs(args.timeout_secs),
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} requests ({elapsed})")
            .context("progress template")?
            .progress_chars("=> "),
    );
    bar.set_message("benchmarking");
    let progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        match args.url {
            Some(_) => serve::run(&cfg, progress).await,
            None => {
                bar.set_message("loading the model, then benchmarking");
                let settings = Settings::load(&args.serve)?;
                serve::run_in_process(settings, &cfg, progress).await
            }
        }
        .map_err(anyhow::Error::from)
    })?;
    bar.finish_and_clear();
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        "csv" => print!("{}", serve::csv(&report)),
        _ => print!("{}", serve::markdown(&report)),
    }
    Ok(())
}
