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
