//! Finding GGUF models on disk: Paddock's own folder, folders the user adds, the Hugging Face
//! cache and LM Studio's model folder.
//!
//! A model is one `.gguf` file, or the parts of a split model (`<name>-00001-of-00003.gguf`,
//! llama.cpp's `llama_split_path` naming) grouped into one entry. Skipped: files without the
//! GGUF magic, vision projectors (names containing `mmproj`), hidden files and folders (macOS
//! `._*` copies, `.locks`), and a file already listed through another path (a symlink, an older
//! Hugging Face snapshot of the same blob, overlapping folders).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Folders nest at most this deep below a root (HF: `models--o--n/snapshots/<rev>/dir/file`).
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFile {
    /// The file name without `.gguf` and without a split suffix `-00001-of-00003`.
    pub id: String,
    /// The files, in part order (one for an unsplit model).
    pub parts: Vec<PathBuf>,
    pub source: Source,
    /// Paddock deletes only what it downloaded itself; every other source is read-only.
    pub read_only: bool,
    /// Part numbers (from 1) absent from an incomplete split set: such a model cannot load.
    pub missing_parts: Vec<u32>,
}

/// Where a model was found. As a folder to [`scan`], `HuggingFaceCache` marks a hub cache root
/// (its fields are ignored there and filled per model from the cache layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Paddock,
    UserFolder,
    HuggingFaceCache { repo: String, revision: String },
    LmStudio,
}

/// Every model under the folders, in folder order; within a folder by path.
pub fn scan(folders: &[(PathBuf, Source)]) -> Vec<ModelFile> {
    let mut seen = HashSet::new();
    let mut models = Vec::new();
    for (root, source) in folders {
        let mut found = Vec::new();
        match source {
            Source::HuggingFaceCache { .. } => hf_cache(root, &mut found),
            _ => walk(root, source, 0, &mut HashSet::new(), &mut found),
        }
        // The same file reached twice (symlinks, old snapshots) is listed once: where it was
        // found first, so folder order and `refs/main` decide.
        found.retain(|(path, _)| seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone())));
        models.extend(group(found));
    }
    models
}

/// Paddock's folder, the Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`,
/// `$XDG_CACHE_HOME/huggingface/hub` or `~/.cache/huggingface/hub`, as `huggingface_hub` picks
/// it) and LM Studio's `~/.lmstudio/models` and `~/.cache/lm-studio/models`: those that exist.
pub fn default_folders(paddock_models: &Path) -> Vec<(PathBuf, Source)> {
    let home = directories::BaseDirs::new().map(|dirs| dirs.home_dir().to_path_buf());
    folders_from(paddock_models, |key| std::env::var_os(key), home.as_deref())
}

fn folders_from(
    paddock_models: &Path,
    env: impl Fn(&str) -> Option<OsString>,
    home: Option<&Path>,
) -> Vec<(PathBuf, Source)> {
    let var = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    let hf_home = var("HF_HOME")
        .or_else(|| var("XDG_CACHE_HOME").map(|cache| cache.join("huggingface")))
        .or_else(|| home.map(|h| h.join(".cache/huggingface")));
    let hub = var("HF_HUB_CACHE")
        .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| hf_home.map(|h| h.join("hub")));
    let hf = Source::HuggingFaceCache {
        repo: String::new(),
        revision: String::new(),
    };

    let mut folders = vec![(paddock_models.to_path_buf(), Source::Paddock)];
    folders.extend(hub.map(|hub| (hub, hf)));
    if let Some(home) = home {
        folders.push((home.join(".lmstudio/models"), Source::LmStudio));
        folders.push((home.join(".cache/lm-studio/models"), Source::LmStudio));
    }
    // Kept even when missing: Paddock's own folder appears with the first download, and the
    // scan skips folders that are not there.
    folders
}

/// A hub cache: `models--<org>--<name>/snapshots/<revision>/…`, the files being symlinks into
/// `blobs/`. The revision `refs/main` names is scanned first, so it wins over older snapshots.
fn hf_cache(root: &Path, found: &mut Vec<(PathBuf, Source)>) {
    for repo_dir in sorted_entries(root) {
        let Some(repo) = file_name(&repo_dir)
            .strip_prefix("models--")
            .map(|r| r.replacen("--", "/", 1))
        else {
            continue;
        };
        let main = std::fs::read_to_string(repo_dir.join("refs/main")).unwrap_or_default();
        let mut snapshots = sorted_entries(&repo_dir.join("snapshots"));
        snapshots.sort_by_key(|snap| file_name(snap) != main.trim());
        for snapshot in snapshots {
            let revision = file_name(&snapshot).to_owned();
            let source = Source::HuggingFaceCache {
                repo: repo.clone(),
                revision,
            };
            walk(&snapshot, &source, 0, &mut HashSet::new(), found);
        }
    }
}

/// Collects GGUF files under `dir`, following symlinks but never into a folder twice.
fn walk(
    dir: &Path,
    source: &Source,
    depth: usize,
    visited: &mut HashSet<PathBuf>,
    found: &mut Vec<(PathBuf, Source)>,
) {
    let Ok(canonical) = dir.canonicalize() else {
        return;
    };
    if depth > MAX_DEPTH || !visited.insert(canonical) {
        return;
    }
    for path in sorted_entries(dir) {
        let name = file_name(&path);
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, source, depth + 1, visited, found);
        } else if is_model_file(&path, name) {
            found.push((path, source.clone()));
        }
    }
}

fn is_model_file(path: &Path, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if !lower.ends_with(".gguf") || lower.contains("mmproj") {
        return false;
    }
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF"
}

/// Groups split parts by folder, prefix and part count; other files stand alone.
fn group(found: Vec<(PathBuf, Source)>) -> Vec<ModelFile> {
    type SetKey = (PathBuf, String, u32);
    let mut sets: BTreeMap<SetKey, (Source, BTreeMap<u32, PathBuf>)> = BTreeMap::new();
    let mut models = Vec::new();
    for (path, source) in found {
        let stem = file_name(&path);
        let stem = stem
            .get(..stem.len().saturating_sub(".gguf".len()))
            .unwrap_or(stem)
            .to_owned();
        match split_suffix(&stem) {
            Some((prefix, part, count)) => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let set = sets
                    .entry((dir, prefix.to_owned(), count))
                    .or_insert_with(|| (source, BTreeMap::new()));
                set.1.insert(part, path);
            }
            None => models.push(model(stem, vec![path], source, Vec::new())),
        }
    }
    for ((_, prefix, count), (source, parts)) in sets {
        let missing = (1..=count).filter(|n| !parts.contains_key(n)).collect();
        models.push(model(
            prefix,
            parts.into_values().collect(),
            source,
            missing,
        ));
    }
    models.sort_by(|a, b| a.parts.first().cmp(&b.parts.first()));
    models
}

fn model(id: String, parts: Vec<PathBuf>, source: Source, missing_parts: Vec<u32>) -> ModelFile {
    let read_only = source != Source::Paddock;
    ModelFile {
        id,
        parts,
        source,
        read_only,
        missing_parts,
    }
}

/// `Qwen3-235B-Q4_K_M-00002-of-00005` → `("Qwen3-235B-Q4_K_M", 2, 5)`: llama.cpp's split
/// naming (also read from the hub's file lists).
pub(crate) fn split_suffix(stem: &str) -> Option<(&str, u32, u32)> {
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, part) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(part) || !digits(count) {
        return None;
    }
    let (part, count) = (part.parse().ok()?, count.parse().ok()?);
    (1..=count).contains(&part).then_some((prefix, part, count))
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// The last path component; "" for names that are not UTF-8 (such files are skipped).
fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

#[cfg(test)]
mod tests;
