//! What a model is, from its GGUF header: size, quantization, parameters (total and per token),
//! MoE shape, and the per-layer attention shape the memory budget needs. Numbers follow
//! llama.cpp (llama-cpp-sys-2 0.1.161, `src/llama-model.cpp` and `src/models/*.cpp`).
//!
//! Per-layer lists (`n_head_kv`, `swa_layers`, `recurrent_layers`) have `n_layer` entries: every
//! block in the file, MTP layers included. The last `nextn_layers` of them are MTP heads, used
//! only when drafting with them; llama.cpp gives them no KV cache in a normal context, and this
//! module marks them neither SWA nor recurrent.

use serde::Serialize;

use super::gguf::GgufFile;

mod layers;
mod meta;
mod weights;

use meta::Meta;

/// llama.cpp refuses more blocks than this (`LLAMA_MAX_LAYERS`); it also bounds our per-layer
/// vectors on hostile files.
pub const MAX_LAYERS: u32 = 512;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFacts {
    /// `general.architecture`, e.g. `llama`, `gemma3`, `qwen3moe`.
    pub architecture: String,
    pub name: Option<String>,
    /// Size on disk, all parts together.
    pub file_bytes: u64,
    /// Bytes of all tensor data (what loading the weights costs).
    pub tensor_bytes: u64,
    pub quantization: Quantization,
    pub total_params: u64,
    pub moe: Option<MoeFacts>,
    /// Parameters and bytes read to generate one token (the rule is in `facts/weights.rs`):
    /// every tensor, except routed experts scaled by used/total experts, one row of each
    /// embedding lookup table, and nothing of MTP layers. Dense models with tied embeddings:
    /// equal to the totals. tg ceiling = memory bandwidth / `active_bytes`.
    pub active_params: u64,
    pub active_bytes: u64,
    /// `<arch>.block_count`, MTP layers included.
    pub n_layer: u32,
    pub n_ctx_train: u32,
    pub n_embd: u32,
    /// Query heads (the largest per-layer count, 0 for attention-free models).
    pub n_head: u32,
    /// KV heads per layer; 0 for a layer without attention (recurrent or MLP-only).
    pub n_head_kv: Vec<u32>,
    /// Per-head K and V sizes of full-attention layers.
    pub head_dim_k: u32,
    pub head_dim_v: u32,
    /// Per-head K and V sizes of sliding-window layers (Gemma 4 makes them differ).
    pub head_dim_k_swa: u32,
    pub head_dim_v_swa: u32,
    /// The window (tokens) of the layers marked in `swa_layers`; `Some` iff one is marked.
    pub sliding_window: Option<u32>,
    pub swa_layers: Vec<bool>,
    /// The last this many non-MTP layers reuse the KV cache of earlier layers and hold none of
    /// their own (Gemma 3n, Gemma 4).
    pub kv_shared_layers: u32,
    /// Layers with a recurrent (SSM / linear-attention) state instead of, or beside, a KV cache.
    pub recurrent_layers: Vec<bool>,
    pub ssm: Option<SsmFacts>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// The template mentions `tools`, so it can render tool definitions itself.
    pub template_supports_tools: bool,
    /// `<arch>.pooling_type` (llama.cpp's `llama_pooling_type`), set by embedding models.
    pub pooling: Option<u32>,
    /// `<arch>.nextn_predict_layers`: multi-token-prediction layers at the end of the stack.
    pub nextn_layers: u32,
    pub vocab_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quantization {
    /// What people call the file: the `general.file_type` label ("Q4_K_M") when the file
    /// names one, else the dominant tensor type.
    pub label: String,
    /// `general.file_type` as stored (llama.cpp's `llama_ftype`).
    pub file_type: Option<u32>,
    /// The tensor type holding the most bytes ("Q8_0" for a Q4_K_M model whose big embedding
    /// matrix stayed Q8_0).
    pub dominant: String,
    /// Bytes per tensor type, largest first.
    pub mix: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoeFacts {
    pub expert_count: u32,
    /// Routed experts per token (the largest per-layer value if it varies).
    pub expert_used_count: u32,
    /// Always-on shared experts (`<arch>.expert_shared_count`, 0 if none).
    pub expert_shared_count: u32,
    /// Parameters and bytes of the routed-expert tensors (`*_exps`), all experts.
    pub expert_params: u64,
    pub expert_bytes: u64,
}

/// Shape of the recurrent state, for `recurrent_layers`. `conv_state` and `ssm_state` are the
/// elements one sequence keeps per recurrent layer, as llama.cpp's `n_embd_r()` and
/// `n_embd_s()` compute them (stored as F32 by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SsmFacts {
    /// `<arch>.ssm.state_size` (RWKV: the WKV head size; KDA: its head dim).
    pub d_state: u32,
    /// `<arch>.ssm.conv_kernel` (LFM2: `shortconv.l_cache`).
    pub d_conv: u32,
    /// `<arch>.ssm.inner_size`.
    pub d_inner: u32,
    /// `<arch>.ssm.group_count` (0 if absent).
    pub n_group: u32,
    pub conv_state: u64,
    pub ssm_state: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("no GGUF files given")]
    NoParts,
    #[error("the model has no {0:?} key")]
    MissingKey(String),
    #[error("{key:?} should be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("{key:?} has {got} values, expected one per layer ({expected})")]
    WrongLength {
        key: String,
        expected: usize,
        got: usize,
    },
    #[error("the model has {0} layers; llama.cpp supports at most {MAX_LAYERS}")]
    TooManyLayers(u32),
    #[error("split model: {0}")]
    Split(String),
    #[error("tensor {0:?} has a type or shape whose size is unknown")]
    BadTensor(String),
    #[error("{0}")]
    Invalid(String),
}

/// Facts of a model from its parsed headers: one file, or every part of a split model in order
/// (the first holds the metadata, all hold tensors). `file_bytes` is their size on disk.
pub fn facts(parts: &[GgufFile], file_bytes: u64) -> Result<ModelFacts, FactsError> {
    let first = parts.first().ok_or(FactsError::NoParts)?;
    check_split(parts)?;

    let architecture = Meta {
        file: first,
        arch: "",
    }
    .string("general.architecture")?
    .ok_or_else(|| FactsError::MissingKey("general.architecture".into()))?;
    let meta = Meta {
        file: first,
        arch: &architecture,
    };

    let n_layer = meta.required_u32("block_count")?;
    if n_layer == 0 || n_layer > MAX_LAYERS {
        return Err(FactsError::TooManyLayers(n_layer));
    }
    let nextn_layers = meta.arch_u32("nextn_predict_layers")?.unwrap_or(0);
    if nextn_layers >= n_layer {
        return Err(FactsError::Invalid(format!(
            "{nextn_layers} MTP layers leave none of the {n_layer} layers for the model"
        )));
    }
    let n_embd = meta.required_u32("embedding_length")?;

    let tensors = parts.iter().flat_map(|p| &p.tensors);
    let w = weights::weights(&meta, tensors, n_layer, nextn_layers)?;
    let l = layers::layers(&meta, n_layer, nextn_layers, n_embd)?;

    let chat_template = meta.string("tokenizer.chat_template")?;
    let template_supports_tools = chat_template
        .as_deref()
        .is_some_and(|t| t.contains("tools"));
    let vocab_size = match meta.arch_u32("vocab_size")? {
        Some(n) => n,
        None => match meta.array_len("tokenizer.ggml.tokens") {
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            None => w.embedding_rows,
        },
    };

    Ok(ModelFacts {
        name: meta.string("general.name")?,
        file_bytes,
        tensor_bytes: w.tensor_bytes,
        quantization: w.quantization,
        total_params: w.total_params,
        moe: w.moe,
        active_params: w.active_params,
        active_bytes: w.active_bytes,
        n_layer,
        n_ctx_train: meta.required_u32("context_length")?,
        n_embd,
        n_head: l.n_head,
        n_head_kv: l.n_head_kv,
        head_dim_k: l.head_dim_k,
        head_dim_v: l.head_dim_v,
        head_dim_k_swa: l.head_dim_k_swa,
        head_dim_v_swa: l.head_dim_v_swa,
        sliding_window: l.sliding_window,
        swa_layers: l.swa_layers,
        kv_shared_layers: l.kv_shared_layers,
        recurrent_layers: l.recurrent_layers,
        ssm: l.ssm,
        chat_template,
        template_supports_tools,
        pooling: meta.arch_u32("pooling_type")?,
        nextn_layers,
        vocab_size,
        architecture,
    })
}

/// Every part of a split model says how many parts there are (`split.count`) and which one it
/// is (`split.no`, from 0): all must be given, in order.
fn check_split(parts: &[GgufFile]) -> Result<(), FactsError> {
    for (i, part) in parts.iter().enumerate() {
        let meta = Meta {
            file: part,
            arch: "",
        };
        match (meta.u32("split.count")?, meta.u32("split.no")?) {
            (None, _) if parts.len() == 1 => {}
            (Some(n), no) if n as usize == parts.len() && no.unwrap_or(0) as usize == i => {}
            (count, no) => {
                let show = |v: Option<u32>, plus: u32| {
                    v.map_or("?".into(), |v| v.saturating_add(plus).to_string())
                };
                return Err(FactsError::Split(format!(
                    "file {} of the {} given says it is part {} of {}",
                    i + 1,
                    parts.len(),
                    show(no, 1),
                    show(count, 0),
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
