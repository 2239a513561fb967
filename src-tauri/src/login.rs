//! Launch at login: Tauri's autostart plugin (a LaunchAgent on macOS, an XDG autostart entry on
//! Linux) behind the library's `Autostart` trait, so the tray's check item and the web UI's
//! toggle change the same login item and both show its real state.

use paddock::autostart::{Autostart, AutostartState};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;

use crate::tray;

/// How it is done, in the words the web UI shows.
const MECHANISM: &str = if cfg!(target_os = "macos") {
    "LaunchAgent"
} else {
    "login item"
};

pub struct LoginItem<R: Runtime>(pub AppHandle<R>);

impl<R: Runtime> Autostart for LoginItem<R> {
    fn state(&self) -> Result<AutostartState, String> {
        let enabled = self
            .0
            .autolaunch()
            .is_enabled()
            .map_err(|e| e.to_string())?;
        Ok(AutostartState {
            enabled,
            mechanism: MECHANISM.into(),
        })
    }

    fn set(&self, enabled: bool) -> Result<AutostartState, String> {
        let autolaunch = self.0.autolaunch();
        let changed = if enabled {
            autolaunch.enable()
        } else {
            autolaunch.disable()
        };
        // Whatever happened, the menu shows what the system has now (a click on the check
        // item has already flipped its mark).
        tray::show_launch_at_login(&self.0, autolaunch.is_enabled().unwrap_or(false));
        changed.map_err(|e| e.to_string())?;
        self.state()
    }
}
