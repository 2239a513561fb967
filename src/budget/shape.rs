//! What the budget reads: a model's shape (from its GGUF header, filled by `catalog`), the
//! context settings Paddock will create it with, and the machine. Plain data, all sizes in
//! bytes and tokens.

use serde::{Deserialize, Serialize};

/// A model's sizes as llama.cpp sees them, read from the GGUF header without loading weights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Bytes of all tensors in the file.
    pub weight_bytes: u64,
    /// Repeating layers (`{arch}.block_count`), MTP layers included.
    pub n_layer: u32,
    /// The last this many layers are MTP (nextn) layers: llama.cpp's main context keeps no KV
    /// cache for them; the MTP context does while they guess (`Settings::mtp_heads`).
    pub mtp_layers: u32,
    /// Bytes of each repeating layer's tensors (`blk.N.*`), len `n_layer`. What is in no
    /// layer (token embeddings, output norm, output head) is `weight_bytes` minus their sum.
    pub layer_bytes: Vec<u64>,
    /// Bytes of the output head, `output.weight`. Models that tie it to `token_embd.weight`
    /// give that tensor's size: llama.cpp loads it a second time as the head
    /// (`TENSOR_DUPLICATED` in each model's `load_arch_tensors`). On Apple Silicon both
    /// views share the file's pages; on a discrete GPU the budget counts the head on the GPU
    /// but not the embeddings' copy left in RAM.
    pub output_bytes: u64,
    pub n_ctx_train: u32,
    pub n_embd: u32,
    pub n_vocab: u32,
    /// Query heads (`{arch}.attention.head_count`; the largest where it varies by layer).
    pub n_head: u32,
    /// KV heads of each layer, len `n_layer`; 0 for layers without a KV cache (recurrent).
    pub n_head_kv: Vec<u32>,
    pub head_dim_k: u32,
    pub head_dim_v: u32,
    /// FFN width: `feed_forward_length` for dense models, one expert's
    /// `expert_feed_forward_length` for mixture-of-experts models.
    pub n_ff: u32,
    /// Experts each token goes through (`expert_used_count`); 0 for dense models.
    pub n_expert_used: u32,
    /// Sliding-window length (`{arch}.attention.sliding_window`); `None` or 0: no SWA.
    pub swa_window: Option<u32>,
    /// Which layers attend only over the window, len `n_layer` (empty: none).
    pub swa_layers: Vec<bool>,
    /// State of recurrent layers (Mamba, RWKV, gated delta net), `None` for pure transformers.
    pub recurrent: Option<RecurrentShape>,
    /// Weight bytes read per generated token: all of them for dense models; for MoE the
    /// shared part plus the experts used.
    pub active_bytes: u64,
}

impl ModelShape {
    /// A sliding-window layer, whose cache keeps only the window (`llama_hparams::is_swa`).
    pub(super) fn is_swa(&self, layer: u64) -> bool {
        self.swa_window.unwrap_or(0) > 0
            && usize::try_from(layer).is_ok_and(|il| self.swa_layers.get(il) == Some(&true))
    }
}

/// Per-sequence state of recurrent layers. llama.cpp keeps it in f32 whatever the KV types
/// (`llama_model::create_memory`, llama-model.cpp), one copy per sequence, independent of
/// the context length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurrentShape {
    /// Which layers keep a state (`llama_hparams::is_recr`), len `n_layer`. Pure recurrent
    /// models keep one in every layer.
    pub layers: Vec<bool>,
    /// f32 values of the rolling convolution / token-shift state (`llama_hparams::n_embd_r`).
    pub n_embd_r: u32,
    /// f32 values of the SSM / delta-rule state (`llama_hparams::n_embd_s`).
    pub n_embd_s: u32,
}

impl RecurrentShape {
    /// State sizes of Mamba-2 and gated-delta-net layers from the GGUF `ssm.*` keys
    /// (`conv_kernel`, `inner_size`, `state_size`, `group_count`), as
    /// `llama_hparams::n_embd_r` and `n_embd_s` (llama-hparams.cpp) compute them. RWKV and
    /// other mixers have their own formulas there; fill the fields directly for those.
    pub fn ssm(layers: Vec<bool>, d_conv: u32, d_inner: u32, d_state: u32, n_group: u32) -> Self {
        let conv_channels =
            d_inner.saturating_add(n_group.saturating_mul(d_state).saturating_mul(2));
        Self {
            layers,
            // the first conv column is shifted out each step, so only d_conv - 1 are kept
            n_embd_r: d_conv.saturating_sub(1).saturating_mul(conv_channels),
            n_embd_s: d_state.saturating_mul(d_inner),
        }
    }
}

/// The context Paddock asks llama.cpp for (its `llama_context_params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Tokens of context for all sequences together; 0 = `n_ctx_train`, as llama.cpp does.
    pub n_ctx: u32,
    /// Sequences decoded in parallel (slots), llama.cpp's `n_seq_max`; 0 counts as 1.
    pub n_parallel: u32,
    pub cache_type_k: KvType,
    /// Quantized V types need `flash_attn` (llama.cpp refuses them otherwise).
    pub cache_type_v: KvType,
    /// Layers on the GPU, the output head counting as one: -1 or >= `n_layer + 1` = all.
    pub n_gpu_layers: i32,
    /// Tokens per physical batch; 0 = `n_batch`.
    pub n_ubatch: u32,
    /// Tokens per logical batch.
    pub n_batch: u32,
    pub flash_attn: bool,
    /// Sliding-window layers keep the whole context instead of only their window.
    pub swa_full: bool,
    /// One KV pool shared by all sequences instead of `n_ctx / n_parallel` cells each.
    pub kv_unified: bool,
    /// The model's MTP layers guess tokens (speculative decoding), with a KV cache of their own.
    pub mtp_heads: bool,
}

/// KV cache element types, named as llama.cpp's `--cache-type-k` spells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvType {
    #[serde(rename = "f32")]
    F32,
    #[default]
    #[serde(rename = "f16")]
    F16,
    #[serde(rename = "bf16")]
    BF16,
    #[serde(rename = "q8_0")]
    Q8_0,
    #[serde(rename = "q4_0")]
    Q4_0,
    #[serde(rename = "q4_1")]
    Q4_1,
    #[allow(non_camel_case_types)] // as ggml spells it, like its neighbours
    #[serde(rename = "iq4_nl")]
    IQ4_NL,
    #[serde(rename = "q5_0")]
    Q5_0,
    #[serde(rename = "q5_1")]
    Q5_1,
}

impl KvType {
    /// Bytes of a row of `n` elements, as `ggml_row_size` (ggml.c) computes it from the
    /// type's block: quantized types store 32 elements per block (`type_traits` in ggml.c).
    pub fn row_bytes(self, n: u64) -> u64 {
        let (block_bytes, block_len) = match self {
            KvType::F32 => (4, 1),
            KvType::F16 | KvType::BF16 => (2, 1),
            KvType::Q8_0 => (34, 32),
            KvType::Q4_0 | KvType::IQ4_NL => (18, 32),
            KvType::Q4_1 => (20, 32),
            KvType::Q5_0 => (22, 32),
            KvType::Q5_1 => (24, 32),
        };
        n.div_ceil(block_len).saturating_mul(block_bytes)
    }
}

/// The machine the model would load on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Physical memory (RAM; on Apple Silicon the one pool CPU and GPU share).
    pub total_memory: u64,
    /// Apple Silicon: GPU and CPU allocations come from the same memory.
    pub unified: bool,
    /// Memory of the discrete GPUs; `None` (and not unified): no GPU, llama.cpp runs on CPU.
    pub gpu_memory: Option<u64>,
    /// macOS `recommendedMaxWorkingSetSize`: what Metal lets one process keep resident.
    pub gpu_limit: Option<u64>,
    /// Memory to leave to the OS and other apps.
    pub os_reserve: u64,
    /// Memory bandwidth in bytes/s.
    pub bandwidth: Option<f64>,
    /// The user's cap on what models may take together (`memory_limit_mib`), in each pool.
    #[serde(default)]
    pub memory_limit: Option<u64>,
}
