//! The largest context that fits, the tg ceiling, and totality: no input panics.

use super::super::{
    budget, kv_cache_bytes, largest_context, tg_ceiling, Fit, KvType, Machine, ModelShape,
    RecurrentShape, Settings,
};
use super::{gemma3_270m, m5_max_128gb, qwen36_35b_a3b, rtx_box, settings, smollm2, GIB};

fn fits(model: &ModelShape, s: &Settings, m: &Machine, n_ctx: u32) -> bool {
    budget(model, &Settings { n_ctx, ..*s }, m).fits == Fit::Fits
}

#[test]
fn largest_context_is_exact() {
    // bound by: a 400 MiB GPU, 1.5 GiB of RAM, the K·Q matrix without flash attention,
    // four slots on the document's Mac
    let cases = [
        (
            smollm2(),
            settings(),
            Machine {
                gpu_memory: Some(400 << 20),
                ..rtx_box()
            },
        ),
        (
            gemma3_270m(),
            settings(),
            Machine {
                total_memory: 3 * GIB / 2,
                gpu_memory: None,
                os_reserve: GIB / 4,
                ..rtx_box()
            },
        ),
        (
            qwen36_35b_a3b(),
            Settings {
                flash_attn: false,
                ..settings()
            },
            Machine {
                gpu_limit: Some(48 * GIB),
                ..m5_max_128gb()
            },
        ),
        (
            qwen36_35b_a3b(),
            Settings {
                n_parallel: 4,
                cache_type_k: KvType::Q4_0,
                ..settings()
            },
            m5_max_128gb(),
        ),
    ];
    for (model, s, machine) in cases {
        let n = largest_context(&model, &s, &machine).expect("256 tokens fit");
        assert_eq!(n % 256, 0);
        assert!(fits(&model, &s, &machine, n), "{n} should fit");
        assert!(
            !fits(&model, &s, &machine, n + 256),
            "{} should not fit",
            n + 256
        );
    }
}

#[test]
fn largest_context_may_pass_the_training_context() {
    // SmolLM2 was trained on 8k, but 2 GiB hold far more cells: the caller caps it
    let n = largest_context(
        &smollm2(),
        &settings(),
        &Machine {
            total_memory: 2 * GIB,
            ..Machine::default()
        },
    );
    assert!(n.unwrap() > 8192);
    // the document's Mac holds well over Qwen's 262k: only 10 of 40 layers keep KV
    let q = largest_context(&qwen36_35b_a3b(), &settings(), &m5_max_128gb()).unwrap();
    assert!(q > 1_000_000, "{q}");
}

#[test]
fn largest_context_grows_with_memory() {
    let mut last = 0;
    for gib in [1, 2, 3, 4, 6, 8, 12, 16, 24, 32] {
        let machine = Machine {
            total_memory: gib * GIB,
            os_reserve: GIB / 2,
            ..Machine::default()
        };
        let n = largest_context(&gemma3_270m(), &settings(), &machine).unwrap_or(0);
        assert!(n >= last, "{gib} GiB: {n} < {last}");
        last = n;
    }
    assert!(last > 0);
}

#[test]
fn largest_context_none_when_nothing_fits() {
    let tiny = Machine {
        total_memory: 64 << 20,
        ..Machine::default()
    };
    assert_eq!(largest_context(&gemma3_270m(), &settings(), &tiny), None);
    let empty = Machine::default();
    assert_eq!(largest_context(&smollm2(), &settings(), &empty), None);
}

#[test]
fn tg_ceiling_is_bandwidth_over_active_bytes() {
    let model = ModelShape {
        active_bytes: 2_000_000_000,
        ..ModelShape::default()
    };
    let machine = Machine {
        bandwidth: Some(546e9),
        ..Machine::default()
    };
    assert_eq!(tg_ceiling(&model, &machine), Some(273.0));
    // the document's model: a ceiling of ~240 t/s, above the 99 t/s it measured
    let q = tg_ceiling(&qwen36_35b_a3b(), &m5_max_128gb()).unwrap();
    assert!((230.0..250.0).contains(&q), "{q}");
    for bandwidth in [
        None,
        Some(0.0),
        Some(-1.0),
        Some(f64::NAN),
        Some(f64::INFINITY),
    ] {
        assert_eq!(
            tg_ceiling(
                &model,
                &Machine {
                    bandwidth,
                    ..machine.clone()
                }
            ),
            None
        );
    }
    assert_eq!(tg_ceiling(&ModelShape::default(), &machine), None);
}

#[test]
fn every_function_is_total() {
    let huge = ModelShape {
        weight_bytes: u64::MAX,
        n_layer: 4,
        mtp_layers: 1,
        layer_bytes: vec![u64::MAX; 4],
        output_bytes: u64::MAX,
        n_ctx_train: u32::MAX,
        n_embd: u32::MAX,
        n_vocab: u32::MAX,
        n_head: u32::MAX,
        n_head_kv: vec![u32::MAX; 4],
        head_dim_k: u32::MAX,
        head_dim_v: u32::MAX,
        n_ff: u32::MAX,
        n_expert_used: u32::MAX,
        swa_window: Some(u32::MAX),
        swa_layers: vec![true, false],
        recurrent: Some(RecurrentShape::ssm(
            vec![true; 9],
            u32::MAX,
            u32::MAX,
            u32::MAX,
            u32::MAX,
        )),
        active_bytes: u64::MAX,
    };
    // shapes whose lists disagree with n_layer
    let ragged = ModelShape {
        n_layer: u32::MAX,
        layer_bytes: vec![1; 3],
        n_head_kv: vec![8; 7],
        ..smollm2()
    };
    let extremes = [
        settings(),
        Settings {
            n_ctx: 0,
            n_parallel: 0,
            n_ubatch: 0,
            n_batch: 0,
            n_gpu_layers: i32::MIN,
            ..settings()
        },
        Settings {
            n_ctx: u32::MAX,
            n_parallel: u32::MAX,
            n_ubatch: u32::MAX,
            n_batch: u32::MAX,
            ..settings()
        },
        Settings {
            n_gpu_layers: i32::MAX,
            flash_attn: false,
            swa_full: true,
            kv_unified: true,
            ..settings()
        },
    ];
    let machines = [
        Machine::default(),
        Machine {
            unified: true,
            gpu_limit: Some(0),
            ..Machine::default()
        },
        Machine {
            total_memory: u64::MAX,
            gpu_memory: Some(u64::MAX),
            os_reserve: u64::MAX,
            ..rtx_box()
        },
        m5_max_128gb(),
    ];
    for model in [ModelShape::default(), huge, ragged, smollm2()] {
        for s in &extremes {
            kv_cache_bytes(&model, s);
            for m in &machines {
                let b = budget(&model, s, m);
                assert_eq!(
                    b.headroom.is_negative(),
                    matches!(b.fits, Fit::DoesNotFit { .. })
                );
                tg_ceiling(&model, m);
            }
        }
        largest_context(&model, &settings(), &m5_max_128gb());
    }
}
