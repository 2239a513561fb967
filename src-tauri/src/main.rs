//! Paddock's menu-bar app: the `paddock` library's server behind a tray icon, with a window
//! on its web UI and launch at login. It holds no inference or HTTP logic of its own.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod login;
mod server;
mod tray;
mod window;

use std::sync::Arc;

use clap::Parser;
use paddock::config::{normalize_llama_args, ServeArgs};
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime};
use tauri_plugin_autostart::MacosLauncher;

use login::LoginItem;
use server::Server;

/// The flags (and `PADDOCK_*` variables) of `paddock serve`, so both read one config.
#[derive(Parser)]
#[command(name = "paddock-app", version, about = "Paddock in the menu bar")]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() {
    paddock::init_logging();
    // A model spread over RPC workers, or this machine lent as one, runs in a child started
    // from this very program.
    if let Some(status) = paddock::child_main() {
        std::process::exit(status);
    }
    let cli = Cli::parse_from(normalize_llama_args(std::env::args()));
    app(Builder::default(), cli.serve)
        .build(tauri::generate_context!())
        .expect("the Tauri context is generated at compile time and the tray icons are embedded")
        .run(on_run_event);
}

fn app<R: Runtime>(builder: Builder<R>, args: ServeArgs) -> Builder<R> {
    builder
        // First, so a second launch hands over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            show_window(app)
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_clipboard_manager::init())
        .on_window_event(window::on_window_event)
        .setup(move |app| {
            // A menu-bar app: no Dock icon, no app menu (Info.plist's LSUIElement says the same).
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            let server = Server::spawn(args, Arc::new(LoginItem(app.handle().clone())));
            server.start();
            app.manage(server);
            tray::create_tray(app.handle())?;
            Ok(())
        })
}

fn show_window<R: Runtime>(app: &AppHandle<R>) {
    let url = app.state::<Server>().phase().status().map(server::ui_url);
    if let Err(e) = window::show_main(app, url.as_deref()) {
        tracing::error!("could not show the window: {e}");
    }
}

/// Closing the last window must not end the app; only Quit (exit code 0) does.
fn on_run_event<R: Runtime>(_app: &AppHandle<R>, event: RunEvent) {
    if let RunEvent::ExitRequested {
        code: None, api, ..
    } = event
    {
        api.prevent_exit();
    }
}
