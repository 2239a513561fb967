use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common;

/// Starts `paddock serve` on a free port; returns the child and its base URL (read from the
/// line it prints once it is listening).
fn serve(extra: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "-m"])
        .arg(common::smollm2())
        .args(["--port", "0", "-t", "2", "-c", "2048"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("paddock binary runs");
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches("/v1")
        .to_string();
    (child, url)
}

#[tokio::test]
async fn sigterm_lets_the_open_stream_finish_and_exits_0() {
    let (mut child, url) = serve(&[]);
    let body = json!({
        "messages": [{"role": "user", "content": "Count to fifty."}],
        "max_tokens": 64, "temperature": 0, "ignore_eos": true, "stream": true,
    });
    let mut resp = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().expect("stream started");
    // SIGTERM, as launchd and systemd send it.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.ends_with("data: [DONE]\n\n"), "stream was cut: {rest}");
    assert!(rest.contains("\"finish_reason\":\"length\""));
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn binding_beyond_loopback_without_a_key_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "-m"])
        .arg(common::smollm2())
        .args(["--host", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("API key"), "{err}");
}
