//! Where Paddock keeps its files: the platform's config directory
//! (macOS `~/Library/Application Support/Paddock`, elsewhere `$XDG_CONFIG_HOME/paddock`).

use std::path::PathBuf;

use directories::ProjectDirs;

pub fn config_dir() -> Option<PathBuf> {
    ProjectDirs::from("", "", "Paddock").map(|d| d.config_dir().to_path_buf())
}

/// The default config file, `paddock.toml` in the config directory.
pub fn config_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("paddock.toml"))
}
