//! Paddock as a login service: a launchd LaunchAgent on macOS, a systemd user unit on Linux.
//! `paddock service install|uninstall|status` and the admin UI's "start at login" toggle both
//! come here.
//!
//! ```text
//! ServiceSpec ──► launchd::plist / systemd::unit (pure text) ──► file under Home
//!                                                                  └──► launchctl / systemctl (Commands)
//! ```
//! Rendering is pure and tested on every platform. The file goes under a [`Home`] the caller
//! passes (tests use a temp dir), and the service manager is reached through [`Commands`] so
//! tests swap in a fake. A missing manager never fails an install (a container has no systemd
//! user instance): the file is written and [`ManagerReply::Failed`] says what to run by hand.

mod args;
mod autostart;
mod command;
mod error;
pub mod launchd;
mod report;
pub mod systemd;

use std::path::{Path, PathBuf};

pub use args::{absolute, absolute_paths};
pub use autostart::ServiceAutostart;
pub use command::{Commands, Ran, SystemCommands};
pub use error::ServiceError;
pub use report::{Installed, ManagerReply, ServiceState, Status, Uninstalled};

/// What the service runs: `exe args...` with `env` added to the manager's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Absolute path of the `paddock` binary.
    pub exe: PathBuf,
    /// Everything after the binary: `serve` and the user's flags, paths already absolute.
    pub args: Vec<String>,
    /// launchd appends stdout and stderr to `paddock.log` here; systemd uses the journal
    /// instead, which rotates (a plain file under systemd would grow forever).
    pub log_dir: PathBuf,
    /// Extra environment, in order (e.g. the `PADDOCK_*` variables set at install time).
    pub env: Vec<(String, String)>,
    /// `[server] shutdown_grace_secs`: how long the server drains open streams after SIGTERM.
    pub shutdown_grace_secs: u64,
}

/// Seconds past the grace period before the manager may SIGKILL: after draining, the server
/// still frees the model (unmapping tens of GB) and exits.
const STOP_MARGIN_SECS: u64 = 15;

impl ServiceSpec {
    /// SIGTERM-to-SIGKILL wait for the manager (launchd's own default, 20 s, would cut a
    /// 30 s drain short).
    pub fn stop_timeout_secs(&self) -> u64 {
        self.shutdown_grace_secs.saturating_add(STOP_MARGIN_SECS)
    }
}

/// The user's directories the service file lives under. Production: [`Home::from_env`];
/// tests: [`Home::new`] on a temp dir, so nothing reads the real environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub dir: PathBuf,
    /// `$XDG_CONFIG_HOME` (systemd looks for user units there); `None` means `dir/.config`.
    pub xdg_config_home: Option<PathBuf>,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home {
            dir: dir.into(),
            xdg_config_home: None,
        }
    }

    /// `$HOME` and `$XDG_CONFIG_HOME`; a relative XDG value is ignored, as the XDG spec says.
    pub fn from_env() -> Result<Self, ServiceError> {
        let dir = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(ServiceError::NoHome)?;
        let xdg_config_home = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        Ok(Home {
            dir,
            xdg_config_home,
        })
    }
}

/// The service manager that runs Paddock on this platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// macOS: a LaunchAgent in the user's GUI domain, `gui/<uid>`.
    Launchd { uid: u32 },
    /// Linux: a unit of the user's systemd instance (`systemctl --user`).
    Systemd,
}

impl Backend {
    /// launchd on macOS, systemd on Linux; elsewhere an error saying so.
    pub fn current() -> Result<Self, ServiceError> {
        #[cfg(target_os = "macos")]
        {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            Ok(Backend::Launchd { uid })
        }
        #[cfg(target_os = "linux")]
        {
            Ok(Backend::Systemd)
        }
        #[cfg(not(any(target_os = "macos", target_os = "linux")))]
        {
            Err(ServiceError::Unsupported {
                os: std::env::consts::OS,
            })
        }
    }

    /// The plist or unit file.
    pub fn file(&self, home: &Home) -> PathBuf {
        match self {
            Backend::Launchd { .. } => launchd::plist_path(&home.dir),
            Backend::Systemd => systemd::unit_path(home),
        }
    }

    /// Where logs belong on this platform: `~/Library/Logs/Paddock` (Console.app shows it);
    /// on Linux `~/.local/state/paddock`, unused while the unit logs to the journal.
    pub fn default_log_dir(&self, home: &Home) -> PathBuf {
        match self {
            Backend::Launchd { .. } => home.dir.join("Library/Logs/Paddock"),
            Backend::Systemd => home.dir.join(".local/state/paddock"),
        }
    }

    pub fn render(&self, spec: &ServiceSpec) -> Result<String, ServiceError> {
        match self {
            Backend::Launchd { .. } => launchd::plist(spec),
            Backend::Systemd => systemd::unit(spec),
        }
    }

    pub fn install(
        &self,
        spec: &ServiceSpec,
        home: &Home,
        cmds: &dyn Commands,
    ) -> Result<Installed, ServiceError> {
        match self {
            Backend::Launchd { uid } => launchd::install(spec, &home.dir, *uid, cmds),
            Backend::Systemd => systemd::install(spec, home, cmds),
        }
    }

    pub fn uninstall(&self, home: &Home, cmds: &dyn Commands) -> Result<Uninstalled, ServiceError> {
        match self {
            Backend::Launchd { uid } => launchd::uninstall(&home.dir, *uid, cmds),
            Backend::Systemd => systemd::uninstall(home, cmds),
        }
    }

    pub fn status(&self, home: &Home, cmds: &dyn Commands) -> Result<Status, ServiceError> {
        match self {
            Backend::Launchd { uid } => launchd::status(&home.dir, *uid, cmds),
            Backend::Systemd => systemd::status(home, cmds),
        }
    }
}

/// Writes the service file and hands it to this platform's manager.
pub fn install(spec: &ServiceSpec, home: &Home) -> Result<Installed, ServiceError> {
    Backend::current()?.install(spec, home, &SystemCommands)
}

/// Stops the service and removes its file; without a file, does nothing and says so.
pub fn uninstall(home: &Home) -> Result<Uninstalled, ServiceError> {
    Backend::current()?.uninstall(home, &SystemCommands)
}

/// Whether the file is there and what the manager says about the service.
pub fn status(home: &Home) -> Result<Status, ServiceError> {
    Backend::current()?.status(home, &SystemCommands)
}

/// For the admin UI's toggle: the service file exists (false where services are unsupported).
pub fn is_installed(home: &Home) -> bool {
    Backend::current().is_ok_and(|b| b.file(home).is_file())
}

/// Text that goes into a service file. Control characters are refused rather than encoded:
/// XML 1.0 cannot carry most of them, and no sane flag contains one.
fn text<'a>(what: &'static str, value: &'a str) -> Result<&'a str, ServiceError> {
    match value
        .chars()
        .find(|&c| c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
    {
        Some(c) => Err(ServiceError::Unrepresentable {
            what,
            value: value.to_string(),
            reason: format!("it contains the control character {c:?}"),
        }),
        None => Ok(value),
    }
}

fn path_text<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, ServiceError> {
    let s = path.to_str().ok_or_else(|| ServiceError::Unrepresentable {
        what,
        value: path.display().to_string(),
        reason: "it is not valid UTF-8".into(),
    })?;
    text(what, s)
}

/// The binary must be absolute: neither manager starts in the directory `install` ran in.
fn exe_text(spec: &ServiceSpec) -> Result<&str, ServiceError> {
    if !spec.exe.is_absolute() {
        return Err(ServiceError::Unrepresentable {
            what: "program",
            value: spec.exe.display().to_string(),
            reason: "it must be an absolute path".into(),
        });
    }
    path_text("program", &spec.exe)
}

/// Both managers take names of this shape (systemd refuses others; a shell could not use them).
fn env_name(name: &str) -> Result<&str, ServiceError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(ServiceError::Unrepresentable {
            what: "environment variable name",
            value: name.to_string(),
            reason: "names are letters, digits and _, not starting with a digit".into(),
        })
    }
}

/// Whole and private (see [`crate::private_file`]): the environment may hold the API key.
fn write_file(path: &Path, contents: &str) -> Result<(), ServiceError> {
    crate::private_file::write(path, contents.as_bytes()).map_err(|source| ServiceError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn remove_file(path: &Path) -> Result<(), ServiceError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ServiceError::Remove {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A temp home and a scripted service manager for the install/uninstall/status tests.

    use std::cell::RefCell;
    use std::path::Path;

    use super::{Commands, Ran, ServiceSpec};

    pub use crate::test_util::TempDir;

    /// Answers each command with `reply(command line)` and records the command lines.
    pub struct FakeCommands<F: Fn(&str) -> Ran> {
        pub reply: F,
        pub log: RefCell<Vec<String>>,
    }

    impl<F: Fn(&str) -> Ran> FakeCommands<F> {
        pub fn new(reply: F) -> Self {
            FakeCommands {
                reply,
                log: RefCell::new(Vec::new()),
            }
        }

        pub fn calls(&self) -> Vec<String> {
            self.log.borrow().clone()
        }
    }

    impl<F: Fn(&str) -> Ran> Commands for FakeCommands<F> {
        fn run(&self, program: &str, args: &[&str]) -> Ran {
            let line = std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" ");
            self.log.borrow_mut().push(line.clone());
            (self.reply)(&line)
        }
    }

    pub fn ok(stdout: &str) -> Ran {
        Ran {
            success: true,
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    pub fn fail(code: i32, stdout: &str, stderr: &str) -> Ran {
        Ran {
            success: false,
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// Paths with spaces and every character the formats escape; args a user might write.
    pub fn tricky_spec(root: &Path) -> ServiceSpec {
        ServiceSpec {
            exe: root.join("Paddock & <Co> \"it's\"/bin/paddock"),
            args: [
                "serve",
                "--config",
                "/Users/me/My Models/paddock.toml",
                "--alias",
                "R&D <\"fast\"> it's",
                "--api-key",
                "100% $HOME ${X} \\ ;",
            ]
            .map(String::from)
            .to_vec(),
            log_dir: root.join("Logs & <more>"),
            env: vec![
                ("PADDOCK_LOG".into(), "info,paddock=debug".into()),
                ("PADDOCK_API_KEY".into(), "k&y \"q\" 50% $x".into()),
            ],
            shutdown_grace_secs: 30,
        }
    }

    /// `tricky_spec` with a program path systemd takes: no quotes or backslashes.
    pub fn systemd_spec(root: &Path) -> ServiceSpec {
        ServiceSpec {
            exe: root.join("my bin 100% $x/paddock"),
            ..tricky_spec(root)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bad_names_are_refused_naming_the_value() {
        let mut spec = testing::tricky_spec(Path::new("/opt"));
        spec.exe = "/opt/bin/paddock".into(); // systemd refuses quotes in program paths
        spec.args.push("two\nlines".into());
        for render in [launchd::plist, systemd::unit] {
            let err = render(&spec).unwrap_err().to_string();
            assert!(
                err.contains("two\\nlines") && err.contains("control"),
                "{err}"
            );
        }
        spec.args.pop();
        spec.env.push(("1BAD".into(), "x".into()));
        for render in [launchd::plist, systemd::unit] {
            let err = render(&spec).unwrap_err().to_string();
            assert!(err.contains("1BAD"), "{err}");
        }
        spec.env.pop();
        spec.exe = "bin/paddock".into();
        assert!(systemd::unit(&spec)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        assert!(launchd::plist(&spec)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }

    #[test]
    fn write_file_replaces_whole_files_private_to_the_user() {
        let dir = testing::TempDir::new("write");
        let path = dir.path().join("a/b/file.plist");
        write_file(&path, "one").unwrap();
        write_file(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.plist"], "no temporary file left behind");
        let err = write_file(&path.join("under-a-file"), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("file.plist"), "{err}");
    }

    #[test]
    fn backend_picks_the_platform_manager() {
        match Backend::current() {
            #[cfg(target_os = "macos")]
            Ok(Backend::Launchd { .. }) => {}
            #[cfg(target_os = "linux")]
            Ok(Backend::Systemd) => {}
            #[cfg(not(any(target_os = "macos", target_os = "linux")))]
            Err(e) => assert!(e.to_string().contains("not supported")),
            other => panic!("unexpected backend {other:?}"),
        }
    }
}
