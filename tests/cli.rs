use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common;

#[tokio::test]
async fn sigterm_lets_the_open_stream_finish_frees_the_model_and_exits_0() {
    // A grace period no slow machine runs out of: the test is about draining, not timing.
    let scratch = std::env::temp_dir().join(format!("paddock-sigterm-{}", std::process::id()));
    let config = scratch.with_extension("toml");
    let log = scratch.with_extension("log");
    std::fs::write(&config, "[server]\nshutdown_grace_secs = 600\n").unwrap();
    let (mut child, url) = common::serve_process(
        &["--config", config.to_str().unwrap()],
        std::fs::File::create(&log).unwrap(),
    );
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
    // The engine thread ended (context and model freed) before the process did: a context
    // torn down by the exit itself aborts on CUDA.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("stopped: requests finished, models freed"),
        "{logged}"
    );
    let _ = std::fs::remove_file(config);
    let _ = std::fs::remove_file(log);
}

#[tokio::test]
async fn the_api_key_never_reaches_the_log() {
    const KEY: &str = "pk-the-secret-that-must-not-be-logged";
    let log = std::env::temp_dir().join(format!("paddock-secret-{}.log", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "-m"])
        .arg(common::smollm2())
        .args(["--port", "0", "-t", "2", "-c", "2048", "--api-key", KEY])
        // Everything Paddock logs, at its most talkative.
        .env("PADDOCK_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap();
    let client = reqwest::Client::new();
    let body = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2});
    let with = |key: &str| {
        client
            .post(format!("{url}/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    assert_eq!(with(KEY).await.unwrap().status(), 200);
    assert_eq!(with(&format!("{KEY}x")).await.unwrap().status(), 401);
    let settings = client
        .get(format!("{}/api/settings", url.trim_end_matches("/v1")))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 200);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("listening"),
        "the log was written: {logged:.300}"
    );
    assert!(!logged.contains("the-secret"), "the key is in the log");
    let _ = std::fs::remove_file(log);
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

/// `paddock models` reads the GGUF headers (no weights) and budgets each model; the KV cache
/// it predicts is the figure llama.cpp itself prints for SmolLM2 at this context ("KV self
/// size = 90.00 MiB" for -c 4096: 30 layers x 3 KV heads x 64 x 2 (K, V) x 2 bytes x 4096).
#[test]
fn models_lists_facts_and_budgets_without_loading() {
    let models_dir = common::smollm2().parent().unwrap().to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args([
            "models",
            "-o",
            "json",
            "-c",
            "4096",
            "--parallel",
            "2",
            "--dir",
        ])
        .arg(&models_dir)
        .output()
        .expect("paddock binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_id = |id: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    let smol = by_id(common::SMOLLM2_ID);
    assert_eq!(smol["facts"]["architecture"], "llama");
    assert_eq!(smol["facts"]["n_layer"], 30);
    assert_eq!(smol["facts"]["total_params"], 134_515_008u64);
    assert_eq!(smol["budget"]["kv_cache"], 94_371_840u64);
    assert_eq!(smol["budget"]["fits"]["verdict"], "fits");
    assert_eq!(
        smol["largest_context"], 8192,
        "capped at the trained context"
    );

    // Gemma 3 keeps only its 512-token window (x 2 slots + one ubatch) on 15 of its 18
    // layers; llama.cpp prints "size = 12.00 MiB (4096 cells, 3 layers)" and
    // "size = 22.50 MiB (1536 cells, 15 layers)" when the engine loads it so.
    let gemma = by_id("gemma-3-270m-q4_k_m");
    assert_eq!(gemma["facts"]["sliding_window"], 512);
    let kv = gemma["budget"]["kv_cache"].as_u64().unwrap();
    assert_eq!(kv, (12 << 20) + (45 << 19));

    let table = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["models", "--dir"])
        .arg(&models_dir)
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("| SmolLM2-135M-Instruct.Q4_1 | llama |"),
        "{table}"
    );
}

/// `paddock service install|status|uninstall` under a temporary HOME: the systemd user unit
/// serves with the given flags (paths made absolute), `systemd-analyze` accepts it where it is
/// installed, and uninstall removes it. Containers have no user systemd: install still writes
/// the unit and says what to run.
#[cfg(target_os = "linux")]
#[test]
fn service_install_writes_a_unit_that_serves_with_the_flags() {
    let home = std::env::temp_dir().join(format!("paddock-service-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let models = common::smollm2().parent().unwrap().to_path_buf();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(args)
            .current_dir(&models)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("PADDOCK_API_KEY")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, said) = run(&[
        "service",
        "install",
        "-m",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "-c",
        "2048",
        "--port",
        "18099",
    ]);
    assert!(ok, "{said}");
    let unit_path = home.join(".config/systemd/user/paddock.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap_or_else(|e| panic!("{e}: {said}"));
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.contains(r#" "serve" "#), "{exec}");
    assert!(
        exec.contains(&common::smollm2().display().to_string()),
        "relative path made absolute: {exec}"
    );
    assert!(
        exec.contains(r#""-c" "2048""#) && exec.contains(r#""--port" "18099""#),
        "{exec}"
    );
    assert!(unit.contains("Restart=on-failure"), "{unit}");
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    if let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&unit_path)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, status) = run(&["service", "status"]);
    assert!(status.contains("paddock.service"), "{status}");
    // A bad config is refused before anything is written.
    let (ok, said) = run(&[
        "service",
        "install",
        "-m",
        "missing.gguf",
        "--parallel",
        "0",
    ]);
    assert!(!ok && said.contains("parallel"), "{said}");
    let (ok, said) = run(&["service", "uninstall"]);
    assert!(ok && !unit_path.exists(), "{said}");
    let (ok, said) = run(&["service", "uninstall"]);
    assert!(ok && said.contains("nothing to do"), "{said}");
}
