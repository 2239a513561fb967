//! The engine owns llama.cpp. One dedicated OS thread per loaded model holds the model's
//! context (llama contexts are not `Send`) and runs the scheduler loop over N slots with
//! continuous batching and per-slot prefix reuse. The rest of Paddock talks to it only through
//! [`EngineHandle`]: `submit` a [`Request`], read [`Event`]s from the returned receiver, drop
//! the receiver to cancel. Knows nothing of HTTP or JSON.

mod activity;
mod allocated;
mod draft_model;
pub mod dry_run;
mod embed;
mod error;
mod exited;
pub mod hosted;
mod mtp;
mod output;
pub mod probe;
pub mod rpc;
mod sampling;
mod scheduler;
mod slot;
mod spec;
mod speculation;
mod types;
mod worker;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

pub use activity::{Activity, ActivityHook, ActivityNow};
pub use allocated::Allocated;
pub use error::EngineError;
pub use exited::Exited;
pub use spec::{EngineSpec, FlashAttn, KvType, LoadProgress, SamplingDefaults};
pub use speculation::{DraftStats, Speculation};
pub use types::{
    Candidate, Completion, Event, FinishReason, Grammar, ModelInfo, Request, SamplingParams,
    Timings, TokenDelta, TokenId, TokenLogprob, Usage,
};

use draft_model::DraftModel;
pub use embed::MAX_EMBED_TOKENS;
pub use sampling::schema_grammar;
pub use slot::SlotStatus;
use worker::{Command, Submission, Worker, WorkerConfig};

/// llama.cpp's backend is process-wide and may be initialised once; `get_or_init` makes
/// concurrent first loads wait for the one initialisation.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            #[cfg(feature = "cuda-dl")]
            load_backend_modules();
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Context(e.clone()))
}

/// With ggml's backends built as loadable modules (feature `cuda-dl`) none is registered until
/// loaded: load the best of each kind (CUDA, CPU variant, ...) found in the build's backend
/// folder, the executable's folder or the current one (docs/gpu.md).
#[cfg(feature = "cuda-dl")]
fn load_backend_modules() {
    // SAFETY: takes no arguments; called once, from `backend()`'s OnceLock, before llama.cpp's
    // backend is initialised.
    unsafe { llama_cpp_sys_2::ggml_backend_load_all() }
}

/// A GPU this build of llama.cpp can use.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// The driver's name for it ("NVIDIA H100 80GB HBM3", "Apple M4 Max").
    pub description: String,
    /// Its memory; for Metal on Apple Silicon, the working set macOS grants the GPU.
    pub memory_total: u64,
    /// Shares the host's memory (Apple Silicon, integrated GPUs).
    pub integrated: bool,
    /// Lent by another machine's worker ([`rpc::connect`]); `memory_free` is what it has left.
    pub remote: bool,
    pub memory_free: u64,
}

/// The GPUs llama.cpp sees (none in a CPU build, or when the backend cannot start), with the
/// devices of RPC workers, which llama.cpp uses as it uses GPUs.
pub fn gpus() -> Vec<Gpu> {
    use llama_cpp_2::LlamaBackendDeviceType as Kind;
    if backend().is_err() {
        return Vec::new();
    }
    llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .filter(|d| matches!(d.device_type, Kind::Gpu | Kind::IntegratedGpu))
        .map(|d| Gpu {
            description: d.description,
            memory_total: d.memory_total as u64,
            integrated: matches!(d.device_type, Kind::IntegratedGpu),
            remote: d.backend == "RPC",
            memory_free: d.memory_free as u64,
        })
        .collect()
}

/// Which llama.cpp this is and what it was built with: the vendoring crate's version and
/// llama.cpp's own feature line ("CPU : SSE3 = 1 | AVX2 = 1 | ..."), for benchmark records.
pub fn llama_cpp_version() -> String {
    let _ = backend(); // the feature line lists the backends registered by then
                       // SAFETY: llama_print_system_info returns a pointer to a static, NUL-terminated buffer.
    let features = unsafe { std::ffi::CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
    format!(
        "llama-cpp-sys-2 {} ({})",
        env!("PADDOCK_LLAMA_CPP_SYS_VERSION"),
        features
            .to_string_lossy()
            .trim()
            .trim_end_matches('|')
            .trim()
    )
}

/// A cheap, cloneable handle to one loaded model and its engine thread. When the last handle
/// is dropped the thread finishes the work it has and exits, freeing the model.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Shared>,
}

struct Shared {
    model: Arc<LlamaModel>,
    info: ModelInfo,
    inbox: Sender<Command>,
    queued: Arc<AtomicUsize>,
    activity: Arc<Activity>,
    max_queue: usize,
    /// End-of-generation tokens, found once at load; masked for `ignore_eos` requests.
    eog_tokens: Vec<TokenId>,
    exited: Exited,
}

impl EngineHandle {
    /// Loads the model and starts its engine thread. Blocks until the model and context are
    /// ready (seconds for large models: call from a blocking task) and returns their facts,
    /// or the load error; never a silently dead thread.
    pub fn spawn(spec: EngineSpec) -> Result<Self, EngineError> {
        let backend = backend()?;
        if !spec.model_path.is_file() {
            return Err(EngineError::Load {
                path: spec.model_path.clone(),
                reason: "no such file".into(),
            });
        }
        if spec.mlock && !backend.supports_mlock() {
            tracing::warn!(
                "--mlock requested but this build cannot lock memory; the model may be paged out"
            );
        }
        let load_mtp = spec.loads_mtp_heads();
        let mut params = LlamaModelParams::default()
            .with_n_gpu_layers(spec.n_gpu_layers)
            .with_use_mlock(spec.mlock)
            .with_load_mtp(load_mtp);
        if let Some(LoadProgress(report)) = spec.load_progress.clone() {
            params = params.with_progress_callback(move |p| {
                report(p);
                true // go on loading
            });
        }
        let model =
            LlamaModel::load_from_file(backend, &spec.model_path, &params).map_err(|e| {
                EngineError::Load {
                    path: spec.model_path.clone(),
                    reason: e.to_string(),
                }
            })?;
        let model = Arc::new(model);
        let n_ctx = n_ctx(&spec, &model);
        let mut info = model_info(&model, n_ctx, spec.n_parallel);
        spec.sampling.apply(&mut info.sampling);
        // A recurrent state cannot drop a rejected guess: no speculation there (as llama-server).
        info.speculation = if model.is_recurrent() || model.is_hybrid() {
            Speculation::off()
        } else {
            spec.speculation.clone()
        };
        let heads = mtp::mtp_layers(&model);
        if info.speculation.mtp && heads > 0 && !load_mtp && info.speculation.draft_max > 0 {
            tracing::warn!(
                n_parallel = spec.n_parallel,
                "the model has MTP heads, but they guess for one slot only: start it with --parallel 1 to use them"
            );
        }
        info.speculation.mtp &= load_mtp && heads > 0;
        let draft = match (&info.speculation.draft_model, info.speculation.is_on()) {
            (Some(path), true) => Some(Arc::new(draft_model::load(
                backend,
                &model,
                path,
                spec.n_gpu_layers,
            )?)),
            _ => None,
        };
        let swa_window = meta_u32(
            &model,
            &format!("{}.attention.sliding_window", info.architecture),
        );

        let queued = Arc::new(AtomicUsize::new(0));
        let (inbox, rx) = mpsc::channel();
        let (ready_tx, ready_rx) =
            mpsc::channel::<Result<(Option<Allocated>, bool), EngineError>>();
        let thread_model = Arc::clone(&model);
        let thread_queued = Arc::clone(&queued);
        let activity = Arc::new(Activity::new(spec.on_activity.clone()));
        let thread_activity = Arc::clone(&activity);
        let n_batch = n_batch(&spec);
        let base_params = base_context_params(&spec, n_ctx);
        let draft_params = base_params.clone();
        let ctx_params = with_cache_types(base_params, &spec);
        let mtp_params = info.speculation.mtp.then(|| ctx_params.clone());
        let config = WorkerConfig {
            n_ctx,
            n_batch,
            context_shift: spec.context_shift,
            swa_window,
            n_threads: spec.n_threads_batch,
            speculation: info.speculation.clone(),
        };
        let n_parallel = spec.n_parallel;
        let exited = Exited::default();
        let thread_exited = exited.clone();
        std::thread::Builder::new()
            .name(format!("engine:{}", model_id(&spec.model_path)))
            .spawn(move || {
                // Declared first, so dropped last: after the context and the models.
                let _exited = thread_exited.on_drop();
                let (thread_model, draft) = (thread_model, draft);
                let (made, allocated) = allocated::capture(|| {
                    let ctx = thread_model
                        .new_context(backend, ctx_params)
                        .map_err(|e| e.to_string())?;
                    mtp::Target::new(&thread_model, backend, ctx, mtp_params, &config.speculation)
                });
                let ctx = match made {
                    Ok(ctx) => ctx,
                    Err(e) => {
                        let _ = ready_tx.send(Err(EngineError::Context(e)));
                        return;
                    }
                };
                let heads = matches!(ctx, mtp::Target::Mtp { .. });
                let draft = match draft.as_deref() {
                    Some(model) => {
                        match DraftModel::new(model, backend, draft_params, n_parallel) {
                            Ok(d) => Some(d),
                            Err(e) => {
                                let _ = ready_tx.send(Err(EngineError::Context(e)));
                                return;
                            }
                        }
                    }
                    None => None,
                };
                let _ = ready_tx.send(Ok((allocated, heads)));
                Worker::new(&thread_model, ctx, config, n_parallel, thread_queued, draft)
                    .run(rx, &thread_activity);
            })
            .map_err(|e| EngineError::Context(e.to_string()))?;
        (info.allocated, info.speculation.mtp) =
            ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        tracing::info!(
            model = %spec.model_path.display(),
            n_ctx,
            n_parallel,
            trained = info.n_ctx_train,
            speculation = %info.speculation,
            "model loaded"
        );
        if n_ctx > info.n_ctx_train {
            tracing::warn!(n_ctx, trained = info.n_ctx_train, "context is larger than the model was trained for; quality may drop past the trained length");
        }
        let eog_tokens = (0..info.n_vocab)
            .filter(|&t| model.vocab().is_eog(LlamaToken(t)))
            .collect();
        Ok(Self {
            inner: Arc::new(Shared {
                model,
                info,
                inbox,
                queued,
                activity,
                max_queue: spec.max_queue,
                eog_tokens,
                exited,
            }),
        })
    }

    /// Loads the model in a process of its own that spreads it over RPC `workers`: a worker
    /// lost mid-use then ends that process, not this one ([`hosted`]).
    pub fn spawn_hosted(spec: EngineSpec, workers: &[String]) -> Result<Self, EngineError> {
        hosted::spawn(spec, workers)
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// Whether its engine has ended while handles remain: the process hosting it died.
    pub fn has_exited(&self) -> bool {
        self.inner.exited.wait(std::time::Duration::ZERO)
    }

    /// Busy slots and the last request's speed, as of now.
    pub fn activity(&self) -> ActivityNow {
        self.inner.activity.now()
    }

    /// The engine thread's end, for a shutdown to wait on. The thread ends once every handle
    /// is dropped and the work it has is done.
    pub fn exited(&self) -> Exited {
        self.inner.exited.clone()
    }

    /// How many handles to this engine exist: the router's, and one per request between
    /// choosing the model and its last token (a request waiting for a slot is not busy yet,
    /// but it holds a handle).
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Tokenizes text, parsing special-token text (e.g. `<|im_start|>`) as the special tokens.
    /// `add_special` adds BOS/EOS where the model wants them.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<TokenId> {
        self.inner
            .model
            .vocab()
            .tokenize(text.as_bytes(), add_special, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// One L2-normalised embedding per input. Inputs longer than the embedding context
    /// ([`MAX_EMBED_TOKENS`]) or with ids outside the vocabulary are refused.
    pub async fn embed(&self, inputs: Vec<Vec<TokenId>>) -> Result<Vec<Vec<f32>>, EngineError> {
        let n_vocab = self.inner.info.n_vocab;
        for tokens in &inputs {
            if tokens.is_empty() {
                return Err(EngineError::InvalidRequest {
                    param: "input",
                    message: "an input is empty".into(),
                });
            }
            if tokens.len() > MAX_EMBED_TOKENS as usize {
                return Err(EngineError::InvalidRequest {
                    param: "input",
                    message: format!(
                        "an input has {} tokens; at most {MAX_EMBED_TOKENS} are embedded at once",
                        tokens.len()
                    ),
                });
            }
            if let Some(bad) = tokens.iter().find(|t| !(0..n_vocab).contains(*t)) {
                return Err(EngineError::InvalidRequest {
                    param: "input",
                    message: format!("token id {bad} is not in the vocabulary (0..{n_vocab})"),
                });
            }
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.inner
            .inbox
            .send(Command::Embed { inputs, reply })
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The text of a token sequence; ids outside the vocabulary are refused.
    pub fn detokenize(&self, tokens: &[TokenId]) -> Result<String, EngineError> {
        let mut bytes = Vec::new();
        for &t in tokens {
            bytes.extend(self.piece(t)?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// One token's raw bytes (special tokens as their text); not always valid UTF-8 alone.
    pub fn piece(&self, token: TokenId) -> Result<Vec<u8>, EngineError> {
        let n_vocab = self.inner.info.n_vocab;
        if !(0..n_vocab).contains(&token) {
            return Err(EngineError::InvalidRequest {
                param: "tokens",
                message: format!("token id {token} is not in the vocabulary (0..{n_vocab})"),
            });
        }
        Ok(self
            .inner
            .model
            .vocab()
            .token_to_piece(LlamaToken(token), true, None))
    }

    /// Every slot's state, answered by the engine thread between two steps (so at most one
    /// decode step late). Blocking: call from a blocking task.
    pub fn slots(&self) -> Result<Vec<SlotStatus>, EngineError> {
        let (reply, rx) = mpsc::channel();
        self.inner
            .inbox
            .send(Command::Status(reply))
            .map_err(|_| EngineError::Stopped)?;
        rx.recv().map_err(|_| EngineError::Stopped)
    }

    /// Queues a request. Checks everything llama.cpp would assert on first, so a bad request
    /// is an error here and never reaches the engine thread.
    pub fn submit(&self, request: Request) -> Result<UnboundedReceiver<Event>, EngineError> {
        let info = &self.inner.info;
        if request.prompt.is_empty() {
            return Err(EngineError::InvalidRequest {
                param: "prompt",
                message: "the prompt is empty".into(),
            });
        }
        if let Some(bad) = request
            .prompt
            .iter()
            .find(|t| !(0..info.n_vocab).contains(*t))
        {
            return Err(EngineError::InvalidRequest {
                param: "prompt",
                message: format!(
                    "token id {bad} is not in the vocabulary (0..{})",
                    info.n_vocab
                ),
            });
        }
        if request.prompt.len() >= info.n_ctx as usize {
            return Err(EngineError::ContextExceeded {
                prompt: u32::try_from(request.prompt.len()).unwrap_or(u32::MAX),
                context: info.n_ctx,
            });
        }
        request.sampling.validate(info.n_vocab)?;
        if let Some(grammar) = &request.sampling.grammar {
            sampling::check_grammar(&self.inner.model, grammar)?;
        }
        let mut request = request;
        if request.ignore_eos {
            // Mask every end-of-generation token, as llama-server does for ignore_eos.
            let eog = self.inner.eog_tokens.iter();
            request
                .sampling
                .logit_bias
                .extend(eog.map(|&t| (t, f32::NEG_INFINITY)));
        }
        let queued = self.inner.queued.fetch_add(1, Ordering::Relaxed);
        if queued >= self.inner.max_queue {
            self.inner.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(EngineError::Busy { queued });
        }
        let (events, rx) = unbounded_channel();
        self.inner
            .inbox
            .send(Command::Submit(Box::new(Submission { request, events })))
            .map_err(|_| {
                self.inner.queued.fetch_sub(1, Ordering::Relaxed);
                EngineError::Stopped
            })?;
        Ok(rx)
    }
}

/// The context size: as given, or the trained one for 0.
fn n_ctx(spec: &EngineSpec, model: &LlamaModel) -> u32 {
    match spec.n_ctx {
        0 => model.n_ctx_train(),
        n => n,
    }
}

/// Every slot gets at least one token of each batch.
fn n_batch(spec: &EngineSpec) -> u32 {
    spec.n_batch.max(spec.n_parallel)
}

/// The context as the engine makes it, but for the cache types (the draft model's is f16).
fn base_context_params(spec: &EngineSpec, n_ctx: u32) -> LlamaContextParams {
    let n_batch = n_batch(spec);
    // Unified KV: one pool of n_ctx cells that any slot may fill up to n_ctx on its own,
    // as llama-server does; Paddock's scheduler keeps the sum within the pool.
    LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_batch)
        .with_n_ubatch(spec.n_ubatch.min(n_batch))
        .with_n_seq_max(spec.n_parallel)
        .with_kv_unified(true)
        // Sliding-window layers keep only their window (llama.cpp's default keeps the whole
        // context there, several times the memory on models like Gemma 3); the scheduler
        // stops prefix reuse from cutting back past what such a cache still holds.
        .with_swa_full(false)
        .with_n_threads(spec.n_threads)
        .with_n_threads_batch(spec.n_threads_batch)
        .with_flash_attention_policy(spec.flash_attn.to_llama())
}

fn with_cache_types(params: LlamaContextParams, spec: &EngineSpec) -> LlamaContextParams {
    params
        .with_type_k(spec.cache_type_k.to_llama())
        .with_type_v(spec.cache_type_v.to_llama())
}

/// The name a model file is served under by default: its file name without `.gguf`.
pub fn model_id(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".gguf").unwrap_or(&name).to_string()
}

fn meta_u32(model: &LlamaModel, key: &str) -> u32 {
    model
        .meta_val_str(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The model author's sampling recommendation from the GGUF, over llama-server's defaults.
fn gguf_sampling(model: &LlamaModel) -> SamplingParams {
    let read = |key: &str| -> Option<f64> {
        model
            .meta_val_str(&format!("general.sampling.{key}"))
            .ok()?
            .parse()
            .ok()
    };
    type Set = fn(&mut SamplingParams, f64);
    let keys: [(&str, Set); 6] = [
        ("temp", |p, v| p.temperature = v as f32),
        ("top_k", |p, v| p.top_k = v as i32),
        ("top_p", |p, v| p.top_p = v as f32),
        ("min_p", |p, v| p.min_p = v as f32),
        ("penalty_repeat", |p, v| p.repeat_penalty = v as f32),
        ("penalty_last_n", |p, v| p.repeat_last_n = v as i32),
    ];
    let mut p = SamplingParams::default();
    for (key, set) in keys {
        if let Some(v) = read(key) {
            set(&mut p, v);
        }
    }
    p
}

fn model_info(model: &LlamaModel, n_ctx: u32, n_parallel: u32) -> ModelInfo {
    let vocab = model.vocab();
    let text = |t: LlamaToken| {
        if t.0 < 0 {
            return String::new();
        }
        String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
    };
    ModelInfo {
        architecture: model
            .meta_val_str("general.architecture")
            .unwrap_or_default(),
        n_ctx_train: model.n_ctx_train(),
        n_ctx,
        n_parallel,
        n_vocab: model.n_vocab(),
        n_params: model.n_params(),
        size_bytes: model.size(),
        chat_template: model.meta_val_str("tokenizer.chat_template").ok(),
        sampling: gguf_sampling(model),
        bos_text: text(vocab.bos()),
        eos_text: text(vocab.eos()),
        add_bos: vocab.should_add_bos(),
        add_eos: vocab.should_add_eos(),
        allocated: None,
        speculation: Speculation::off(),
    }
}
