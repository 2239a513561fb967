//! The Hugging Face hub as an HTTP endpoint: where it is, the token, and its error answers.

use std::fmt;
use std::time::Duration;

use reqwest::{header::HeaderMap, RequestBuilder, Response, StatusCode, Url};

use super::names::Repo;
use super::DownloadError;

/// The revision every listing and download reads: the repo's default branch.
pub(super) const REVISION: &str = "main";

/// A hub endpoint and the token sent to it. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct Hub {
    base: Url,
    token: Option<String>,
    client: reqwest::Client,
}

impl Hub {
    pub const DEFAULT_ENDPOINT: &'static str = "https://huggingface.co";

    /// `endpoint` is an `http(s)://` URL, possibly with a path (a mirror under a prefix).
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Hub, DownloadError> {
        let invalid = |reason: &str| DownloadError::InvalidEndpoint {
            url: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("not an http(s) URL"));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("paddock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // A stalled connection fails (and resumes on the next try) rather than hanging.
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Hub {
            base,
            token: token.filter(|t| !t.is_empty()),
            client,
        })
    }

    /// The endpoint from `PADDOCK_HF_ENDPOINT`, else `HF_ENDPOINT` (huggingface_hub's variable,
    /// which mirrors set), else huggingface.co; the token from `HF_TOKEN`.
    pub fn from_env() -> Result<Hub, DownloadError> {
        let var = |key| std::env::var(key).ok().filter(|v| !v.is_empty());
        let endpoint = var("PADDOCK_HF_ENDPOINT")
            .or_else(|| var("HF_ENDPOINT"))
            .unwrap_or_else(|| Self::DEFAULT_ENDPOINT.to_owned());
        Hub::new(&endpoint, var("HF_TOKEN"))
    }

    /// `base/seg/seg/…`, each segment percent-encoded (file names may hold spaces or `#`).
    pub(super) fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in Hub::new: an http(s) URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Whether a URL the hub handed back (a next page) is on the hub itself: only there may the
    /// token go.
    pub(super) fn owns(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// A GET with the token. reqwest follows the hub's redirects to its CDN and drops the
    /// `Authorization` header when the host changes, so the token never leaves the hub.
    pub(super) fn get(&self, url: Url) -> RequestBuilder {
        let request = self.client.get(url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Passes a success through; turns an error answer into the error it means. `path` is the
    /// file asked for, if any.
    pub(super) async fn check(
        &self,
        response: Response,
        repo: &Repo,
        path: Option<&str>,
    ) -> Result<Response, DownloadError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = response.url().to_string();
        let code = header(response.headers(), "x-error-code");
        let header_message = header(response.headers(), "x-error-message");
        let body = response.bytes().await.unwrap_or_default();
        let message = header_message.unwrap_or_else(|| body_message(&body));
        let (repo, status_code) = (repo.to_string(), status.as_u16());
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                if self.token.is_none() {
                    DownloadError::NeedsToken {
                        repo,
                        status: status_code,
                        message,
                    }
                } else if code.as_deref() == Some("RepoNotFound") {
                    DownloadError::NotFound {
                        what: repo,
                        message,
                    }
                } else {
                    DownloadError::NoAccess {
                        repo,
                        status: status_code,
                        message,
                    }
                }
            }
            StatusCode::NOT_FOUND => DownloadError::NotFound {
                what: match (code.as_deref(), path) {
                    (Some("RepoNotFound"), _) | (_, None) => repo,
                    (_, Some(path)) => format!("{repo}: {path}"),
                },
                message,
            },
            _ => DownloadError::Http {
                url,
                status: status_code,
                message,
            },
        })
    }
}

/// The token stays out of logs.
impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The hub's error bodies are `{"error": "…"}`; anything else is shown as text, cut short (a CDN
/// may answer with a whole HTML page).
fn body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct HubError {
        error: String,
    }
    if let Ok(e) = serde_json::from_slice::<HubError>(body) {
        return e.error;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => "(no message)".to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_each_segment_and_keep_a_mirror_prefix() {
        let hub = Hub::new("https://mirror.example/hf/", None).unwrap();
        let url = hub.url(["o", "n", "resolve", "main", "a b#1.gguf"]);
        assert_eq!(
            url.as_str(),
            "https://mirror.example/hf/o/n/resolve/main/a%20b%231.gguf"
        );
        assert!(Hub::new("ftp://x", None).is_err());
        assert!(Hub::new("not a url", None).is_err());
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let hub = Hub::new(Hub::DEFAULT_ENDPOINT, Some("hf_secret".into())).unwrap();
        assert!(!format!("{hub:?}").contains("hf_secret"));
    }

    #[test]
    fn error_bodies_are_read_as_the_hub_writes_them() {
        assert_eq!(
            body_message(br#"{"error":"Repository not found"}"#),
            "Repository not found"
        );
        assert_eq!(body_message(b""), "(no message)");
        assert_eq!(body_message(&[b'x'; 300]).chars().count(), 201);
    }
}
