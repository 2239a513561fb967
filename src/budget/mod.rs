//! Memory budget: what a model will take before it is loaded, whether it fits, the largest
//! context that does, and the generation-speed ceiling. Pure functions from GGUF facts
//! ([`ModelShape`]), context settings ([`Settings`]) and machine facts ([`Machine`]); no I/O.
//!
//! The parts, in bytes, following the llama.cpp vendored by `llama-cpp-sys-2` 0.1.161:
//!
//! | part            | how                                                                  |
//! |-----------------|----------------------------------------------------------------------|
//! | weights         | exact: tensor bytes, split GPU/CPU by `n_gpu_layers` like llama.cpp  |
//! | KV cache        | exact: cells × KV heads × head dim × type size, per attention layer   |
//! | recurrent state | exact: f32 state per recurrent layer and sequence                     |
//! | compute buffer  | llama.cpp's dry run before a load, else an estimate (`compute.rs`)    |
//! | OS reserve      | the caller's figure for what macOS and other apps keep                |
//!
//! The compute estimate assumes contexts made as Paddock's engine makes them: llama.cpp's
//! `n_outputs_max` left at its default (= `n_batch`), so the reserved graph holds logits for
//! a whole ubatch (`ubatch × n_vocab × 4` bytes; 485 MiB for a 248k vocabulary at ubatch
//! 512). It is an upper bound within ~20%; before a load Paddock asks llama.cpp instead
//! (a dry run that allocates nothing, `engine::dry_run`) and passes its figure to
//! [`budget_with_compute`]. The estimate serves where a dry run per model is not worth it: the
//! whole catalog, and the search for the largest context.
//!
//! The source document's setup (Qwen 3.6 35B-A3B at 128k, q8_0 cache, 2 slots, on a 128 GB
//! M5 Max with ~115 GB for the GPU) comes out at 24.76 GiB of weights, 1.33 GiB of KV cache
//! (its table guessed ~8), 0.12 GiB of recurrent state, 0.69 GiB of compute (guessed ~3)
//! and the 10 GiB reserve: 36.9 GiB, leaving 78 GiB rather than ~69 (`tests/budget.rs`).
//!
//! On Apple Silicon everything comes from one pool, limited by Metal's working-set size
//! when known. On a discrete GPU, the GPU parts count against its free memory and the rest
//! (with the OS reserve) against RAM; the budget reports the tighter of the two ([`Pool`]).

mod compute;
mod context;
mod kv;
mod offload;
mod shape;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use kv::kv_cache_bytes;
pub use shape::{KvType, Machine, ModelShape, RecurrentShape, Settings};

use context::Cells;
use offload::{Offload, Split};

/// What loading a model with given settings takes on a machine, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub weights_gpu: u64,
    pub weights_cpu: u64,
    pub kv_cache: u64,
    pub recurrent_state: u64,
    /// llama.cpp's own figure when `compute_exact` (its dry run), else an estimate.
    pub compute: u64,
    #[serde(default)]
    pub compute_exact: bool,
    /// A draft model for speculative decoding: its weights, KV cache and compute (0: none).
    #[serde(default)]
    pub draft: u64,
    pub os_reserve: u64,
    /// What the model takes on the GPU and in RAM, every part, without the OS reserve (on
    /// unified memory the sides share one pool). Models loaded together add up these.
    #[serde(default)]
    pub on_gpu: u64,
    #[serde(default)]
    pub on_cpu: u64,
    /// What counts against `limit`: everything on unified memory, one side on discrete GPUs.
    pub total: u64,
    pub limit: u64,
    /// `limit - total`, negative when over.
    pub headroom: i64,
    pub fits: Fit,
    /// Which memory `total` and `limit` are about.
    pub pool: Pool,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Fit {
    Fits,
    /// Fits with less than 10% of the limit left.
    Tight,
    DoesNotFit {
        short_by: u64,
    },
}

/// The memory a budget's `total` and `limit` refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Apple Silicon: GPU and CPU share it.
    Unified,
    /// A discrete GPU's free memory.
    Gpu,
    /// System RAM (the CPU side, or everything on a machine without a GPU).
    Ram,
}

/// The memory a model needs with `settings` on `machine`, and whether it fits.
pub fn budget(model: &ModelShape, settings: &Settings, machine: &Machine) -> Budget {
    budget_with_draft(model, None, settings, machine)
}

/// The same, with a draft model beside it: a second set of weights, and a KV cache of the same
/// cells in f16 (as the engine makes the draft's context).
pub fn budget_with_draft(
    model: &ModelShape,
    draft: Option<&ModelShape>,
    settings: &Settings,
    machine: &Machine,
) -> Budget {
    budget_of(model, draft, settings, machine, None)
}

/// Compute buffer bytes llama.cpp reported for a context in its no-alloc dry run
/// (`engine::dry_run`): on the GPU side, and in host memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownCompute {
    pub gpu: u64,
    pub host: u64,
}

/// The budget with llama.cpp's compute figure in place of the estimate: every part is then
/// llama.cpp's own accounting.
pub fn budget_with_compute(
    model: &ModelShape,
    draft: Option<&ModelShape>,
    settings: &Settings,
    machine: &Machine,
    compute: KnownCompute,
) -> Budget {
    budget_of(model, draft, settings, machine, Some(compute))
}

fn budget_of(
    model: &ModelShape,
    draft: Option<&ModelShape>,
    settings: &Settings,
    machine: &Machine,
    compute: Option<KnownCompute>,
) -> Budget {
    let mut main = Needs::of(model, settings, machine);
    if let Some(known) = compute {
        main.compute = Split {
            gpu: known.gpu,
            cpu: known.host,
        };
    }
    let draft_settings = Settings {
        cache_type_k: KvType::F16,
        cache_type_v: KvType::F16,
        ..*settings
    };
    let draft = draft.map_or(Split::default(), |d| {
        Needs::of(d, &draft_settings, machine).total()
    });
    let need = main.total().plus(draft);

    let (pool, total, limit) = pool_and_limit(need, machine);
    Budget {
        weights_gpu: main.weights.gpu,
        weights_cpu: main.weights.cpu,
        kv_cache: main.kv.total(),
        recurrent_state: main.recurrent.total(),
        compute: main.compute.total(),
        compute_exact: compute.is_some(),
        draft: draft.total(),
        os_reserve: machine.os_reserve,
        on_gpu: need.gpu,
        on_cpu: need.cpu,
        total,
        limit,
        headroom: headroom(total, limit),
        fits: Fit::judge(total, limit),
        pool,
    }
}

/// Whether a model fits beside models already loaded, every budget made for `machine`: their
/// needs add up on each side, and the OS reserve counts once.
pub fn fit_beside(new: &Budget, loaded: &[&Budget], machine: &Machine) -> Fit {
    let need = loaded.iter().fold(
        Split {
            gpu: new.on_gpu,
            cpu: new.on_cpu,
        },
        |sum, b| {
            sum.plus(Split {
                gpu: b.on_gpu,
                cpu: b.on_cpu,
            })
        },
    );
    let (_, total, limit) = pool_and_limit(need, machine);
    Fit::judge(total, limit)
}

/// One model's memory, part by part, each split between GPU and CPU.
struct Needs {
    weights: Split,
    kv: Split,
    recurrent: Split,
    compute: Split,
}

impl Needs {
    fn of(model: &ModelShape, settings: &Settings, machine: &Machine) -> Self {
        let cells = Cells::new(model, settings);
        let offload = Offload::new(model, settings, machine);
        Self {
            weights: offload.weights(model),
            kv: kv::kv_split(model, settings, &cells, offload),
            recurrent: kv::recurrent_split(model, &cells, offload),
            // Paddock's contexts keep n_outputs_max at its default, so every ubatch token has
            // logits.
            compute: compute::compute_split(
                model,
                settings,
                &cells,
                cells.ubatch,
                offload.output_on_gpu,
            ),
        }
    }

    fn total(&self) -> Split {
        self.weights
            .plus(self.kv)
            .plus(self.recurrent)
            .plus(self.compute)
    }
}

/// The largest `n_ctx` (a multiple of 256, at least 256) for which the budget still
/// [`Fit::Fits`], other settings unchanged; `None` if even 256 does not. It may exceed the
/// model's `n_ctx_train`: memory allows it, but the model was not trained for it (llama.cpp
/// warns "possible training context overflow"), so callers should cap it there.
pub fn largest_context(model: &ModelShape, settings: &Settings, machine: &Machine) -> Option<u32> {
    const STEP: u32 = 256;
    let fits = |steps: u32| {
        let settings = Settings {
            n_ctx: steps * STEP,
            ..*settings
        };
        budget(model, &settings, machine).fits == Fit::Fits
    };
    // Memory grows with n_ctx, so binary search: `lo` fits, `hi + 1` does not.
    let (mut lo, mut hi) = (1, u32::MAX / STEP);
    if !fits(lo) {
        return None;
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo * STEP)
}

/// The generation-speed ceiling in tokens/s: each token reads the active weights once, so
/// `bandwidth / active_bytes` (memory-bound decoding). Real speed is lower: kernels reach
/// part of the bandwidth, and the KV cache is read too, more so at long context. `None`
/// when the bandwidth or the active bytes are unknown.
pub fn tg_ceiling(model: &ModelShape, machine: &Machine) -> Option<f64> {
    let bandwidth = machine.bandwidth.filter(|b| b.is_finite() && *b > 0.0)?;
    (model.active_bytes > 0).then(|| bandwidth / model.active_bytes as f64)
}

impl Fit {
    fn judge(total: u64, limit: u64) -> Fit {
        match limit.checked_sub(total) {
            None => Fit::DoesNotFit {
                short_by: total - limit,
            },
            Some(left) if u128::from(left) * 10 < u128::from(limit) => Fit::Tight,
            Some(_) => Fit::Fits,
        }
    }

    /// Worse verdicts sort higher.
    fn severity(self) -> u8 {
        match self {
            Fit::Fits => 0,
            Fit::Tight => 1,
            Fit::DoesNotFit { .. } => 2,
        }
    }
}

/// Which pool limits the model, with what it needs there and its limit.
fn pool_and_limit(need: Split, machine: &Machine) -> (Pool, u64, u64) {
    let os = machine.os_reserve;
    // The user's cap is on the models' part; the pool's own limit includes the OS reserve.
    let capped = |limit: u64, reserve: u64| {
        machine
            .memory_limit
            .map_or(limit, |cap| limit.min(cap.saturating_add(reserve)))
    };
    if machine.unified {
        let limit = capped(machine.gpu_limit.unwrap_or(machine.total_memory), os);
        return (Pool::Unified, need.total().saturating_add(os), limit);
    }
    let ram = (
        Pool::Ram,
        need.cpu.saturating_add(os),
        capped(machine.total_memory, os),
    );
    let Some(vram) = machine.gpu_memory else {
        return ram;
    };
    let gpu = (Pool::Gpu, need.gpu, capped(vram, 0));
    // The tighter pool: the worse verdict, then the smaller headroom.
    let key = |(_, total, limit): &(Pool, u64, u64)| {
        let fit = Fit::judge(*total, *limit);
        (std::cmp::Reverse(fit.severity()), headroom(*total, *limit))
    };
    std::cmp::min_by_key(gpu, ram, key)
}

fn headroom(total: u64, limit: u64) -> i64 {
    let diff = i128::from(limit) - i128::from(total);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}
