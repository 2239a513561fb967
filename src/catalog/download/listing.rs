//! What a repo offers: its GGUF files from the hub's tree API, split parts grouped into models
//! the way the catalog groups them on disk.

use std::collections::BTreeMap;

use reqwest::header::LINK;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::hub::{Hub, REVISION};
use super::names::{local_path, Repo};
use super::DownloadError;
use crate::catalog::files::split_suffix;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    /// The path in the repo, `/`-separated; may include folders (`Q4_K_M/x-00001-of-00002.gguf`).
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 (the LFS object id); `None` for a file not stored in LFS.
    pub sha256: Option<String>,
}

/// One model: a single file, or the parts of a split set in part order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteModel {
    /// As the catalog will name it: the file name without `.gguf` and split suffix.
    pub id: String,
    pub files: Vec<RemoteFile>,
    pub total_size: u64,
}

/// One entry of `GET /api/models/{repo}/tree/{rev}?recursive=true`.
#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    oid: String,
}

/// The repo's GGUF models, split parts grouped, in path order.
pub async fn list_files(hub: &Hub, repo: &str) -> Result<Vec<RemoteModel>, DownloadError> {
    let repo = Repo::parse(repo)?;
    let mut url = hub.url(["api", "models", &repo.owner, &repo.name, "tree", REVISION]);
    url.query_pairs_mut().append_pair("recursive", "true");
    let mut files = Vec::new();
    // The hub pages long listings (1,000 entries) and links the next page in a `Link` header.
    let mut next = Some(url);
    while let Some(url) = next.take() {
        let response = hub.get(url.clone()).send().await;
        let response = response.map_err(|e| DownloadError::network(url.as_str(), e))?;
        let response = hub.check(response, &repo, None).await?;
        next = next_page(response.headers().get(LINK), &url, hub)?;
        let body = response.bytes().await;
        let body = body.map_err(|e| DownloadError::network(url.as_str(), e))?;
        let entries: Vec<TreeEntry> =
            serde_json::from_slice(&body).map_err(|e| DownloadError::Protocol {
                url: url.to_string(),
                reason: format!("tree listing: {e}"),
            })?;
        files.extend(entries.into_iter().filter_map(|e| model_file(&repo, e)));
    }
    Ok(group(files))
}

/// A `.gguf` file worth offering, or `None`. Vision projectors (`mmproj`) are left out as the
/// catalog leaves them out: they are not models of their own.
fn model_file(repo: &Repo, entry: TreeEntry) -> Option<RemoteFile> {
    let lower = entry.path.to_ascii_lowercase();
    if entry.kind != "file" || !lower.ends_with(".gguf") || lower.contains("mmproj") {
        return None;
    }
    if let Err(e) = local_path(std::path::Path::new(""), repo, &entry.path) {
        tracing::warn!(%repo, "skipping a listed file: {e}");
        return None;
    }
    let sha256 = entry
        .lfs
        .map(|lfs| lfs.oid.to_ascii_lowercase())
        .filter(|oid| oid.len() == 64 && oid.bytes().all(|b| b.is_ascii_hexdigit()));
    Some(RemoteFile {
        path: entry.path,
        size: entry.size,
        sha256,
    })
}

/// The `rel="next"` target of a `Link` header, resolved against the page it came with. The
/// token is sent there, so it must be on the hub.
fn next_page(
    link: Option<&reqwest::header::HeaderValue>,
    page: &Url,
    hub: &Hub,
) -> Result<Option<Url>, DownloadError> {
    let Some(link) = link.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let target = link.split(',').find_map(|item| {
        let (target, params) = item.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    });
    let Some(target) = target else {
        return Ok(None);
    };
    let protocol = |reason: String| DownloadError::Protocol {
        url: page.to_string(),
        reason,
    };
    let next = page
        .join(target)
        .map_err(|e| protocol(format!("next page link {target:?}: {e}")))?;
    if !hub.owns(&next) {
        return Err(protocol(format!("next page link leaves the hub: {next}")));
    }
    Ok(Some(next))
}

/// Groups split parts by folder, prefix and part count, as `files::scan` does on disk.
fn group(files: Vec<RemoteFile>) -> Vec<RemoteModel> {
    let mut sets: BTreeMap<(String, String, u32), BTreeMap<u32, RemoteFile>> = BTreeMap::new();
    let mut models = Vec::new();
    for file in files {
        let (dir, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
        let stem = &name[..name.len() - ".gguf".len()];
        match split_suffix(stem) {
            Some((prefix, part, count)) => {
                let key = (dir.to_owned(), prefix.to_owned(), count);
                sets.entry(key).or_default().insert(part, file);
            }
            None => {
                let id = stem.to_owned();
                models.push(model(id, vec![file]));
            }
        }
    }
    for ((_, prefix, _), parts) in sets {
        models.push(model(prefix, parts.into_values().collect()));
    }
    models.sort_by(|a, b| a.files[0].path.cmp(&b.files[0].path));
    models
}

fn model(id: String, files: Vec<RemoteFile>) -> RemoteModel {
    let total_size = files.iter().map(|f| f.size).sum();
    RemoteModel {
        id,
        files,
        total_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64) -> TreeEntry {
        TreeEntry {
            kind: "file".into(),
            path: path.into(),
            size,
            lfs: Some(Lfs {
                oid: "AB".repeat(32),
            }),
        }
    }

    #[test]
    fn only_safe_gguf_model_files_are_offered() {
        let repo = Repo::parse("o/n").unwrap();
        let keep = model_file(&repo, entry("Q4/m.GGUF", 7)).unwrap();
        assert_eq!(keep.sha256, Some("ab".repeat(32)));
        for path in ["README.md", "mmproj-f16.gguf", "../m.gguf", ".m.gguf"] {
            assert!(model_file(&repo, entry(path, 1)).is_none(), "{path}");
        }
        let mut folder = entry("Q4", 0);
        folder.kind = "directory".into();
        assert!(model_file(&repo, folder).is_none());
        let mut bad_oid = entry("m.gguf", 1);
        bad_oid.lfs = Some(Lfs { oid: "xyz".into() });
        assert_eq!(model_file(&repo, bad_oid).unwrap().sha256, None);
    }

    #[test]
    fn split_parts_group_per_folder_and_count() {
        let file = |path: &str| RemoteFile {
            path: path.into(),
            size: 10,
            sha256: None,
        };
        let models = group(vec![
            file("Q8/m-Q8-00002-of-00002.gguf"),
            file("m-Q4.gguf"),
            file("Q8/m-Q8-00001-of-00002.gguf"),
            file("other/m-Q8-00001-of-00002.gguf"),
            file("m-00001-of-00000.gguf"),
        ]);
        let summary: Vec<_> = models
            .iter()
            .map(|m| (m.id.as_str(), m.files.len(), m.total_size))
            .collect();
        assert_eq!(
            summary,
            [
                ("m-Q8", 2, 20),
                ("m-00001-of-00000", 1, 10),
                ("m-Q4", 1, 10),
                ("m-Q8", 1, 10)
            ]
        );
        assert_eq!(models[0].files[0].path, "Q8/m-Q8-00001-of-00002.gguf");
    }

    #[test]
    fn next_pages_come_from_link_headers_on_the_hub() {
        let hub = Hub::new("http://127.0.0.1:9", None).unwrap();
        let page = hub.url(["api", "models", "o", "n", "tree", "main"]);
        let link = |s: &'static str| reqwest::header::HeaderValue::from_static(s);
        let next = next_page(Some(&link(r#"</api/x?cursor=2>; rel="next""#)), &page, &hub);
        assert_eq!(
            next.unwrap().unwrap().as_str(),
            "http://127.0.0.1:9/api/x?cursor=2"
        );
        let prev = link(r#"<http://127.0.0.1:9/p>; rel="prev""#);
        assert!(next_page(Some(&prev), &page, &hub).unwrap().is_none());
        let away = link(r#"<https://evil.example/x>; rel="next""#);
        assert!(next_page(Some(&away), &page, &hub).is_err());
    }
}
