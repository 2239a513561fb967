//! The HTTP side, and the only module that knows HTTP: axum routes that turn OpenAI JSON into
//! engine requests and engine events into JSON or SSE. The Anthropic and Responses APIs are
//! adapters over the OpenAI chat pipeline (`openai::chat::run_chat`).

pub mod admin;
mod anthropic;
mod error;
mod fd_limit;
mod guard;
mod ids;
mod json;
mod listen;
mod llama;
mod lockout;
pub mod openai;
mod responses;
mod sse;
mod state;
mod ui;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

pub use admin::{
    library_now, load_model, load_planner, status, Admin, BenchState, BenchStatus, Choice,
    LoadedStatus, Measured, ModelStatus, ServerState, Status,
};
pub use error::ApiError;
pub use fd_limit::max_connections;
pub use listen::{serve, ClientOverLimit, Limits};
pub use state::AppState;

/// The whole application; tests drive it directly or serve it on port 0.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let v1 = Router::new()
        .route("/models", get(openai::models::list))
        .route("/models/{id}", get(openai::models::get))
        .route("/chat/completions", post(openai::chat::chat_completions))
        .route("/completions", post(openai::completions::completions))
        .route("/embeddings", post(openai::embeddings::embeddings))
        .route("/responses", post(responses::create))
        .route("/messages", post(anthropic::messages))
        .route("/messages/count_tokens", post(anthropic::count_tokens));
    Router::new()
        .route("/health", get(health))
        .route("/slots", get(slots))
        .nest("/api", admin::routes())
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route("/props", get(llama::props))
        .route("/tokenize", post(llama::tokenize))
        .route("/detokenize", post(llama::detokenize))
        .route("/apply-template", post(llama::apply_template))
        .nest("/v1", v1.clone())
        // llama-server also answers without the /v1 prefix; some clients rely on it.
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            max_body_bytes,
            refuse_oversized,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn(error::json_rejections))
        .layer(axum::middleware::from_fn(anthropic::error_dialect))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .with_state(state)
}

async fn health() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// A body announced as larger than the limit is refused before it is read: the body limit
/// alone only trips once that many bytes arrive, so a client announcing 100 GB and sending
/// nothing held its connection and request open indefinitely.
async fn refuse_oversized(
    axum::extract::State(max): axum::extract::State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return ApiError::bad_request("request body is too large")
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .into_response();
    }
    next.run(req).await
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::bad_request("method not allowed on this route")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// llama-server's `GET /slots`: what each slot is doing, for monitoring.
async fn slots(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for model in state.router.list() {
        let engine = model.engine.clone();
        let slots = tokio::task::spawn_blocking(move || engine.slots())
            .await
            .map_err(ApiError::internal)??;
        for s in slots {
            out.push(serde_json::json!({
                "model": model.id,
                "id": s.id,
                "state": s.state,
                "n_cached": s.n_cached,
                "n_prompt": s.n_prompt,
                "n_generated": s.n_generated,
            }));
        }
    }
    Ok(axum::Json(out).into_response())
}
