//! Downloads GGUF models from the Hugging Face hub into Paddock's models folder
//! (`config::paths::models_dir()`), where the catalog's scan finds them.
//!
//! - `hub`: [`Hub`], the endpoint (huggingface.co, a mirror, or a test's fake hub) and the token.
//! - `listing`: [`list_files`] reads the hub's tree API and groups split parts into models.
//! - `names`: repo names and remote paths checked before they become local paths.
//! - `transfer`: one file: `.part`, `Range` resume, SHA-256 while writing, fsync, rename.
//! - `progress`: [`Progress`] across all files of a call, at most ~10 reports a second.
//! - `space`: [`ensure_space`], free space against the bytes still to fetch, before any fetch.
//! - `pick`: [`pick`], the model a name, file or quant tag (`Q4_K_M`) means; [`pull`] uses it.
//!
//! From a repo to a model on disk:
//! ```text
//! list_files(&hub, "owner/name")  GET /api/models/owner/name/tree/main?recursive=true
//!   -> [RemoteModel { id, files, total_size }]
//! download(&hub, "owner/name", &model.files, &models_dir, report, &cancel)
//!   per file: GET /owner/name/resolve/main/<path>  (302 to the CDN, followed)
//!             -> models_dir/owner--name/<path>.part -> checked -> models_dir/owner--name/<path>
//! ```
//! Interrupted calls (network, cancel, crash) leave `.part` files that the next call with the
//! same files resumes. Calls must not run twice at once for the same repo: they would share
//! the parts.

mod error;
mod hub;
mod listing;
mod names;
mod pick;
mod progress;
mod space;
mod transfer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

pub use error::DownloadError;
pub use hub::Hub;
pub use listing::{list_files, RemoteFile, RemoteModel};
pub use pick::pick;
pub use progress::Progress;
pub use space::{
    bytes_to_fetch, check_space, ensure_space, free_bytes, SPACE_MARGIN, TEST_FREE_BYTES_VAR,
};

use names::{local_path, Repo};
use progress::Meter;

/// Fetches `files` of `repo` into `dest_dir/<owner>--<name>/` and returns their paths, in order.
///
/// Every name is checked, and the free space against the bytes still to fetch
/// ([`ensure_space`]), before anything is written. A file already there with the listed size
/// is kept and counted as done (an earlier call finished it; only checked files get their final
/// name); any other file in the way is an error, never overwritten. `report` gets [`Progress`]
/// at most ~10 times a second and once at the end with `done_bytes == total_bytes`. Cancelling
/// stops between network chunks and keeps the `.part` for the next call.
pub async fn download(
    hub: &Hub,
    repo: &str,
    files: &[RemoteFile],
    dest_dir: &Path,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<Vec<PathBuf>, DownloadError> {
    let repo = Repo::parse(repo)?;
    let mut targets = Vec::with_capacity(files.len());
    for file in files {
        let path = local_path(dest_dir, &repo, &file.path)?;
        let complete = already_complete(&path, file)?;
        targets.push((file, path, complete));
    }
    space::ensure_space(dest_dir, &repo.to_string(), files)?;
    let mut meter = Meter::new(files.iter().map(|f| f.size).sum(), report);
    for (file, path, complete) in &targets {
        if cancel.is_cancelled() {
            return Err(DownloadError::Cancelled);
        }
        meter.start_file(&file.path);
        if *complete {
            meter.checked(file.size);
        } else {
            transfer::fetch(hub, &repo, file, path, &mut meter, cancel).await?;
        }
    }
    meter.finish();
    Ok(targets.into_iter().map(|(_, path, _)| path).collect())
}

/// `paddock models pull`: the model of `repo` that `wanted` names ([`pick`]), fetched into
/// `dest_dir` as [`download`] does. Returns the model and its local paths, in part order.
pub async fn pull(
    hub: &Hub,
    repo: &str,
    wanted: &str,
    dest_dir: &Path,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(RemoteModel, Vec<PathBuf>), DownloadError> {
    let models = list_files(hub, repo).await?;
    let model = pick(&models, repo, wanted)?.clone();
    let paths = download(hub, repo, &model.files, dest_dir, report, cancel).await?;
    Ok((model, paths))
}

/// Whether `path` already holds `file`: absent is no, same size is yes, anything else is in the
/// way.
fn already_complete(path: &Path, file: &RemoteFile) -> Result<bool, DownloadError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == file.size => Ok(true),
        Ok(_) => Err(DownloadError::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DownloadError::io(path)(e)),
    }
}
