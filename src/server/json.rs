//! A JSON body extractor whose every rejection is an `ApiError` in OpenAI's format, with the
//! offending field named in `param` (axum's own `Json` answers in plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::listen::BodyTimedOut;

pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse(&body(req, state).await?).map(Json)
    }
}

/// `Option<Json<T>>`: none for an empty body (routes whose body is optional).
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let bytes = body(req, state).await?;
        match bytes.is_empty() {
            true => Ok(None),
            false => parse(&bytes).map(|v| Some(Json(v))),
        }
    }
}

async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::bad_request("request body is too large").with_status(status)
        } else if let Some(late) = cause::<BodyTimedOut>(&e) {
            ApiError::bad_request(late.to_string()).with_status(StatusCode::REQUEST_TIMEOUT)
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}")).with_status(status)
        }
    })
}

/// The first error of type `E` in `e`'s chain of causes.
fn cause<'a, E: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Parses a body in two steps: JSON syntax first, then the shape, so a shape error can name
/// the field at fault (`temperature: invalid type: string "hot", expected f32`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    // serde would read a struct from an array too, field by field in declaration order, and
    // answer with errors about `[0]` that no client can make sense of.
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    from_value(&value)
}

/// Reads one view of an already parsed body (several types may read the same body).
pub fn from_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad_request(format!("the request body has the wrong shape: {inner}"))
        } else {
            ApiError::invalid(path.clone(), format!("{path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        temperature: Option<f32>,
        messages: Vec<Msg>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Msg {
        role: String,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse::<Body>(br#"{"temperature":"hot","messages":[]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse::<Body>(br#"{"messages":[{"role":1}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn broken_json_is_a_400_without_param() {
        for body in [&b"{"[..], b"not json", b"", b"{\"messages\": [}"] {
            let e = parse::<Body>(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.param, None, "{body:?}");
        }
    }
}
