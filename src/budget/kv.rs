//! The per-token memory: KV cache of attention layers and the fixed-size state of
//! recurrent layers. Both are exact: they match llama.cpp's `llama_kv_cache: size = ...`
//! and `llama_memory_recurrent: size = ...` log lines to the byte.

use super::context::Cells;
use super::offload::{Offload, Split};
use super::shape::{ModelShape, Settings};

/// Bytes of the KV cache llama.cpp allocates for `settings`.
pub fn kv_cache_bytes(model: &ModelShape, settings: &Settings) -> u64 {
    // Where each layer lives does not change the sum.
    kv_split(model, settings, &Cells::new(model, settings), Offload::NONE).total()
}

/// KV cache bytes per side, as `llama_kv_cache::llama_kv_cache` (llama-kv-cache.cpp) sizes
/// its tensors: per layer with KV heads, a K tensor of `n_head_kv * head_dim_k` elements
/// and a V tensor of `n_head_kv * head_dim_v` elements per cell, for every cell of every
/// stream. Each layer's cache lives on that layer's device (`model.dev_layer(il)`, with
/// llama.cpp's default `offload_kqv`).
pub(super) fn kv_split(
    model: &ModelShape,
    settings: &Settings,
    cells: &Cells,
    offload: Offload,
) -> Split {
    let head_dim_k = u64::from(model.head_dim_k);
    let head_dim_v = u64::from(model.head_dim_v);
    // Without flash attention V is stored transposed, and then every layer's V is padded to
    // the widest layer's (`n_embd_v_gqa_max`, [TAG_V_CACHE_VARIABLE] in llama-kv-cache.cpp).
    let n_layer = model.n_layer as usize;
    let widest_kv = u64::from(
        model
            .n_head_kv
            .iter()
            .take(n_layer)
            .max()
            .copied()
            .unwrap_or(0),
    );

    // MTP layers have a cache only in the MTP context, which exists while they guess.
    let cached = if settings.mtp_heads {
        n_layer
    } else {
        n_layer.saturating_sub(model.mtp_layers as usize)
    };
    let mut split = Split::default();
    for (il, &heads) in (0u64..).zip(model.n_head_kv.iter().take(cached)) {
        let heads = u64::from(heads);
        if heads == 0 {
            continue;
        }
        let v_heads = if settings.flash_attn {
            heads
        } else {
            widest_kv
        };
        let per_cell = settings
            .cache_type_k
            .row_bytes(heads * head_dim_k)
            .saturating_add(settings.cache_type_v.row_bytes(v_heads * head_dim_v));
        let per_stream = if model.is_swa(il) {
            cells.swa
        } else {
            cells.full
        };
        let bytes = per_stream
            .saturating_mul(cells.streams)
            .saturating_mul(per_cell);
        split.add(offload.layer_on_gpu(il), bytes);
    }
    split
}

/// Recurrent state bytes per side, as `llama_memory_recurrent::llama_memory_recurrent`
/// (llama-memory-recurrent.cpp) sizes it: per recurrent layer, `n_embd_r + n_embd_s` f32
/// values for each of `max(1, n_seq_max)` sequences, whatever the context length. (Rollback
/// snapshots, `n_rs_seq`, would multiply it; Paddock leaves them at llama.cpp's default 0.)
pub(super) fn recurrent_split(model: &ModelShape, cells: &Cells, offload: Offload) -> Split {
    let mut split = Split::default();
    let Some(state) = &model.recurrent else {
        return split;
    };
    let per_seq = (u64::from(state.n_embd_r) + u64::from(state.n_embd_s)) * 4;
    let per_layer = per_seq.saturating_mul(cells.seqs);
    for (il, &recurrent) in (0u64..).zip(state.layers.iter().take(model.n_layer as usize)) {
        if recurrent {
            split.add(offload.layer_on_gpu(il), per_layer);
        }
    }
    split
}
