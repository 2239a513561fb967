//! What can go wrong talking to the hub or writing a model, each with what the user needs to act.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "invalid Hugging Face repo {repo:?}: expected owner/name of letters, digits, '.', '_' \
         and '-' (no '--' or '..', not starting or ending with '-' or '.')"
    )]
    InvalidRepo { repo: String },
    #[error("refusing remote file {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("invalid hub endpoint {url:?}: {reason}")]
    InvalidEndpoint { url: String, reason: String },
    /// 401/403 without a token: a gated or private repo (the hub also answers 401 for a repo
    /// that does not exist, so as not to reveal private names).
    #[error("{repo} needs a Hugging Face token (HF_TOKEN); the hub said {status}: {message}")]
    NeedsToken {
        repo: String,
        status: u16,
        message: String,
    },
    /// 401/403 with a token: the token is wrong, or its user has not accepted a gated repo's terms.
    #[error(
        "the Hugging Face token (HF_TOKEN) gives no access to {repo}: check the token and accept \
         the repo's terms on its page; the hub said {status}: {message}"
    )]
    NoAccess {
        repo: String,
        status: u16,
        message: String,
    },
    /// `what` is the repo, or `repo: path` for a file.
    #[error("not found on the hub: {what} ({message})")]
    NotFound { what: String, message: String },
    #[error("the hub answered {status} for {url}: {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    /// Connection refused, reset or dropped mid-file; a kept `.part` resumes on the next call.
    #[error("network error on {url}: {reason}")]
    Network { url: String, reason: String },
    /// The hub's answer is not what its API promises (bad JSON, a wrong `Content-Range`).
    #[error("unexpected answer from {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("disk full writing {}", path.display())]
    DiskFull { path: PathBuf },
    #[error(
        "{file}: checksum mismatch: the hub lists sha256 {expected}, the download has {actual}; \
         the partial file was removed"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: the hub lists {expected} bytes, the server sent {actual}")]
    Size {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("{} already exists and is a different file; not overwriting it", path.display())]
    Exists { path: PathBuf },
    /// Checked before anything is fetched: the filesystem has less free than the download needs
    /// plus a margin.
    #[error(
        "not enough disk space for the download in {}: it needs {} more (plus {} kept \
         free), and {} is free",
        path.display(),
        gib(*needed),
        gib(super::space::SPACE_MARGIN),
        gib(*free)
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        free: u64,
    },
    /// A quantization tag or name that matches several of the repo's models.
    #[error("{wanted:?} matches several models ({matches}); name one of them")]
    Ambiguous { wanted: String, matches: String },
    #[error("download cancelled")]
    Cancelled,
}

/// `1.23 GiB`.
fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

impl DownloadError {
    pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
        move |source| match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                DownloadError::DiskFull {
                    path: path.to_path_buf(),
                }
            }
            _ => DownloadError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// reqwest's own message ("error decoding response body") hides the cause, so the chain is
    /// spelled out: "…: connection closed before message completed".
    pub(super) fn network(url: &str, error: reqwest::Error) -> DownloadError {
        let error = error.without_url();
        let mut reason = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            let _ = write!(reason, ": {inner}");
            cause = inner.source();
        }
        DownloadError::Network {
            url: url.to_owned(),
            reason,
        }
    }
}
