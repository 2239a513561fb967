//! The one seam to the outside world: running `launchctl` and `systemctl`. Production uses
//! [`SystemCommands`]; tests pass a fake that scripts the replies.

use std::process::{Command, Stdio};

/// How one command ended, with its output as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub success: bool,
    /// Exit status; `None` when it did not start or died from a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// What to show the user when it failed: stderr, else stdout, else the exit status.
    pub fn error_text(&self) -> String {
        [&self.stderr, &self.stdout]
            .iter()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| match self.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".into(),
            })
    }
}

pub trait Commands {
    /// Runs `program args...` to completion. Never panics: a program that cannot start is an
    /// unsuccessful `Ran` whose stderr says why.
    fn run(&self, program: &str, args: &[&str]) -> Ran;
}

/// Runs the real programs, with stdin closed so nothing can wait for input.
pub struct SystemCommands;

impl Commands for SystemCommands {
    fn run(&self, program: &str, args: &[&str]) -> Ran {
        match Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => Ran {
                success: out.status.success(),
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => Ran {
                success: false,
                code: None,
                stdout: String::new(),
                stderr: format!("cannot run {program}: {e}"),
            },
        }
    }
}

/// `program args...` as a user can paste it into a shell.
pub(crate) fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Single-quotes a word unless it is plainly safe for a POSIX shell.
fn sh_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:@%+,".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_paste_into_a_shell() {
        assert_eq!(
            command_line(
                "launchctl",
                &["bootstrap", "gui/501", "/Users/a b/it's.plist"]
            ),
            r"launchctl bootstrap gui/501 '/Users/a b/it'\''s.plist'"
        );
    }

    #[test]
    fn a_missing_program_is_a_failed_run_not_a_panic() {
        let ran = SystemCommands.run("/nonexistent/paddock-no-such-manager", &["--user"]);
        assert!(!ran.success && ran.code.is_none());
        assert!(
            ran.error_text().contains("paddock-no-such-manager"),
            "{ran:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_program_reports_its_stderr() {
        let ran = SystemCommands.run("sh", &["-c", "echo out; echo 'no bus' >&2; exit 3"]);
        assert_eq!((ran.success, ran.code), (false, Some(3)));
        assert_eq!(ran.error_text(), "no bus");
    }
}
