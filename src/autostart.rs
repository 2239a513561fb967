//! Launch at login, behind one interface: the desktop app uses its login item (Tauri's
//! autostart plugin), a headless install uses a service (launchd / systemd, `paddock
//! service`). The admin API and the tray show and change it through this trait.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutostartState {
    pub enabled: bool,
    /// How it is done, in the user's words: "login item", "LaunchAgent", "systemd user unit".
    pub mechanism: String,
}

pub trait Autostart: Send + Sync {
    fn state(&self) -> Result<AutostartState, String>;
    fn set(&self, enabled: bool) -> Result<AutostartState, String>;
}
