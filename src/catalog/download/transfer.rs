//! One file from the hub to disk: into `<file>.part` (resumed when one is there), hashed while
//! written, checked, synced, then renamed, so a file under its final name is always complete.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use reqwest::{header, Response, StatusCode};
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, REVISION};
use super::names::{part_path, Repo};
use super::progress::{Meter, Progress};
use super::{DownloadError, RemoteFile};

/// Network chunks are small (~16 KiB); writes go to disk in bigger blocks.
const WRITE_BUFFER: usize = 1 << 20;
/// A kept part is re-hashed in blocks this size, off the async threads.
const HASH_BLOCK: usize = 8 << 20;

/// Fetches `file` to `path`. On error or cancel the `.part` stays for the next call to resume,
/// except after a checksum mismatch, when its bytes are known to be wrong.
pub(super) async fn fetch<F: FnMut(Progress)>(
    hub: &Hub,
    repo: &Repo,
    file: &RemoteFile,
    path: &Path,
    meter: &mut Meter<F>,
    cancel: &CancellationToken,
) -> Result<(), DownloadError> {
    let part_path = part_path(path);
    // The checksum covers the whole file, so a kept part is hashed again before resuming.
    let kept = kept_len(&part_path, file.size).await?;
    let hasher = hash_prefix(&part_path, kept, meter, cancel).await?;
    let response = if kept < file.size {
        Some(request(hub, repo, file, kept, cancel).await?)
    } else {
        None
    };
    let ignored_range = kept > 0
        && response
            .as_ref()
            .is_some_and(|r| r.status() == StatusCode::OK);
    let (len, hasher) = if ignored_range {
        tracing::warn!(file = %file.path, "the server ignored the range; starting over");
        meter.discarded(kept);
        (0, Sha256::new())
    } else {
        (kept, hasher)
    };
    // Only now, once the hub has said yes, is anything created on disk.
    let mut part = Part::open(part_path, len, hasher).await?;
    if let Some(response) = response {
        let appended = part.append(response, file, meter, cancel).await;
        // What arrived stays on disk, whatever stopped the stream.
        part.out
            .flush()
            .await
            .map_err(DownloadError::io(&part.path))?;
        appended?;
    }
    part.finish(file, path).await
}

/// The length of a part kept from an earlier attempt; 0 when there is none, or when it is
/// longer than the file and so cannot be a prefix of it.
async fn kept_len(part: &Path, size: u64) -> Result<u64, DownloadError> {
    match fs::metadata(part).await {
        Ok(meta) if meta.len() <= size => Ok(meta.len()),
        Ok(_) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(DownloadError::io(part)(e)),
    }
}

/// `GET …/resolve/main/<path>`, from byte `from` on; answers 200 (whole file) or 206 from `from`.
async fn request(
    hub: &Hub,
    repo: &Repo,
    file: &RemoteFile,
    from: u64,
    cancel: &CancellationToken,
) -> Result<Response, DownloadError> {
    let segments = [repo.owner.as_str(), &repo.name, "resolve", REVISION];
    let url = hub.url(segments.into_iter().chain(file.path.split('/')));
    let mut request = hub.get(url.clone());
    if from > 0 {
        request = request.header(header::RANGE, format!("bytes={from}-"));
    }
    tracing::debug!(%url, from, "requesting");
    let response = tokio::select! {
        _ = cancel.cancelled() => return Err(DownloadError::Cancelled),
        response = request.send() => response.map_err(|e| DownloadError::network(url.as_str(), e))?,
    };
    let response = hub.check(response, repo, Some(&file.path)).await?;
    let protocol = |reason: String| DownloadError::Protocol {
        url: response.url().to_string(),
        reason,
    };
    match response.status() {
        StatusCode::OK => Ok(response),
        StatusCode::PARTIAL_CONTENT => {
            let range = response
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            match range.and_then(range_start) {
                Some(start) if start == from => Ok(response),
                _ => Err(protocol(format!(
                    "asked for bytes {from}-, got Content-Range {range:?}"
                ))),
            }
        }
        status => Err(protocol(format!("unexpected status {status}"))),
    }
}

/// `bytes 100-199/200` → 100.
fn range_start(content_range: &str) -> Option<u64> {
    let range = content_range.strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

/// A `.part` file open for appending, with the hash of what it holds.
struct Part {
    path: PathBuf,
    out: BufWriter<fs::File>,
    hasher: Sha256,
    len: u64,
}

impl Part {
    /// Opens or creates the part holding exactly the `len` bytes that `hasher` has seen;
    /// anything after them is cut off.
    async fn open(path: PathBuf, len: u64, hasher: Sha256) -> Result<Part, DownloadError> {
        let dir = path
            .parent()
            .expect("local_path appends at least one component");
        fs::create_dir_all(dir)
            .await
            .map_err(DownloadError::io(dir))?;
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(DownloadError::io(&path))?;
        file.set_len(len).await.map_err(DownloadError::io(&path))?;
        if len > 0 {
            tracing::info!(part = %path.display(), len, "resuming");
        }
        Ok(Part {
            path,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            hasher,
            len,
        })
    }

    /// Appends the response body, checking for cancel between chunks.
    async fn append<F: FnMut(Progress)>(
        &mut self,
        response: Response,
        file: &RemoteFile,
        meter: &mut Meter<F>,
        cancel: &CancellationToken,
    ) -> Result<(), DownloadError> {
        let url = response.url().to_string();
        let mut body = response.bytes_stream();
        loop {
            let chunk = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(DownloadError::Cancelled),
                chunk = body.next() => chunk,
            };
            let Some(chunk) = chunk else {
                return Ok(());
            };
            let chunk = chunk.map_err(|e| DownloadError::network(&url, e))?;
            let len = chunk.len() as u64;
            if self.len + len > file.size {
                return Err(DownloadError::Size {
                    file: file.path.clone(),
                    expected: file.size,
                    actual: self.len + len,
                });
            }
            self.hasher.update(&chunk);
            self.out
                .write_all(&chunk)
                .await
                .map_err(DownloadError::io(&self.path))?;
            self.len += len;
            meter.fetched(len);
        }
    }

    /// Checks length and checksum, syncs, and renames the part to `path`.
    async fn finish(self, file: &RemoteFile, path: &Path) -> Result<(), DownloadError> {
        let Part {
            path: part,
            out,
            hasher,
            len,
        } = self;
        if len != file.size {
            // Short: the server ended early; the part resumes next time.
            return Err(DownloadError::Size {
                file: file.path.clone(),
                expected: file.size,
                actual: len,
            });
        }
        let actual = format!("{:x}", hasher.finalize());
        if let Some(expected) = file.sha256.as_ref().filter(|&sha| *sha != actual) {
            drop(out);
            fs::remove_file(&part)
                .await
                .map_err(DownloadError::io(&part))?;
            return Err(DownloadError::Checksum {
                file: file.path.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        // Synced before the rename: after a crash, the final name never points at missing data.
        out.get_ref()
            .sync_all()
            .await
            .map_err(DownloadError::io(&part))?;
        drop(out);
        fs::rename(&part, path)
            .await
            .map_err(DownloadError::io(path))?;
        if cfg!(unix) {
            // And the rename itself is made durable (a directory is opened like a file on Unix).
            let dir = path.parent().expect("a renamed file has a folder");
            let dir_file = fs::File::open(dir).await.map_err(DownloadError::io(dir))?;
            dir_file.sync_all().await.map_err(DownloadError::io(dir))?;
        }
        tracing::info!(file = %path.display(), sha256 = %actual, "downloaded");
        Ok(())
    }
}

/// The hash of a part's first `len` bytes, read on the blocking pool.
async fn hash_prefix<F: FnMut(Progress)>(
    path: &Path,
    len: u64,
    meter: &mut Meter<F>,
    cancel: &CancellationToken,
) -> Result<Sha256, DownloadError> {
    let mut hasher = Sha256::new();
    if len == 0 {
        return Ok(hasher);
    }
    let mut reader = std::fs::File::open(path).map_err(DownloadError::io(path))?;
    let mut buf = vec![0u8; HASH_BLOCK];
    let mut left = len;
    while left > 0 {
        if cancel.is_cancelled() {
            return Err(DownloadError::Cancelled);
        }
        let n = left.min(HASH_BLOCK as u64) as usize;
        let read;
        (reader, hasher, buf, read) = tokio::task::spawn_blocking(move || {
            let read = std::io::Read::read_exact(&mut reader, &mut buf[..n]);
            if read.is_ok() {
                hasher.update(&buf[..n]);
            }
            (reader, hasher, buf, read)
        })
        .await
        .expect("hashing a block does not panic");
        read.map_err(DownloadError::io(path))?;
        left -= n as u64;
        meter.checked(n as u64);
    }
    Ok(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_starts_are_read() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
