//! Model downloads through the admin API, from a local server that behaves like the Hugging
//! Face hub (`tests/fakehub/fakehub.py`): listing, progress to 100 %, the model in the library
//! afterwards, and loading it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common;

/// A child process killed when dropped.
pub(crate) struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` and returns it with the first `http://` URL it prints on stdout.
pub(crate) fn start(mut cmd: Command) -> (Running, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            return (
                child,
                url.trim_end_matches("/v1")
                    .trim_end_matches('/')
                    .to_string(),
            );
        }
    }
    panic!("no URL printed");
}

pub(crate) fn fake_hub(root: &Path) -> (Running, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakehub/fakehub.py");
    let mut cmd = Command::new("python3");
    // Slow enough that progress is seen on the way (about 10 s for 98 MB), fast enough for CI.
    cmd.arg(script)
        .arg("--root")
        .arg(root)
        .args(["--port", "0", "--throttle", "10000000"]);
    start(cmd)
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// A fake hub serving SmolLM2 as `test-org/smol-gguf`, from a fresh folder named `name`.
pub(crate) fn hub_with_smollm2(name: &str) -> (Running, String) {
    let root = temp_dir(name);
    let repo = root.join("test-org/smol-gguf");
    std::fs::create_dir_all(&repo).unwrap();
    std::os::unix::fs::symlink(
        common::smollm2(),
        repo.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    .unwrap();
    fake_hub(&root)
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_model_downloads_from_the_hub_with_progress_and_then_loads() {
    let (_hub, hub_url) = hub_with_smollm2("hub");

    // The server starts on Gemma; downloads go to its own models folder under XDG_DATA_HOME.
    let data = temp_dir("data");
    // Served from a folder of its own, so the library holds no other copy of SmolLM2.
    let gemma = temp_dir("served").join("gemma-3-270m-q4_k_m.gguf");
    std::os::unix::fs::symlink(common::gemma3(), &gemma).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["serve", "-m"])
        .arg(&gemma)
        .args(["--port", "0", "-t", "2", "-c", "2048"])
        .env("PADDOCK_HF_ENDPOINT", &hub_url)
        .env("XDG_DATA_HOME", &data)
        .env("HOME", &data);
    let (_server, url) = start(cmd);
    let client = reqwest::Client::new();

    let listed: Value = get_json(&client, format!("{url}/api/hub?repo=test-org/smol-gguf")).await;
    assert_eq!(listed["models"][0]["id"], common::SMOLLM2_ID, "{listed}");
    assert_eq!(listed["models"][0]["total_size"], 98_362_432u64);
    let missing = client
        .get(format!("{url}/api/hub?repo=test-org/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let mut events = client
        .get(format!("{url}/api/events"))
        .send()
        .await
        .unwrap();
    let started = client
        .post(format!("{url}/api/downloads"))
        .json(&json!({"repo": "test-org/smol-gguf", "model": common::SMOLLM2_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let again = client
        .post(format!("{url}/api/downloads"))
        .json(&json!({"repo": "test-org/smol-gguf", "model": common::SMOLLM2_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "one download of a repo at a time");

    // Follow the event stream until the download is done.
    let mut seen: Vec<u64> = Vec::new();
    let mut buffer = String::new();
    'events: while let Some(chunk) = tokio::time::timeout(Duration::from_secs(600), events.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.strip_prefix("event: status\ndata: ") else {
                continue;
            };
            let status: Value = serde_json::from_str(data.trim()).unwrap();
            let Some(d) = status["downloads"].as_array().and_then(|d| d.first()) else {
                continue;
            };
            seen.push(d["done_bytes"].as_u64().unwrap());
            match d["state"].as_str().unwrap() {
                "running" => {}
                "done" => break 'events,
                other => panic!("download ended {other}: {d}"),
            }
        }
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&98_362_432), "progress reaches 100 %");
    assert!(
        seen.iter().any(|&b| b > 0 && b < 98_362_432),
        "progress seen on the way: {seen:?}"
    );

    // The file is in Paddock's folder, byte for byte, and the library and the loader know it.
    let file = data.join("paddock/models/test-org--smol-gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(common::smollm2()).unwrap()
    );
    let library: Value = get_json(&client, format!("{url}/api/models")).await;
    let parts: Vec<String> = library["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] == common::SMOLLM2_ID)
        .flat_map(|m| {
            m["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(parts, [file.display().to_string()]);
    let loaded: Value = client
        .post(format!("{url}/api/models/load"))
        .json(&json!({"model": common::SMOLLM2_ID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(loaded["model"]["path"], file.display().to_string());

    // Deleting: only what Paddock downloaded, and not while it is loaded.
    let delete = |id: &str| client.delete(format!("{url}/api/models/{id}")).send();
    let unload = |id: &str| {
        client
            .post(format!("{url}/api/models/unload"))
            .json(&json!({ "model": id }))
            .send()
    };
    assert_eq!(delete(common::SMOLLM2_ID).await.unwrap().status(), 409);
    assert_eq!(delete("gemma-3-270m-q4_k_m").await.unwrap().status(), 409);
    assert_eq!(unload("gemma-3-270m-q4_k_m").await.unwrap().status(), 200);
    assert_eq!(delete("gemma-3-270m-q4_k_m").await.unwrap().status(), 403);
    assert!(gemma.exists());
    assert_eq!(unload(common::SMOLLM2_ID).await.unwrap().status(), 200);
    assert_eq!(delete(common::SMOLLM2_ID).await.unwrap().status(), 200);
    assert!(!file.exists() && !file.parent().unwrap().exists());
    let library: Value = get_json(&client, format!("{url}/api/models")).await;
    assert!(!library["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == common::SMOLLM2_ID));
    assert_eq!(delete(common::SMOLLM2_ID).await.unwrap().status(), 404);
}
