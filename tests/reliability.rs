//! Faults an always-on server meets: clients that send slowly or leave early, model files that
//! are broken, deleted or too big. Each must end in a clear answer, a freed slot and a server
//! that goes on serving. (Load: `scripts/load_test.py`; SIGTERM: `tests/cli.rs`; a full disk
//! during a download: `src/catalog/download/tests.rs`.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{self, chat, get, send, TestServer, SMOLLM2_ID};

/// Short enough that a test waits only seconds for the server to give up on a client.
const READ_TIMEOUT_SECS: u64 = 2;

fn server_with_read_timeout() -> TestServer {
    TestServer::start(common::settings(|raw| {
        raw.server.read_timeout_secs = Some(READ_TIMEOUT_SECS)
    }))
}

/// Reads what the server sends until it closes the connection (or a minute passes: a server
/// that never gives up fails the test instead of hanging it).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut got)).await;
    match read {
        Ok(Ok(_)) => got,
        // A reset is a close too.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Ok(Err(e)) => panic!("reading: {e}"),
        Err(_) => panic!(
            "the server still holds the connection after 60 s; it sent {:?}",
            String::from_utf8_lossy(&got)
        ),
    }
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

async fn assert_still_serving(server: &TestServer) {
    let (status, done) = send(
        server,
        reqwest::Method::POST,
        "/v1/chat/completions",
        chat("Hi", 3),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed_and_the_server_keeps_serving() {
    let server = server_with_read_timeout();
    // Slowloris: a request line and one header, then nothing.
    let mut slow = connect(&server).await;
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // A connection that never sends a byte, and one left open after a request (keep-alive).
    let mut silent = connect(&server).await;
    let mut kept = connect(&server).await;
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();

    let started = Instant::now();
    assert_eq!(
        read_until_closed(&mut slow).await,
        b"",
        "no request was served"
    );
    assert_eq!(read_until_closed(&mut silent).await, b"");
    let answer = String::from_utf8(read_until_closed(&mut kept).await).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains(r#"{"status":"ok"}"#),
        "{answer}"
    );
    // Not a timing assertion: the server must have waited for the client first.
    assert!(started.elapsed() >= Duration::from_secs(READ_TIMEOUT_SECS) / 2);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let server = TestServer::start(common::settings(|raw| raw.server.max_connections = Some(2)));
    // Two clients that connect and say nothing take both connections (the server would close
    // them only after the default 30 s read timeout).
    let first = connect(&server).await;
    let second = connect(&server).await;
    let client = reqwest::Client::new();
    let third = tokio::spawn(client.get(server.url("/health")).send());
    // Not a timing assertion: without the limit /health answers in milliseconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served past the limit"
    );
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(60), third)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 200);
    drop(second);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_client_past_its_share_of_connections_gets_429_and_others_are_served() {
    let server = TestServer::start(common::settings(|raw| {
        raw.server.max_connections_per_client = Some(2)
    }));
    // 127.0.0.1 holds its two connections, saying nothing.
    let first = connect(&server).await;
    let _second = connect(&server).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let (one, two) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let refused = one.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let err: Value = refused.json().await.unwrap();
    assert_eq!(err["error"]["code"], "too_many_connections", "{err}");
    // In Anthropic's shape on its API.
    let refused = one
        .post(server.url("/v1/messages"))
        .json(&json!({"model": SMOLLM2_ID, "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let err: Value = refused.json().await.unwrap();
    assert_eq!(
        (err["type"].as_str(), err["error"]["type"].as_str()),
        (Some("error"), Some("rate_limit_error")),
        "{err}"
    );
    // Another address is served meanwhile.
    let other = two.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(other.status(), 200);
    // Once one of 127.0.0.1's connections closes, it is served again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = one
            .get(server.url("/v1/models"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_body_that_arrives_too_slowly_is_a_408_in_openai_shape() {
    let server = server_with_read_timeout();
    let body = serde_json::to_vec(&chat("Hi", 3)).unwrap();
    let mut slow = connect(&server).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    // Half the body, then a byte a second: never idle as long as the timeout, but the whole
    // body would take far longer than it.
    slow.write_all(&body[..body.len() / 2]).await.unwrap();
    let (mut answer, mut sending) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for byte in &body[body.len() / 2..] {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if sending.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), answer.read_to_end(&mut got))
        .await
        .expect("answered within a minute")
        .ok();
    trickle.abort();
    let answer = String::from_utf8(got).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("did not arrive within 2s"),
        "the message says why: {message}"
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_client_leaving_mid_prefill_frees_its_slot() {
    // Small batches: a long prompt takes many steps to read, so the client leaves while it is
    // still being read, not after.
    let server = TestServer::start(common::settings(|raw| {
        raw.engine.parallel = Some(1);
        raw.engine.batch_size = Some(16);
        raw.engine.ubatch_size = Some(16);
    }));
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(250);
    let mut body = chat(&prompt, 2000);
    body["stream"] = json!(true);
    body["ignore_eos"] = json!(true);
    // Over a raw connection, so that leaving is a real close (a dropped reqwest future may
    // keep its pooled connection open).
    let body = serde_json::to_vec(&body).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut client = connect(&server).await;
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&body).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let reading = loop {
        let slots = server.slots().await;
        if slots[0]["state"] != "idle" {
            break slots[0].clone();
        }
        assert!(Instant::now() < deadline, "the request never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(client);
    assert_eq!(
        reading["n_generated"], 0,
        "still reading the prompt: {reading}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let slots = server.slots().await;
        if slots[0]["state"] == "idle" {
            assert_eq!(slots[0]["n_generated"], 0, "{slots:?}");
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {slots:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_still_serving(&server).await;
}

/// A folder with a link to SmolLM2 (served) and whatever broken files a test adds.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir =
            std::env::temp_dir().join(format!("paddock-faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::hard_link(common::smollm2(), dir.join(format!("{SMOLLM2_ID}.gguf")))
            .or_else(|_| {
                std::fs::copy(common::smollm2(), dir.join(format!("{SMOLLM2_ID}.gguf"))).map(|_| ())
            })
            .unwrap();
        Folder(dir)
    }

    fn model(&self) -> PathBuf {
        self.0.join(format!("{SMOLLM2_ID}.gguf"))
    }

    fn serve(&self) -> TestServer {
        let model = self.model();
        TestServer::start(common::settings(move |raw| raw.model.path = Some(model)))
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn load(server: &TestServer, body: Value) -> (u16, Value) {
    send(server, reqwest::Method::POST, "/api/models/load", body).await
}

async fn loaded_model(server: &TestServer) -> Value {
    get(server, "/api/status").await.1["model"]["id"].clone()
}

fn write_prefix(from: &Path, to: &Path, fraction: f64) {
    let bytes = std::fs::read(from).unwrap();
    std::fs::write(to, &bytes[..(bytes.len() as f64 * fraction) as usize]).unwrap();
}

#[tokio::test]
async fn truncated_and_corrupt_model_files_are_refused_and_the_served_model_stays() {
    let folder = Folder::new("broken");
    // Cut off halfway through the weights (an interrupted copy), and a header with a byte
    // flipped in the tensor count (a damaged file).
    write_prefix(&folder.model(), &folder.0.join("truncated.gguf"), 0.5);
    let mut damaged = std::fs::read(folder.model()).unwrap();
    damaged[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(folder.0.join("damaged.gguf"), damaged).unwrap();
    let server = folder.serve();

    let (_, models) = get(&server, "/api/models").await;
    let listed = models["models"].as_array().unwrap();
    for (id, why) in [
        ("truncated", "incomplete download?"),
        ("damaged", "the file is corrupt or hostile"),
    ] {
        let (status, error) = load(&server, json!({"model": id})).await;
        assert_eq!(status, 400, "{id}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{id} cannot be read: ")) && message.ends_with(why),
            "{message}"
        );
        assert_eq!(loaded_model(&server).await, SMOLLM2_ID, "{id}");
        // The library lists it, marked broken with the same reason.
        let entry = listed.iter().find(|m| m["id"] == id).expect(id);
        assert!(entry["error"].as_str().unwrap().ends_with(why), "{entry}");
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_model_deleted_while_loaded_serves_on_and_then_is_gone() {
    let folder = Folder::new("deleted");
    let server = folder.serve();
    std::fs::remove_file(folder.model()).unwrap();
    // The weights are mapped: the open file lives on until it is unloaded.
    assert_still_serving(&server).await;
    let (_, models) = get(&server, "/api/models").await;
    let listed = models["models"].as_array().unwrap();
    assert!(listed.iter().all(|m| m["id"] != SMOLLM2_ID), "{models}");
    send(
        &server,
        reqwest::Method::POST,
        "/api/models/unload",
        json!({}),
    )
    .await;
    let (status, error) = load(&server, json!({"model": SMOLLM2_ID})).await;
    assert_eq!(status, 404, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(SMOLLM2_ID),
        "{error}"
    );
}

#[tokio::test]
async fn a_model_that_does_not_fit_is_refused_before_loading() {
    let server = TestServer::start(common::settings(|_| {}));
    let (_, before) = get(&server, "/api/status").await;
    // SmolLM2's cache takes ~23 KB a token: 4M tokens is ~90 GB, more than CI machines have.
    let (status, error) = load(
        &server,
        json!({"model": SMOLLM2_ID, "ctx_size": 4 * 1024 * 1024}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "model_does_not_fit", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("GiB short"), "{message}");
    let (_, after) = get(&server, "/api/status").await;
    // The same load, settings and memory; only the seconds since its last use have moved on.
    let untouched = |status: &Value| {
        let mut model = status["model"].clone();
        model["idle_secs"] = Value::Null;
        model
    };
    assert_eq!(
        untouched(&after),
        untouched(&before),
        "the served model is untouched"
    );
    assert_still_serving(&server).await;
}
