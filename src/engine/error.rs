use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

/// Everything the engine can refuse or fail at, with the numbers a user needs.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum EngineError {
    #[error("cannot load model {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("cannot create a llama.cpp context: {0}")]
    Context(String),
    #[error("the prompt has {prompt} tokens but the context holds {context}")]
    ContextExceeded { prompt: u32, context: u32 },
    #[error("invalid {param}: {message}")]
    InvalidRequest {
        #[serde(deserialize_with = "known_param")]
        param: Name,
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
    /// The process a model ran in ended under it (`hosted`): with `--rpc`, a worker went away.
    #[error("the model stopped: {0}")]
    Lost(String),
}

/// A name from a fixed set. An alias, so serde's derive does not take it for borrowed data.
type Name = &'static str;

/// The request field an error from another process names, as one of the engine's own.
fn known_param<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    const PARAMS: [&str; 5] = ["prompt", "input", "tokens", "grammar", "logit_bias"];
    let name = String::deserialize(d)?;
    Ok(PARAMS.into_iter().find(|p| *p == name).unwrap_or("request"))
}
