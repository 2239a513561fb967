//! Configuration: the TOML file, `PADDOCK_*` environment variables and flags, resolved into
//! validated [`Settings`]. Precedence: flag > environment > file > default.

mod cli;
mod decoding;
pub mod paths;
mod raw;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use cli::{normalize_llama_args, ServeArgs};
pub use raw::{RawEngine, RawModel, RawModelSettings, RawServer, RawSettings};

use crate::engine::{EngineSpec, FlashAttn, KvType};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Resolved settings for `paddock serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub api_key: Option<String>,
    pub max_body_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// Other sites whose pages may call the model APIs.
    pub cors_origins: Vec<String>,
    /// How long a client may take to send a request's headers, and then its body.
    pub read_timeout: std::time::Duration,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Of those, most one client address may hold.
    pub max_connections_per_client: usize,
    /// Unload the model after this long without requests.
    pub idle_unload: Option<std::time::Duration>,
    /// Keep the model loaded: never unloaded when idle or to make room for another.
    pub pinned: bool,
    /// RPC workers (`host:port`) models are spread over.
    pub rpc: Vec<String>,
    /// Most memory the loaded models may take together, in bytes.
    pub memory_limit: Option<u64>,
    pub model_path: PathBuf,
    pub aliases: Vec<String>,
    pub engine: EngineSpec,
    /// The settings as given (file merged with flags), kept so what-if budgets and later
    /// loads are resolved by the same rules.
    pub raw: RawSettings,
    /// The file settings are saved to: the one given, else the default location.
    pub config_file: Option<PathBuf>,
    /// Where benchmark runs are kept ([`paths::bench_history_file`]).
    pub bench_history: Option<PathBuf>,
}

pub const DEFAULT_PORT: u16 = 8080;

impl Settings {
    /// Reads the config file (the given one, else the default one if it exists) and applies
    /// the command line over it.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let config_file = args.config.clone().or_else(paths::config_file);
        let file = match &config_file {
            Some(path) if path.is_file() => read_file(path)?,
            Some(path) if args.config.is_some() => {
                // Saving settings (web UI) creates it; until then the defaults apply.
                tracing::warn!(path = %path.display(), "config file does not exist yet; using defaults");
                RawSettings::default()
            }
            _ => RawSettings::default(),
        };
        let mut settings = Self::resolve(file.merge(args.to_raw()))?;
        settings.config_file = config_file;
        Ok(settings)
    }

    /// Fills defaults and checks every value; errors name the setting and say what is allowed.
    pub fn resolve(raw: RawSettings) -> Result<Self, ConfigError> {
        let given = raw.clone();
        let invalid = |m: String| ConfigError::Invalid(m);
        let host = raw.server.host.unwrap_or_else(|| "127.0.0.1".into());
        let ip: IpAddr = host.parse().map_err(|_| {
            invalid(format!(
                "host must be an IP address such as 127.0.0.1 or 0.0.0.0, not {host:?}"
            ))
        })?;
        let api_key = raw.server.api_key.filter(|k| !k.is_empty());
        if !ip.is_loopback()
            && api_key.is_none()
            && !raw.server.allow_lan_without_key.unwrap_or(false)
        {
            return Err(invalid(format!(
                "binding to {ip} exposes the server to the network: set an API key (--api-key or \
                 PADDOCK_API_KEY), or pass --allow-lan-without-key to serve without one"
            )));
        }
        let model_path = raw.model.path.ok_or_else(|| {
            invalid(
                "no model: pass --model FILE.gguf or set [model] path in the config file".into(),
            )
        })?;
        let aliases = given.aliases(&crate::engine::model_id(&model_path));
        // The model's own `[models."<id>"]` table goes over `[engine]`.
        let own = raw
            .models
            .get(&crate::engine::model_id(&model_path))
            .cloned()
            .unwrap_or_default();
        let e = raw.engine.merge(own.engine);
        let parallel = e.parallel.unwrap_or(2);
        if !(1..=256).contains(&parallel) {
            return Err(invalid(format!(
                "parallel must be 1 to 256, not {parallel}"
            )));
        }
        let batch = e.batch_size.unwrap_or(2048);
        let ubatch = e.ubatch_size.unwrap_or(512);
        if batch < parallel || ubatch == 0 {
            return Err(invalid(format!(
                "batch-size ({batch}) must be at least parallel ({parallel}) and ubatch-size above 0"
            )));
        }
        let threads = e.threads.unwrap_or_else(default_threads);
        if threads < 1 {
            return Err(invalid(format!("threads must be 1 or more, not {threads}")));
        }
        let flash_attn: FlashAttn = e
            .flash_attn
            .as_deref()
            .unwrap_or("auto")
            .parse()
            .map_err(invalid)?;
        let cache_type_k: KvType = e
            .cache_type_k
            .as_deref()
            .unwrap_or("f16")
            .parse()
            .map_err(invalid)?;
        let cache_type_v: KvType = e
            .cache_type_v
            .as_deref()
            .unwrap_or("f16")
            .parse()
            .map_err(invalid)?;
        if cache_type_v.is_quantized() && flash_attn == FlashAttn::Off {
            return Err(invalid(format!(
                "cache-type-v {cache_type_v} needs flash attention: use --flash-attn on or auto"
            )));
        }
        let speculation = decoding::speculation(&e).map_err(invalid)?;
        let sampling = decoding::sampling(&e).map_err(invalid)?;
        let rpc = raw.server.rpc.clone().unwrap_or_default();
        if let Some(bad) = rpc.iter().find(|w| !crate::engine::rpc::is_endpoint(w)) {
            return Err(invalid(format!(
                "rpc workers are host:port, such as 192.168.1.20:50052, not {bad:?}"
            )));
        }
        Ok(Settings {
            listen: SocketAddr::new(ip, raw.server.port.unwrap_or(DEFAULT_PORT)),
            api_key,
            max_body_bytes: raw.server.max_body_mib.unwrap_or(32) as usize * 1024 * 1024,
            shutdown_grace_secs: raw.server.shutdown_grace_secs.unwrap_or(30),
            cors_origins: raw.server.cors_origins.clone().unwrap_or_default(),
            read_timeout: std::time::Duration::from_secs(
                raw.server.read_timeout_secs.unwrap_or(30).max(1),
            ),
            max_connections: raw.server.max_connections.unwrap_or(1024).max(1) as usize,
            max_connections_per_client: raw.server.max_connections_per_client.unwrap_or(256).max(1)
                as usize,
            idle_unload: own
                .idle_unload_secs
                .or(raw.server.idle_unload_secs)
                .filter(|&s| s > 0)
                .map(std::time::Duration::from_secs),
            pinned: own.pin.unwrap_or(false),
            memory_limit: raw
                .server
                .memory_limit_mib
                .filter(|&mib| mib > 0)
                .map(|mib| mib.saturating_mul(1 << 20)),
            rpc,
            aliases,
            engine: EngineSpec {
                model_path: model_path.clone(),
                n_ctx: e.ctx_size.unwrap_or(4096),
                n_parallel: parallel,
                n_threads: threads,
                n_threads_batch: e.threads_batch.unwrap_or(threads),
                n_batch: batch,
                n_ubatch: ubatch,
                n_gpu_layers: e.n_gpu_layers.unwrap_or(99),
                flash_attn,
                cache_type_k,
                cache_type_v,
                mlock: e.mlock.unwrap_or(false),
                context_shift: e.context_shift.unwrap_or(false),
                max_queue: e.max_queue.unwrap_or(64),
                speculation,
                sampling,
                load_progress: None,
                on_activity: None,
            },
            model_path,
            raw: given,
            config_file: None,
            bench_history: paths::bench_history_file(),
        })
    }
}

/// Writes a config file, creating its folder; the file is replaced whole (written beside,
/// then renamed), so a crash never leaves half a file.
pub fn write_file(path: &Path, raw: &RawSettings) -> Result<(), ConfigError> {
    let text = toml::to_string_pretty(raw).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    // Private: the file may hold the API key.
    crate::private_file::write(path, text.as_bytes()).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a config file.
pub fn read_file(path: &Path) -> Result<RawSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Physical cores, as llama.cpp's own tools default to; hyperthreads slow matrix code down.
pub fn default_threads() -> i32 {
    let cores = sysinfo::System::physical_core_count()
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(4);
    i32::try_from(cores).unwrap_or(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_config_file_with_the_key_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::test_util::TempDir::new("config-private");
        let path = dir.path().join("sub/paddock.toml");
        let mut raw = RawSettings::default();
        raw.server.api_key = Some("secret".into());
        write_file(&path, &raw).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            read_file(&path).unwrap().server.api_key.as_deref(),
            Some("secret")
        );
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file stays behind");
    }

    fn with_model(mut raw: RawSettings) -> RawSettings {
        raw.model.path.get_or_insert_with(|| "m.gguf".into());
        raw
    }

    #[test]
    fn defaults_are_llama_server_like_and_loopback() {
        let s = Settings::resolve(with_model(RawSettings::default())).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.engine.n_parallel, 2);
        assert_eq!(s.engine.n_ctx, 4096);
        assert_eq!(s.engine.flash_attn, FlashAttn::Auto);
    }

    #[test]
    fn lan_needs_a_key_unless_the_user_opts_out() {
        let mut raw = with_model(RawSettings::default());
        raw.server.host = Some("0.0.0.0".into());
        let err = Settings::resolve(raw.clone()).unwrap_err().to_string();
        assert!(err.contains("API key"), "{err}");
        raw.server.api_key = Some("k".into());
        assert!(Settings::resolve(raw.clone()).is_ok());
        raw.server.api_key = None;
        raw.server.allow_lan_without_key = Some(true);
        assert!(Settings::resolve(raw).is_ok());
    }

    #[test]
    fn rpc_workers_come_from_the_file_or_the_flag_and_must_be_host_and_port() {
        let file: RawSettings = toml::from_str("[server]\nrpc = [\"10.0.0.2:50052\"]\n").unwrap();
        let s = Settings::resolve(with_model(file.clone())).unwrap();
        assert_eq!(s.rpc, ["10.0.0.2:50052"]);
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let flags = <Serve as clap::Parser>::parse_from(["serve", "--rpc", "a:1,b:2"]);
        let s = Settings::resolve(with_model(file.merge(flags.args.to_raw()))).unwrap();
        assert_eq!(s.rpc, ["a:1", "b:2"]);
        for bad in ["10.0.0.2", "host:port", ":50052"] {
            let mut raw = with_model(RawSettings::default());
            raw.server.rpc = Some(vec![bad.into()]);
            let err = Settings::resolve(raw).unwrap_err().to_string();
            assert!(err.contains("rpc workers are host:port"), "{err}");
        }
    }

    #[test]
    fn mtp_heads_are_on_unless_the_file_or_a_flag_says_off() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mtp = |raw: RawSettings| {
            Settings::resolve(with_model(raw))
                .unwrap()
                .engine
                .speculation
                .mtp
        };
        assert!(mtp(RawSettings::default()));
        let file: RawSettings = toml::from_str("[engine]\nspec_mtp = false\n").unwrap();
        assert!(!mtp(file));
        let flags = <Serve as clap::Parser>::parse_from(["serve", "--no-spec-mtp"]);
        assert!(!mtp(RawSettings::default().merge(flags.args.to_raw())));
    }

    #[test]
    fn flags_override_the_file() {
        let file: RawSettings =
            toml::from_str("[server]\nport = 9000\n[engine]\nparallel = 4\nctx_size = 8192\n")
                .unwrap();
        let args = ServeArgs {
            parallel: Some(3),
            model: Some("x.gguf".into()),
            ..Default::default()
        };
        let s = Settings::resolve(file.merge(args.to_raw())).unwrap();
        assert_eq!(
            (s.listen.port(), s.engine.n_parallel, s.engine.n_ctx),
            (9000, 3, 8192)
        );
    }

    #[test]
    fn a_model_table_sets_its_own_engine_settings_and_aliases() {
        let file: RawSettings = toml::from_str(
            "[engine]\nctx_size = 4096\nparallel = 2\n\
             [models.\"Qwen3.6-35B-A3B-Q4_K_M\"]\nalias = [\"qwen-35b-fast\"]\nctx_size = 131072\ncache_type_k = \"q8_0\"\n",
        )
        .unwrap();
        let id = file.model_for_alias("qwen-35b-fast").unwrap();
        assert_eq!(id, "Qwen3.6-35B-A3B-Q4_K_M");
        let served = |path: &str| {
            let mut raw = file.clone();
            raw.model.path = Some(path.into());
            Settings::resolve(raw).unwrap()
        };
        let qwen = served("/m/Qwen3.6-35B-A3B-Q4_K_M.gguf");
        assert_eq!((qwen.engine.n_ctx, qwen.engine.n_parallel), (131072, 2));
        assert_eq!(qwen.engine.cache_type_k, KvType::Q8_0);
        assert_eq!(qwen.aliases, ["qwen-35b-fast"]);
        assert_eq!(served("/m/other.gguf").engine.n_ctx, 4096);
        assert!(toml::from_str::<RawSettings>("[models.x]\nctx = 1\n").is_err());
        // Written back, the table reads the same.
        let again: RawSettings = toml::from_str(&toml::to_string(&file).unwrap()).unwrap();
        assert_eq!(again, file);
    }

    #[test]
    fn models_can_be_pinned_and_keep_their_own_idle_time() {
        let file: RawSettings = toml::from_str(
            "[server]\nidle_unload_secs = 600\nmemory_limit_mib = 8192\n\
             [models.a]\npin = true\n[models.b]\nidle_unload_secs = 0\n",
        )
        .unwrap();
        let served = |path: &str| {
            let mut raw = file.clone();
            raw.model.path = Some(path.into());
            Settings::resolve(raw).unwrap()
        };
        let secs = |s: &Settings| s.idle_unload.map(|d| d.as_secs());
        let (a, b, c) = (
            served("/m/a.gguf"),
            served("/m/b.gguf"),
            served("/m/c.gguf"),
        );
        assert_eq!((a.pinned, secs(&a)), (true, Some(600)));
        assert_eq!((b.pinned, secs(&b)), (false, None), "0 means never");
        assert_eq!((c.pinned, secs(&c)), (false, Some(600)));
        assert_eq!(a.memory_limit, Some(8 << 30));
        let wrong = toml::from_str::<RawSettings>("[models.a]\npin = \"yes\"\n").unwrap_err();
        assert!(wrong.to_string().contains("pin"), "{wrong}");
    }

    #[test]
    fn llama_server_one_dash_flags_are_understood() {
        let args = normalize_llama_args(
            ["paddock", "-ngl", "99", "-np", "2", "-c", "8192"].map(String::from),
        );
        assert_eq!(
            args,
            [
                "paddock",
                "--n-gpu-layers",
                "99",
                "--parallel",
                "2",
                "-c",
                "8192"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_setting_named() {
        assert!(toml::from_str::<RawSettings>("[engine]\nctx = 1\n").is_err());
        let mut raw = with_model(RawSettings::default());
        raw.engine.cache_type_v = Some("q8_0".into());
        raw.engine.flash_attn = Some("off".into());
        assert!(Settings::resolve(raw)
            .unwrap_err()
            .to_string()
            .contains("flash attention"));
        let mut raw = with_model(RawSettings::default());
        raw.engine.cache_type_k = Some("q9".into());
        assert!(Settings::resolve(raw)
            .unwrap_err()
            .to_string()
            .contains("cache type"));
    }
}
