use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use paddock::config::{RawSettings, Settings};
use paddock::App;

/// SmolLM2-135M-Instruct Q4_1 (ChatML template), fetched by `scripts/fetch-models.sh`.
pub fn smollm2() -> PathBuf {
    model("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Gemma 3 270M Q4_K_M: sliding-window attention (512) and no chat template in the GGUF.
pub fn gemma3() -> PathBuf {
    model("gemma-3-270m-q4_k_m.gguf")
}

/// Tiny synthetic GLM-4.5-shaped models with one MTP layer, written by
/// `scripts/synth_mtp_gguf.py` (SmolLM2's tokenizer): `echo`, whose MTP head always agrees
/// with the model, and `mixed`, whose head is right only part of the time.
pub fn mtp_model(variant: &str) -> PathBuf {
    model(&format!("synthetic/mtp-{variant}.gguf"))
}

fn model(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh",
        path.display()
    );
    path
}

pub const SMOLLM2_ID: &str = "SmolLM2-135M-Instruct.Q4_1";

/// Settings for a test server: SmolLM2, loopback port 0, 2 threads (CI has 2 cores).
pub fn settings(edit: impl FnOnce(&mut RawSettings)) -> Settings {
    let mut raw = RawSettings::default();
    raw.model.path = Some(smollm2());
    raw.server.port = Some(0);
    raw.engine.threads = Some(2);
    raw.engine.ctx_size = Some(4096);
    edit(&mut raw);
    Settings::resolve(raw).expect("test settings are valid")
}

/// A real Paddock server on its own thread and runtime; stopped when dropped.
pub struct TestServer {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(settings: Settings) -> Self {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("test runtime");
            runtime.block_on(async move {
                let app = App::start(settings).await.expect("server starts");
                addr_tx
                    .send(app.addr())
                    .expect("test is waiting for the address");
                let _ = stopped.await;
                app.stop(Duration::from_secs(5)).await;
            });
        });
        let addr = addr_rx.recv().expect("server thread reports its address");
        Self {
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET /slots`.
    pub async fn slots(&self) -> Vec<serde_json::Value> {
        let body: serde_json::Value = reqwest::get(self.url("/slots"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A chat request body: one user message, greedy, bounded.
pub fn chat(content: &str, max_tokens: u32) -> serde_json::Value {
    serde_json::json!({
        "model": SMOLLM2_ID,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

/// Reads an SSE response to the end; returns each `data:` payload in order.
pub async fn sse_events(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// Reads `event: status` payloads from `/api/events` until `done` says stop.
pub async fn watch_status(
    base: String,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut resp = reqwest::get(format!("{base}/api/events")).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut seen = Vec::new();
    let mut buffer = String::new();
    while let Ok(Some(chunk)) =
        tokio::time::timeout(std::time::Duration::from_secs(300), resp.chunk())
            .await
            .expect("a status event within 5 minutes")
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.strip_prefix("event: status\ndata: ") {
                let status: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                let stop = done(&status);
                seen.push(status);
                if stop {
                    return seen;
                }
            }
        }
    }
    panic!("event stream ended early after {} events", seen.len());
}

/// `GET path` → status and JSON body.
pub async fn get(server: &TestServer, path: &str) -> (u16, serde_json::Value) {
    send(server, reqwest::Method::GET, path, serde_json::Value::Null).await
}

/// A JSON request (`Null`: no body) → status and body: JSON, or the text as a JSON string
/// (204 and text answers).
pub async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    send_to(server.url(path), method, body).await
}

/// [`send`] to a whole URL (a server in another process).
/// POSTs `body` as JSON; the status and the JSON answer.
pub async fn post(
    server: &TestServer,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    send(server, reqwest::Method::POST, path, body).await
}

pub async fn send_to(
    url: String,
    method: reqwest::Method,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if !body.is_null() {
        request = request.json(&body);
    }
    let resp = request.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Starts the `paddock serve` binary on SmolLM2 and a free port, with `extra` flags and its log
/// going to `log`; returns the child and its base URL (read from the line it prints once it
/// is listening).
pub fn serve_process(
    extra: &[&str],
    log: impl Into<std::process::Stdio>,
) -> (std::process::Child, String) {
    serve_process_env(extra, log, &[])
}

/// [`serve_process`] with these environment variables set.
pub fn serve_process_env(
    extra: &[&str],
    log: impl Into<std::process::Stdio>,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .envs(env.iter().copied())
        .args(["serve", "-m"])
        .arg(smollm2())
        .args(["--port", "0", "-t", "2", "-c", "2048"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(log)
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
