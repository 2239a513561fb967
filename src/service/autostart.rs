//! Launch at login for headless installs: the admin UI's toggle installs or removes the
//! login service, serving with the flags this server was started with.

use crate::autostart::{Autostart, AutostartState};

use super::{Backend, Home, ServiceSpec};

pub struct ServiceAutostart {
    pub spec: ServiceSpec,
    pub home: Home,
}

impl ServiceAutostart {
    fn now(&self) -> Result<AutostartState, String> {
        let backend = Backend::current().map_err(|e| e.to_string())?;
        Ok(AutostartState {
            enabled: backend.file(&self.home).is_file(),
            mechanism: match backend {
                Backend::Launchd { .. } => "LaunchAgent",
                Backend::Systemd => "systemd user unit",
            }
            .into(),
        })
    }
}

impl Autostart for ServiceAutostart {
    fn state(&self) -> Result<AutostartState, String> {
        self.now()
    }

    fn set(&self, enabled: bool) -> Result<AutostartState, String> {
        if enabled {
            let installed = super::install(&self.spec, &self.home).map_err(|e| e.to_string())?;
            tracing::info!("{installed}");
        } else {
            let removed = super::uninstall(&self.home).map_err(|e| e.to_string())?;
            tracing::info!("{removed}");
        }
        self.now()
    }
}
