//! The admin API over HTTP: status and its event stream, what-if budgets, loading models,
//! saved settings, and who may call it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use paddock::config::{RawEngine, RawModelSettings};

use crate::common::{self, TestServer};

const GEMMA_ID: &str = "gemma-3-270m-q4_k_m";

fn server() -> TestServer {
    TestServer::start(common::settings(|_| {}))
}

/// A server on SmolLM2 whose settings are saved to a fresh config file.
fn server_with_config(name: &str) -> (TestServer, PathBuf) {
    let dir = std::env::temp_dir().join(format!("paddock-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("paddock.toml");
    let mut settings = common::settings(|_| {});
    settings.config_file = Some(config.clone());
    (TestServer::start(settings), config)
}

use common::{get, send};

/// The entry of `models` in a status, by id.
fn loaded<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not loaded: {status}"))
}

fn loaded_ids(status: &Value) -> Vec<&str> {
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn loading_another_model_keeps_the_first_and_streams_progress() {
    let (server, config) = server_with_config("switch");
    let (_, first) = get(&server, "/api/status").await;
    assert_eq!(first["state"], "idle");
    assert_eq!(first["model"]["id"], common::SMOLLM2_ID);
    assert_eq!(loaded_ids(&first), [common::SMOLLM2_ID]);
    let smollm2 = loaded(&first, common::SMOLLM2_ID);
    assert_eq!(smollm2["measured"]["kv_cache"], 94_371_840u64);
    assert_eq!(
        smollm2["predicted"]["kv_cache"],
        smollm2["measured"]["kv_cache"]
    );
    assert_eq!(
        smollm2["predicted"]["compute"],
        smollm2["measured"]["compute"]
    );
    assert!(first["memory"]["process_resident"].as_u64().unwrap() > 0);

    let events = tokio::spawn(common::watch_status(server.url.clone(), |s| {
        s["model"]["id"] == GEMMA_ID && s["state"] == "idle"
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, status) = send(
        &server,
        reqwest::Method::POST,
        "/api/models/load",
        json!({"model": GEMMA_ID}),
    )
    .await;
    assert_eq!(code, 200, "{status}");
    // Loaded beside the first, which was not reloaded; the newest is the one in use.
    assert_eq!(loaded_ids(&status), [common::SMOLLM2_ID, GEMMA_ID]);
    assert_eq!(status["model"]["id"], GEMMA_ID);
    assert_eq!(
        loaded(&status, common::SMOLLM2_ID)["loaded_at"],
        smollm2["loaded_at"]
    );
    // The budget it was loaded under is the library's, and llama.cpp agrees on the weights.
    let gemma = loaded(&status, GEMMA_ID);
    let (predicted, measured) = (&gemma["predicted"], &gemma["measured"]);
    assert_eq!(
        predicted["weights_cpu"].as_u64().unwrap() + predicted["weights_gpu"].as_u64().unwrap(),
        measured["weights"].as_u64().unwrap()
    );
    // Sliding-window layers hold their window only: 12 MiB + 22.5 MiB, as llama.cpp allocates.
    assert_eq!(predicted["kv_cache"], measured["kv_cache"]);
    assert_eq!(measured["kv_cache"], 36_175_872u64);
    // The compute buffer was predicted by llama.cpp's own dry run, and is what it reserved.
    assert_eq!(predicted["compute_exact"], true);
    assert_eq!(predicted["compute"], measured["compute"]);
    // So the whole prediction matches llama.cpp's accounting (the goal is within 5 %).
    let sum =
        |b: &Value, keys: &[&str]| -> u64 { keys.iter().map(|k| b[k].as_u64().unwrap_or(0)).sum() };
    let (p, m) = (
        sum(
            predicted,
            &[
                "weights_gpu",
                "weights_cpu",
                "kv_cache",
                "recurrent_state",
                "compute",
            ],
        ),
        sum(
            measured,
            &["weights", "kv_cache", "recurrent_state", "compute"],
        ),
    );
    assert_eq!(p, m, "predicted {predicted}, measured {measured}");

    let events = events.await.unwrap();
    let progress: Vec<f64> = events
        .iter()
        .filter(|s| s["state"] == "loading")
        .map(|s| s["loading"]["progress"].as_f64().unwrap())
        .collect();
    assert!(!progress.is_empty(), "no loading events: {events:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    // The first model served on through the load.
    assert!(
        events
            .iter()
            .filter(|s| s["state"] == "loading")
            .all(|s| loaded_ids(s).contains(&common::SMOLLM2_ID)),
        "{events:?}"
    );

    // Both are listed as loaded, and each answers under its own name.
    let (_, models) = get(&server, "/v1/models").await;
    let listed: Vec<(&str, bool)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["loaded"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        listed[..2],
        [(common::SMOLLM2_ID, true), (GEMMA_ID, true)],
        "loaded models come first"
    );
    for id in [GEMMA_ID, common::SMOLLM2_ID] {
        let mut body = common::chat("Say hi.", 4);
        body["model"] = json!(id);
        let (code, reply) =
            send(&server, reqwest::Method::POST, "/v1/chat/completions", body).await;
        assert_eq!((code, reply["model"].as_str()), (200, Some(id)), "{reply}");
    }
    // The choice is remembered for the next start, and is what a request naming no model
    // gets while both are loaded.
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("gemma-3-270m-q4_k_m.gguf"), "{saved}");
    let mut unnamed = common::chat("Hi", 2);
    unnamed.as_object_mut().unwrap().remove("model");
    let (code, reply) = send(
        &server,
        reqwest::Method::POST,
        "/v1/chat/completions",
        unnamed.clone(),
    )
    .await;
    assert_eq!(
        (code, reply["model"].as_str()),
        (200, Some(GEMMA_ID)),
        "{reply}"
    );

    // One model unloads by name; the other stays and takes the unnamed requests.
    let (code, status) = send(
        &server,
        reqwest::Method::POST,
        "/api/models/unload",
        json!({"model": GEMMA_ID}),
    )
    .await;
    assert_eq!((code, loaded_ids(&status)), (200, vec![common::SMOLLM2_ID]));
    let (code, reply) = send(
        &server,
        reqwest::Method::POST,
        "/v1/chat/completions",
        unnamed,
    )
    .await;
    assert_eq!(
        (code, reply["model"].as_str()),
        (200, Some(common::SMOLLM2_ID)),
        "{reply}"
    );
    let (code, body) = send(
        &server,
        reqwest::Method::POST,
        "/api/models/unload",
        json!({"model": "nope"}),
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );

    let (code, unloaded) = send(
        &server,
        reqwest::Method::POST,
        "/api/models/unload",
        json!({}),
    )
    .await;
    assert_eq!((code, unloaded["state"].as_str()), (200, Some("no_model")));
    let (code, body) = send(
        &server,
        reqwest::Method::POST,
        "/api/models/load",
        json!({"model": "nope"}),
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
}

#[tokio::test]
async fn what_if_budgets_match_the_library_and_check_their_inputs() {
    let server = server();
    let (_, library) = get(&server, "/api/models").await;
    let listed = library["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == common::SMOLLM2_ID)
        .unwrap()["budget"]
        .clone();
    let (code, same) = get(
        &server,
        &format!("/api/budget?model={}", common::SMOLLM2_ID),
    )
    .await;
    assert_eq!(code, 200);
    // The same budget, but for the compute buffer: the list estimates it, a what-if asks
    // llama.cpp (a dry run), which reserves less than the estimate's upper bound.
    let mut exact = same["budget"].clone();
    assert_eq!(
        (
            listed["compute_exact"].as_bool(),
            exact["compute_exact"].as_bool()
        ),
        (Some(false), Some(true))
    );
    let (estimate, asked) = (
        listed["compute"].as_u64().unwrap(),
        exact["compute"].as_u64().unwrap(),
    );
    assert!(
        asked <= estimate && estimate <= asked + asked / 5,
        "{estimate} vs {asked}"
    );
    for key in [
        "compute",
        "compute_exact",
        "on_cpu",
        "on_gpu",
        "total",
        "headroom",
    ] {
        exact[key] = listed[key].clone();
    }
    assert_eq!(exact, listed);
    // Twice the context, twice the KV cache; q8_0 keys take 34/64 of f16's bytes.
    let (_, double) = get(
        &server,
        &format!("/api/budget?model={}&ctx_size=8192", common::SMOLLM2_ID),
    )
    .await;
    assert_eq!(double["budget"]["kv_cache"], 2 * 94_371_840u64);
    let (_, q8) = get(
        &server,
        &format!("/api/budget?model={}&cache_type_k=q8_0", common::SMOLLM2_ID),
    )
    .await;
    assert_eq!(
        q8["budget"]["kv_cache"],
        94_371_840u64 / 2 + 94_371_840u64 / 4 * 34 / 32
    );
    assert_eq!(q8["settings"]["cache_type_k"], "q8_0");

    for (query, says) in [
        ("ctx_size=abc", "ctx_size"),
        ("parallel=0", "parallel"),
        ("cache_type_k=q9", "cache type"),
        ("cache_type_v=q8_0&flash_attn=off", "flash attention"),
        ("colour=red", "colour"),
    ] {
        let (code, body) = get(
            &server,
            &format!("/api/budget?model={}&{query}", common::SMOLLM2_ID),
        )
        .await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(code, 400, "{query}: {body}");
        assert!(message.contains(says), "{query}: {message}");
    }
    let (code, _) = get(&server, "/api/budget?model=nope").await;
    assert_eq!(code, 404);
}

/// Loads SmolLM2 through the admin API; the answer.
async fn load_smollm2(server: &TestServer) -> Value {
    let body = json!({"model": common::SMOLLM2_ID});
    send(server, reqwest::Method::POST, "/api/models/load", body)
        .await
        .1
}

/// The config file holds each of `lines`.
fn assert_saved(config: &std::path::Path, lines: &[&str]) {
    let file = std::fs::read_to_string(config).unwrap();
    for line in lines {
        assert!(file.contains(line), "{line} not in {file}");
    }
}

#[tokio::test]
async fn saved_settings_persist_and_apply_at_the_next_load() {
    let (server, config) = server_with_config("settings");
    let (_, before) = get(&server, "/api/settings").await;
    assert_eq!(before["settings"]["ctx_size"], 4096);
    assert_eq!(before["restart_required"], false);

    let (code, saved) = send(
        &server,
        reqwest::Method::PUT,
        "/api/settings",
        json!({"ctx_size": 2048, "parallel": 1}),
    )
    .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(
        (
            saved["settings"]["ctx_size"].as_u64(),
            saved["settings"]["parallel"].as_u64()
        ),
        (Some(2048), Some(1))
    );
    assert_eq!(
        saved["restart_required"], false,
        "engine settings need no restart"
    );
    assert_saved(&config, &["ctx_size = 2048", "parallel = 1"]);

    let loaded = load_smollm2(&server).await;
    assert_eq!(
        (
            loaded["model"]["n_ctx"].as_u64(),
            loaded["model"]["n_parallel"].as_u64()
        ),
        (Some(2048), Some(1))
    );

    // A bad value names the setting and leaves the file alone.
    let file = std::fs::read_to_string(&config).unwrap();
    let (code, bad) = send(
        &server,
        reqwest::Method::PUT,
        "/api/settings",
        json!({"parallel": 0}),
    )
    .await;
    assert_eq!(code, 400);
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("parallel"));
    let (code, _) = send(
        &server,
        reqwest::Method::PUT,
        "/api/settings",
        json!({"colour": "red"}),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), file);

    // Serving the LAN needs a key: one is made, and the change waits for a restart.
    let (_, lan) = send(
        &server,
        reqwest::Method::PUT,
        "/api/settings",
        json!({"lan": true}),
    )
    .await;
    let key = lan["settings"]["api_key"].as_str().unwrap();
    assert!(key.starts_with("pk-") && key.len() == 35, "{key}");
    assert_eq!(lan["restart_required"], true);
    // The running server is unchanged until then.
    assert_eq!(get(&server, "/api/status").await.1["server"]["lan"], false);
}

#[tokio::test]
async fn speculation_settings_are_saved_and_apply_at_the_next_load() {
    let (server, config) = server_with_config("speculation");
    let (_, before) = get(&server, "/api/settings").await;
    let s = &before["settings"];
    assert_eq!(
        (
            &s["spec_ngram"],
            &s["spec_mtp"],
            &s["draft_max"],
            &s["model_draft"]
        ),
        (&json!(true), &json!(true), &json!(16), &json!(null)),
        "llama-server's defaults: {s}"
    );

    let put = |body| send(&server, reqwest::Method::PUT, "/api/settings", body);
    let (code, saved) = put(json!({"spec_ngram": false, "draft_max": 4,
        "model_draft": common::SMOLLM2_ID, "draft_p_min": 0.5}))
    .await;
    assert_eq!(code, 200, "{saved}");
    let s = &saved["settings"];
    assert_eq!(
        (
            &s["spec_ngram"],
            &s["draft_max"],
            &s["model_draft"],
            &s["draft_p_min"]
        ),
        (
            &json!(false),
            &json!(4),
            &json!(common::SMOLLM2_ID),
            &json!(0.5)
        )
    );
    assert_saved(&config, &["spec_ngram = false", "draft_max = 4"]);
    let loaded = load_smollm2(&server).await;
    assert_eq!(
        loaded["model"]["speculation"],
        json!({"ngram": false, "draft_model": common::SMOLLM2_ID, "mtp": false, "draft_max": 4}),
        "{loaded}"
    );

    // An empty id removes the draft model; unknown ones and bad numbers are refused by name.
    let (_, cleared) = put(json!({"model_draft": ""})).await;
    assert_eq!(cleared["settings"]["model_draft"], json!(null));
    for (body, says) in [
        (json!({"model_draft": "nope"}), "model_draft"),
        (json!({"draft_max": 65}), "draft-max"),
        (json!({"draft_p_min": 2.0}), "draft-p-min"),
        (json!({"spec_mtp": "yes"}), "spec_mtp"),
    ] {
        let (code, bad) = put(body.clone()).await;
        let named = format!("{} {}", bad["error"]["param"], bad["error"]["message"]);
        assert_eq!(code, 400, "{body}: {bad}");
        assert!(named.contains(says), "{body}: {bad}");
    }
}

#[tokio::test]
async fn the_admin_api_refuses_other_sites() {
    let server = server();
    let client = reqwest::Client::new();
    let host = server.url.trim_start_matches("http://").to_string();
    for (origin, expected) in [
        ("http://evil.example", 403),
        ("null", 403),
        (&format!("http://{host}") as &str, 200),
    ] {
        let resp = client
            .post(server.url("/api/models/unload"))
            .header("origin", origin)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, expected, "{origin}: {body}");
        if expected == 403 {
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cross-site"));
        }
    }
    // A form post needs no CORS preflight, so the admin API refuses anything but JSON.
    let resp = client
        .post(server.url("/api/models/unload"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = client
        .get(server.url("/api/status"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn the_web_ui_is_served_with_its_own_rules() {
    let server = server();
    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<title>") && html.contains("Paddock"),
        "{html}"
    );
    for path in [
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/Cargo.toml",
        "/ui//etc/passwd",
        "/ui/no-such.js",
    ] {
        let resp = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_status_follows_generation() {
    let server = server();
    let (_, idle) = get(&server, "/api/status").await;
    assert_eq!(
        (idle["state"].as_str(), idle["last_tps"].is_null()),
        (Some("idle"), true)
    );
    let watcher = tokio::spawn(common::watch_status(server.url.clone(), |s| {
        s["state"] == "idle" && s["last_tps"].is_number()
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut body = common::chat("Write a long story about a horse.", 64);
    body["ignore_eos"] = json!(true);
    let (code, reply) = send(&server, reqwest::Method::POST, "/v1/chat/completions", body).await;
    assert_eq!(code, 200, "{reply}");
    let seen = watcher.await.unwrap();
    let states: Vec<&str> = seen.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"generating"), "{states:?}");
    assert!(seen.last().unwrap()["last_tps"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_request_loads_the_model_it_names_and_an_idle_model_unloads() {
    let server = TestServer::start(common::settings(|raw| {
        raw.server.idle_unload_secs = Some(1);
        raw.models.insert(
            GEMMA_ID.into(),
            RawModelSettings {
                alias: Some(vec!["tiny-gemma".into()]),
                engine: RawEngine {
                    ctx_size: Some(2048),
                    ..RawEngine::default()
                },
                ..RawModelSettings::default()
            },
        );
    }));
    // Listed before it is loaded, with its alias; the alias finds it too.
    let (_, gemma) = get(&server, "/v1/models/tiny-gemma").await;
    assert_eq!(gemma["id"], GEMMA_ID);
    assert_eq!(gemma["loaded"], false);
    assert_eq!(gemma["aliases"], json!(["tiny-gemma"]));
    assert_eq!(gemma["meta"]["architecture"], "gemma3");
    // By alias from its [models] table, with that table's context.
    let mut body = common::chat("Say hi.", 4);
    body["model"] = json!("tiny-gemma");
    let (code, reply) = send(&server, reqwest::Method::POST, "/v1/chat/completions", body).await;
    assert_eq!(code, 200, "{reply}");
    let (_, status) = get(&server, "/api/status").await;
    assert_eq!(status["model"]["id"], GEMMA_ID);
    assert_eq!(status["model"]["n_ctx"], 2048);
    assert_eq!(status["model"]["aliases"], json!(["tiny-gemma"]));

    let mut body = common::chat("Hi", 2);
    body["model"] = json!("no-such-model");
    let (code, _) = send(&server, reqwest::Method::POST, "/v1/chat/completions", body).await;
    assert_eq!(code, 404);

    // Nobody asks for a while: the model is unloaded, and the next request brings one back.
    let mut state = String::new();
    for _ in 0..600 {
        state = get(&server, "/api/status").await.1["state"]
            .as_str()
            .unwrap()
            .to_string();
        if state == "no_model" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "no_model");
    let (code, reply) = send(
        &server,
        reqwest::Method::POST,
        "/v1/chat/completions",
        common::chat("Hi", 2),
    )
    .await;
    assert_eq!(code, 200, "{reply}");
    assert_eq!(
        get(&server, "/api/status").await.1["model"]["id"],
        common::SMOLLM2_ID
    );
}

#[tokio::test]
async fn an_open_event_stream_does_not_hold_up_a_stop() {
    let app = paddock::App::start(common::settings(|_| {})).await.unwrap();
    let events = reqwest::get(format!("http://{}/api/events", app.addr()))
        .await
        .unwrap();
    let mut events = futures::StreamExt::boxed(events.bytes_stream());
    let first = futures::StreamExt::next(&mut events)
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: status"));
    // The web UI and the app's window keep this stream open: the stop ends it, and does not
    // wait out the grace period for it.
    assert!(
        app.stop(Duration::from_secs(20)).await,
        "the stream held the stop"
    );
    while let Some(chunk) = futures::StreamExt::next(&mut events).await {
        if chunk.is_err() {
            break;
        }
    }
}
