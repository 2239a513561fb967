//! Room on disk before a download starts: the bytes still to fetch (files not yet there, minus
//! what kept `.part` files hold) against the free space of the models folder's filesystem.

use std::path::Path;

use super::names::{local_path, part_path, Repo};
use super::{DownloadError, RemoteFile};

/// Kept free beyond the download itself: the filesystem's own metadata, logs, other writers.
pub const SPACE_MARGIN: u64 = 128 << 20;

/// Test-only: pretends the models folder's filesystem has this many bytes free.
pub const TEST_FREE_BYTES_VAR: &str = "PADDOCK_TEST_FREE_BYTES";

/// Refuses a download of `needed` more bytes when `free` (None: unknown, allowed) is smaller
/// than that plus [`SPACE_MARGIN`]. Pure: the decision only.
pub fn check_space(needed: u64, free: Option<u64>, dir: &Path) -> Result<(), DownloadError> {
    match free {
        Some(free) if free < needed.saturating_add(SPACE_MARGIN) && needed > 0 => {
            Err(DownloadError::NoSpace {
                path: dir.to_path_buf(),
                needed,
                free,
            })
        }
        _ => Ok(()),
    }
}

/// Bytes of `files` of `repo` not yet in `dest_dir`: a complete file counts 0, a kept `.part`
/// (no longer than the file) counts what it lacks.
pub fn bytes_to_fetch(
    dest_dir: &Path,
    repo: &str,
    files: &[RemoteFile],
) -> Result<u64, DownloadError> {
    let repo = Repo::parse(repo)?;
    let mut needed = 0u64;
    for file in files {
        let path = local_path(dest_dir, &repo, &file.path)?;
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
        let have = match len(&path) {
            Some(n) if n == file.size => file.size,
            _ => len(&part_path(&path))
                .filter(|&n| n <= file.size)
                .unwrap_or(0),
        };
        needed = needed.saturating_add(file.size - have);
    }
    Ok(needed)
}

/// Free bytes (for an unprivileged user) on the filesystem that holds `dir`, or would hold it
/// once created; `None` when unknown. [`TEST_FREE_BYTES_VAR`] overrides it, for tests only.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    if let Some(bytes) = std::env::var(TEST_FREE_BYTES_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(bytes);
    }
    // The folder may not exist yet: its nearest existing ancestor is on the same filesystem.
    let existing = dir.ancestors().find(|p| p.exists())?;
    statvfs_free(existing)
}

#[cfg(unix)]
fn statvfs_free(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is NUL-terminated and `stat` is a valid place for statvfs to write.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    // Field widths differ between macOS and Linux.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (avail, frsize) = (u64::from(stat.f_bavail), stat.f_frsize as u64);
    Some(avail.saturating_mul(frsize))
}

#[cfg(not(unix))]
fn statvfs_free(_: &Path) -> Option<u64> {
    None
}

/// Checks that `files` of `repo` fit in `dest_dir`'s filesystem before anything is fetched.
pub fn ensure_space(
    dest_dir: &Path,
    repo: &str,
    files: &[RemoteFile],
) -> Result<(), DownloadError> {
    let needed = bytes_to_fetch(dest_dir, repo, files)?;
    check_space(needed, free_bytes(dest_dir), dest_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_larger_than_free_space_plus_margin_is_refused() {
        let dir = Path::new("/models");
        let gib = 1u64 << 30;
        assert!(check_space(gib, Some(2 * gib), dir).is_ok());
        assert!(check_space(gib, None, dir).is_ok());
        assert!(
            check_space(0, Some(0), dir).is_ok(),
            "nothing left to fetch"
        );
        // Exactly the download: the margin is missing.
        let err = check_space(gib, Some(gib), dir).unwrap_err();
        assert!(matches!(
            err,
            DownloadError::NoSpace { needed, free, .. } if needed == gib && free == gib
        ));
        let text = err.to_string();
        assert!(
            text.contains("1.00 GiB") && text.contains("/models"),
            "{text}"
        );
        assert!(check_space(gib, Some(gib + SPACE_MARGIN), dir).is_ok());
    }

    #[test]
    fn kept_parts_and_complete_files_are_not_fetched_again() {
        let dir = std::env::temp_dir().join(format!("paddock-space-{}", std::process::id()));
        let repo_dir = dir.join("o--n");
        std::fs::create_dir_all(&repo_dir).unwrap();
        std::fs::write(repo_dir.join("a.gguf"), [0u8; 10]).unwrap();
        std::fs::write(repo_dir.join("b.gguf.part"), [0u8; 4]).unwrap();
        std::fs::write(repo_dir.join("c.gguf.part"), [0u8; 40]).unwrap();
        let file = |path: &str, size| RemoteFile {
            path: path.into(),
            size,
            sha256: None,
        };
        let files = [file("a.gguf", 10), file("b.gguf", 10), file("c.gguf", 10)];
        // a: done; b: 6 left; c: its part is too long to be a prefix, so all 10.
        assert_eq!(bytes_to_fetch(&dir, "o/n", &files).unwrap(), 16);
        assert!(free_bytes(&dir.join("not/yet")).is_some_and(|b| b > 0) || cfg!(not(unix)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
