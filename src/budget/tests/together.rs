//! Several models at once: their needs add up in each pool with the OS reserve counted once,
//! and the user's memory cap limits what models take, not what the OS keeps.

use super::super::{budget, fit_beside, Fit, Machine, Pool};
use super::{gemma3_270m, m5_max_128gb, qwen36_35b_a3b, rtx_box, settings, smollm2, GIB, MIB};

/// A CPU-only box with 8 GiB of RAM and a 2 GiB reserve.
fn small_box() -> Machine {
    Machine {
        total_memory: 8 * GIB,
        unified: false,
        gpu_memory: None,
        gpu_limit: None,
        os_reserve: 2 * GIB,
        bandwidth: None,
        memory_limit: None,
    }
}

#[test]
fn models_side_by_side_add_their_needs_and_count_the_reserve_once() {
    let machine = small_box();
    let small = budget(&smollm2(), &settings(), &machine);
    let gemma = budget(&gemma3_270m(), &settings(), &machine);
    assert_eq!(small.pool, Pool::Ram);
    assert_eq!(small.on_gpu, 0, "no GPU: everything is on the CPU side");
    assert_eq!(small.on_cpu + machine.os_reserve, small.total);

    // Loaded together they take the sum, plus one reserve: what `budget` would say of a
    // model as big as both.
    let both = small.on_cpu + gemma.on_cpu + machine.os_reserve;
    let capped = Machine {
        memory_limit: Some(small.on_cpu + gemma.on_cpu),
        ..machine.clone()
    };
    assert_eq!(fit_beside(&gemma, &[&small], &capped), Fit::Tight);
    let one_mib_short = Machine {
        memory_limit: Some(small.on_cpu + gemma.on_cpu - MIB),
        ..machine.clone()
    };
    assert_eq!(
        fit_beside(&gemma, &[&small], &one_mib_short),
        Fit::DoesNotFit { short_by: MIB }
    );
    assert!(both < machine.total_memory);
    assert_eq!(fit_beside(&gemma, &[&small], &machine), Fit::Fits);
    // Nothing beside it: the model's own verdict.
    assert_eq!(fit_beside(&gemma, &[], &machine), gemma.fits);
}

#[test]
fn the_memory_cap_limits_the_models_not_the_reserve() {
    let capped = Machine {
        memory_limit: Some(GIB),
        ..m5_max_128gb()
    };
    let b = budget(&smollm2(), &settings(), &capped);
    // 1 GiB for models on top of the 10 GiB the OS keeps; under Metal's 115 GiB.
    assert_eq!(b.limit, 11 * GIB);
    assert_eq!(b.fits, Fit::Tight, "the reserve is most of the limit");
    // The document's 35B model does not fit a 1 GiB cap.
    let big = budget(&qwen36_35b_a3b(), &settings(), &capped);
    assert!(matches!(big.fits, Fit::DoesNotFit { .. }), "{big:?}");
    // A cap above what the machine has changes nothing.
    let loose = Machine {
        memory_limit: Some(1024 * GIB),
        ..m5_max_128gb()
    };
    assert_eq!(budget(&smollm2(), &settings(), &loose).limit, 115 * GIB);
}

#[test]
fn on_a_discrete_gpu_each_side_adds_up_in_its_own_pool() {
    let roomy = rtx_box();
    let gemma = budget(&gemma3_270m(), &settings(), &roomy);
    assert_eq!(gemma.pool, Pool::Gpu);
    assert!(gemma.on_gpu > 200 * MIB && gemma.on_cpu > 0, "{gemma:?}");
    // A GPU with room for one and a half: the second copy is short on the GPU, though RAM
    // would hold both CPU sides many times over.
    let gpu = gemma.on_gpu * 3 / 2;
    let machine = Machine {
        gpu_memory: Some(gpu),
        ..rtx_box()
    };
    let one = budget(&gemma3_270m(), &settings(), &machine);
    assert!(!matches!(one.fits, Fit::DoesNotFit { .. }), "{one:?}");
    assert_eq!(fit_beside(&one, &[], &machine), one.fits);
    assert_eq!(
        fit_beside(&one, &[&one], &machine),
        Fit::DoesNotFit {
            short_by: 2 * one.on_gpu - gpu
        }
    );
}
