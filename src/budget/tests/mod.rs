//! Budget tests. Fixtures are real models' shapes (read from their GGUF files) or shapes
//! resembling a model, each with where its numbers come from. Expected KV and compute
//! figures were measured with llama.cpp's own llama-server (`-lv 4` prints each buffer).

mod budget;
mod compute;
mod kv;
mod search;
mod together;

use super::{KvType, Machine, ModelShape, RecurrentShape, Settings};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// SmolLM2-135M-Instruct.Q4_1.gguf (Paddock's test model): llama architecture, tied
/// embeddings. Tensor bytes summed from the file; llama.cpp prints 92.10 MiB for them.
fn smollm2() -> ModelShape {
    ModelShape {
        weight_bytes: 96_576_768,
        n_layer: 30,
        layer_bytes: vec![2_216_448; 30],
        output_bytes: 30_081_024, // token_embd.weight, reused as the head
        n_ctx_train: 8192,
        n_embd: 576,
        n_vocab: 49_152,
        n_head: 9,
        n_head_kv: vec![3; 30],
        head_dim_k: 64,
        head_dim_v: 64,
        n_ff: 1536,
        active_bytes: 96_576_768,
        ..ModelShape::default()
    }
}

/// gemma-3-270m-q4_k_m.gguf (Paddock's test model): 18 layers, every 6th global, the rest
/// over a 512-token window; one KV head of 256; 262k vocabulary; tied embeddings.
fn gemma3_270m() -> ModelShape {
    let (a, b) = (3_995_648, 3_596_288); // Q4_K_M mixes two layer sizes
    ModelShape {
        weight_bytes: 246_587_904,
        n_layer: 18,
        layer_bytes: vec![a, a, b, b, a, b, b, a, b, b, a, b, b, a, b, a, a, a],
        output_bytes: 178_257_920,
        n_ctx_train: 32_768,
        n_embd: 640,
        n_vocab: 262_144,
        n_head: 4,
        n_head_kv: vec![1; 18],
        head_dim_k: 256,
        head_dim_v: 256,
        n_ff: 2048,
        swa_window: Some(512),
        swa_layers: (0..18).map(|il| (il + 1) % 6 != 0).collect(),
        active_bytes: 246_587_904,
        ..ModelShape::default()
    }
}

/// Shaped like the source document's Qwen 3.6 35B-A3B (UD-Q5_K_XL, 24.76 GiB): 40 layers,
/// every 4th gated attention (16 query heads, 2 KV heads of 256), the rest gated delta net
/// (conv kernel 4, inner 4096, state 128, 16 groups); 256 experts of width 512, 8 used;
/// 248,320-token vocabulary. Assumed, not read from the file: the head is Q6_K and the
/// token embeddings Q5_K, the other bytes spread evenly over the layers, and the active
/// bytes are 3/35 of the weights ("A3B" of 35B).
fn qwen36_35b_a3b() -> ModelShape {
    let weight_bytes = 2476 * GIB / 100;
    let output_bytes = 248_320 * 2048 / 256 * 210; // Q6_K: 210 bytes per 256 weights
    let embd_bytes = 248_320 * 2048 / 256 * 176; // Q5_K: 176 bytes per 256 weights
    let recurrent: Vec<bool> = (0..40).map(|il| (il + 1) % 4 != 0).collect();
    ModelShape {
        weight_bytes,
        n_layer: 40,
        layer_bytes: vec![(weight_bytes - output_bytes - embd_bytes) / 40; 40],
        output_bytes,
        n_ctx_train: 262_144,
        n_embd: 2048,
        n_vocab: 248_320,
        n_head: 16,
        n_head_kv: recurrent.iter().map(|&r| if r { 0 } else { 2 }).collect(),
        head_dim_k: 256,
        head_dim_v: 256,
        n_ff: 512,
        n_expert_used: 8,
        recurrent: Some(RecurrentShape::ssm(recurrent, 4, 4096, 128, 16)),
        active_bytes: weight_bytes * 3 / 35,
        ..ModelShape::default()
    }
}

/// llama-server's defaults: 4096 tokens, one slot, f16 cache, everything offloaded.
fn settings() -> Settings {
    Settings {
        n_ctx: 4096,
        n_parallel: 1,
        cache_type_k: KvType::F16,
        cache_type_v: KvType::F16,
        n_gpu_layers: -1,
        n_ubatch: 512,
        n_batch: 2048,
        flash_attn: true,
        swa_full: false,
        kv_unified: false,
        mtp_heads: false,
    }
}

/// The source document's MacBook Pro: M5 Max, 128 GB unified, "~115 GB available for GPU
/// workloads", "~10 GB" kept for the OS, 546 GB/s. The document's GB are GiB: its table's
/// "24.76 GB" of weights is the 24.76 GiB llama.cpp reports.
fn m5_max_128gb() -> Machine {
    Machine {
        total_memory: 128 * GIB,
        unified: true,
        gpu_memory: None,
        gpu_limit: Some(115 * GIB),
        os_reserve: 10 * GIB,
        bandwidth: Some(546e9),
        memory_limit: None,
    }
}

/// A Linux box with a 24 GiB GPU (22 GiB free) and 64 GiB of RAM.
fn rtx_box() -> Machine {
    Machine {
        total_memory: 64 * GIB,
        unified: false,
        gpu_memory: Some(22 * GIB),
        gpu_limit: None,
        os_reserve: 4 * GIB,
        bandwidth: Some(1.0e12),
        memory_limit: None,
    }
}
