//! The menu-bar icon and its menu. A task follows the server's phase (and, while it runs, the
//! library's status) and redraws the status line, the check marks and the icon; another follows
//! whether this machine is lent as an RPC worker.

use std::error::Error;

use paddock::autostart::Autostart as _;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tray_icon::TrayIconId;

use crate::login::LoginItem;
use crate::server::{self, Lending, ModelChoice, Phase, Server};
use crate::window;

mod summary;
use summary::Summary;

const TRAY: &str = "paddock";

/// Menu item ids.
const STATUS: &str = "status";
const SERVER_ON: &str = "server-on";
const COPY_API_URL: &str = "copy-api-url";
const OPEN: &str = "open";
const LAUNCH_AT_LOGIN: &str = "launch-at-login";
const LEND: &str = "lend";
const QUIT: &str = "quit";
/// A Model menu item's id is this prefix and the model's id.
const MODEL_PREFIX: &str = "model:";

/// What the icon says, by a small mark on a monochrome template image (see scripts/icons.sh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconState {
    Stopped,
    Idle,
    Generating,
    Error,
}

impl IconState {
    fn image(self) -> tauri::Result<Image<'static>> {
        Image::from_bytes(match self {
            IconState::Stopped => include_bytes!("../../../icons/tray/stopped.png"),
            IconState::Idle => include_bytes!("../../../icons/tray/idle.png"),
            IconState::Generating => include_bytes!("../../../icons/tray/generating.png"),
            IconState::Error => include_bytes!("../../../icons/tray/error.png"),
        })
    }
}

/// The items that change after the menu is built.
struct Items<R: Runtime> {
    status: MenuItem<R>,
    server_on: CheckMenuItem<R>,
    copy_api_url: MenuItem<R>,
    /// Only while serving: the lent worker belongs to the running server.
    lend: CheckMenuItem<R>,
}

pub fn create_tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let launch_enabled = LoginItem(app.clone()).state().is_ok_and(|s| s.enabled);
    let items = Items {
        status: MenuItem::with_id(app, STATUS, "Starting…", false, None::<&str>)?,
        server_on: CheckMenuItem::with_id(app, SERVER_ON, "Server on", true, false, None::<&str>)?,
        copy_api_url: MenuItem::with_id(app, COPY_API_URL, "Copy API URL", false, None::<&str>)?,
        lend: CheckMenuItem::with_id(app, LEND, LEND_LABEL, false, false, None::<&str>)?,
    };
    let launch_at_login = CheckMenuItem::with_id(
        app,
        LAUNCH_AT_LOGIN,
        "Launch at login",
        true,
        launch_enabled,
        None::<&str>,
    )?;
    let open = MenuItem::with_id(app, OPEN, "Open Paddock…", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, "Quit Paddock", true, None::<&str>)?;
    let models = Submenu::with_id(app, "models", "Model", false)?;
    let menu = Menu::with_items(
        app,
        &[
            &items.status,
            &PredefinedMenuItem::separator(app)?,
            &items.server_on,
            &models,
            &items.copy_api_url,
            &open,
            &PredefinedMenuItem::separator(app)?,
            &items.lend,
            &launch_at_login,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    TrayIconBuilder::with_id(TrayIconId::new(TRAY))
        .icon(IconState::Stopped.image()?)
        .icon_as_template(true)
        .tooltip("Paddock")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event)
        .build(app)?;
    app.manage(LaunchAtLogin(launch_at_login));
    tauri::async_runtime::spawn(follow_lending(app.clone(), items.lend.clone()));
    tauri::async_runtime::spawn(follow_server(app.clone(), items));
    tauri::async_runtime::spawn(follow_models(app.clone(), models));
    Ok(())
}

/// Rebuilds the Model menu whenever the library's list or the loaded models change: one check
/// item per model, every loaded one checked, each with the budget's fit verdict. Choosing a
/// model that is not loaded loads it beside the others; choosing a loaded one unloads it.
async fn follow_models<R: Runtime>(app: AppHandle<R>, menu: Submenu<R>) {
    let mut models = app.state::<Server>().models();
    loop {
        let choices = models.borrow_and_update().clone();
        if let Err(e) = fill_models(&app, &menu, &choices) {
            tracing::warn!("model menu update failed: {e}");
        }
        if models.changed().await.is_err() {
            break;
        }
    }
}

fn fill_models<R: Runtime>(
    app: &AppHandle<R>,
    menu: &Submenu<R>,
    choices: &[ModelChoice],
) -> tauri::Result<()> {
    for item in menu.items()? {
        menu.remove(&item)?;
    }
    for choice in choices {
        let item = CheckMenuItem::with_id(
            app,
            format!("{MODEL_PREFIX}{}", choice.id),
            format!("{} ({})", choice.id, choice.fit),
            true,
            choice.loaded,
            None::<&str>,
        )?;
        menu.append(&item)?;
    }
    menu.set_enabled(!choices.is_empty())
}

const LEND_LABEL: &str = "Lend this machine";

/// Checks "Lend this machine" while the server lends this machine (from this menu or the web
/// UI), and names where the worker listens, or why lending failed.
async fn follow_lending<R: Runtime>(app: AppHandle<R>, item: CheckMenuItem<R>) {
    let mut lending = app.state::<Server>().lending();
    loop {
        let now = lending.borrow_and_update().clone();
        let shown = item
            .set_checked(now.endpoint.is_some())
            .and_then(|()| item.set_text(lend_label(&now)));
        if let Err(e) = shown {
            tracing::warn!("tray lend item: {e}");
        }
        if lending.changed().await.is_err() {
            break;
        }
    }
}

/// "Lend this machine", with where the worker listens while lent, or why it could not.
fn lend_label(lending: &Lending) -> String {
    match (&lending.endpoint, &lending.error) {
        (Some(endpoint), _) => format!("{LEND_LABEL} ({endpoint})"),
        (None, Some(error)) => shorten(&format!("{LEND_LABEL} (failed: {error})"), STATUS_CHARS),
        (None, None) => LEND_LABEL.to_string(),
    }
}

/// The check item, kept to show the real login-item state after either the menu or the web
/// UI changed it.
struct LaunchAtLogin<R: Runtime>(CheckMenuItem<R>);

pub fn show_launch_at_login<R: Runtime>(app: &AppHandle<R>, enabled: bool) {
    if let Some(item) = app.try_state::<LaunchAtLogin<R>>() {
        if let Err(e) = item.0.set_checked(enabled) {
            tracing::warn!("tray check mark: {e}");
        }
    }
}

fn on_menu_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    let server = app.state::<Server>();
    let result: Result<(), Box<dyn Error>> = match event.id().as_ref() {
        SERVER_ON => {
            match server.phase() {
                Phase::Stopped | Phase::Failed(_) => server.start(),
                Phase::Starting { .. } | Phase::Running(_) | Phase::Stopping => server.stop(),
            }
            Ok(())
        }
        COPY_API_URL => match server.phase().status() {
            Some(status) => app
                .clipboard()
                .write_text(server::api_url(status))
                .map_err(Into::into),
            None => Ok(()),
        },
        OPEN => {
            let url = server.phase().status().map(server::ui_url);
            window::show_main(app, url.as_deref()).map_err(Into::into)
        }
        LEND => {
            server.toggle_lend();
            Ok(())
        }
        LAUNCH_AT_LOGIN => {
            let login = LoginItem(app.clone());
            login
                .state()
                .and_then(|state| login.set(!state.enabled))
                .map(drop)
                .map_err(Into::into)
        }
        QUIT => {
            let (app, server) = (app.clone(), server.inner().clone());
            tauri::async_runtime::spawn(async move {
                server.stop_and_wait().await;
                app.exit(0);
            });
            Ok(())
        }
        id => {
            if let Some(model) = id.strip_prefix(MODEL_PREFIX) {
                server.toggle(model);
            }
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::error!("menu item {:?}: {e}", event.id().as_ref());
    }
}

/// Redraws the menu and icon on every change of phase or of the running server's status.
async fn follow_server<R: Runtime>(app: AppHandle<R>, items: Items<R>) {
    let mut phase_rx = app.state::<Server>().watch();
    let mut shown: Option<View> = None;
    loop {
        let phase = phase_rx.borrow_and_update().clone();
        let view = View::of(&phase);
        if shown.as_ref() != Some(&view) {
            if let Err(e) = view.apply(&app, &items, shown.as_ref()) {
                tracing::warn!("tray update failed: {e}");
            }
            shown = Some(view);
        }
        if let Some(status) = phase.status() {
            if let Err(e) = window::follow_server(&app, &server::ui_url(status)) {
                tracing::warn!("window did not follow the server: {e}");
            }
        }
        if phase_rx.changed().await.is_err() {
            break;
        }
    }
}

/// Everything the tray shows, computed from the phase alone.
#[derive(Debug, Clone, PartialEq)]
struct View {
    icon: IconState,
    status: String,
    /// Full text for the tooltip (errors are shortened in the menu).
    tooltip: String,
    server_on: bool,
    serving: bool,
}

/// Menu lines longer than this are cut (menus grow as wide as their longest line).
const STATUS_CHARS: usize = 60;

impl View {
    fn of(phase: &Phase) -> Self {
        let (icon, status) = match phase {
            Phase::Stopped => (IconState::Stopped, "Server off".to_string()),
            Phase::Starting { progress } => (
                IconState::Generating,
                format!("Loading the model… {:.0} %", progress * 100.0),
            ),
            Phase::Stopping => (IconState::Generating, "Stopping…".to_string()),
            Phase::Failed(error) => (IconState::Error, format!("Error: {error}")),
            Phase::Running(status) => Summary::of(status).line(),
        };
        Self {
            icon,
            status: fit(&status, STATUS_CHARS),
            tooltip: format!("Paddock: {status}"),
            server_on: matches!(phase, Phase::Starting { .. } | Phase::Running(_)),
            serving: matches!(phase, Phase::Running(_)),
        }
    }

    fn apply<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        items: &Items<R>,
        shown: Option<&View>,
    ) -> tauri::Result<()> {
        items.status.set_text(&self.status)?;
        items.server_on.set_checked(self.server_on)?;
        items.copy_api_url.set_enabled(self.serving)?;
        items.lend.set_enabled(self.serving)?;
        if let Some(tray) = app.tray_by_id(&TrayIconId::new(TRAY)) {
            tray.set_tooltip(Some(&self.tooltip))?;
            // Only on change: on Linux every new icon is written out as a file.
            if shown.is_none_or(|v| v.icon != self.icon) {
                tray.set_icon_with_as_template(Some(self.icon.image()?), true)?;
            }
        }
        Ok(())
    }
}

/// The line for the menu: whole " · " parts dropped from the end until it fits (the tooltip
/// keeps them all), then cut with "…" if the first part alone is too long.
fn fit(text: &str, max_chars: usize) -> String {
    let mut parts: Vec<&str> = text.split(" · ").collect();
    while parts.len() > 1 && parts.join(" · ").chars().count() > max_chars {
        parts.pop();
    }
    shorten(&parts.join(" · "), max_chars)
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_has_its_icon_and_check_mark() {
        let cases = [
            (Phase::Stopped, IconState::Stopped, false),
            (
                Phase::Starting { progress: 0.5 },
                IconState::Generating,
                true,
            ),
            (Phase::Stopping, IconState::Generating, false),
            (Phase::Failed("x".into()), IconState::Error, false),
        ];
        for (phase, icon, on) in cases {
            let view = View::of(&phase);
            assert_eq!((view.icon, view.server_on), (icon, on), "{phase:?}");
        }
        assert_eq!(
            View::of(&Phase::Starting { progress: 0.5 }).status,
            "Loading the model… 50 %"
        );
    }

    #[test]
    fn long_errors_are_cut_in_the_menu_but_whole_in_the_tooltip() {
        let error = "cannot bind 127.0.0.1:8080: address in use ".repeat(3);
        let view = View::of(&Phase::Failed(error.clone()));
        assert_eq!(view.status.chars().count(), STATUS_CHARS + 1);
        assert!(view.status.ends_with('…'));
        assert!(view.tooltip.ends_with(&error));
    }

    #[test]
    fn the_lend_item_names_the_endpoint_or_why_lending_failed() {
        assert_eq!(lend_label(&Lending::default()), "Lend this machine");
        let lent = Lending {
            endpoint: Some("127.0.0.1:50052".into()),
            error: None,
        };
        assert_eq!(lend_label(&lent), "Lend this machine (127.0.0.1:50052)");
        let failed = Lending {
            endpoint: None,
            error: Some("cannot listen on 127.0.0.1:50052: Address in use (os error 98)".into()),
        };
        let label = lend_label(&failed);
        assert!(
            label.starts_with("Lend this machine (failed: cannot listen"),
            "{label}"
        );
        assert_eq!(label.chars().count(), STATUS_CHARS + 1);
    }

    #[test]
    fn every_state_has_a_decodable_icon() {
        for state in [
            IconState::Stopped,
            IconState::Idle,
            IconState::Generating,
            IconState::Error,
        ] {
            let image = state.image().unwrap();
            assert_eq!((image.width(), image.height()), (44, 44), "{state:?}");
        }
    }
}
