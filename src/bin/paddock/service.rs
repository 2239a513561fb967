//! `paddock service install|uninstall|status`, and the login service the web UI's "launch at
//! login" installs.

use anyhow::Context;
use clap::Subcommand;
use paddock::config::{normalize_llama_args, ServeArgs, Settings};
use paddock::service::{self, Backend, Home, ServiceSpec};

#[derive(Subcommand)]
pub(crate) enum ServiceAction {
    /// Write the service file and start it, serving with these `serve` flags
    /// (`--config FILE`, or `-m FILE.gguf -c 8192 ...`).
    Install(Box<ServeArgs>),
    /// Stop the service and remove its file.
    Uninstall,
    /// Whether the service file exists and what launchd/systemd say about it.
    Status,
}

pub(crate) fn run(action: ServiceAction) -> anyhow::Result<()> {
    let home = Home::from_env()?;
    match action {
        ServiceAction::Install(serve) => {
            // Refuse settings that would only crash-loop under the manager; learn the grace.
            let settings = Settings::load(&serve)?;
            println!("{}", service::install(&spec(&settings, "install")?, &home)?);
        }
        ServiceAction::Uninstall => println!("{}", service::uninstall(&home)?),
        ServiceAction::Status => println!("{}", service::status(&home)?),
    }
    Ok(())
}

/// A login service that serves with the flags typed after `after` on this command line
/// (clap has checked them), relative paths made absolute: the manager starts it elsewhere.
pub(crate) fn spec(settings: &Settings, after: &str) -> anyhow::Result<ServiceSpec> {
    let backend = Backend::current()?;
    let home = Home::from_env()?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let argv = normalize_llama_args(std::env::args());
    let start = argv
        .iter()
        .position(|a| a == after)
        .map_or(argv.len(), |i| i + 1);
    let mut args = vec!["serve".to_string()];
    args.extend(service::absolute_paths(
        &argv[start..],
        &["--config", "--model", "-m"],
        &cwd,
    ));
    // launchd and systemd read no shell profile: keep the PADDOCK_* variables the settings
    // were checked with (the file is mode 0600, as they may hold the API key).
    let env = std::env::vars()
        .filter(|(name, _)| name.starts_with("PADDOCK_"))
        .map(|(name, value)| match name.as_str() {
            "PADDOCK_CONFIG" | "PADDOCK_MODEL" => {
                let value = service::absolute(&value, &cwd);
                (name, value)
            }
            _ => (name, value),
        })
        .collect();
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the path of the paddock binary")?;
    Ok(ServiceSpec {
        exe,
        args,
        log_dir: backend.default_log_dir(&home),
        env,
        shutdown_grace_secs: settings.shutdown_grace_secs,
    })
}
