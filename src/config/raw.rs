//! Settings as given, before defaults and validation: the TOML file and the command line each
//! produce a `RawSettings` with every field optional; the command line's win where both set one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The config file's schema (`paddock.toml`). Sections group settings by what they configure;
/// `[models."<id>"]` tables hold one model's own engine settings and aliases.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub model: RawModel,
    #[serde(default)]
    pub engine: RawEngine,
    /// Per model, by id (the file name without `.gguf`): settings over `[engine]` when that
    /// model loads, and the names clients may use for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, RawModelSettings>,
}

/// Read through a table so `RawEngine` refuses unknown keys (serde's `flatten` would let
/// them through unnoticed).
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "toml::Table")]
pub struct RawModelSettings {
    /// Names that load and reach this model (`qwen-35b-fast`), besides its id.
    pub alias: Option<Vec<String>>,
    /// Keep it loaded: never unloaded when idle or to make room for another model.
    pub pin: Option<bool>,
    /// Its own idle time before unloading, over `[server] idle_unload_secs` (0: never).
    pub idle_unload_secs: Option<u64>,
    #[serde(flatten)]
    pub engine: RawEngine,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Required to bind beyond loopback (unless `allow_lan_without_key`).
    pub api_key: Option<String>,
    /// Serve the LAN without an API key. Anyone on the network can use the server.
    pub allow_lan_without_key: Option<bool>,
    /// Largest request body accepted, in MiB.
    pub max_body_mib: Option<u32>,
    /// Seconds to let open streams finish after SIGTERM/Ctrl-C before exiting anyway.
    pub shutdown_grace_secs: Option<u64>,
    /// Origins (`https://app.example`) whose pages may call the model APIs from a browser;
    /// `"*"` for any. Never the admin API.
    pub cors_origins: Option<Vec<String>>,
    /// Seconds a client has to send a request's headers, and again its body; an idle
    /// keep-alive connection is closed after as long.
    pub read_timeout_secs: Option<u64>,
    /// Most client connections open at once; more wait (in the OS's queue) until one closes.
    pub max_connections: Option<u32>,
    /// Of those, most one client address may hold; more from it are answered 429.
    pub max_connections_per_client: Option<u32>,
    /// Unload a model after this many seconds without requests (0 or unset: never); a
    /// `[models."<id>"]` table may set its own.
    pub idle_unload_secs: Option<u64>,
    /// Most memory the loaded models may take together, in MiB (unset: what the machine
    /// has, less the OS reserve).
    pub memory_limit_mib: Option<u64>,
    /// `paddock worker`s (`host:port`) whose devices every model is spread over, with the
    /// local ones (llama-server's `--rpc`).
    pub rpc: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// GGUF file to serve.
    pub path: Option<PathBuf>,
    /// Extra names clients may use for it (the file stem is always accepted).
    pub alias: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEngine {
    pub ctx_size: Option<u32>,
    pub parallel: Option<u32>,
    pub threads: Option<i32>,
    pub threads_batch: Option<i32>,
    pub batch_size: Option<u32>,
    pub ubatch_size: Option<u32>,
    pub n_gpu_layers: Option<u32>,
    pub flash_attn: Option<String>,
    pub cache_type_k: Option<String>,
    pub cache_type_v: Option<String>,
    pub mlock: Option<bool>,
    pub context_shift: Option<bool>,
    pub max_queue: Option<usize>,
    /// Guess tokens from earlier text of the request (on unless set to false).
    pub spec_ngram: Option<bool>,
    /// A smaller model with the same vocabulary that guesses tokens.
    pub model_draft: Option<PathBuf>,
    /// Guess with the model's own MTP heads where it has them (on unless set to false).
    pub spec_mtp: Option<bool>,
    pub draft_max: Option<u32>,
    pub draft_min: Option<u32>,
    pub draft_p_min: Option<f32>,
    /// Sampling for requests that give none, over the model's own defaults.
    pub temp: Option<f32>,
    pub top_k: Option<i32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
}

/// `a.or(b)` field by field: values in `over` replace those in `base`.
macro_rules! merge_fields {
    ($base:expr, $over:expr; $($field:ident),*) => {
        $( if $over.$field.is_some() { $base.$field = $over.$field; } )*
    };
}

impl RawSettings {
    pub fn merge(mut self, over: RawSettings) -> RawSettings {
        merge_fields!(self.server, over.server; host, port, api_key, allow_lan_without_key, max_body_mib, shutdown_grace_secs, read_timeout_secs, max_connections, max_connections_per_client, idle_unload_secs, memory_limit_mib, cors_origins, rpc);
        merge_fields!(self.model, over.model; path, alias);
        self.engine = self.engine.merge(over.engine);
        for (id, model) in over.models {
            let mine = self.models.entry(id).or_default();
            merge_fields!(mine, model; alias, pin, idle_unload_secs);
            mine.engine = std::mem::take(&mut mine.engine).merge(model.engine);
        }
        self
    }

    /// The names a model answers to besides its id: the `[model]` aliases when it is the
    /// configured model, then those of its `[models."<id>"]` table.
    pub fn aliases(&self, id: &str) -> Vec<String> {
        let configured = self.model.path.as_deref().map(crate::engine::model_id);
        let main = (configured.as_deref() == Some(id)).then_some(&self.model.alias);
        let own = self.models.get(id).map(|m| &m.alias);
        main.into_iter()
            .chain(own)
            .flatten()
            .flatten()
            .cloned()
            .collect()
    }

    /// The model id an alias in a `[models]` table names.
    pub fn model_for_alias(&self, name: &str) -> Option<&str> {
        self.models
            .iter()
            .find(|(_, m)| m.alias.iter().flatten().any(|a| a == name))
            .map(|(id, _)| id.as_str())
    }
}

impl TryFrom<toml::Table> for RawModelSettings {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, String> {
        let alias = take(&mut table, "alias")?;
        let pin = take(&mut table, "pin")?;
        let idle_unload_secs = take(&mut table, "idle_unload_secs")?;
        let engine =
            RawEngine::deserialize(toml::Value::Table(table)).map_err(|e| e.to_string())?;
        Ok(Self {
            alias,
            pin,
            idle_unload_secs,
            engine,
        })
    }
}

/// Takes a model table's own key out of it (the rest are engine keys), typed.
fn take<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    key: &str,
) -> Result<Option<T>, String> {
    table
        .remove(key)
        .map(|v| v.try_into::<T>().map_err(|e| format!("{key}: {e}")))
        .transpose()
}

impl RawEngine {
    pub fn merge(mut self, over: RawEngine) -> RawEngine {
        merge_fields!(self, over; ctx_size, parallel, threads, threads_batch, batch_size,
            ubatch_size, n_gpu_layers, flash_attn, cache_type_k, cache_type_v, mlock, context_shift, max_queue,
            spec_ngram, model_draft, spec_mtp, draft_max, draft_min, draft_p_min, temp, top_k,
            top_p, min_p, repeat_penalty);
        self
    }
}
