//! The compute estimate against llama.cpp's own figures: "CPU compute buffer size" from
//! llama-server (`-lv 4`, logits for one token per slot) and llama-bench (`-v`, logits for
//! the whole ubatch, as Paddock's contexts have), llama.cpp commit 0c1e570, CPU backend.
//! Llama-3-8B-, 70B- and Qwen3.5-shaped rows come from GGUFs with those shapes and sparse
//! (all-zero) data; a SmolLM2-shaped one gave the real file's figures to the byte.

use super::super::compute::compute_split;
use super::super::context::Cells;
use super::super::{ModelShape, Settings};
use super::{gemma3_270m, qwen36_35b_a3b, settings, smollm2, MIB};

fn dense(n_embd: u32, n_head: u32, n_head_kv: u32, n_ff: u32) -> ModelShape {
    ModelShape {
        n_layer: 4,
        n_embd,
        n_vocab: 128_256,
        n_head,
        n_head_kv: vec![n_head_kv; 4],
        head_dim_k: 128,
        head_dim_v: 128,
        n_ff,
        ..ModelShape::default()
    }
}

struct Row {
    model: ModelShape,
    n_ctx: u32,
    n_parallel: u32,
    flash_attn: bool,
    n_ubatch: u32,
    n_batch: u32,
    kv_unified: bool,
    n_outputs: u64,
    measured_mib: f64,
}

fn row(
    model: &ModelShape,
    n_ctx: u32,
    n_parallel: u32,
    flash_attn: bool,
    measured_mib: f64,
) -> Row {
    Row {
        model: model.clone(),
        n_ctx,
        n_parallel,
        flash_attn,
        n_ubatch: 512,
        n_batch: 2048,
        kv_unified: false,
        n_outputs: n_parallel.into(), // llama-server asks logits of one token per slot
        measured_mib,
    }
}

fn rows() -> Vec<Row> {
    let smol = smollm2();
    let gemma = gemma3_270m();
    let llama_8b = dense(4096, 32, 8, 14_336);
    let llama_70b = dense(8192, 64, 8, 28_672);
    let qwen = qwen36_35b_a3b();
    let ub = |r: Row, n: u32| Row {
        n_ubatch: n,
        n_batch: n.max(r.n_batch),
        ..r
    };
    let bench = |r: Row| Row {
        n_outputs: 512,
        ..r
    }; // llama-bench: logits for every token
    vec![
        row(&smol, 512, 1, false, 16.38),
        row(&smol, 512, 1, true, 14.01),
        row(&smol, 4096, 1, false, 86.38),
        row(&smol, 4096, 1, true, 17.51),
        row(&smol, 16384, 1, false, 326.38),
        ub(row(&smol, 16384, 1, false, 1305.53), 2048),
        ub(row(&smol, 16384, 1, true, 118.05), 2048),
        row(&smol, 16384, 4, true, 17.51),
        bench(row(&smol, 512, 1, false, 98.25)),
        row(&gemma, 512, 1, false, 19.76),
        row(&gemma, 512, 1, true, 18.77),
        row(&gemma, 4096, 1, false, 51.76),
        row(&gemma, 4096, 1, true, 22.77),
        row(&gemma, 32768, 1, false, 331.76),
        row(&gemma, 32768, 1, true, 50.77),
        row(&gemma, 32768, 4, true, 26.77),
        Row {
            kv_unified: true,
            ..row(&gemma, 32768, 4, true, 52.27)
        },
        Row {
            n_batch: 1024,
            ..ub(row(&gemma, 5000, 3, true, 42.12), 1024)
        },
        Row {
            n_batch: 700,
            kv_unified: true,
            ..ub(row(&gemma, 3000, 3, true, 13.34), 300)
        },
        bench(row(&gemma, 512, 1, false, 515.75)),
        bench(row(&gemma, 512, 1, true, 514.50)),
        row(&llama_8b, 8192, 1, false, 572.01),
        row(&llama_8b, 8192, 1, true, 124.01),
        row(&llama_8b, 32768, 1, true, 148.01),
        ub(row(&llama_8b, 32768, 1, true, 592.05), 2048),
        row(&llama_70b, 32768, 1, false, 4244.01),
        row(&llama_70b, 32768, 1, true, 264.01),
        row(&qwen, 8192, 1, false, 314.01),
        row(&qwen, 8192, 1, true, 80.02),
        ub(row(&qwen, 8192, 1, true, 320.07), 2048),
        row(&qwen, 131_072, 1, true, 200.28),
        row(&qwen, 131_072, 2, true, 136.28),
    ]
}

fn estimate(r: &Row) -> u64 {
    let s = Settings {
        n_ctx: r.n_ctx,
        n_parallel: r.n_parallel,
        flash_attn: r.flash_attn,
        n_ubatch: r.n_ubatch,
        n_batch: r.n_batch,
        kv_unified: r.kv_unified,
        ..settings()
    };
    compute_split(&r.model, &s, &Cells::new(&r.model, &s), r.n_outputs, false).total()
}

#[test]
fn estimate_is_an_upper_bound_within_a_fifth_of_llama_cpp() {
    for r in rows() {
        let ratio = estimate(&r) as f64 / MIB as f64 / r.measured_mib;
        assert!(
            (1.0..1.2).contains(&ratio),
            "n_ctx {} np {} fa {} ub {}: {:.1}% of llama.cpp's {} MiB",
            r.n_ctx,
            r.n_parallel,
            r.flash_attn,
            r.n_ubatch,
            ratio * 100.0,
            r.measured_mib
        );
    }
}

#[test]
fn gpu_backends_add_a_host_copy_of_the_inputs() {
    let model = smollm2();
    let s = settings();
    let cells = Cells::new(&model, &s);
    let cpu = compute_split(&model, &s, &cells, 512, false);
    let gpu = compute_split(&model, &s, &cells, 512, true);
    assert_eq!((cpu.gpu, gpu.gpu), (0, cpu.cpu));
    // f16 mask of 4096 x 512 plus one hidden state of 576 x 512 f32, with the 1/8 margin
    let inputs = 4096 * 512 * 2 + 576 * 512 * 4;
    assert_eq!(gpu.cpu, inputs + inputs / 8);
}

#[test]
fn logits_for_a_whole_ubatch_dominate_large_vocabularies() {
    // Gemma 3's 262k vocabulary: 512 x 262144 x 4 bytes = 512 MiB of logits alone
    let model = gemma3_270m();
    let s = settings();
    let one = compute_split(&model, &s, &Cells::new(&model, &s), 1, false).total();
    let all = compute_split(&model, &s, &Cells::new(&model, &s), 512, false).total();
    assert!(one < 30 * MIB && all > 512 * MIB, "{one} {all}");
}
