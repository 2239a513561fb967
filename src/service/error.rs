//! What can stop a service file from being written or removed. A service manager that cannot
//! be reached is not an error: installs report it in `ManagerReply::Failed`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("running Paddock as a service is not supported on {os}: only macOS (launchd) and Linux (systemd) are")]
    Unsupported { os: &'static str },
    #[error("HOME is not set, so there is no place for the service file")]
    NoHome,
    #[error("cannot put the {what} {value:?} in a service file: {reason}")]
    Unrepresentable {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot create the folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}
