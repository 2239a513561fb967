//! Names that come from outside: the repo the user typed and the file paths the hub lists. Both
//! end up in local paths, so both are checked before anything touches the disk.

use std::fmt;
use std::path::{Path, PathBuf};

use super::DownloadError;

/// A Hugging Face model repo, `owner/name`, checked by the hub's own rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Repo {
    pub owner: String,
    pub name: String,
}

impl Repo {
    pub fn parse(repo: &str) -> Result<Repo, DownloadError> {
        let invalid = || DownloadError::InvalidRepo {
            repo: repo.to_owned(),
        };
        let (owner, name) = repo.split_once('/').ok_or_else(invalid)?;
        if !valid_part(owner) || !valid_part(name) {
            return Err(invalid());
        }
        Ok(Repo {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The repo's folder under Paddock's models folder, `owner--name`. The hub forbids `--` in
    /// names, so two repos never share a folder (the hub cache's `models--owner--name` relies on
    /// the same rule).
    pub fn folder(&self) -> String {
        format!("{}--{}", self.owner, self.name)
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The hub's rule for each half of a repo id: at most 96 of `[A-Za-z0-9._-]`, no `--` or `..`,
/// not starting or ending with `-` or `.`.
fn valid_part(part: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c != '-' && c != '.');
    part.len() <= 96
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !part.contains("--")
        && !part.contains("..")
        && edge(part.chars().next())
        && edge(part.chars().last())
}

/// Where a repo file is stored: `dest_dir/<owner>--<name>/<path>`, the repo's own folders kept.
///
/// One folder per repo, rather than all files flat in `dest_dir`, because repos reuse file names
/// (`ggml-model-q4_0.gguf`), because a split set's parts must share a folder to be grouped, and so
/// a repo's files can be removed together. The catalog finds them: it scans Paddock's folder
/// recursively, 8 levels deep (`files::MAX_DEPTH`), and repos nest one or two.
pub(super) fn local_path(
    dest_dir: &Path,
    repo: &Repo,
    remote: &str,
) -> Result<PathBuf, DownloadError> {
    let refuse = |reason| DownloadError::UnsafePath {
        path: remote.to_owned(),
        reason,
    };
    if remote.starts_with('/') {
        return Err(refuse("absolute path"));
    }
    if remote.contains('\\') {
        return Err(refuse("backslash (a Windows path separator)"));
    }
    if remote.contains('\0') {
        return Err(refuse("NUL byte"));
    }
    let mut path = dest_dir.join(repo.folder());
    for part in remote.split('/') {
        match part {
            "" => return Err(refuse("empty path component")),
            "." | ".." => return Err(refuse("relative path component")),
            // The catalog skips hidden files, so such a model would download and never show.
            _ if part.starts_with('.') => return Err(refuse("hidden file or folder")),
            _ => path.push(part),
        }
    }
    Ok(path)
}

/// The partial file beside `path`: `<file>.part`, which the catalog ignores (not `.gguf`).
pub(super) fn part_path(path: &Path) -> PathBuf {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_the_hubs_rules() {
        let repo = Repo::parse("bartowski/Qwen_Qwen3-4B-GGUF").unwrap();
        assert_eq!(
            (repo.to_string(), repo.folder()),
            (
                "bartowski/Qwen_Qwen3-4B-GGUF".to_owned(),
                "bartowski--Qwen_Qwen3-4B-GGUF".to_owned()
            )
        );
        for bad in [
            "",
            "noslash",
            "a/b/c",
            "/b",
            "a/",
            "../b",
            "a/..",
            "a/.hidden",
            "a--b/c",
            "a/b..c",
            "a/b c",
            "a/b\\c",
            "-a/b",
            "a/b-",
            "a/b%2f",
            "ä/b",
        ] {
            assert!(Repo::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Repo::parse(&format!("a/{}", "x".repeat(97))).is_err());
    }

    #[test]
    fn remote_paths_stay_inside_the_repo_folder() {
        let repo = Repo::parse("o/n").unwrap();
        let dest = Path::new("/models");
        assert_eq!(
            local_path(dest, &repo, "Q4_K_M/m-00001-of-00002.gguf").unwrap(),
            Path::new("/models/o--n/Q4_K_M/m-00001-of-00002.gguf")
        );
        for bad in [
            "../m.gguf",
            "a/../../m.gguf",
            "/etc/m.gguf",
            "a\\..\\m.gguf",
            "a//m.gguf",
            "./m.gguf",
            "a/./m.gguf",
            ".m.gguf",
            "a/.cache/m.gguf",
            "m.gguf/",
            "",
            "m\0.gguf",
        ] {
            let err = local_path(dest, &repo, bad).unwrap_err();
            assert!(
                matches!(err, DownloadError::UnsafePath { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn parts_sit_beside_their_file() {
        assert_eq!(
            part_path(Path::new("/m/o--n/x.gguf")),
            Path::new("/m/o--n/x.gguf.part")
        );
    }
}
