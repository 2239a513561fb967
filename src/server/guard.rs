//! Who may talk to the server: the API key (when one is set), a Host check that stops DNS
//! rebinding (a web page whose domain resolves to 127.0.0.1 cannot reach a loopback server),
//! and an Origin check that stops other sites' pages from using it (CSRF): the admin API
//! answers only the server's own pages and the desktop app; the model APIs also answer the
//! sites listed in `cors_origins`, with CORS headers. Clients that are not browsers send no
//! Origin and pass.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::listen::ClientOverLimit;
use super::lockout;
use super::state::AppState;

/// Routes anyone may call: health checks from load balancers and service managers, and the
/// web UI's files (the page asks for the key itself when the API wants one).
fn is_public(path: &str) -> bool {
    path == "/health" || path == "/" || path.starts_with("/ui/")
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(ClientOverLimit(Some(max))) = req.extensions().get() {
        return ApiError::too_many_connections(*max).into_response();
    }
    if state.loopback_only && !host_is_loopback(&req) {
        return ApiError::forbidden("this server only answers requests addressed to localhost")
            .into_response();
    }
    if req.uri().path().starts_with("/api/") {
        if !same_origin(&req) {
            return ApiError::forbidden(
                "the admin API only answers Paddock's own pages (cross-site request refused)",
            )
            .into_response();
        }
        if !json_or_no_body(&req) {
            // A form or text/plain body is what a cross-site form post sends without a
            // CORS preflight; the admin API takes JSON only.
            return ApiError::bad_request("the admin API takes Content-Type: application/json")
                .with_status(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .into_response();
        }
    }
    // A page of another site: refused unless the user listed it. Checked before the key, as
    // a browser's preflight carries none.
    let allowed_site = match cross_site_origin(&req) {
        Some(origin) if !is_public(req.uri().path()) => {
            if !listed(&state.cors_origins, &origin) {
                return ApiError::forbidden(format!(
                    "cross-site request from {origin} refused; list it in [server] cors_origins to allow its pages"
                ))
                .into_response();
            }
            if req.method() == Method::OPTIONS {
                return preflight(&req, &origin);
            }
            Some(origin)
        }
        _ => None,
    };
    if let Some(expected) = &state.api_key {
        if !is_public(req.uri().path()) {
            if let Err(refused) = check_key(&state, &req, expected) {
                return refused.into_response();
            }
        }
    }
    let mut response = next.run(req).await;
    if let Some(origin) = allowed_site {
        allow(&mut response, &origin);
    }
    response
}

/// What a cross-site request without an Origin (a link followed from another site) is called.
const NO_ORIGIN: &str = "another site";

/// The Origin of a request from another site's page, or None for same-origin and non-browser
/// requests.
fn cross_site_origin(req: &Request) -> Option<String> {
    if same_origin(req) {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN);
    Some(
        origin
            .and_then(|o| o.to_str().ok())
            .unwrap_or(NO_ORIGIN)
            .to_string(),
    )
}

fn listed(origins: &[String], origin: &str) -> bool {
    origins
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// The answer to a listed site's CORS preflight: any method the API has, the headers asked for.
fn preflight(req: &Request, origin: &str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    allow(&mut response, origin);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

fn allow(response: &mut Response, origin: &str) {
    if origin == NO_ORIGIN {
        return;
    }
    if let Ok(origin) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Reads change nothing; changes come as JSON (or without a body, like unload).
fn json_or_no_body(req: &Request) -> bool {
    let method = req.method();
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        return true;
    }
    match req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(kind) => kind
            .split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")),
        None => req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_none_or(|n| n.as_bytes() == b"0"),
    }
}

/// No Origin (curl, scripts, same-origin GETs) or one naming this very host, or the desktop
/// app's own scheme. Browsers always send Origin on cross-site fetches and form posts.
fn same_origin(req: &Request) -> bool {
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if matches!(origin, "tauri://localhost" | "http://tauri.localhost") {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// The key check, with the lock-out of addresses that guess (`lockout`): a locked-out address
/// is refused before its key is looked at, so guessing on during the lock-out learns nothing.
fn check_key(state: &AppState, req: &Request, expected: &str) -> Result<(), ApiError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let now = Instant::now();
    if let Some(wait) = peer.and_then(|ip| state.key_failures.locked(ip, now)) {
        return Err(ApiError::locked_out(wait));
    }
    let given = given_keys(req);
    if given.iter().any(|key| key_matches(key, expected)) {
        if let Some(ip) = peer {
            state.key_failures.succeeded(ip);
        }
        return Ok(());
    }
    if let (Some(ip), Some(key)) = (peer, given.first()) {
        if let Some(lock) = state.key_failures.failed(ip, key, now) {
            tracing::warn!(
                client = %ip,
                seconds = lock.as_secs(),
                "{} different wrong API keys within a minute: this address is locked out",
                lockout::MAX_FAILURES
            );
            return Err(ApiError::locked_out(lock));
        }
    }
    Err(ApiError::unauthorized())
}

/// The keys a request sends: `Authorization: Bearer KEY` and `X-Api-Key: KEY`.
fn given_keys(req: &Request) -> Vec<&str> {
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let x_api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    [bearer, x_api_key].into_iter().flatten().collect()
}

/// Constant-time compare, so response timing does not leak how much of a guess was right.
fn key_matches(given: &str, expected: &str) -> bool {
    bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes()))
}

/// Host header is a loopback name or address (requests without one come from HTTP/1.0 tools).
fn host_is_loopback(req: &Request) -> bool {
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return req.uri().host().is_none_or(is_loopback_name);
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    is_loopback_name(name)
}

fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> Request {
        Request::builder()
            .uri("/v1/models")
            .header(header::HOST, host)
            .body(Default::default())
            .unwrap()
    }

    #[test]
    fn loopback_hosts_pass_and_rebinding_names_do_not() {
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert!(host_is_loopback(&with_host(ok)), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "192.168.1.5:8080",
            "localhost.evil.example",
            "[fe80::1]:80",
        ] {
            assert!(!host_is_loopback(&with_host(bad)), "{bad}");
        }
    }

    #[test]
    fn the_admin_api_answers_its_own_origin_only() {
        let req = |origin: Option<&str>, fetch_site: Option<&str>| {
            let mut b = Request::builder()
                .uri("/api/models/load")
                .header(header::HOST, "127.0.0.1:8080");
            if let Some(o) = origin {
                b = b.header(header::ORIGIN, o);
            }
            if let Some(s) = fetch_site {
                b = b.header("sec-fetch-site", s);
            }
            b.body(Default::default()).unwrap()
        };
        assert!(same_origin(&req(None, None)));
        assert!(same_origin(&req(
            Some("http://127.0.0.1:8080"),
            Some("same-origin")
        )));
        assert!(same_origin(&req(Some("tauri://localhost"), None)));
        assert!(!same_origin(&req(Some("http://evil.example"), None)));
        assert!(!same_origin(&req(Some("http://127.0.0.1:9999"), None)));
        assert!(!same_origin(&req(Some("null"), None)));
        assert!(!same_origin(&req(None, Some("cross-site"))));
    }

    #[test]
    fn listed_origins_match_exactly_or_by_star() {
        let list = ["https://app.example/".to_string()];
        assert!(listed(&list, "https://app.example"));
        assert!(listed(&list, "HTTPS://APP.EXAMPLE"));
        assert!(!listed(&list, "https://app.example.evil"));
        assert!(!listed(&list, "http://app.example"));
        assert!(!listed(&[], "https://app.example"));
        assert!(listed(&["*".to_string()], "https://anything.example"));
    }

    #[test]
    fn key_is_read_from_bearer_or_x_api_key() {
        let req = |name: &str, value: &str| {
            Request::builder()
                .header(name, value)
                .body(Default::default())
                .unwrap()
        };
        let matches = |req: Request| given_keys(&req).iter().any(|k| key_matches(k, "s3cret"));
        assert!(matches(req("authorization", "Bearer s3cret")));
        assert!(matches(req("x-api-key", "s3cret")));
        assert!(!matches(req("authorization", "Bearer s3cre")));
        assert!(!matches(req("authorization", "s3cret")));
        assert!(given_keys(&req("authorization", "Basic czNjcmV0")).is_empty());
    }
}
