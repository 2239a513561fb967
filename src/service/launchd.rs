//! macOS: a LaunchAgent, `~/Library/LaunchAgents/dev.paddock.server.plist`, loaded into the
//! user's GUI domain. It runs while the user is logged in, so a headless Mac wants automatic
//! login; a LaunchDaemon would run at boot but outside the session, where Metal is not offered.

use std::path::{Path, PathBuf};

use super::command::command_line;
use super::{
    env_name, exe_text, path_text, remove_file, text, write_file, Commands, Installed,
    ManagerReply, ServiceError, ServiceSpec, ServiceState, Status, Uninstalled,
};

pub const LABEL: &str = "dev.paddock.server";
const LAUNCHCTL: &str = "launchctl";
/// launchctl's exit status for "Could not find service ... in domain".
const NOT_FOUND: i32 = 113;
/// Tries at bootstrap after a bootout: launchd may still be tearing the old job down and
/// answer "Bootstrap failed: 5: Input/output error" for a moment.
const BOOTSTRAP_TRIES: u32 = 5;

pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

/// stdout and stderr both go here, so the log reads in order.
pub fn log_file(spec: &ServiceSpec) -> PathBuf {
    spec.log_dir.join("paddock.log")
}

/// The LaunchAgent plist: pure text, XML-escaped.
pub fn plist(spec: &ServiceSpec) -> Result<String, ServiceError> {
    let mut program = vec![format!("\t\t<string>{}</string>", xml(exe_text(spec)?))];
    for arg in &spec.args {
        program.push(format!(
            "\t\t<string>{}</string>",
            xml(text("argument", arg)?)
        ));
    }
    let log = xml(path_text("log file", &log_file(spec))?);
    let mut out = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" ",
        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
        "<plist version=\"1.0\">\n<dict>\n",
    ));
    out += &format!("\t<key>Label</key>\n\t<string>{LABEL}</string>\n");
    out += &format!(
        "\t<key>ProgramArguments</key>\n\t<array>\n{}\n\t</array>\n",
        program.join("\n")
    );
    if !spec.env.is_empty() {
        out += "\t<key>EnvironmentVariables</key>\n\t<dict>\n";
        for (name, value) in &spec.env {
            out += &format!(
                "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
                env_name(name)?,
                xml(text("environment value", value)?)
            );
        }
        out += "\t</dict>\n";
    }
    // Start when loaded (at login), and restart only after a crash: Paddock exits 0 on
    // SIGTERM, so a bootout or a clean quit stays down.
    out += "\t<key>RunAtLoad</key>\n\t<true/>\n";
    out += "\t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n";
    // Interactive: no resource limits, as for apps. Background and Standard let macOS
    // throttle CPU and I/O, which shows as slower tokens; agents wait on this server as a
    // user waits on an app.
    out += "\t<key>ProcessType</key>\n\t<string>Interactive</string>\n";
    // SIGTERM to SIGKILL; launchd's default of 20 s would cut the drain short.
    out += &format!(
        "\t<key>ExitTimeOut</key>\n\t<integer>{}</integer>\n",
        spec.stop_timeout_secs()
    );
    out += &format!("\t<key>StandardOutPath</key>\n\t<string>{log}</string>\n");
    out += &format!("\t<key>StandardErrorPath</key>\n\t<string>{log}</string>\n");
    out += "</dict>\n</plist>\n";
    Ok(out)
}

/// XML character data and attribute-safe: the five predefined entities.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&apos;",
            c => out.push(c),
        }
    }
    out
}

/// Writes the plist (and the log folder: launchd does not create it), then loads it in place
/// of any loaded copy, so a reinstall picks up new flags.
pub fn install(
    spec: &ServiceSpec,
    home: &Path,
    uid: u32,
    cmds: &dyn Commands,
) -> Result<Installed, ServiceError> {
    let file = plist_path(home);
    let body = plist(spec)?;
    std::fs::create_dir_all(&spec.log_dir).map_err(|source| ServiceError::CreateDir {
        path: spec.log_dir.clone(),
        source,
    })?;
    write_file(&file, &body)?;
    let (domain, target) = (format!("gui/{uid}"), format!("gui/{uid}/{LABEL}"));
    let file_str = file.to_string_lossy();
    let was_loaded = cmds.run(LAUNCHCTL, &["print", &target]).success;
    if was_loaded {
        cmds.run(LAUNCHCTL, &["bootout", &target]);
    }
    // Undo an earlier `launchctl disable`, which would make bootstrap refuse the job.
    cmds.run(LAUNCHCTL, &["enable", &target]);
    let bootstrap = ["bootstrap", domain.as_str(), file_str.as_ref()];
    let mut ran = cmds.run(LAUNCHCTL, &bootstrap);
    for _ in 1..BOOTSTRAP_TRIES {
        if ran.success || !was_loaded {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        ran = cmds.run(LAUNCHCTL, &bootstrap);
    }
    let line = command_line(LAUNCHCTL, &bootstrap);
    let manager = match ran.success {
        true => ManagerReply::Done,
        false => ManagerReply::Failed {
            command: line.clone(),
            error: ran.error_text(),
            by_hand: line,
        },
    };
    Ok(Installed {
        file,
        manager,
        logs: log_file(spec).display().to_string(),
        note: Some(
            "a LaunchAgent runs while you are logged in; on a headless Mac turn on automatic \
             login so it starts after a reboot."
                .into(),
        ),
    })
}

/// Unloads the job if launchd has it, then removes the plist. No plist: nothing to do.
pub fn uninstall(home: &Path, uid: u32, cmds: &dyn Commands) -> Result<Uninstalled, ServiceError> {
    let file = plist_path(home);
    if !file.exists() {
        return Ok(Uninstalled::NotInstalled { file });
    }
    let target = format!("gui/{uid}/{LABEL}");
    let mut manager = ManagerReply::Done;
    if cmds.run(LAUNCHCTL, &["print", &target]).success {
        let bootout = ["bootout", target.as_str()];
        let ran = cmds.run(LAUNCHCTL, &bootout);
        if !ran.success {
            manager = ManagerReply::Failed {
                command: command_line(LAUNCHCTL, &bootout),
                error: ran.error_text(),
                by_hand: command_line(LAUNCHCTL, &bootout),
            };
        }
    }
    remove_file(&file)?;
    Ok(Uninstalled::Removed { file, manager })
}

pub fn status(home: &Path, uid: u32, cmds: &dyn Commands) -> Result<Status, ServiceError> {
    let file = plist_path(home);
    let target = format!("gui/{uid}/{LABEL}");
    let print = ["print", target.as_str()];
    let ran = cmds.run(LAUNCHCTL, &print);
    let state = if ran.success {
        parse_print(&ran.stdout)
    } else if ran.code == Some(NOT_FOUND) || ran.error_text().contains("Could not find service") {
        ServiceState::Stopped("not loaded".into())
    } else {
        ServiceState::Unknown {
            command: command_line(LAUNCHCTL, &print),
            error: ran.error_text(),
        }
    };
    Ok(Status {
        installed: file.is_file(),
        file,
        state,
    })
}

/// Reads `state`, `pid` and `last exit code` from `launchctl print`; the first occurrence of
/// each is the job's own (nested blocks come later).
fn parse_print(out: &str) -> ServiceState {
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(" = "))
            .map(str::trim)
    };
    let state = field("state").unwrap_or("state unknown");
    let exit = field("last exit code").map(|code| format!("last exit code {code}"));
    match (state, field("pid")) {
        ("running", Some(pid)) => ServiceState::Running(format!("pid {pid}")),
        ("running", None) => ServiceState::Running("no pid shown".into()),
        // Any other state (e.g. "spawn scheduled" while throttled) is named.
        ("not running", Some(_) | None) => {
            ServiceState::Stopped(exit.unwrap_or_else(|| "loaded".into()))
        }
        _ => ServiceState::Stopped(match exit {
            Some(exit) => format!("{state}, {exit}"),
            None => state.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fail, ok, tricky_spec, FakeCommands, TempDir};
    use super::*;

    #[test]
    fn plist_has_every_key_and_escapes_xml() {
        let spec = tricky_spec(Path::new("/Users/me"));
        let text = plist(&spec).unwrap();
        for key in [
            "Label",
            "ProgramArguments",
            "EnvironmentVariables",
            "RunAtLoad",
            "KeepAlive",
            "SuccessfulExit",
            "ProcessType",
            "ExitTimeOut",
            "StandardOutPath",
            "StandardErrorPath",
        ] {
            assert!(
                text.contains(&format!("<key>{key}</key>")),
                "{key} missing:\n{text}"
            );
        }
        assert!(text.contains(
            "<string>/Users/me/Paddock &amp; &lt;Co&gt; &quot;it&apos;s&quot;/bin/paddock</string>"
        ));
        assert!(text.contains("<string>R&amp;D &lt;&quot;fast&quot;&gt; it&apos;s</string>"));
        assert!(text.contains("<string>/Users/me/Logs &amp; &lt;more&gt;/paddock.log</string>"));
        assert!(
            text.contains("<integer>45</integer>"),
            "30 s grace + 15 s margin"
        );
        let no_env = ServiceSpec {
            env: vec![],
            ..spec
        };
        assert!(!plist(&no_env).unwrap().contains("EnvironmentVariables"));
    }

    /// Parsed back with the `plist` crate, a real parser, every value is what was put in.
    #[test]
    fn plist_round_trips_through_a_real_parser() {
        let spec = tricky_spec(Path::new("/Users/me"));
        let text = plist(&spec).unwrap();
        let value = plist::Value::from_reader_xml(text.as_bytes()).expect("valid plist XML");
        let dict = value.as_dictionary().expect("top-level dict");
        assert_eq!(dict.get("Label").and_then(|v| v.as_string()), Some(LABEL));
        let program: Vec<&str> = dict["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap())
            .collect();
        let mut expected = vec![spec.exe.to_str().unwrap()];
        expected.extend(spec.args.iter().map(String::as_str));
        assert_eq!(program, expected);
        assert_eq!(dict["RunAtLoad"].as_boolean(), Some(true));
        let keep_alive = dict["KeepAlive"].as_dictionary().unwrap();
        assert_eq!(keep_alive["SuccessfulExit"].as_boolean(), Some(false));
        assert_eq!(keep_alive.len(), 1);
        assert_eq!(dict["ProcessType"].as_string(), Some("Interactive"));
        assert_eq!(dict["ExitTimeOut"].as_signed_integer(), Some(45));
        let log = log_file(&spec);
        assert_eq!(dict["StandardOutPath"].as_string(), log.to_str());
        assert_eq!(dict["StandardErrorPath"].as_string(), log.to_str());
        let env = dict["EnvironmentVariables"].as_dictionary().unwrap();
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_string().unwrap()))
            .collect();
        let want: Vec<(&str, &str)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env, want);
    }

    #[test]
    fn install_status_uninstall_in_a_temp_home() {
        let home = TempDir::new("launchd");
        let spec = tricky_spec(home.path());
        let loaded = std::cell::Cell::new(false);
        let cmds = FakeCommands::new(|line: &str| {
            if line.contains(" bootstrap ") {
                loaded.set(true);
            } else if line.contains(" bootout ") {
                loaded.set(false);
            }
            match (line.contains(" print "), loaded.get()) {
                (true, true) => {
                    ok("gui/501/dev.paddock.server = {\n\tstate = running\n\tpid = 4242\n}")
                }
                (true, false) => fail(
                    113,
                    "",
                    "Could not find service \"dev.paddock.server\" in domain for port",
                ),
                _ => ok(""),
            }
        });
        let installed = install(&spec, home.path(), 501, &cmds).unwrap();
        let file = home
            .path()
            .join("Library/LaunchAgents/dev.paddock.server.plist");
        assert_eq!(installed.file, file);
        assert_eq!(installed.manager, ManagerReply::Done);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            plist(&spec).unwrap()
        );
        assert!(
            spec.log_dir.is_dir(),
            "launchd does not create the log folder"
        );
        let path = file.to_str().unwrap();
        assert_eq!(
            cmds.calls(),
            [
                "launchctl print gui/501/dev.paddock.server".to_string(),
                "launchctl enable gui/501/dev.paddock.server".into(),
                format!("launchctl bootstrap gui/501 {path}"),
            ]
        );
        let now = status(home.path(), 501, &cmds).unwrap();
        assert!(now.installed);
        assert_eq!(now.state, ServiceState::Running("pid 4242".into()));
        println!("{installed}\n{now}");

        // A reinstall unloads the old job first.
        cmds.log.borrow_mut().clear();
        install(&spec, home.path(), 501, &cmds).unwrap();
        assert_eq!(
            cmds.calls()[1],
            "launchctl bootout gui/501/dev.paddock.server"
        );

        let removed = uninstall(home.path(), 501, &cmds).unwrap();
        assert_eq!(
            removed,
            Uninstalled::Removed {
                file: file.clone(),
                manager: ManagerReply::Done
            }
        );
        assert!(!file.exists() && !loaded.get());
        let now = status(home.path(), 501, &cmds).unwrap();
        assert!(!now.installed);
        assert_eq!(now.state, ServiceState::Stopped("not loaded".into()));
        let again = uninstall(home.path(), 501, &cmds).unwrap();
        assert_eq!(again, Uninstalled::NotInstalled { file });
        assert!(again.to_string().contains("nothing to do"), "{again}");
        println!("{removed}\n{now}\n{again}");
    }

    #[test]
    fn a_refused_bootstrap_still_leaves_the_file_and_says_what_to_run() {
        let home = TempDir::new("launchd-fail");
        let spec = tricky_spec(home.path());
        let cmds = FakeCommands::new(|line: &str| match line.contains(" bootstrap ") {
            true => fail(5, "", "Bootstrap failed: 5: Input/output error\n"),
            false => fail(113, "", ""),
        });
        let installed = install(&spec, home.path(), 501, &cmds).unwrap();
        assert!(installed.file.is_file());
        let ManagerReply::Failed { error, by_hand, .. } = &installed.manager else {
            panic!("expected a failure: {installed:?}");
        };
        assert_eq!(error, "Bootstrap failed: 5: Input/output error");
        let path = installed.file.to_str().unwrap();
        assert_eq!(by_hand, &format!("launchctl bootstrap gui/501 {path}"));
        let shown = installed.to_string();
        assert!(
            shown.contains("could not start it") && shown.contains(by_hand),
            "{shown}"
        );
    }

    #[test]
    fn print_output_is_read_for_state_pid_and_exit_code() {
        let stopped = "gui/501/dev.paddock.server = {\n\tactive count = 0\n\tstate = not running\n\
                       \tlast exit code = 1\n\tevent triggers = {\n\t\tstate = armed\n\t}\n}";
        assert_eq!(
            parse_print(stopped),
            ServiceState::Stopped("last exit code 1".into())
        );
        let throttled = "x = {\n\tstate = spawn scheduled\n\tlast exit code = 1\n}";
        assert_eq!(
            parse_print(throttled),
            ServiceState::Stopped("spawn scheduled, last exit code 1".into())
        );
    }
}
