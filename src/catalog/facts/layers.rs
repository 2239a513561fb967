//! The per-layer shape: attention heads, which layers use a sliding window, which keep a
//! recurrent state, and how big that state is. Mirrors llama.cpp's `load_arch_hparams`.
//!
//! Sliding window (SWA) layers, in order of precedence:
//! 1. `<arch>.attention.sliding_window_pattern` as a per-layer bool array, or as an integer
//!    period P (layer i is SWA when i % P < P - 1; P = 0 means every layer), with the window
//!    from `<arch>.attention.sliding_window`;
//! 2. llama.cpp's built-in period for gemma2 (2, window 4096 unless the file says),
//!    gemma3 and gemma-embedding (6), gemma3n (5), cohere2 (4), gpt-oss (2) and llama4 (4,
//!    chunked attention over 8192 tokens; a window of 0 in the file turns it off);
//! 3. otherwise none: llama.cpp ignores a window it has no pattern for (e.g. Qwen2).
//!
//! Not covered: patterns that start with a full layer (cohere2moe, laguna), exaone4's and other
//! rarer per-arch defaults; they read as full attention, which overstates the KV cache.
//!
//! Recurrent layers: every layer of mamba, mamba2, rwkv6/7, arwkv7 and falcon-h1 (whose layers
//! have attention too); else `<arch>.attention.recurrent_layers`; else for qwen3next, qwen35,
//! qwen35moe, qwen4exp (every 4th layer is attention) and minimax-01 (every 8th) the
//! `<arch>.full_attention_interval` period; else, for the hybrids that mark SSM layers with zero
//! KV heads (jamba, granitehybrid, lfm2, lfm2moe, plamo2, kimi-linear, kimi-k3, bailingmoe3,
//! glm5-next; nemotron_h when the layer also has no FFN), those layers.

use super::meta::Meta;
use super::{FactsError, SsmFacts};

pub(super) struct Layers {
    pub n_head: u32,
    pub n_head_kv: Vec<u32>,
    pub head_dim_k: u32,
    pub head_dim_v: u32,
    pub head_dim_k_swa: u32,
    pub head_dim_v_swa: u32,
    pub sliding_window: Option<u32>,
    pub swa_layers: Vec<bool>,
    pub kv_shared_layers: u32,
    pub recurrent_layers: Vec<bool>,
    pub ssm: Option<SsmFacts>,
}

const ALL_RECURRENT: &[&str] = &[
    "mamba",
    "mamba2",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "falcon-h1",
];
const ZERO_KV_IS_RECURRENT: &[&str] = &[
    "jamba",
    "granitehybrid",
    "lfm2",
    "lfm2moe",
    "plamo2",
    "kimi-linear",
    "kimi-k3",
    "bailingmoe3",
    "glm5-next",
];

pub(super) fn layers(
    meta: &Meta,
    n_layer: u32,
    nextn_layers: u32,
    n_embd: u32,
) -> Result<Layers, FactsError> {
    let n = n_layer as usize;
    // MTP layers sit at the end; they are neither SWA nor recurrent here.
    let main = |il: usize| il < (n_layer - nextn_layers) as usize;

    let heads = meta
        .per_layer("attention.head_count", n)?
        .unwrap_or_else(|| vec![0; n]);
    let n_head_kv = meta
        .per_layer("attention.head_count_kv", n)?
        .unwrap_or_else(|| heads.clone());
    let n_head = heads.iter().copied().max().unwrap_or(0);
    let default_dim = n_embd.checked_div(n_head).unwrap_or(0);
    let head_dim_k = meta
        .arch_u32("attention.key_length")?
        .unwrap_or(default_dim);
    let head_dim_v = meta
        .arch_u32("attention.value_length")?
        .unwrap_or(default_dim);

    let (sliding_window, swa_layers) = match swa_pattern(meta, n)? {
        Some((window, flags)) if window > 0 => {
            let flags: Vec<bool> = flags
                .iter()
                .enumerate()
                .map(|(il, &f)| f && main(il))
                .collect();
            (flags.contains(&true).then_some(window), flags)
        }
        _ => (None, vec![false; n]),
    };

    let arch = meta.arch;
    let recurrent_layers: Vec<bool> = if ALL_RECURRENT.contains(&arch) {
        (0..n).map(main).collect()
    } else if let Some(flags) = meta.flags("attention.recurrent_layers", n)? {
        flags
            .iter()
            .enumerate()
            .map(|(il, &f)| f && main(il))
            .collect()
    } else if let Some(default) = attention_interval(arch) {
        let every = meta.arch_u32("full_attention_interval")?.unwrap_or(default);
        if every == 0 {
            return Err(FactsError::Invalid(format!(
                "{} is 0",
                meta.key("full_attention_interval")
            )));
        }
        (0..n)
            .map(|il| main(il) && (il + 1) % every as usize != 0)
            .collect()
    } else if ZERO_KV_IS_RECURRENT.contains(&arch) {
        n_head_kv
            .iter()
            .enumerate()
            .map(|(il, &kv)| main(il) && kv == 0)
            .collect()
    } else if arch == "nemotron_h" || arch == "nemotron_h_moe" {
        // Zero KV heads and a zero FFN: a Mamba layer; zero KV heads alone: an MLP layer.
        let ff = meta
            .per_layer("feed_forward_length", n)?
            .unwrap_or_else(|| vec![0; n]);
        (0..n)
            .map(|il| main(il) && n_head_kv.get(il) == Some(&0) && ff.get(il) == Some(&0))
            .collect()
    } else {
        vec![false; n]
    };
    let ssm = if recurrent_layers.contains(&true) {
        ssm(meta, n_embd, n_head)?
    } else {
        None
    };

    let kv_shared_layers = match meta.arch_u32("attention.shared_kv_layers")? {
        Some(shared) => shared,
        // llama.cpp: Gemma 3n's layers from 20 on reuse the KV of earlier ones.
        None if arch == "gemma3n" => n_layer.saturating_sub(20),
        None => 0,
    };

    Ok(Layers {
        n_head,
        head_dim_k_swa: meta
            .arch_u32("attention.key_length_swa")?
            .unwrap_or(head_dim_k),
        head_dim_v_swa: meta
            .arch_u32("attention.value_length_swa")?
            .unwrap_or(head_dim_v),
        n_head_kv,
        head_dim_k,
        head_dim_v,
        sliding_window,
        swa_layers,
        kv_shared_layers: kv_shared_layers.min(n_layer - nextn_layers),
        recurrent_layers,
        ssm,
    })
}

/// The window and per-layer SWA flags, before MTP layers are masked; `None` when the model
/// has no sliding-window attention as llama.cpp reads it.
fn swa_pattern(meta: &Meta, n: usize) -> Result<Option<(u32, Vec<bool>)>, FactsError> {
    let file_window = meta.arch_u32("attention.sliding_window")?;
    // (period, window when the file gives none)
    let (default_period, default_window) = match meta.arch {
        "gemma2" => (Some(2), Some(4096)),
        "gemma3" | "gemma-embedding" => (Some(6), None),
        "gemma3n" => (Some(5), None),
        "cohere2" => (Some(4), None),
        "gpt-oss" => (Some(2), None),
        // Chunked attention: llama.cpp fixes the chunk at 8192 unless the file sets 0.
        "llama4" if file_window != Some(0) => (Some(4), Some(8192)),
        _ => (None, None),
    };
    let window = match meta.arch {
        "llama4" => default_window,
        _ => file_window.or(default_window),
    };
    let Some(window) = window else {
        return Ok(None);
    };

    let pattern_key = "attention.sliding_window_pattern";
    let period = match meta.file.get(&meta.key(pattern_key)) {
        Some(crate::catalog::gguf::MetaValue::Array(_)) => {
            return Ok(meta.flags(pattern_key, n)?.map(|flags| (window, flags)));
        }
        Some(_) => meta.arch_u32(pattern_key)?,
        None => default_period,
    };
    Ok(period.map(|p| {
        let p = p as usize;
        (window, (0..n).map(|il| p == 0 || il % p < p - 1).collect())
    }))
}

/// Hybrids with one full-attention layer every N (N from `full_attention_interval`).
fn attention_interval(arch: &str) -> Option<u32> {
    match arch {
        "qwen3next" | "qwen35" | "qwen35moe" | "qwen4exp" => Some(4),
        "minimax-01" => Some(8),
        _ => None,
    }
}

/// The recurrent state per layer and sequence, as llama.cpp's `n_embd_r()` / `n_embd_s()`.
fn ssm(meta: &Meta, n_embd: u32, n_head: u32) -> Result<Option<SsmFacts>, FactsError> {
    let d_state = meta.arch_u32("ssm.state_size")?;
    let d_conv = meta.arch_u32("ssm.conv_kernel")?.unwrap_or(0);
    let d_inner = meta.arch_u32("ssm.inner_size")?.unwrap_or(0);
    let n_group = meta.arch_u32("ssm.group_count")?.unwrap_or(0);
    let embd = u64::from(n_embd);
    let facts = |d_state: u32, d_conv: u32, conv_state: u64, ssm_state: u64| SsmFacts {
        d_state,
        d_conv,
        d_inner,
        n_group,
        conv_state,
        ssm_state,
    };
    let mul = |a: u64, b: u64| a.saturating_mul(b);

    Ok(if let Some(head) = meta.arch_u32("wkv.head_size")? {
        // RWKV: token-shift rows and one head_size² matrix per head (n_embd / head_size heads).
        let shifts = meta.arch_u32("token_shift_count")?.unwrap_or(2);
        Some(facts(
            head,
            0,
            mul(shifts.into(), embd),
            mul(embd, head.into()),
        ))
    } else if let Some(l_cache) = meta.arch_u32("shortconv.l_cache")? {
        // LFM2: a short convolution, no SSM state.
        Some(facts(
            0,
            l_cache,
            mul(embd, l_cache.saturating_sub(1).into()),
            0,
        ))
    } else if let Some(head) = meta.arch_u32("kda.head_dim")? {
        // Kimi delta attention: conv over Q, K and V, and a head_dim² state per head.
        let inner = mul(n_head.into(), head.into());
        let taps = if d_conv > 0 { d_conv - 1 } else { 3 };
        let state = mul(mul(head.into(), head.into()), n_head.into());
        Some(facts(head, d_conv, mul(mul(3, taps.into()), inner), state))
    } else if let Some(d_state) = d_state {
        // Mamba (n_group = 0), Mamba-2 and gated delta nets: conv over x, B and C; then the state.
        let conv_width = mul(mul(2, n_group.into()), d_state.into()).saturating_add(d_inner.into());
        let conv = mul(d_conv.saturating_sub(1).into(), conv_width);
        Some(facts(
            d_state,
            d_conv,
            conv,
            mul(d_state.into(), d_inner.into()),
        ))
    } else {
        None
    })
}
