//! KV cache and recurrent state: exact bytes, checked against llama.cpp's log lines.

use super::super::context::Cells;
use super::super::kv::recurrent_split;
use super::super::offload::Offload;
use super::super::{kv_cache_bytes, KvType, ModelShape, Settings};
use super::{gemma3_270m, qwen36_35b_a3b, settings, smollm2, MIB};

#[test]
fn smollm2_4k_f16_is_llama_servers_90_mib() {
    // 30 layers x 4096 cells x 3 heads x 64 dims x (K + V) x 2 bytes;
    // llama-server -c 4096: "llama_kv_cache: size = 90.00 MiB (4096 cells, 30 layers, 1/1 seqs)"
    assert_eq!(
        kv_cache_bytes(&smollm2(), &settings()),
        30 * 4096 * 3 * 64 * 2 * 2
    );
    assert_eq!(kv_cache_bytes(&smollm2(), &settings()), 94_371_840);
}

#[test]
fn mtp_layers_have_a_cache_only_while_they_guess() {
    // The synthetic GLM-4.5-shaped model of tests/speculation_mtp.rs, 2 layers + 1 MTP layer
    // of 2 KV heads x 32 dims: llama.cpp (-c 4096) logs 2.00 MiB for the model's context and,
    // with draft-mtp, 1.00 MiB more for the MTP context's one layer.
    let shape = ModelShape {
        n_layer: 3,
        mtp_layers: 1,
        n_head_kv: vec![2; 3],
        head_dim_k: 32,
        head_dim_v: 32,
        ..ModelShape::default()
    };
    let plain = settings();
    let guessing = Settings {
        mtp_heads: true,
        ..settings()
    };
    assert_eq!(kv_cache_bytes(&shape, &plain), 2 * MIB);
    assert_eq!(kv_cache_bytes(&shape, &guessing), 3 * MIB);
}

#[test]
fn quantized_types_use_ggml_block_sizes() {
    // llama-server -c 4096 -fa on -ctk T -ctv T on SmolLM2, "size = ..." in MiB
    let printed = [
        (KvType::F32, 180.00),
        (KvType::F16, 90.00),
        (KvType::BF16, 90.00),
        (KvType::Q8_0, 47.81),
        (KvType::Q5_1, 33.75),
        (KvType::Q5_0, 30.94),
        (KvType::Q4_1, 28.12),
        (KvType::Q4_0, 25.31),
        (KvType::IQ4_NL, 25.31),
    ];
    for (kv_type, mib) in printed {
        let s = Settings {
            cache_type_k: kv_type,
            cache_type_v: kv_type,
            ..settings()
        };
        let got = kv_cache_bytes(&smollm2(), &s) as f64 / MIB as f64;
        assert!(
            (got - mib).abs() < 0.006,
            "{kv_type:?}: {got:.3} MiB, llama.cpp {mib}"
        );
    }
    // 192-wide rows of q8_0: 6 blocks of 34 bytes
    assert_eq!(KvType::Q8_0.row_bytes(192), 204);
    // K and V may differ: "K (q8_0): 23.91 MiB, V (f16): 45.00 MiB"
    let mixed = Settings {
        cache_type_k: KvType::Q8_0,
        ..settings()
    };
    assert_eq!(kv_cache_bytes(&smollm2(), &mixed), 30 * 4096 * (204 + 384));
}

#[test]
fn context_is_padded_and_split_per_sequence() {
    // -c 5000 -np 3: 5000 pads to 5120, 5120 / 3 = 1706 pads to 1792 cells per sequence,
    // "n_ctx is not divisible by n_seq_max - rounding down to 5376": 118.12 MiB
    let s = Settings {
        n_ctx: 5000,
        n_parallel: 3,
        ..settings()
    };
    assert_eq!(kv_cache_bytes(&smollm2(), &s), 30 * 5376 * 768);
    // a unified cache keeps the padded 5120 for all sequences together
    let unified = Settings {
        kv_unified: true,
        ..s
    };
    assert_eq!(kv_cache_bytes(&smollm2(), &unified), 30 * 5120 * 768);
    // n_ctx 0 means the training context
    let train = Settings {
        n_ctx: 0,
        ..settings()
    };
    assert_eq!(kv_cache_bytes(&smollm2(), &train), 30 * 8192 * 768);
}

#[test]
fn gemma3_sliding_layers_keep_window_plus_ubatch() {
    let kib = 1024; // one KV head of 256, K + V in f16: 1 KiB per cell and layer
    let cases = [
        // (n_ctx, n_parallel, unified, n_ubatch, swa_full, full cells x streams, swa cells x streams)
        // -c 4096: "non-SWA ... 4096 cells, 3 layers: 12.00 MiB", "SWA ... 1024 cells, 15 layers: 15.00 MiB"
        (4096, 1, false, 512, false, 4096, 1024),
        // -c 32768 -np 4: 8192 cells x 4 streams (96 MiB) and 1024 x 4 (60 MiB)
        (32768, 4, false, 512, false, 8192 * 4, 1024 * 4),
        // -c 32768 -np 4 -kvu: the window is kept once per sequence: 512 x 4 + 512 = 2560 (37.5 MiB)
        (32768, 4, true, 512, false, 32768, 2560),
        // -c 5000 -np 3 -ub 1024: min(1792, 512 + 1024) = 1536 per stream (67.50 MiB)
        (5000, 3, false, 1024, false, 1792 * 3, 1536 * 3),
        // -c 3000 -np 3 -kvu -ub 300: pad(512 x 3 + 300) = 2048 (30.00 MiB)
        (3000, 3, true, 300, false, 3072, 2048),
        // --swa-full: every layer keeps the whole context
        (4096, 1, false, 512, true, 4096, 4096),
    ];
    for (n_ctx, n_parallel, kv_unified, n_ubatch, swa_full, full, swa) in cases {
        let s = Settings {
            n_ctx,
            n_parallel,
            kv_unified,
            n_ubatch,
            swa_full,
            ..settings()
        };
        let want = (3 * full + 15 * swa) * kib;
        assert_eq!(kv_cache_bytes(&gemma3_270m(), &s), want, "{s:?}");
    }
}

#[test]
fn without_flash_attention_v_is_padded_to_the_widest_layer() {
    let mut model = smollm2();
    model.n_head_kv[0] = 6; // one layer with twice the KV heads
    let fa = kv_cache_bytes(&model, &settings());
    let no_fa = kv_cache_bytes(
        &model,
        &Settings {
            flash_attn: false,
            ..settings()
        },
    );
    let v_row = 3 * 64 * 2;
    assert_eq!(fa, 4096 * (31 * 2 * v_row));
    // transposed V: the 29 narrow layers store 6 heads of V too
    assert_eq!(no_fa, fa + 29 * 4096 * v_row);
}

#[test]
fn qwen36_hybrid_keeps_kv_on_attention_layers_only() {
    // 10 attention layers x 131072 cells x 512-wide rows of q8_0 (544 bytes) for K and V;
    // llama-server on a GGUF of this shape: "size = 1360.00 MiB (65536 cells, 10 layers, 2/2 seqs)"
    let s = Settings {
        n_ctx: 131_072,
        n_parallel: 2,
        cache_type_k: KvType::Q8_0,
        cache_type_v: KvType::Q8_0,
        ..settings()
    };
    assert_eq!(kv_cache_bytes(&qwen36_35b_a3b(), &s), 1360 * MIB);
    let unified = Settings {
        kv_unified: true,
        ..s
    };
    assert_eq!(kv_cache_bytes(&qwen36_35b_a3b(), &unified), 1360 * MIB);
}

#[test]
fn recurrent_state_is_per_sequence_not_per_token() {
    let model = qwen36_35b_a3b();
    let state = model.recurrent.as_ref().unwrap();
    // llama.cpp's log for Qwen3.6-35B-A3B: R 8.44 MiB and S 180 MiB over 30 layers x 3 rows
    assert_eq!((state.n_embd_r, state.n_embd_s), (24_576, 524_288));
    let bytes = |n_ctx, n_parallel| {
        let s = Settings {
            n_ctx,
            n_parallel,
            ..settings()
        };
        recurrent_split(&model, &Cells::new(&model, &s), Offload::NONE).total()
    };
    // "size = 125.62 MiB (2 cells, 40 layers, 2 seqs), R (f32): 5.62 MiB, S (f32): 120.00 MiB"
    assert_eq!(bytes(131_072, 2), 30 * 2 * (24_576 + 524_288) * 4);
    assert_eq!(bytes(4096, 2), bytes(131_072, 2));
    assert_eq!(bytes(4096, 4), 2 * bytes(4096, 2));
    assert_eq!(bytes(4096, 0), bytes(4096, 1));
}
