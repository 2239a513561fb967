//! Arbitrary bytes as the body of every JSON route, through Paddock's own axum router with no
//! model loaded: the one JSON extractor, the Anthropic and Responses adapters and each route's
//! request types all run, and each request stops where a model would be needed (a 404 for the
//! model, a 503 where none is loaded). A panic aborts (libFuzzer's hook, before
//! `CatchPanicLayer` could hide it) and a 500 fails the run: a malformed body is the client's
//! mistake, never the server's.
//!
//! The same bytes as an OpenAI chat request then go into the chat layer, as
//! `openai::chat::prepare_turn` takes them: messages, tools and the answer format checked
//! (`turn_request`), rendered by `chat::prepare` with the ChatML fallback (Paddock's generic
//! tool prompt) and a tool-aware template (Qwen 2.5), and grammars built by llama.cpp's
//! JSON-schema converter. The adapters' output is an OpenAI chat request too, so this covers
//! what Anthropic and Responses bodies reach after conversion.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use paddock::chat::{self, ChatTemplate};
use paddock::engine::ModelInfo;
use paddock::router::ModelRouter;
use paddock::server::openai::chat::turn_request;
use paddock::server::openai::types::ChatCompletionRequest;
use paddock::server::{self, AppState};
use serde_json::Value;
use tower::ServiceExt;

const ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/tokenize",
    "/detokenize",
    "/apply-template",
];

/// The server's default `max_body_mib` is 32; fuzz inputs are far smaller.
const MAX_BODY: usize = 1 << 20;

struct Server {
    runtime: tokio::runtime::Runtime,
    app: Router,
}

static SERVER: LazyLock<Server> = LazyLock::new(|| {
    let state = AppState::new(std::sync::Arc::new(ModelRouter::new()), None, false);
    Server {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime"),
        app: server::router(state, MAX_BODY),
    }
});

static TEMPLATES: LazyLock<[ChatTemplate; 2]> = LazyLock::new(|| {
    let qwen = include_str!("../../tests/data/templates/qwen25/template.jinja");
    [
        ChatTemplate::chatml_fallback("", ""),
        ChatTemplate::new(qwen, "", "<|im_end|>").expect("Qwen 2.5 template compiles"),
    ]
});

/// What `chat::prepare` needs of a loaded model: only the BOS handling matters here.
static INFO: LazyLock<ModelInfo> = LazyLock::new(|| ModelInfo {
    architecture: "llama".into(),
    n_ctx_train: 4096,
    n_ctx: 4096,
    n_parallel: 1,
    n_vocab: 49152,
    n_params: 135_000_000,
    size_bytes: 0,
    chat_template: None,
    bos_text: "<|im_start|>".into(),
    eos_text: "<|im_end|>".into(),
    sampling: Default::default(),
    add_bos: true,
    add_eos: false,
    allocated: None,
    speculation: Default::default(),
});

fuzz_target!(init: paddock_fuzz::report_stack_overflows(), |body: &[u8]| {
    let server = &*SERVER;
    for route in ROUTES {
        let request = Request::post(*route)
            .header("content-type", "application/json")
            .body(Body::from(body.to_vec()))
            .expect("request");
        let response = server
            .runtime
            .block_on(server.app.clone().oneshot(request))
            .expect("the router is infallible");
        assert_ne!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{route}"
        );
    }

    // As `server::json::parse` and `from_value` read it (both private to the server).
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if !value.is_object() {
        return;
    }
    for template in TEMPLATES.iter() {
        let Ok(req) = serde_json::from_value::<ChatCompletionRequest>(value.clone()) else {
            return;
        };
        if let Ok(turn) = turn_request(req) {
            let _ = chat::prepare(template, &INFO, turn);
        }
    }
});
