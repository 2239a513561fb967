//! How many KV cells and batch tokens llama.cpp sets up for given settings. The rules are
//! in `llama_context::llama_context` (llama-context.cpp), `llama_model::create_memory`
//! (llama-model.cpp) and `llama_kv_cache_iswa::llama_kv_cache_iswa` (llama-kv-cache-iswa.cpp).

use super::shape::{ModelShape, Settings};

/// The context's dimensions, all in cells or tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cells {
    /// Sequences (`n_seq_max`); recurrent state is kept once per sequence.
    pub seqs: u64,
    /// KV streams: 1 for a unified cache, else one per sequence (`llama_kv_cache::n_stream`).
    pub streams: u64,
    /// Cells per stream of full-attention layers (`cparams.n_ctx_seq`).
    pub full: u64,
    /// Cells per stream of sliding-window layers.
    pub swa: u64,
    /// Tokens of the largest batch llama.cpp reserves compute for
    /// (`llama_context::sched_reserve`: `min(n_ctx, n_ubatch)`).
    pub ubatch: u64,
}

impl Cells {
    pub fn new(model: &ModelShape, settings: &Settings) -> Self {
        let seqs = u64::from(settings.n_parallel.max(1));
        let n_ctx = u64::from(if settings.n_ctx == 0 {
            model.n_ctx_train
        } else {
            settings.n_ctx
        });

        // A causal model never batches more tokens than the context holds; n_ubatch 0 means
        // n_batch. Taken before n_ctx is padded, as llama.cpp does.
        let n_batch = n_ctx.min(u64::from(settings.n_batch));
        let n_ubatch = match settings.n_ubatch {
            0 => n_batch,
            n => u64::from(n).min(n_batch),
        };

        // n_ctx is padded to 256 (llama.cpp PR 17046). Without a unified cache every sequence
        // gets its own stream of n_ctx / n_seq cells, padded again, so the total may grow.
        let n_ctx = pad_256(n_ctx);
        let (streams, full) = if settings.kv_unified {
            (1, n_ctx)
        } else {
            (seqs, pad_256(n_ctx / seqs))
        };

        // Sliding-window layers keep the window (per sequence sharing the stream) plus one
        // ubatch, padded to 256 for speed (llama.cpp issue 17037), never more than full.
        let window = u64::from(model.swa_window.unwrap_or(0));
        let swa = if settings.swa_full {
            full
        } else {
            let sharing = if settings.kv_unified { seqs } else { 1 };
            pad_256(full.min(window.saturating_mul(sharing).saturating_add(n_ubatch)))
        };

        Self {
            seqs,
            streams,
            full,
            swa,
            ubatch: full.saturating_mul(streams).min(n_ubatch),
        }
    }
}

/// `GGML_PAD(x, 256)`.
fn pad_256(x: u64) -> u64 {
    x.div_ceil(256).saturating_mul(256)
}
