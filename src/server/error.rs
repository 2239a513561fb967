//! The one place that knows HTTP statuses: every failure becomes an `ApiError`, rendered as
//! OpenAI's error body `{"error": {"message", "type", "param", "code"}}`.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::engine::EngineError;
use crate::router::RouterError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `exceed_context_size_error`, `server_error`...
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds for `Retry-After` on 503 and 429.
    pub retry_after: Option<u32>,
    /// `(n_prompt_tokens, n_ctx)` for context overflow, as llama-server reports them.
    pub context: Option<(u32, u32)>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
            context: None,
        }
    }

    /// A client mistake in one field (400).
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    /// A client mistake not tied to one field (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: Some("not_found"),
            ..Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
        }
    }

    pub fn unauthorized() -> Self {
        Self {
            code: Some("invalid_api_key"),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "missing or incorrect API key: send it as `Authorization: Bearer KEY` or `X-Api-Key: KEY`",
            )
        }
    }

    /// Too many wrong API keys from this address (see `lockout`): 429 until `wait` is over.
    pub fn locked_out(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u32;
        Self {
            code: Some("too_many_wrong_keys"),
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!("too many wrong API keys from this address: try again in {secs} s"),
            )
        }
    }

    /// The client holds all the connections it may (`max_connections_per_client`).
    pub fn too_many_connections(max: usize) -> Self {
        Self {
            code: Some("too_many_connections"),
            retry_after: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "this address has {max} connections open, the most one client may: \
                     reuse or close them"
                ),
            )
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "invalid_request_error", message)
    }

    /// Something broke on our side; the details go to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal server error; see the server log",
        )
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The JSON body, also used for the error event of a stream that already started.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        });
        if let Some((prompt, ctx)) = self.context {
            error["n_prompt_tokens"] = prompt.into();
            error["n_ctx"] = ctx.into();
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// axum's own extractor rejections (a path segment that is not UTF-8 or not a number, a query
/// string without a required field) are plain text; they get the error body of every route.
pub async fn json_rejections(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let bytes = to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_string()
    } else {
        text
    };
    ApiError::bad_request(message)
        .with_status(status)
        .into_response()
}

impl From<RouterError> for ApiError {
    fn from(e: RouterError) -> Self {
        match e {
            RouterError::UnknownModel { .. } => Self {
                param: Some("model".into()),
                code: Some("model_not_found"),
                ..Self::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    e.to_string(),
                )
            },
            RouterError::Busy { .. } => Self {
                code: Some("model_loading"),
                ..Self::new(StatusCode::CONFLICT, "invalid_request_error", e.to_string())
            },
            RouterError::Paused { .. } => Self {
                code: Some("paused"),
                retry_after: Some(60),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable_error",
                    e.to_string(),
                )
            },
            RouterError::Load { .. } => Self {
                code: Some("model_load_failed"),
                ..Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    e.to_string(),
                )
            },
            RouterError::Ambiguous { .. } => Self::invalid("model", e.to_string()),
            RouterError::TooBig { .. } => Self {
                code: Some("model_does_not_fit"),
                ..Self::invalid("model", e.to_string())
            },
            RouterError::NoRoom { .. } => Self {
                param: Some("model".into()),
                code: Some("model_does_not_fit"),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable_error",
                    e.to_string(),
                )
            },
            RouterError::NoModel => Self {
                retry_after: Some(5),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable_error",
                    e.to_string(),
                )
            },
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::ContextExceeded { prompt, context } => Self {
                code: Some("context_length_exceeded"),
                param: Some("messages".into()),
                context: Some((prompt, context)),
                ..Self::new(
                    StatusCode::BAD_REQUEST,
                    "exceed_context_size_error",
                    format!("the request has {prompt} prompt tokens, more than the context size ({context})"),
                )
            },
            EngineError::InvalidRequest { param, ref message } => Self::invalid(param, message.clone()),
            EngineError::Busy { .. } => Self {
                retry_after: Some(1),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable_error", format!("server busy: {e}; retry shortly"))
            },
            // The router loads it again for the next request (without a lost worker).
            EngineError::Lost(_) => Self {
                retry_after: Some(5),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable_error", e.to_string())
            },
            EngineError::Load { .. }
            | EngineError::Context(_)
            | EngineError::Decode(_)
            | EngineError::Stopped
            | EngineError::Rpc { .. } => {
                Self::internal(e)
            }
        }
    }
}
