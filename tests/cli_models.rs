//! The model commands of the binary: `paddock budget MODEL` against the library's own figures,
//! `paddock models -o json`, and `paddock models pull` from the fake hub, plus the disk-space
//! refusal on the CLI and on `POST /api/downloads`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common;
use crate::downloads::{hub_with_smollm2, start, temp_dir};

fn paddock(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("paddock binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The KV cache the library computes for SmolLM2 with these settings.
fn library_kv(n_ctx: u32, n_parallel: u32) -> u64 {
    let settings = paddock::budget::Settings {
        n_ctx,
        n_parallel,
        ..paddock::library::default_budget_settings()
    };
    let library = paddock::library::Library::new(None, settings);
    let file = paddock::library::Library::file_at(&common::smollm2());
    library
        .describe(file, &settings)
        .budget
        .expect("SmolLM2 has a budget")
        .kv_cache
}

#[test]
fn budget_prints_the_librarys_kv_cache_and_json_parses() {
    let model = common::smollm2();
    let model = model.to_str().unwrap();
    // The figure llama.cpp itself reports for SmolLM2 at -c 4096 --parallel 2 (docs/models.md).
    assert_eq!(library_kv(4096, 2), 94_371_840);
    for (ctx, slots) in [(4096, 2), (4096, 1), (2048, 1)] {
        let (ctx_s, slots_s) = (ctx.to_string(), slots.to_string());
        let out = paddock(
            &["budget", model, "-c", &ctx_s, "--parallel", &slots_s],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let table = text(&out.stdout);
        let kv_line = table
            .lines()
            .find(|l| l.starts_with("| KV cache"))
            .unwrap_or_else(|| panic!("no KV cache line in\n{table}"));
        let expected = paddock::library::grouped(library_kv(ctx, slots));
        assert!(
            kv_line.contains(&format!("({expected} B)")),
            "{kv_line} vs {expected}"
        );
        for row in [
            "| Model weights",
            "| Compute buffer",
            "| OS reserve",
            "| Total",
            "| Machine limit",
            "| Headroom",
            "| Verdict",
            "| Largest context",
        ] {
            assert!(table.contains(row), "{row} missing in\n{table}");
        }
    }

    let out = paddock(
        &[
            "budget",
            model,
            "--ctx-size",
            "4096",
            "--cache-type-k",
            "q8_0",
            "--cache-type-v",
            "q8_0",
            "-ngl",
            "0",
            "-o",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(report["model"]["id"], common::SMOLLM2_ID);
    assert_eq!(report["settings"]["cache_type_k"], "q8_0");
    assert_eq!(report["settings"]["n_gpu_layers"], 0);
    assert!(report["model"]["budget"]["kv_cache"].as_u64().unwrap() < 94_371_840);

    let out = paddock(&["budget", "no-such-model"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no-such-model"));
}

#[test]
fn models_without_a_subcommand_still_lists() {
    let dir = temp_dir("models-list");
    std::os::unix::fs::symlink(
        common::smollm2(),
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    .unwrap();
    let out = paddock(
        &["models", "--dir", dir.to_str().unwrap(), "-o", "json"],
        &[("HOME", &dir), ("XDG_DATA_HOME", &dir)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == common::SMOLLM2_ID),
        "{list}"
    );
}

#[test]
fn models_pull_fetches_a_quant_from_the_hub_with_its_checksum() {
    let (_hub, hub_url) = hub_with_smollm2("pull-hub");
    let data = temp_dir("pull-data");
    let hub_url = std::path::PathBuf::from(&hub_url);
    let env = [
        ("PADDOCK_HF_ENDPOINT", hub_url.as_path()),
        ("HOME", &data),
        ("XDG_DATA_HOME", &data),
    ];

    // Too little room: refused before anything is written, saying what is needed and free.
    let full = Path::new("1000");
    let mut refused_env = env.to_vec();
    refused_env.push(("PADDOCK_TEST_FREE_BYTES", full));
    let out = paddock(
        &["models", "pull", "test-org/smol-gguf", "Q4_1"],
        &refused_env,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("not enough disk space") && err.contains("0.09 GiB"),
        "{err}"
    );
    assert!(!data.join("paddock/models/test-org--smol-gguf").exists());

    // An unknown tag lists what the repo has.
    let out = paddock(&["models", "pull", "test-org/smol-gguf", "Q8_0"], &env);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(common::SMOLLM2_ID));

    // The quant tag, against the real free space.
    let out = paddock(&["models", "pull", "test-org/smol-gguf", "Q4_1"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let path = Path::new(printed.trim());
    assert_eq!(
        path,
        data.join("paddock/models/test-org--smol-gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
    );
    let sha = |p: &Path| format!("{:x}", Sha256::digest(std::fs::read(p).unwrap()));
    assert_eq!(sha(path), sha(&common::smollm2()));
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn the_admin_api_refuses_a_download_larger_than_free_space() {
    let (_hub, hub_url) = hub_with_smollm2("pull-hub");
    let data = temp_dir("space-data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["serve", "-m"])
        .arg(common::smollm2())
        .args(["--port", "0", "-t", "2", "-c", "2048"])
        .env("PADDOCK_HF_ENDPOINT", &hub_url)
        .env("PADDOCK_TEST_FREE_BYTES", "1000000")
        .env("XDG_DATA_HOME", &data)
        .env("HOME", &data);
    let (_server, url) = start(cmd);
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/downloads"))
        .json(&json!({"repo": "test-org/smol-gguf", "model": common::SMOLLM2_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 507);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("needs 0.09 GiB") && message.contains("0.00 GiB is free"),
        "{message}"
    );
    let list: Value = reqwest::get(format!("{url}/api/downloads"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "nothing started");
    let _ = std::fs::remove_dir_all(&data);
}
