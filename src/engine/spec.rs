//! What to load and how: the llama.cpp model and context parameters of one engine.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Everything `EngineHandle::spawn` needs. Built from `config::Settings` by the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineSpec {
    pub model_path: PathBuf,
    /// Total context in tokens, shared by all slots (unified KV cache); 0 = the trained size.
    pub n_ctx: u32,
    /// Number of slots (concurrent sequences).
    pub n_parallel: u32,
    /// Threads for generation and for prompt processing.
    pub n_threads: i32,
    pub n_threads_batch: i32,
    /// Logical batch: most tokens one decode step takes. Physical micro-batch below it.
    pub n_batch: u32,
    pub n_ubatch: u32,
    /// Layers offloaded to the GPU (Metal/CUDA); ignored by CPU builds.
    pub n_gpu_layers: u32,
    pub flash_attn: FlashAttn,
    pub cache_type_k: KvType,
    pub cache_type_v: KvType,
    pub mlock: bool,
    /// Drop the older half of a full slot instead of ending with `length` (off by default).
    pub context_shift: bool,
    /// Most requests that may wait for a free slot before new ones are refused as busy.
    pub max_queue: usize,
    /// Speculative decoding: n-gram lookup, a draft model, how many tokens to guess.
    pub speculation: super::Speculation,
    /// Sampling for requests that leave it out, over the GGUF's recommendation.
    #[serde(default)]
    pub sampling: SamplingDefaults,
    /// Told the load's progress (0.0 to 1.0) while the model loads; for progress bars.
    #[serde(skip)]
    pub load_progress: Option<LoadProgress>,
    /// Told when the engine's [`super::Activity`] changes (busy slots, last speed).
    #[serde(skip)]
    pub on_activity: Option<super::ActivityHook>,
}

impl EngineSpec {
    /// Whether a model's MTP layers, where it has them, are loaded to guess tokens: they take
    /// memory, and the crate's MTP drafting serves one slot.
    pub fn loads_mtp_heads(&self) -> bool {
        let s = &self.speculation;
        s.mtp && s.draft_max > 0 && self.n_parallel == 1
    }
}

/// Sampling settings the server applies where a request gives none (agents send no
/// temperature): each set one replaces the model's own default (`general.sampling.*` in the
/// GGUF, else llama-server's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplingDefaults {
    pub temperature: Option<f32>,
    pub top_k: Option<i32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
}

impl SamplingDefaults {
    pub fn apply(&self, p: &mut super::SamplingParams) {
        p.temperature = self.temperature.unwrap_or(p.temperature);
        p.top_k = self.top_k.unwrap_or(p.top_k);
        p.top_p = self.top_p.unwrap_or(p.top_p);
        p.min_p = self.min_p.unwrap_or(p.min_p);
        p.repeat_penalty = self.repeat_penalty.unwrap_or(p.repeat_penalty);
    }
}

/// A callback for model-load progress, shareable so the spec stays `Clone`.
#[derive(Clone)]
pub struct LoadProgress(pub Arc<dyn Fn(f32) + Send + Sync>);

impl std::fmt::Debug for LoadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadProgress")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashAttn {
    On,
    Off,
    /// llama.cpp decides per backend and model.
    Auto,
}

impl FromStr for FlashAttn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" | "1" | "true" => Ok(Self::On),
            "off" | "0" | "false" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            _ => Err(format!(
                "flash attention must be on, off or auto, not {s:?}"
            )),
        }
    }
}

/// KV cache element types llama-server accepts for `--cache-type-k/-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    Iq4Nl,
    Q5_0,
    Q5_1,
}

impl FlashAttn {
    pub(super) fn to_llama(self) -> llama_cpp_sys_2::llama_flash_attn_type {
        match self {
            Self::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            Self::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            Self::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
        }
    }
}

impl KvType {
    /// Every type with its llama.cpp name, in one table.
    const TABLE: [(Self, &'static str); 9] = [
        (Self::F32, "f32"),
        (Self::F16, "f16"),
        (Self::Bf16, "bf16"),
        (Self::Q8_0, "q8_0"),
        (Self::Q4_0, "q4_0"),
        (Self::Q4_1, "q4_1"),
        (Self::Iq4Nl, "iq4_nl"),
        (Self::Q5_0, "q5_0"),
        (Self::Q5_1, "q5_1"),
    ];

    pub fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("f16", |(_, n)| n)
    }

    /// Quantized V caches need flash attention in llama.cpp.
    pub fn is_quantized(self) -> bool {
        !matches!(self, Self::F32 | Self::F16 | Self::Bf16)
    }

    pub(super) fn to_llama(self) -> llama_cpp_2::context::params::KvCacheType {
        use llama_cpp_2::context::params::KvCacheType as K;
        match self {
            Self::F32 => K::F32,
            Self::F16 => K::F16,
            Self::Bf16 => K::BF16,
            Self::Q8_0 => K::Q8_0,
            Self::Q4_0 => K::Q4_0,
            Self::Q4_1 => K::Q4_1,
            Self::Iq4Nl => K::IQ4_NL,
            Self::Q5_0 => K::Q5_0,
            Self::Q5_1 => K::Q5_1,
        }
    }
}

impl FromStr for KvType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::TABLE
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s))
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                let names: Vec<_> = Self::TABLE.iter().map(|(_, n)| *n).collect();
                format!("cache type must be one of {}, not {s:?}", names.join(", "))
            })
    }
}

impl std::fmt::Display for KvType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_types_round_trip_through_their_names() {
        for (_, name) in KvType::TABLE {
            assert_eq!(name.parse::<KvType>().unwrap().to_string(), name);
        }
        assert!("q9_9".parse::<KvType>().is_err());
    }

    #[test]
    fn flash_attn_accepts_llama_server_spellings() {
        assert_eq!("1".parse::<FlashAttn>().unwrap(), FlashAttn::On);
        assert_eq!("auto".parse::<FlashAttn>().unwrap(), FlashAttn::Auto);
        assert!("maybe".parse::<FlashAttn>().is_err());
    }
}
