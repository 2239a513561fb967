//! Serve flags as the service will run them. launchd starts the server in `/` and systemd in
//! the home directory, not where `install` was typed, so relative paths are made absolute.

use std::path::Path;

/// `value` joined to `cwd` when relative; absolute values (and empty ones) are kept as given.
pub fn absolute(value: &str, cwd: &Path) -> String {
    if value.is_empty() || Path::new(value).is_absolute() {
        value.to_string()
    } else {
        cwd.join(value).to_string_lossy().into_owned()
    }
}

/// Makes the values of `path_flags` absolute, in each spelling clap accepts: `--config x`,
/// `--config=x`, `-m x`, `-mx`, `-m=x`. Everything else, and anything after `--`, is kept.
pub fn absolute_paths(args: &[String], path_flags: &[&str], cwd: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(iter.by_ref().cloned());
            break;
        }
        if path_flags.contains(&arg.as_str()) {
            out.push(arg.clone());
            if let Some(value) = iter.next() {
                out.push(absolute(value, cwd));
            }
            continue;
        }
        let joined = path_flags.iter().find_map(|flag| {
            let rest = arg.strip_prefix(flag)?;
            let short = !flag.starts_with("--");
            match rest.strip_prefix('=') {
                Some(value) => Some(format!("{flag}={}", absolute(value, cwd))),
                None if short && !rest.is_empty() => Some(format!("{flag}{}", absolute(rest, cwd))),
                None => None,
            }
        });
        out.push(joined.unwrap_or_else(|| arg.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_in_every_spelling() {
        let args = [
            "--config",
            "p.toml",
            "-m",
            "models/a.gguf",
            "--model=/abs/b.gguf",
            "-mc.gguf",
            "--model=d.gguf",
            "-c",
            "8192",
            "--alias",
            "m",
            "--configx",
            "y",
            "--",
            "-m",
            "z",
        ]
        .map(String::from);
        let cwd = Path::new("/home/me/work dir");
        assert_eq!(
            absolute_paths(&args, &["--config", "--model", "-m"], cwd),
            [
                "--config",
                "/home/me/work dir/p.toml",
                "-m",
                "/home/me/work dir/models/a.gguf",
                "--model=/abs/b.gguf",
                "-m/home/me/work dir/c.gguf",
                "--model=/home/me/work dir/d.gguf",
                "-c",
                "8192",
                "--alias",
                "m",
                "--configx",
                "y",
                "--",
                "-m",
                "z",
            ]
        );
    }
}
