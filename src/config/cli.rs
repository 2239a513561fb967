//! `paddock serve` flags. Spellings follow llama-server so a user can paste the arguments of
//! their launchd plist; each flag also has a `PADDOCK_*` environment variable where useful.

use std::path::PathBuf;

use clap::Args;

use super::raw::{RawEngine, RawModel, RawServer, RawSettings};

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Config file (default: paddock.toml in the platform config directory, if it exists).
    #[arg(long, env = "PADDOCK_CONFIG")]
    pub config: Option<PathBuf>,
    /// GGUF model file to serve.
    #[arg(short = 'm', long, env = "PADDOCK_MODEL")]
    pub model: Option<PathBuf>,
    /// Extra name for the model in the API (repeatable).
    #[arg(short = 'a', long)]
    pub alias: Vec<String>,
    /// Address to bind; anything but loopback needs an API key.
    #[arg(long, env = "PADDOCK_HOST")]
    pub host: Option<String>,
    #[arg(long, env = "PADDOCK_PORT")]
    pub port: Option<u16>,
    /// Clients must send it as `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
    #[arg(long, env = "PADDOCK_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Bind beyond loopback without an API key (anyone on the network may use the server).
    #[arg(long)]
    pub allow_lan_without_key: bool,
    /// Total context in tokens, shared by all slots; 0 = the model's trained context.
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<u32>,
    /// Number of slots: requests served at the same time.
    #[arg(long = "parallel", alias = "n-parallel")]
    pub parallel: Option<u32>,
    #[arg(short = 't', long)]
    pub threads: Option<i32>,
    #[arg(long = "threads-batch", alias = "tb")]
    pub threads_batch: Option<i32>,
    #[arg(short = 'b', long = "batch-size")]
    pub batch_size: Option<u32>,
    #[arg(long = "ubatch-size", alias = "ub")]
    pub ubatch_size: Option<u32>,
    #[arg(long = "n-gpu-layers", alias = "ngl", alias = "gpu-layers")]
    pub n_gpu_layers: Option<u32>,
    /// on, off or auto.
    #[arg(long = "flash-attn", alias = "fa")]
    pub flash_attn: Option<String>,
    #[arg(long = "cache-type-k", alias = "ctk")]
    pub cache_type_k: Option<String>,
    #[arg(long = "cache-type-v", alias = "ctv")]
    pub cache_type_v: Option<String>,
    /// Keep the model in RAM (no paging out).
    #[arg(long)]
    pub mlock: bool,
    /// When a slot's context is full, drop its older half and go on (off: finish with `length`).
    #[arg(long)]
    pub context_shift: bool,
    /// Seconds a client has to send a request's headers, and again its body (default 30).
    #[arg(long = "timeout", alias = "read-timeout")]
    pub read_timeout_secs: Option<u64>,
    /// Most client connections open at once; more wait until one closes (default 1024).
    #[arg(long)]
    pub max_connections: Option<u32>,
    /// Of those, most one client address may hold; more from it get 429 (default 256).
    #[arg(long)]
    pub max_connections_per_client: Option<u32>,
    /// Most requests waiting for a slot before new ones get 503.
    #[arg(long)]
    pub max_queue: Option<usize>,
    /// Do not guess tokens from earlier text of the request (n-gram lookup, on by default).
    #[arg(long)]
    pub no_spec_ngram: bool,
    /// Do not guess with the model's own multi-token-prediction heads (on where the model has
    /// them and runs one slot).
    #[arg(long)]
    pub no_spec_mtp: bool,
    /// Draft model for speculative decoding: smaller, with the same vocabulary.
    #[arg(long = "model-draft", alias = "spec-draft-model")]
    pub model_draft: Option<PathBuf>,
    /// Most tokens guessed per step (0: no speculative decoding).
    #[arg(long = "draft-max", alias = "spec-draft-n-max", alias = "draft")]
    pub draft_max: Option<u32>,
    /// Fewer guesses than this are not verified.
    #[arg(long = "draft-min", alias = "spec-draft-n-min")]
    pub draft_min: Option<u32>,
    /// The draft model stops guessing below this probability.
    #[arg(long = "draft-p-min", alias = "spec-draft-p-min")]
    pub draft_p_min: Option<f32>,
    /// Temperature for requests that give none (0: greedy); the model's own default otherwise.
    #[arg(long = "temp", alias = "temperature")]
    pub temp: Option<f32>,
    /// Top-k for requests that give none (0: off).
    #[arg(long)]
    pub top_k: Option<i32>,
    /// Top-p for requests that give none (1: off).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Min-p for requests that give none (0: off).
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Repeat penalty for requests that give none (1: off).
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// Unload the model after this many seconds without requests; the next request loads it
    /// again (0: never).
    #[arg(long)]
    pub idle_unload_secs: Option<u64>,
    /// Most memory the loaded models may take together, in MiB (default: what the machine
    /// has, less the OS reserve); loading past it unloads idle models first.
    #[arg(long)]
    pub memory_limit_mib: Option<u64>,
    /// Spread the model over these `paddock worker`s too: host:port,host:port (docs/rpc.md).
    #[arg(long, value_delimiter = ',')]
    pub rpc: Vec<String>,
    /// Accepted for llama-server compatibility: templates are always Jinja.
    #[arg(long, hide = true)]
    pub jinja: bool,
}

/// llama.cpp's tools spell some long options with one dash (`-ngl 99`, `-np 2`); clap reads
/// those as bundles of short flags. Rewrites them to their `--` form before parsing.
pub fn normalize_llama_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    const ONE_DASH: &[(&str, &str)] = &[
        ("-ngl", "--n-gpu-layers"),
        ("-np", "--parallel"),
        ("-fa", "--flash-attn"),
        ("-ctk", "--cache-type-k"),
        ("-ctv", "--cache-type-v"),
        ("-ub", "--ubatch-size"),
        ("-tb", "--threads-batch"),
        ("-md", "--model-draft"),
        ("-to", "--timeout"),
    ];
    args.into_iter()
        .map(|a| match ONE_DASH.iter().find(|(short, _)| *short == a) {
            Some((_, long)) => long.to_string(),
            None => a,
        })
        .collect()
}

impl ServeArgs {
    /// Flags the user gave, as raw settings (unset flags stay `None` so the file can fill them).
    pub fn to_raw(&self) -> RawSettings {
        let flag = |set: bool| set.then_some(true);
        RawSettings {
            server: RawServer {
                host: self.host.clone(),
                port: self.port,
                api_key: self.api_key.clone(),
                allow_lan_without_key: flag(self.allow_lan_without_key),
                max_body_mib: None,
                shutdown_grace_secs: None,
                read_timeout_secs: self.read_timeout_secs,
                max_connections: self.max_connections,
                max_connections_per_client: self.max_connections_per_client,
                cors_origins: None,
                idle_unload_secs: self.idle_unload_secs,
                memory_limit_mib: self.memory_limit_mib,
                rpc: (!self.rpc.is_empty()).then(|| self.rpc.clone()),
            },
            model: RawModel {
                path: self.model.clone(),
                alias: (!self.alias.is_empty()).then(|| self.alias.clone()),
            },
            engine: RawEngine {
                ctx_size: self.ctx_size,
                parallel: self.parallel,
                threads: self.threads,
                threads_batch: self.threads_batch,
                batch_size: self.batch_size,
                ubatch_size: self.ubatch_size,
                n_gpu_layers: self.n_gpu_layers,
                flash_attn: self.flash_attn.clone(),
                cache_type_k: self.cache_type_k.clone(),
                cache_type_v: self.cache_type_v.clone(),
                mlock: flag(self.mlock),
                context_shift: flag(self.context_shift),
                max_queue: self.max_queue,
                spec_ngram: self.no_spec_ngram.then_some(false),
                spec_mtp: self.no_spec_mtp.then_some(false),
                model_draft: self.model_draft.clone(),
                draft_max: self.draft_max,
                draft_min: self.draft_min,
                draft_p_min: self.draft_p_min,
                temp: self.temp,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
            },
            models: Default::default(),
        }
    }
}
