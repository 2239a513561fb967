//! Several models at once: chat and embeddings on two models side by side, a load that
//! unloads the least recently used model to make room, a load refused because the models in
//! the way are pinned or busy (and everything else still serving), each model's own idle
//! time, and a load that holds up no request to a model already loaded.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use paddock::config::{RawModelSettings, RawSettings};
use paddock::engine::{EngineHandle, LoadProgress};
use paddock::router::{LoadRequest, ModelRouter};

use crate::common::{self, get, post, TestServer};

const GEMMA_ID: &str = "gemma-3-270m-q4_k_m";

fn loaded_ids(status: &Value) -> Vec<String> {
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn status(server: &TestServer) -> Value {
    get(server, "/api/status").await.1
}

fn chat(model: &str, content: &str, max_tokens: u32) -> Value {
    let mut body = common::chat(content, max_tokens);
    body["model"] = json!(model);
    body
}

#[tokio::test]
async fn chat_and_embeddings_run_on_two_models_at_once() {
    let server = TestServer::start(common::settings(|_| {}));
    let embed = |model: &str| json!({"model": model, "input": ["fn main() {}", "a horse"]});
    // Gemma is loaded just in time for its embeddings while SmolLM2 answers a chat.
    let (chat_reply, embedded) = tokio::join!(
        post(
            &server,
            "/v1/chat/completions",
            chat(common::SMOLLM2_ID, "Count to five.", 16)
        ),
        post(&server, "/v1/embeddings", embed(GEMMA_ID)),
    );
    assert_eq!(chat_reply.0, 200, "{}", chat_reply.1);
    assert_eq!(chat_reply.1["model"], common::SMOLLM2_ID);
    assert!(!chat_reply.1["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    assert_eq!(embedded.0, 200, "{}", embedded.1);
    assert_eq!(embedded.1["model"], GEMMA_ID);
    let vectors = embedded.1["data"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(
        vectors[0]["embedding"].as_array().unwrap().len(),
        640,
        "Gemma's width"
    );

    let before = status(&server).await;
    assert_eq!(loaded_ids(&before), [common::SMOLLM2_ID, GEMMA_ID]);
    // The other way round, with both loaded: nothing is reloaded.
    let (chat_reply, embedded) = tokio::join!(
        post(
            &server,
            "/v1/chat/completions",
            chat(GEMMA_ID, "Say hi.", 8)
        ),
        post(&server, "/v1/embeddings", embed(common::SMOLLM2_ID)),
    );
    assert_eq!(
        (chat_reply.0, embedded.0),
        (200, 200),
        "{chat_reply:?} {embedded:?}"
    );
    assert_eq!(chat_reply.1["model"], GEMMA_ID);
    let width = embedded.1["data"][0]["embedding"].as_array().unwrap().len();
    assert_eq!(width, 576, "SmolLM2's width");
    let after = status(&server).await;
    for (a, b) in before["models"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["models"].as_array().unwrap())
    {
        assert_eq!((&a["id"], &a["loaded_at"]), (&b["id"], &b["loaded_at"]));
    }
}

/// A models folder with `smol-a` and `smol-b` (both SmolLM2, so three models exist with
/// only two files to fetch) and Gemma. smol-b is a copy: the library lists a file reached
/// by two links once. Removed when dropped.
struct Library(PathBuf);

impl Library {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("paddock-router-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(common::smollm2(), dir.join("smol-a.gguf")).unwrap();
        std::fs::copy(common::smollm2(), dir.join("smol-b.gguf")).unwrap();
        std::os::unix::fs::symlink(common::gemma3(), dir.join("gemma-3-270m-q4_k_m.gguf")).unwrap();
        Self(dir)
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings_in(dir: &Path, edit: impl FnOnce(&mut RawSettings)) -> paddock::config::Settings {
    common::settings(|raw| {
        raw.model.path = Some(dir.join("smol-a.gguf"));
        edit(raw);
    })
}

/// What the budget says each model takes (weights, KV cache, compute), under the test
/// settings on this machine: the figures the router adds up.
async fn needs(dir: &Path) -> (u64, u64) {
    let server = TestServer::start(settings_in(dir, |_| {}));
    let mut out = Vec::new();
    for id in ["smol-a", GEMMA_ID] {
        let (code, body) = get(&server, &format!("/api/budget?model={id}")).await;
        assert_eq!(code, 200, "{body}");
        let b = &body["budget"];
        out.push(b["on_cpu"].as_u64().unwrap() + b["on_gpu"].as_u64().unwrap());
    }
    (out[0], out[1])
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

#[tokio::test]
async fn a_load_makes_room_by_unloading_the_least_recently_used_model() {
    let library = Library::new("lru");
    let dir = &library.0;
    let (smol, gemma) = needs(dir).await;
    // Room for both SmolLM2s, or for Gemma and one of them, never all three.
    let cap = mib(gemma + smol + smol / 2);
    assert!(2 * smol < gemma + smol + smol / 2);
    let server = TestServer::start(settings_in(dir, |raw| {
        raw.server.memory_limit_mib = Some(cap);
    }));
    let (code, reply) = post(&server, "/v1/chat/completions", chat("smol-b", "Hi", 2)).await;
    assert_eq!(code, 200, "{reply}");
    assert_eq!(loaded_ids(&status(&server).await), ["smol-a", "smol-b"]);
    // smol-a is used after smol-b, so smol-b is the least recently used.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (code, _) = post(&server, "/v1/chat/completions", chat("smol-a", "Hi", 2)).await;
    assert_eq!(code, 200);

    let (code, reply) = post(&server, "/v1/chat/completions", chat(GEMMA_ID, "Hi", 2)).await;
    assert_eq!(
        (code, reply["model"].as_str()),
        (200, Some(GEMMA_ID)),
        "{reply}"
    );
    let now = status(&server).await;
    assert_eq!(loaded_ids(&now), ["smol-a", GEMMA_ID]);
    // What the loaded models were predicted to take is within the cap.
    let held: u64 = now["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["predicted"]["on_cpu"].as_u64().unwrap() + m["predicted"]["on_gpu"].as_u64().unwrap()
        })
        .sum();
    assert!(held <= cap << 20, "{held} > {cap} MiB");
    assert_eq!(now["memory"]["machine"]["memory_limit"], cap << 20);
}

#[tokio::test]
async fn a_model_that_cannot_fit_beside_pinned_or_busy_ones_is_refused_and_they_serve_on() {
    let library = Library::new("pinned");
    let dir = &library.0;
    let (smol, gemma) = needs(dir).await;
    // Room for either model alone, not both.
    let cap = mib(gemma.max(smol) + gemma.min(smol) / 2);
    let server = TestServer::start(settings_in(dir, |raw| {
        raw.server.memory_limit_mib = Some(cap);
        raw.models.insert(
            "smol-a".into(),
            RawModelSettings {
                pin: Some(true),
                ..RawModelSettings::default()
            },
        );
    }));
    let message = refused_for_room(&server, GEMMA_ID).await;
    assert!(
        message.contains("GiB more memory is needed") && message.contains("smol-a (pinned)"),
        "{message}"
    );
    // The pinned model was not touched and still answers.
    let (code, reply) = post(&server, "/v1/chat/completions", chat("smol-a", "Hi", 2)).await;
    assert_eq!(code, 200, "{reply}");
    let now = status(&server).await;
    assert_eq!(loaded_ids(&now), ["smol-a"]);
    assert_eq!(now["models"][0]["pinned"], true);

    // Not pinned but busy: smol-b streams a long answer while Gemma is asked for.
    let (code, reply) = post(&server, "/api/models/unload", json!({"model": "smol-a"})).await;
    assert_eq!(code, 200, "{reply}");
    let (code, reply) = post(&server, "/v1/chat/completions", chat("smol-b", "Hi", 2)).await;
    assert_eq!(code, 200, "{reply}");
    let mut long = chat("smol-b", "Tell a long story.", 100_000);
    long["stream"] = json!(true);
    long["ignore_eos"] = json!(true);
    let stream = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    let mut chunks = stream.bytes_stream();
    chunks.next().await.expect("the stream starts").unwrap();
    let message = refused_for_room(&server, GEMMA_ID).await;
    assert!(message.contains("smol-b (in use)"), "{message}");
    // Once the stream is gone (the client hung up), smol-b is idle and makes way.
    drop(chunks);
    let mut last = (0, Value::Null);
    for _ in 0..100 {
        last = post(&server, "/v1/chat/completions", chat(GEMMA_ID, "Hi", 2)).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last.0, 200, "{}", last.1);
    assert_eq!(loaded_ids(&status(&server).await), [GEMMA_ID]);
}

#[tokio::test]
async fn a_model_too_big_for_the_cap_is_refused_before_anything_is_unloaded() {
    let library = Library::new("too-big");
    let dir = &library.0;
    let (smol, gemma) = needs(dir).await;
    assert!(gemma > smol * 3 / 2);
    let server = TestServer::start(settings_in(dir, |raw| {
        raw.server.memory_limit_mib = Some(mib(smol + smol / 2));
    }));
    let (code, body) = post(&server, "/v1/chat/completions", chat(GEMMA_ID, "Hi", 2)).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("model_does_not_fit")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("GiB short"), "{message}");
    // Unloading SmolLM2 would not have helped, so it was left alone.
    assert_eq!(loaded_ids(&status(&server).await), ["smol-a"]);
    let (code, reply) = post(&server, "/v1/chat/completions", chat("smol-a", "Hi", 2)).await;
    assert_eq!(code, 200, "{reply}");
}

/// Asks for `model` and expects the router's refusal for lack of room; returns its message.
async fn refused_for_room(server: &TestServer, model: &str) -> String {
    let (code, body) = post(server, "/v1/chat/completions", chat(model, "Hi", 2)).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (503, Some("model_does_not_fit")),
        "{body}"
    );
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_model_unloads_after_its_own_idle_time() {
    let server = TestServer::start(common::settings(|raw| {
        raw.models.insert(
            GEMMA_ID.into(),
            RawModelSettings {
                idle_unload_secs: Some(1),
                ..RawModelSettings::default()
            },
        );
    }));
    let (code, reply) = post(&server, "/v1/chat/completions", chat(GEMMA_ID, "Hi", 2)).await;
    assert_eq!(code, 200, "{reply}");
    let loaded = status(&server).await;
    assert_eq!(loaded_ids(&loaded), [common::SMOLLM2_ID, GEMMA_ID]);
    assert_eq!(loaded["models"][1]["idle_unload_secs"], 1);
    assert!(loaded["models"][0]["idle_unload_secs"].is_null());
    let mut ids = Vec::new();
    for _ in 0..150 {
        ids = loaded_ids(&status(&server).await);
        if ids.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        ids,
        [common::SMOLLM2_ID],
        "Gemma's idle time passed, SmolLM2 has none"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(loaded_ids(&status(&server).await), [common::SMOLLM2_ID]);
}

#[tokio::test]
async fn a_load_holds_up_no_request_to_a_loaded_model() {
    let router = Arc::new(ModelRouter::new());
    let smol = common::settings(|_| {});
    router.insert(
        common::SMOLLM2_ID.into(),
        Vec::new(),
        EngineHandle::spawn(smol.engine.clone()).expect("SmolLM2 loads"),
        smol.engine,
    );
    // Gemma's load stops at its first progress report until the test lets it go on.
    let (reached, wait_reached) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let (reached, released) = (Mutex::new(Some(reached)), Mutex::new(released));
    let mut gemma = common::settings(|raw| raw.model.path = Some(common::gemma3())).engine;
    gemma.load_progress = Some(LoadProgress(Arc::new(move |_| {
        if let Some(reached) = reached.lock().unwrap().take() {
            reached.send(()).unwrap();
            released.lock().unwrap().recv().unwrap();
        }
    })));
    let loader = Arc::clone(&router);
    let load = std::thread::spawn(move || {
        loader.load(LoadRequest {
            id: GEMMA_ID.into(),
            aliases: Vec::new(),
            spec: gemma,
            predicted: None,
            pinned: false,
            idle_unload: None,
            remote: None,
        })
    });
    wait_reached
        .recv_timeout(Duration::from_secs(120))
        .expect("Gemma starts loading");
    assert_eq!(
        router.loading().map(|l| l.model),
        Some(GEMMA_ID.to_string())
    );

    // Mid-load, SmolLM2 is handed out at once, and a request for Gemma waits for its load.
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        router.acquire(Some(common::SMOLLM2_ID)),
    )
    .await
    .expect("a loaded model is not held up by another's load")
    .unwrap();
    assert_eq!(got.id, common::SMOLLM2_ID);
    drop(got);
    let waiting = tokio::spawn({
        let router = Arc::clone(&router);
        async move { router.acquire(Some(GEMMA_ID)).await.map(|m| m.id) }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "a request for the loading model waits for it"
    );
    release.send(()).unwrap();
    assert_eq!(load.join().unwrap().map(|m| m.id).unwrap(), GEMMA_ID);
    assert_eq!(waiting.await.unwrap().unwrap(), GEMMA_ID);
    assert_eq!(router.ids(), [common::SMOLLM2_ID, GEMMA_ID]);
}
