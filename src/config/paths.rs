//! Where Paddock keeps its files: the platform's config directory
//! (macOS `~/Library/Application Support/Paddock`, elsewhere `$XDG_CONFIG_HOME/paddock`).

use std::path::PathBuf;

use directories::ProjectDirs;

pub fn config_dir() -> Option<PathBuf> {
    ProjectDirs::from("", "", "Paddock").map(|d| d.config_dir().to_path_buf())
}

/// Paddock's own models folder (downloads go here): `models` in the platform data directory.
pub fn models_dir() -> Option<PathBuf> {
    ProjectDirs::from("", "", "Paddock").map(|d| d.data_dir().join("models"))
}

/// The default config file, `paddock.toml` in the config directory.
pub fn config_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("paddock.toml"))
}

/// Benchmark results, one JSON object per line, oldest first: `bench-history.jsonl` in the
/// platform data directory (`PADDOCK_BENCH_HISTORY` overrides it, for tests and scripts).
pub fn bench_history_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PADDOCK_BENCH_HISTORY") {
        return Some(PathBuf::from(path));
    }
    ProjectDirs::from("", "", "Paddock").map(|d| d.data_dir().join("bench-history.jsonl"))
}

/// Where an RPC worker keeps tensors it was sent (`paddock worker --cache`), so reloading a
/// model sends only their hashes: `rpc-cache` in the platform cache directory.
pub fn rpc_cache_dir() -> Option<PathBuf> {
    ProjectDirs::from("", "", "Paddock").map(|d| d.cache_dir().join("rpc-cache"))
}
