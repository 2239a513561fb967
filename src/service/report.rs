//! What install, uninstall and status did, as values the CLI prints and the admin UI reads.

use std::fmt;
use std::path::PathBuf;

/// What a service manager said when asked to load or unload the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerReply {
    Done,
    /// A manager command failed, e.g. no systemd user instance in a container or over `su`.
    /// The file work is done either way; `by_hand` is what the user can run later.
    Failed {
        command: String,
        error: String,
        by_hand: String,
    },
}

/// `install`: the file is always written; the manager may or may not have started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub file: PathBuf,
    pub manager: ManagerReply,
    /// Where the server's output goes: a file, or the command that shows it.
    pub logs: String,
    /// Platform advice, e.g. that a user service stops at logout unless lingering is on.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninstalled {
    Removed {
        file: PathBuf,
        manager: ManagerReply,
    },
    /// There was no file: nothing was run or removed.
    NotInstalled { file: PathBuf },
}

/// What the manager says about the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// Its process is up; the text has the details ("running, pid 4242", "active, enabled").
    Running(String),
    /// Known but not running, or not loaded at all ("inactive, enabled", "not loaded").
    Stopped(String),
    /// The manager could not be asked (no user session, command missing).
    Unknown { command: String, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub file: PathBuf,
    pub installed: bool,
    pub state: ServiceState,
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &self.manager {
            ManagerReply::Done => writeln!(f, "Installed {file} and started the service.")?,
            ManagerReply::Failed {
                command,
                error,
                by_hand,
            } => writeln!(
                f,
                "Wrote {file}; could not start it: `{command}` failed: {error}\n\
                 Run this yourself once a user session is available:\n  {by_hand}"
            )?,
        }
        write!(f, "Logs: {}", self.logs)?;
        if let Some(note) = &self.note {
            write!(f, "\nNote: {note}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uninstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uninstalled::NotInstalled { file } => {
                write!(
                    f,
                    "Not installed: {} does not exist; nothing to do.",
                    file.display()
                )
            }
            Uninstalled::Removed {
                file,
                manager: ManagerReply::Done,
            } => write!(f, "Stopped the service and removed {}.", file.display()),
            Uninstalled::Removed {
                file,
                manager:
                    ManagerReply::Failed {
                        command,
                        error,
                        by_hand,
                    },
            } => write!(
                f,
                "Removed {}; could not stop the service: `{command}` failed: {error}\n\
                 If it is still running, run:\n  {by_hand}",
                file.display()
            ),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.installed {
            true => writeln!(f, "Installed: {}", self.file.display())?,
            false => writeln!(f, "Not installed (no {})", self.file.display())?,
        }
        match &self.state {
            ServiceState::Running(detail) => write!(f, "State: running ({detail})"),
            ServiceState::Stopped(detail) => write!(f, "State: not running ({detail})"),
            ServiceState::Unknown { command, error } => {
                write!(f, "State: unknown (`{command}` failed: {error})")
            }
        }
    }
}
