use std::path::PathBuf;

/// Everything the engine can refuse or fail at, with the numbers a user needs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("cannot load model {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("cannot create a llama.cpp context: {0}")]
    Context(String),
    #[error("the prompt has {prompt} tokens but the context holds {context}")]
    ContextExceeded { prompt: u32, context: u32 },
    #[error("invalid {param}: {message}")]
    InvalidRequest {
        param: &'static str,
        message: String,
    },
    #[error("{queued} requests are already waiting for a slot")]
    Busy { queued: usize },
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
    #[error("the engine thread has stopped")]
    Stopped,
    #[error("RPC {}{reason}", if endpoint.is_empty() { String::new() } else { format!("worker {endpoint}: ") })]
    Rpc { endpoint: String, reason: String },
}
