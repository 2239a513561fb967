//! What the server and the process hosting one of its models say to each other: one JSON
//! object per line, over the child's stdin and stdout.

use serde::{Deserialize, Serialize};

use crate::engine::{ActivityNow, EngineError, EngineSpec, Event, ModelInfo, Request, SlotStatus};

use super::super::TokenId;

/// Server → host.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToHost {
    /// The first line: what to load, and the RPC workers to spread it over.
    Load {
        spec: EngineSpec,
        workers: Vec<String>,
    },
    Submit {
        id: u64,
        request: Request,
    },
    /// The client went away: stop generating for it.
    Cancel {
        id: u64,
    },
    Embed {
        id: u64,
        inputs: Vec<Vec<TokenId>>,
    },
    Slots {
        id: u64,
    },
}

/// Host → server.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromHost {
    /// Loading the weights, 0.0 to 1.0.
    Progress(f32),
    /// Boxed: model facts are much larger than the other messages.
    Loaded(Result<Box<ModelInfo>, EngineError>),
    Event {
        id: u64,
        event: Event,
    },
    Embedded {
        id: u64,
        result: Result<Vec<Vec<f32>>, EngineError>,
    },
    Slots {
        id: u64,
        slots: Vec<SlotStatus>,
    },
    Activity(ActivityNow),
}

/// One message as a line.
pub fn line<T: Serialize>(message: &T) -> String {
    let mut text = serde_json::to_string(message).expect("engine messages always serialize");
    text.push('\n');
    text
}
