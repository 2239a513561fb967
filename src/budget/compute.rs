//! The compute buffer: scratch memory for the largest graph llama.cpp reserves at load
//! (`llama_context::sched_reserve`, llama-context.cpp), one ubatch of `T = min(n_ctx,
//! n_ubatch)` prompt tokens over a full KV cache. ggml-alloc reuses memory from one layer to
//! the next, so its size is the largest set of tensors alive at one time, not a sum over
//! layers. This is the one estimated part of the budget; Paddock replaces it by the size
//! llama.cpp reports once the model is loaded.
//!
//! With `h = n_embd·T·4` bytes (one f32 hidden state per token), the peak is the largest of:
//! - attention: the mask inputs, `n_kv·T` per cache kind (full, sliding), f16 with flash
//!   attention and f32 without; plus, without flash attention, the `K·Q` matrix
//!   `n_head·n_kv·T·4` (softmax reuses it); plus ~6 activations of `max(h, n_head·head_dim·T·4)`;
//! - the FFN: the masks plus 3 f32 FFN-wide tensors (gate, up, product; each
//!   `n_ff·n_expert_used·T·4` for MoE) and `4 + n_expert_used` hidden states (one per expert
//!   output before they are summed);
//! - the output: logits for `n_outputs` tokens, `n_outputs·n_vocab·4`, plus 2 hidden states.
//!
//! GPU backends also keep the graph inputs (masks, embeddings gathered on the CPU) in a host
//! buffer. On the CPU backend of llama.cpp (commit 0c1e570) this matched 32 measured
//! configurations within -4.1% / +4.4% (`tests/compute.rs`): SmolLM2-135M, Gemma 3 270M,
//! and Llama-3-8B-, 70B- and Qwen3.5-35B-A3B-shaped GGUFs, contexts 512 to 128k, ubatch 300
//! to 2048, flash attention on and off, 1 to 4 sequences. A 1/8 margin on top makes it an
//! upper bound, 8% to 17% above those figures.
//! Not modelled: recurrent mixers are treated like attention without `K·Q` (not measured),
//! backend scratch outside ggml-alloc (CUDA's pool), and on discrete GPUs the copies of
//! CPU-resident weights that op offload stages in the GPU buffer when layers stay on the CPU.

use super::context::Cells;
use super::offload::Split;
use super::shape::{ModelShape, Settings};

const F32: u64 = 4;
const F16: u64 = 2;

/// Compute buffer bytes per side: the graph's peak on the GPU when the head is offloaded
/// (`on_gpu`), else in RAM, and the host-side copy of the inputs when a GPU is used.
/// `n_outputs` is how many tokens of the ubatch produce logits.
pub(super) fn compute_split(
    model: &ModelShape,
    settings: &Settings,
    cells: &Cells,
    n_outputs: u64,
    on_gpu: bool,
) -> Split {
    let t = cells.ubatch;
    let hidden = product(&[model.n_embd.into(), t, F32]);
    let query = product(&[model.n_head.into(), model.head_dim_k.into(), t, F32]);

    // One mask per kind of cache present, f16 with flash attention and f32 without, built
    // in host memory (`build_attn_inp_kq_mask`, llama-graph.cpp).
    let (mut has_full, mut has_swa) = (false, false);
    for (il, &heads) in (0u64..).zip(&model.n_head_kv).take(model.n_layer as usize) {
        if heads > 0 {
            let swa = model.is_swa(il);
            has_swa |= swa;
            has_full |= !swa;
        }
    }
    let full = if has_full { cells.full } else { 0 };
    let swa = if has_swa { cells.swa } else { 0 };

    let mask_elem = if settings.flash_attn { F16 } else { F32 };
    let mask = product(&[full.saturating_add(swa), t, mask_elem]);
    let kq = if settings.flash_attn {
        0
    } else {
        product(&[model.n_head.into(), full.max(swa), t, F32])
    };
    let attention = kq.saturating_add(product(&[6, hidden.max(query)]));

    let experts = u64::from(model.n_expert_used);
    let ffn_wide = product(&[model.n_ff.into(), experts.max(1), t, F32]);
    let ffn = product(&[3, ffn_wide]).saturating_add(product(&[experts + 4, hidden]));

    let logits =
        product(&[n_outputs, model.n_vocab.into(), F32]).saturating_add(product(&[2, hidden]));

    let device = mask.saturating_add(attention.max(ffn)).max(logits);
    let mut split = Split::default();
    split.add(on_gpu, with_margin(device));
    if on_gpu {
        split.add(false, with_margin(mask.saturating_add(hidden)));
    }
    split
}

fn with_margin(bytes: u64) -> u64 {
    bytes.saturating_add(bytes / 8)
}

fn product(factors: &[u64]) -> u64 {
    factors.iter().fold(1, |acc: u64, &f| acc.saturating_mul(f))
}
