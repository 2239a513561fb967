//! Paddock: an always-on local LLM server for coding agents. llama.cpp runs in-process
//! (crate `llama-cpp-2`) behind OpenAI- and Anthropic-compatible HTTP APIs.
//!
//! ```text
//! paddock serve / desktop shell ──► app ──► server ──► router ──► engine ──► llama-cpp-2
//!                                              └──► chat (templates, tools, grammars) ──► engine
//! ```
//! Arrows point one way. `engine` owns llama.cpp and knows nothing of HTTP; `server` is the
//! only module that knows HTTP; `router` maps model names to engines.
//!
//! One request, end to end (`POST /v1/chat/completions`, streaming):
//! 1. `server::json::Json` parses the body into `openai::types::ChatCompletionRequest`; a bad
//!    body is a 400 in OpenAI's error format naming the field.
//! 2. `server::openai::chat` asks the router for the named model; `chat::prepare` renders the
//!    messages (and tools) with the model's chat template and builds the grammar that shapes
//!    the answer (forced tool calls, JSON); the handler tokenizes and builds an `engine::Request`.
//! 3. `EngineHandle::submit` validates it (context size, token ids, sampling values) and sends it
//!    to the model's engine thread; the handler gets a channel of `engine::Event`s.
//! 4. The engine thread (`engine::worker`) puts it in the idle slot sharing the longest prefix
//!    with its cached tokens, decodes the rest of the prompt in chunks batched with the other
//!    slots' tokens, samples, and sends `Event::Token`s, then `Event::Done` with usage.
//! 5. `chat::tool_calls::StreamParser` reads the text back into content, reasoning and tool
//!    calls, and `server::sse` sends them as `chat.completion.chunk`s and `data: [DONE]`
//!    (Anthropic and Responses re-encode the same chunks as their own events). If the
//!    client goes away the stream is dropped, the channel closes, and the slot is freed at the
//!    next step.

pub mod app;
pub mod autostart;
pub mod bench;
pub mod budget;
pub mod catalog;
pub mod chat;
pub mod config;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod lend;
pub mod library;
pub mod private_file;
pub mod router;
pub mod server;
pub mod service;

#[cfg(test)]
mod test_util;

pub use app::App;

/// Logs to stderr, filtered by `PADDOCK_LOG` (default: info, llama.cpp's own chatter at warn);
/// for the CLI and the desktop app alike.
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PADDOCK_LOG")
                .unwrap_or_else(|_| "info,llama_cpp_2=warn,llama-cpp-2=warn".into()),
        )
        .with_writer(|| QuietStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
/// stderr that never fails. tracing-subscriber reports a failed write with `eprintln!`, which
/// panics once stderr is closed (a parent that stopped reading a child's log): a log line
/// must never take the process down.
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

pub use error::{Error, Result};

/// Call first in the `main` of every binary that serves (the CLI, the desktop app): in a
/// process Paddock started as a child of its own (a model spread over RPC workers, or this
/// machine lent as a worker), runs that child and returns its exit status.
pub fn child_main() -> Option<i32> {
    match std::env::args().nth(1).as_deref() {
        Some(engine::hosted::HOST_ARG) => Some(engine::hosted::child_main()),
        Some(lend::LEND_ARG) => Some(lend::child_main()),
        _ => None,
    }
}
