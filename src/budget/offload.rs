//! Which layers llama.cpp puts on the GPU for a given `n_gpu_layers`, and so where each
//! layer's weights, KV cache and recurrent state live.

use super::shape::{Machine, ModelShape, Settings};

/// Bytes on the GPU and bytes in RAM. On Apple Silicon both come from one pool; the split
/// still says what Metal holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Split {
    pub gpu: u64,
    pub cpu: u64,
}

impl Split {
    pub fn add(&mut self, on_gpu: bool, bytes: u64) {
        let side = if on_gpu { &mut self.gpu } else { &mut self.cpu };
        *side = side.saturating_add(bytes);
    }

    pub fn total(self) -> u64 {
        self.gpu.saturating_add(self.cpu)
    }

    pub fn plus(self, other: Split) -> Split {
        Split {
            gpu: self.gpu.saturating_add(other.gpu),
            cpu: self.cpu.saturating_add(other.cpu),
        }
    }
}

/// The layer assignment of `llama_model_base::load_tensors` (llama-model.cpp): the output
/// head counts as layer `n_layer`, and the last `n_gpu_layers` of the `n_layer + 1` go to
/// the GPU. So the head is the first to be offloaded: `n_gpu_layers = 1` puts only the
/// head on the GPU. The input embeddings always stay on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Offload {
    first_gpu_layer: u64,
    /// The output head is on the GPU, and so is the bulk of the compute graph.
    pub output_on_gpu: bool,
}

impl Offload {
    /// Everything on the CPU.
    pub const NONE: Offload = Offload {
        first_gpu_layer: u64::MAX,
        output_on_gpu: false,
    };

    pub fn new(model: &ModelShape, settings: &Settings, machine: &Machine) -> Self {
        let slots = u64::from(model.n_layer) + 1;
        // Without a GPU device llama.cpp offloads nothing (`act_gpu_layers = 0`).
        let has_gpu = machine.unified || machine.gpu_memory.is_some();
        let n_gpu = match u64::try_from(settings.n_gpu_layers) {
            _ if !has_gpu => 0,
            Ok(n) => n.min(slots),
            // negative: all (`llama_model::n_gpu_layers`)
            Err(_) => slots,
        };
        Self {
            first_gpu_layer: slots - n_gpu,
            output_on_gpu: n_gpu >= 1,
        }
    }

    pub fn layer_on_gpu(self, layer: u64) -> bool {
        layer >= self.first_gpu_layer
    }

    /// Weight bytes per side: offloaded layers and the head on the GPU, the rest in RAM.
    pub fn weights(self, model: &ModelShape) -> Split {
        let mut gpu = (0u64..)
            .zip(&model.layer_bytes)
            .take(model.n_layer as usize)
            .filter(|&(il, _)| self.layer_on_gpu(il))
            .fold(0u64, |sum, (_, &bytes)| sum.saturating_add(bytes));
        if self.output_on_gpu {
            gpu = gpu.saturating_add(model.output_bytes);
        }
        // a shape whose parts add up to more than the file is clamped, not trusted
        let gpu = gpu.min(model.weight_bytes);
        Split {
            gpu,
            cpu: model.weight_bytes - gpu,
        }
    }
}
