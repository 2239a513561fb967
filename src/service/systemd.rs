//! Linux: a unit of the user's systemd instance, `$XDG_CONFIG_HOME/systemd/user/paddock.service`,
//! driven with `systemctl --user`. Output goes to the journal (`journalctl --user -u paddock`).

use std::path::PathBuf;

use super::command::command_line;
use super::{
    env_name, exe_text, remove_file, text, write_file, Commands, Home, Installed, ManagerReply,
    ServiceError, ServiceSpec, ServiceState, Status, Uninstalled,
};

pub const UNIT: &str = "paddock.service";
const SYSTEMCTL: &str = "systemctl";

fn unit_dir(home: &Home) -> PathBuf {
    let config = home.xdg_config_home.clone();
    config
        .unwrap_or_else(|| home.dir.join(".config"))
        .join("systemd/user")
}

pub fn unit_path(home: &Home) -> PathBuf {
    unit_dir(home).join(UNIT)
}

/// The unit file: pure text, each ExecStart word quoted per systemd.syntax(7).
pub fn unit(spec: &ServiceSpec) -> Result<String, ServiceError> {
    let mut exec = vec![quote_exe(exe_text(spec)?)?];
    for arg in &spec.args {
        exec.push(quote_arg(text("argument", arg)?));
    }
    let mut env = String::new();
    for (name, value) in &spec.env {
        let value = text("environment value", value)?;
        env += &format!(
            "Environment={}\n",
            quote_env(&format!("{}={value}", env_name(name)?))
        );
    }
    Ok(format!(
        "# Written by `paddock service install`; run it again to change the flags.\n\
         [Unit]\n\
         Description=Paddock local LLM server\n\
         # Only orders anything where the user manager knows the target; harmless elsewhere.\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         # exec: systemctl fails if the binary cannot be started, instead of reporting success.\n\
         Type=exec\n\
         ExecStart={exec}\n\
         {env}\
         # Restart after a crash only; SIGTERM makes Paddock drain its streams and exit 0.\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         KillSignal=SIGTERM\n\
         # The shutdown grace ({grace} s) plus time to free the model before SIGKILL.\n\
         TimeoutStopSec={stop}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec = exec.join(" "),
        grace = spec.shutdown_grace_secs,
        stop = spec.stop_timeout_secs(),
    ))
}

/// An argument in double quotes: `\` and `"` C-escaped, `%` (specifiers) as `%%`, `$`
/// (variable expansion) as `$$`. Quoting also keeps a lone `;` from separating commands.
fn quote_arg(arg: &str) -> String {
    quoted(arg, true)
}

fn quoted(s: &str, double_dollars: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out += "\\\\",
            '"' => out += "\\\"",
            '%' => out += "%%",
            '$' if double_dollars => out += "$$",
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The program path: systemd refuses quotes and backslashes in it, and expands specifiers but
/// not variables there, so `$` stays single.
fn quote_exe(path: &str) -> Result<String, ServiceError> {
    if let Some(c) = path.chars().find(|c| "\"'\\".contains(*c)) {
        return Err(ServiceError::Unrepresentable {
            what: "program",
            value: path.to_string(),
            reason: format!("systemd refuses {c:?} in an executable path"),
        });
    }
    Ok(format!("\"{}\"", path.replace('%', "%%")))
}

/// `NAME=value` for `Environment=`: quoted and C-escaped like an argument, specifiers
/// doubled, but `$` kept, since systemd expands no variables there.
fn quote_env(assignment: &str) -> String {
    quoted(assignment, false)
}

/// Writes the unit, then reloads, enables and (re)starts it, so a reinstall with new flags
/// takes effect at once (`enable --now` would leave a running old copy as it is).
pub fn install(
    spec: &ServiceSpec,
    home: &Home,
    cmds: &dyn Commands,
) -> Result<Installed, ServiceError> {
    let file = unit_path(home);
    write_file(&file, &unit(spec)?)?;
    let steps: [&[&str]; 3] = [
        &["--user", "daemon-reload"],
        &["--user", "enable", UNIT],
        &["--user", "restart", UNIT],
    ];
    let manager = run_steps(cmds, &steps);
    Ok(Installed {
        file,
        manager,
        logs: format!("journalctl --user -u {UNIT}"),
        note: Some(
            "a user service stops when you log out and starts at your next login; to run it \
             from boot without a login, run `loginctl enable-linger $USER` once."
                .into(),
        ),
    })
}

/// Runs the steps in order; at the first failure, reports it with that step and the rest as
/// the commands to run by hand.
fn run_steps(cmds: &dyn Commands, steps: &[&[&str]]) -> ManagerReply {
    for (i, args) in steps.iter().enumerate() {
        let ran = cmds.run(SYSTEMCTL, args);
        if !ran.success {
            let rest: Vec<String> = steps[i..]
                .iter()
                .map(|a| command_line(SYSTEMCTL, a))
                .collect();
            return ManagerReply::Failed {
                command: command_line(SYSTEMCTL, args),
                error: ran.error_text(),
                by_hand: rest.join(" && "),
            };
        }
    }
    ManagerReply::Done
}

/// Stops and disables the unit, removes it and reloads. If the manager cannot be reached the
/// files still go, including the `default.target.wants` link `disable` would have removed.
pub fn uninstall(home: &Home, cmds: &dyn Commands) -> Result<Uninstalled, ServiceError> {
    let file = unit_path(home);
    if !file.exists() {
        return Ok(Uninstalled::NotInstalled { file });
    }
    let disable: &[&str] = &["--user", "disable", "--now", UNIT];
    let stopped = run_steps(cmds, &[disable]);
    let wants = unit_dir(home).join("default.target.wants").join(UNIT);
    if wants.symlink_metadata().is_ok() {
        remove_file(&wants)?;
    }
    remove_file(&file)?;
    let manager = match stopped {
        ManagerReply::Done => run_steps(cmds, &[&["--user", "daemon-reload"]]),
        ManagerReply::Failed { command, error, .. } => ManagerReply::Failed {
            command,
            error,
            by_hand: format!(
                "{} && {}",
                command_line(SYSTEMCTL, &["--user", "stop", UNIT]),
                command_line(SYSTEMCTL, &["--user", "daemon-reload"])
            ),
        },
    };
    Ok(Uninstalled::Removed { file, manager })
}

/// `is-active` and `is-enabled` print their answer on stdout even when they exit non-zero
/// (inactive, disabled); an empty stdout means systemd could not be asked.
pub fn status(home: &Home, cmds: &dyn Commands) -> Result<Status, ServiceError> {
    let file = unit_path(home);
    let ask = |verb: &str| {
        let args = ["--user", verb, UNIT];
        let ran = cmds.run(SYSTEMCTL, &args);
        match ran.stdout.trim() {
            "" => Err(ServiceState::Unknown {
                command: command_line(SYSTEMCTL, &args),
                error: ran.error_text(),
            }),
            answer => Ok(answer.to_string()),
        }
    };
    let state = match ask("is-active").and_then(|active| Ok((ask("is-enabled")?, active))) {
        Err(unknown) => unknown,
        Ok((enabled, active)) => {
            let detail = format!("{active}, {enabled}");
            match active.as_str() {
                "active" | "reloading" => ServiceState::Running(detail),
                _ => ServiceState::Stopped(detail),
            }
        }
    };
    Ok(Status {
        installed: file.is_file(),
        file,
        state,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::testing::{fail, ok, systemd_spec, tricky_spec, FakeCommands, TempDir};
    use super::*;

    #[test]
    fn arguments_are_quoted_per_systemd_rules() {
        assert_eq!(quote_arg("plain"), r#""plain""#);
        assert_eq!(quote_arg("a b"), r#""a b""#);
        assert_eq!(quote_arg(r#"say "hi" it's"#), r#""say \"hi\" it's""#);
        assert_eq!(quote_arg("100% $HOME ${X}"), r#""100%% $$HOME $${X}""#);
        assert_eq!(quote_arg(r"C:\dir\"), r#""C:\\dir\\""#);
        assert_eq!(quote_arg(";"), r#"";""#);
        assert_eq!(quote_env("K=50% $x \"q\""), r#""K=50%% $x \"q\"""#);
        assert_eq!(
            quote_exe("/opt/a b/100%/$x/paddock").unwrap(),
            r#""/opt/a b/100%%/$x/paddock""#
        );
        let err = quote_exe(r#"/opt/"q"/paddock"#).unwrap_err().to_string();
        assert!(err.contains("executable path"), "{err}");
    }

    #[test]
    fn unit_has_every_setting() {
        let mut spec = tricky_spec(Path::new("/home/me"));
        spec.exe = "/home/me/.cargo/bin/paddock".into();
        let unit = unit(&spec).unwrap();
        for line in [
            "[Unit]",
            "Description=Paddock local LLM server",
            "After=network-online.target",
            "[Service]",
            r#"ExecStart="/home/me/.cargo/bin/paddock" "serve" "--config" "/Users/me/My Models/paddock.toml" "--alias" "R&D <\"fast\"> it's" "--api-key" "100%% $$HOME $${X} \\ ;""#,
            r#"Environment="PADDOCK_LOG=info,paddock=debug""#,
            r#"Environment="PADDOCK_API_KEY=k&y \"q\" 50%% $x""#,
            "Restart=on-failure",
            "RestartSec=5",
            "KillSignal=SIGTERM",
            "TimeoutStopSec=45",
            "[Install]",
            "WantedBy=default.target",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "missing {line:?} in:\n{unit}"
            );
        }
    }

    /// systemd's own parser: `systemd-analyze verify` checks syntax and that ExecStart's
    /// binary exists, so the unit points at a real file under a path with a space, `%` and `$`.
    #[test]
    fn systemd_analyze_accepts_the_unit() {
        let version = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output();
        let Ok(version) = version else {
            println!("skipped: systemd-analyze not found (Debian/Ubuntu: apt-get install systemd)");
            return;
        };
        let dir = TempDir::new("verify");
        let bin = dir.path().join("my bin 100% $x");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("paddock");
        std::fs::write(&exe, "#!/bin/sh\nexit 0\n").unwrap();
        let runtime = dir.path().join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let spec = systemd_spec(dir.path());
        assert_eq!(spec.exe, exe);
        let home = Home::new(dir.path());
        write_file(&unit_path(&home), &unit(&spec).unwrap()).unwrap();
        // --user wants a runtime directory; CI containers have no session to provide one.
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(unit_path(&home))
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "{}: verify --user exit {:?}, stderr {stderr:?}",
            String::from_utf8_lossy(&version.stdout)
                .lines()
                .next()
                .unwrap_or("?"),
            out.status.code()
        );
        assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");

        // The check has teeth: a binary that is not there is reported.
        std::fs::remove_file(&exe).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(unit_path(&home))
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("my bin 100% $x/paddock"), "{stderr}");
    }

    #[test]
    fn install_status_uninstall_in_a_temp_home() {
        let dir = TempDir::new("systemd");
        let home = Home {
            dir: dir.path().join("home"),
            xdg_config_home: Some(dir.path().join("xdg config")),
        };
        let spec = systemd_spec(dir.path());
        let active = std::cell::Cell::new(false);
        let cmds = FakeCommands::new(|line: &str| {
            if line.contains(" restart ") {
                active.set(true);
            } else if line.contains(" disable --now ") {
                active.set(false);
            }
            match (
                line.contains(" is-active "),
                line.contains(" is-enabled "),
                active.get(),
            ) {
                (true, _, true) => ok("active\n"),
                (true, _, false) => fail(3, "inactive\n", ""),
                (_, true, true) => ok("enabled\n"),
                (_, true, false) => fail(1, "disabled\n", ""),
                _ => ok(""),
            }
        });
        let installed = install(&spec, &home, &cmds).unwrap();
        let file = dir.path().join("xdg config/systemd/user/paddock.service");
        assert_eq!(
            (&installed.file, &installed.manager),
            (&file, &ManagerReply::Done)
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            unit(&spec).unwrap()
        );
        assert_eq!(
            cmds.calls(),
            [
                "systemctl --user daemon-reload",
                "systemctl --user enable paddock.service",
                "systemctl --user restart paddock.service",
            ]
        );
        let now = status(&home, &cmds).unwrap();
        assert!(now.installed);
        assert_eq!(now.state, ServiceState::Running("active, enabled".into()));
        println!("{installed}\n{now}");

        // What `enable` leaves behind; uninstall must take it too.
        let wants = dir
            .path()
            .join("xdg config/systemd/user/default.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&file, wants.join(UNIT)).unwrap();
        let removed = uninstall(&home, &cmds).unwrap();
        assert_eq!(
            removed,
            Uninstalled::Removed {
                file: file.clone(),
                manager: ManagerReply::Done
            }
        );
        assert!(!file.exists() && wants.join(UNIT).symlink_metadata().is_err());
        let now = status(&home, &cmds).unwrap();
        assert!(!now.installed);
        assert_eq!(
            now.state,
            ServiceState::Stopped("inactive, disabled".into())
        );
        let again = uninstall(&home, &cmds).unwrap();
        assert_eq!(again, Uninstalled::NotInstalled { file });
        println!("{removed}\n{now}\n{again}");
    }

    /// As in a CI container: systemctl is there but no user instance answers.
    #[test]
    fn without_a_user_manager_the_file_is_written_and_the_reply_says_what_to_run() {
        let dir = TempDir::new("systemd-nobus");
        let home = Home::new(dir.path());
        let spec = systemd_spec(dir.path());
        let cmds =
            FakeCommands::new(|_: &str| fail(1, "", "Failed to connect to bus: No medium found\n"));
        let installed = install(&spec, &home, &cmds).unwrap();
        assert!(installed.file.is_file());
        assert_eq!(
            installed.manager,
            ManagerReply::Failed {
                command: "systemctl --user daemon-reload".into(),
                error: "Failed to connect to bus: No medium found".into(),
                by_hand:
                    "systemctl --user daemon-reload && systemctl --user enable paddock.service \
                          && systemctl --user restart paddock.service"
                        .into(),
            }
        );
        let now = status(&home, &cmds).unwrap();
        assert!(now.installed);
        assert!(matches!(now.state, ServiceState::Unknown { .. }), "{now:?}");
        let removed = uninstall(&home, &cmds).unwrap();
        assert!(!installed.file.exists());
        println!("{installed}\n{now}\n{removed}");
    }
}
