//! The web UI: the static files of `ui/`, embedded in the binary and served at `/` (the page)
//! and `/ui/<file>` (its scripts, styles, images). `PADDOCK_UI_DIR` serves them from a folder
//! instead, read on every request, for working on the UI without rebuilding.

use std::path::{Component, Path};

use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

use super::error::ApiError;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/ui");

/// The page's own rules: scripts, styles and connections only from this server (the chat box
/// and the event stream included); no framing by other sites.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub async fn index() -> Response {
    file("index.html")
}

pub async fn asset(UrlPath(path): UrlPath<String>) -> Response {
    file(&path)
}

fn file(path: &str) -> Response {
    // Only plain relative names: no `..`, no absolute paths, no drive letters.
    let clean = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !clean || path.is_empty() {
        return ApiError::not_found(format!("no UI file {path:?}")).into_response();
    }
    let bytes = match std::env::var_os("PADDOCK_UI_DIR") {
        Some(dir) => std::fs::read(Path::new(&dir).join(path)).ok(),
        None => EMBEDDED.get_file(path).map(|f| f.contents().to_vec()),
    };
    let Some(bytes) = bytes else {
        return ApiError::not_found(format!("no UI file {path:?}")).into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
