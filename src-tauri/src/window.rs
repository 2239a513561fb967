//! The one window: the web UI that the server itself serves, so the window and a browser show
//! the same thing. Created on first use, hidden (not closed) when the user closes it.

use tauri::{AppHandle, Runtime, Url, WebviewUrl, WebviewWindow, WebviewWindowBuilder, Window};
use tauri::{Manager, WindowEvent};

pub const MAIN: &str = "main";

/// Shows the window on the server's UI at `ui_url`, creating it on first use; brings it to the
/// front. Without a running server it shows the bundled placeholder page until the server is up.
pub fn show_main<R: Runtime>(app: &AppHandle<R>, ui_url: Option<&str>) -> tauri::Result<()> {
    let window = match app.get_webview_window(MAIN) {
        Some(window) => window,
        None => {
            let url = match ui_url {
                Some(url) => WebviewUrl::External(parse(url)?),
                None => WebviewUrl::App("index.html".into()),
            };
            WebviewWindowBuilder::new(app, MAIN, url)
                .title("Paddock")
                .inner_size(1100.0, 760.0)
                .min_inner_size(640.0, 480.0)
                .visible(false)
                .build()?
        }
    };
    if let Some(url) = ui_url {
        point_at(&window, url)?;
    }
    window.show()?;
    window.unminimize()?;
    window.set_focus()
}

/// Once the server runs (again, perhaps on another port), an open window moves to its UI.
pub fn follow_server<R: Runtime>(app: &AppHandle<R>, ui_url: &str) -> tauri::Result<()> {
    match app.get_webview_window(MAIN) {
        Some(window) => point_at(&window, ui_url),
        None => Ok(()),
    }
}

/// Navigates only when the window shows another origin, so a page within the UI is kept.
fn point_at<R: Runtime>(window: &WebviewWindow<R>, ui_url: &str) -> tauri::Result<()> {
    let target = parse(ui_url)?;
    if window.url()?.origin() != target.origin() {
        window.navigate(target)?;
    }
    Ok(())
}

fn parse(url: &str) -> tauri::Result<Url> {
    url.parse().map_err(tauri::Error::InvalidUrl)
}

/// Closing the main window hides it: the app lives on in the menu bar and keeps serving.
pub fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let (MAIN, WindowEvent::CloseRequested { api, .. }) = (window.label(), event) {
        api.prevent_close();
        if let Err(e) = window.hide() {
            tracing::warn!("could not hide the window: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tauri::test::{mock_builder, mock_context, noop_assets};

    #[test]
    fn the_window_is_made_once_and_follows_the_server() {
        let app = mock_builder()
            .build(mock_context(noop_assets()))
            .expect("mock app");
        let handle = app.handle();
        follow_server(handle, "http://127.0.0.1:8080/").unwrap(); // no window yet: nothing to do
        assert!(handle.get_webview_window(MAIN).is_none());

        show_main(handle, None).unwrap();
        let window = handle.get_webview_window(MAIN).expect("window made");
        assert_ne!(window.url().unwrap().scheme(), "http");

        follow_server(handle, "http://127.0.0.1:8080/").unwrap();
        assert_eq!(window.url().unwrap().as_str(), "http://127.0.0.1:8080/");

        // A page inside the UI stays; a new port moves the window.
        window
            .navigate("http://127.0.0.1:8080/models".parse().unwrap())
            .unwrap();
        show_main(handle, Some("http://127.0.0.1:8080/")).unwrap();
        assert_eq!(window.url().unwrap().path(), "/models");
        show_main(handle, Some("http://127.0.0.1:9090/")).unwrap();
        assert_eq!(window.url().unwrap().as_str(), "http://127.0.0.1:9090/");
        assert_eq!(handle.webview_windows().len(), 1);
    }
}
