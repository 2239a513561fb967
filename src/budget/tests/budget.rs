//! Whole budgets: the source document's table, weight splits by `n_gpu_layers`, unified
//! against discrete memory, and the verdicts.

use super::super::context::Cells;
use super::super::kv::{kv_split, recurrent_split};
use super::super::offload::Offload;
use super::super::{budget, budget_with_draft, Fit, KvType, Machine, Pool, Settings};
use super::{gemma3_270m, m5_max_128gb, qwen36_35b_a3b, rtx_box, settings, smollm2, GIB, MIB};

/// The document's llama-server flags: -ngl 99 -fa 1 -c 131072 --cache-type-k/v q8_0
/// --parallel 2, default batch sizes; a unified cache, as Paddock's engine makes it.
fn document_settings() -> Settings {
    Settings {
        n_ctx: 131_072,
        n_parallel: 2,
        cache_type_k: KvType::Q8_0,
        cache_type_v: KvType::Q8_0,
        n_gpu_layers: 99,
        kv_unified: true,
        ..settings()
    }
}

#[test]
fn source_document_table_computed() {
    // The document's hand-made table: weights 24.76 + KV ~8 + compute ~3 + OS ~10 = ~46 GB,
    // ~69 GB left of ~115 GB.
    let b = budget(&qwen36_35b_a3b(), &document_settings(), &m5_max_128gb());
    let gib = |bytes: u64| bytes as f64 / GIB as f64;

    // Rows the document has right, to the byte: weights, OS reserve, the limit.
    assert_eq!(b.weights_gpu + b.weights_cpu, 2476 * GIB / 100);
    assert_eq!(b.os_reserve, 10 * GIB);
    assert_eq!((b.limit, b.pool), (115 * GIB, Pool::Unified));
    // -ngl 99 offloads all 40 layers and the head; only the input embeddings (and the
    // fixture's rounding, < 40 bytes) stay on the CPU.
    assert!(b.weights_cpu.abs_diff(248_320 * 2048 / 256 * 176) < 40);

    // KV: only the 10 attention layers keep one, 1.33 GiB (llama.cpp prints 1360.00 MiB for
    // this shape). The document's ~8 GB is a hand estimate six times too high.
    assert_eq!(b.kv_cache, 1360 * MIB);
    // The 30 delta-net layers keep 2.1 MiB of state per sequence: 125.62 MiB for two.
    assert_eq!(b.recurrent_state, 131_727_360);
    // Compute: 493 MiB peak (mostly logits for a 512-token ubatch, 485 MiB) and 132 MiB of
    // host-side inputs, plus the 1/8 margin: 0.69 GiB against the document's ~3 GB.
    assert_eq!(b.compute, (493 + 132) * MIB * 9 / 8);

    // Total 36.9 GiB, headroom 78.1 GiB, against the document's ~46 and ~69.
    assert!((gib(b.total) - 36.90).abs() < 0.01, "{}", gib(b.total));
    assert_eq!(b.headroom, (b.limit - b.total) as i64);
    assert!((gib(b.headroom as u64) - 78.10).abs() < 0.01);
    assert_eq!(b.fits, Fit::Fits);
}

#[test]
fn n_gpu_layers_offloads_the_head_first_then_the_last_layers() {
    let model = smollm2();
    let layer = 2_216_448;
    let head = 30_081_024;
    let split = |n_gpu_layers| {
        let b = budget(
            &model,
            &Settings {
                n_gpu_layers,
                ..settings()
            },
            &rtx_box(),
        );
        assert_eq!(b.weights_gpu + b.weights_cpu, model.weight_bytes);
        b.weights_gpu
    };
    // load_tensors: "offloading output layer to GPU" as soon as n_gpu_layers > 0
    assert_eq!(split(0), 0);
    assert_eq!(split(1), head);
    assert_eq!(split(11), head + 10 * layer);
    assert_eq!(split(31), head + 30 * layer);
    assert_eq!(split(99), split(31));
    assert_eq!(split(-1), split(31));
    assert_eq!(split(i32::MIN), split(31));
}

#[test]
fn kv_cache_and_state_follow_their_layer_to_the_gpu() {
    let model = qwen36_35b_a3b();
    // the head and layers 20..39
    let s = Settings {
        n_gpu_layers: 21,
        ..document_settings()
    };
    let offload = Offload::new(&model, &s, &rtx_box());
    let cells = Cells::new(&model, &s);
    let kv = kv_split(&model, &s, &cells, offload);
    let state = recurrent_split(&model, &cells, offload);
    // attention layers 3, 7, ..., 39: five on each side; delta-net layers: fifteen each
    assert_eq!((kv.gpu, kv.cpu), (1360 * MIB / 2, 1360 * MIB / 2));
    assert_eq!((state.gpu, state.cpu), (131_727_360 / 2, 131_727_360 / 2));
}

#[test]
fn a_draft_model_adds_its_weights_and_an_f16_kv_cache_of_the_same_cells() {
    let mac = m5_max_128gb();
    let q8 = Settings {
        cache_type_k: KvType::Q8_0,
        cache_type_v: KvType::Q8_0,
        ..document_settings()
    };
    let alone = budget(&qwen36_35b_a3b(), &q8, &mac);
    assert_eq!(alone.draft, 0);
    let with = budget_with_draft(&qwen36_35b_a3b(), Some(&smollm2()), &q8, &mac);
    // The draft's own budget, with the engine's f16 cache for it.
    let f16 = Settings {
        cache_type_k: KvType::F16,
        cache_type_v: KvType::F16,
        ..q8
    };
    let draft = budget(&smollm2(), &f16, &mac);
    let draft_need = draft.weights_gpu + draft.weights_cpu + draft.kv_cache + draft.compute;
    assert_eq!(with.draft, draft_need);
    assert_eq!(with.total, alone.total + draft_need);
    assert_eq!(
        (with.kv_cache, with.compute),
        (alone.kv_cache, alone.compute),
        "the model's own lines are unchanged"
    );
}

#[test]
fn unified_memory_is_one_pool_whatever_the_offload() {
    let mac = Machine {
        gpu_limit: None,
        ..m5_max_128gb()
    };
    let all = budget(&gemma3_270m(), &settings(), &mac);
    let none = budget(
        &gemma3_270m(),
        &Settings {
            n_gpu_layers: 0,
            ..settings()
        },
        &mac,
    );
    assert_eq!(all.limit, 128 * GIB); // no working-set figure: all of memory
    assert_eq!(
        all.weights_gpu + all.weights_cpu,
        none.weights_gpu + none.weights_cpu
    );
    assert_eq!(
        all.total,
        all.weights_gpu + all.weights_cpu + all.kv_cache + all.compute + all.os_reserve
    );
    assert_eq!(none.weights_gpu, 0);
}

#[test]
fn discrete_gpu_reports_the_tighter_pool() {
    let model = qwen36_35b_a3b(); // 24.76 GiB of weights
    let s = Settings {
        n_ctx: 32_768,
        ..document_settings()
    };
    // all on a 22 GiB GPU: short by what does not fit there
    let b = budget(&model, &s, &rtx_box());
    assert_eq!(b.pool, Pool::Gpu);
    assert_eq!(
        b.fits,
        Fit::DoesNotFit {
            short_by: b.total - b.limit
        }
    );
    assert_eq!(b.headroom, -((b.total - b.limit) as i64));
    // the head and 30 of 40 layers: 19 GiB on the GPU, still the tighter pool, and it fits
    let part = budget(
        &model,
        &Settings {
            n_gpu_layers: 31,
            ..s
        },
        &rtx_box(),
    );
    assert_eq!((part.pool, part.fits), (Pool::Gpu, Fit::Fits));
    assert!(part.weights_cpu > 6 * GIB);
    // with 2 GiB of RAM the CPU side is the one that does not fit
    let small_ram = Machine {
        total_memory: 2 * GIB,
        ..rtx_box()
    };
    let r = budget(
        &model,
        &Settings {
            n_gpu_layers: 31,
            ..s
        },
        &small_ram,
    );
    assert_eq!(r.pool, Pool::Ram);
    assert!(matches!(r.fits, Fit::DoesNotFit { .. }));
    // no GPU at all: everything in RAM
    let cpu_only = Machine {
        gpu_memory: None,
        ..rtx_box()
    };
    let c = budget(&model, &s, &cpu_only);
    assert_eq!((c.pool, c.weights_gpu, c.limit), (Pool::Ram, 0, 64 * GIB));
    assert_eq!(
        c.total,
        c.weights_cpu + c.kv_cache + c.recurrent_state + c.compute + c.os_reserve
    );
}

#[test]
fn verdict_thresholds() {
    assert_eq!(Fit::judge(90, 100), Fit::Fits); // 10% left
    assert_eq!(Fit::judge(91, 100), Fit::Tight);
    assert_eq!(Fit::judge(100, 100), Fit::Tight);
    assert_eq!(Fit::judge(105, 100), Fit::DoesNotFit { short_by: 5 });
    assert_eq!(Fit::judge(0, 0), Fit::Fits);
    assert_eq!(
        Fit::judge(u64::MAX, 0),
        Fit::DoesNotFit { short_by: u64::MAX }
    );
    assert_eq!(Fit::judge(0, u64::MAX), Fit::Fits);
}
