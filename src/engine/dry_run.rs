//! What a context would take, asked of llama.cpp without taking it: the model is opened with
//! `no_alloc` (metadata and tensor shapes; no weight is read or allocated) and the context
//! made as the engine makes it, so llama.cpp reserves its compute graph on paper and logs the
//! buffers it would allocate. This is the dry run behind llama.cpp's own `common_fit_params`;
//! the memory budget takes its compute figure in place of its estimate (`budget::compute`).

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

use super::{
    allocated, backend, base_context_params, mtp, n_ctx, with_cache_types, Allocated, EngineError,
    EngineSpec,
};

/// The compute buffers `spec`'s context would reserve (`compute`, `compute_host`). KV and
/// recurrent buffers read 0 here: llama.cpp gives them placeholder buffers in a dry run.
/// Milliseconds for small models; call from a blocking task.
pub fn context_memory(spec: &EngineSpec) -> Result<Allocated, EngineError> {
    let backend = backend()?;
    let load_error = |reason: String| EngineError::Load {
        path: spec.model_path.clone(),
        reason,
    };
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(spec.n_gpu_layers)
        .with_load_mtp(spec.loads_mtp_heads())
        .with_no_alloc(true);
    // llama.cpp's many load lines go to the debug log: this is not a load.
    let (made, allocated) = allocated::capture(|| {
        let model = LlamaModel::load_from_file(backend, &spec.model_path, &params)
            .map_err(|e| load_error(e.to_string()))?;
        let params = with_cache_types(base_context_params(spec, n_ctx(spec, &model)), spec);
        let context = |params| {
            model
                .new_context(backend, params)
                .map(drop)
                .map_err(|e| EngineError::Context(e.to_string()))
        };
        // Guessing MTP layers run in a context of their own, with its own compute buffer.
        if spec.loads_mtp_heads() && mtp::mtp_layers(&model) > 0 {
            context(mtp::heads_params(&params))?;
        }
        context(params)
    });
    made?;
    allocated
        .filter(|a| a.compute > 0)
        .ok_or_else(|| load_error("llama.cpp reported no compute buffer".into()))
}
