use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1";
const GEMMA: &str = "gemma-3-270m-q4_k_m";

/// A `paddock worker` on a free loopback port, killed when dropped.
struct Worker {
    child: Child,
    endpoint: String,
}

impl Worker {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["worker", "--port", &port.to_string(), "-t", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("paddock binary runs");
        let endpoint = format!("127.0.0.1:{port}");
        // A connection that sends nothing is served and closed at once.
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(&endpoint).is_err() {
            assert!(
                Instant::now() < deadline,
                "worker on {endpoint} never listened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, endpoint }
    }

    /// Resident memory, as the OS counts it: the weights it was sent live here.
    fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in /proc status");
        kib * 1024
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("paddock-rpc-{name}-{}.log", std::process::id()))
}

async fn greedy_answer(url: &str) -> String {
    greedy_answer_of(url, None).await
}

/// A short greedy answer from `model` (the only one loaded, with `None`).
async fn greedy_answer_of(url: &str, model: Option<&str>) -> String {
    let mut body = json!({
        "messages": [{"role": "user", "content": "Name three rivers in Europe."}],
        "max_tokens": 48, "temperature": 0,
    });
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    let (code, resp) = common::send_to(
        format!("{url}/v1/chat/completions"),
        reqwest::Method::POST,
        body,
    )
    .await;
    assert_eq!(code, 200, "{resp}");
    resp["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no answer: {resp}"))
        .to_string()
}

/// Whether an interface other than loopback is up and multicast-capable (Linux flags
/// `IFF_UP` and `IFF_MULTICAST`), as mDNS needs.
fn has_multicast() -> bool {
    let Ok(interfaces) = std::fs::read_dir("/sys/class/net") else {
        return false;
    };
    interfaces.flatten().any(|i| {
        let flags = std::fs::read_to_string(i.path().join("flags")).unwrap_or_default();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        i.file_name() != "lo" && flags & 0x1 != 0 && flags & 0x1000 != 0
    })
}

/// The (L2-normalised) embedding of one sentence.
async fn embedding(url: &str) -> Vec<f64> {
    let (code, resp) = common::send_to(
        format!("{url}/v1/embeddings"),
        reqwest::Method::POST,
        json!({"input": "Rivers run to the sea."}),
    )
    .await;
    assert_eq!(code, 200, "{resp}");
    resp["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

async fn status(url: &str) -> Value {
    let (code, status) = common::send_to(
        format!("{url}/api/status"),
        reqwest::Method::GET,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{status}");
    status
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The model's layers and KV cache go to the two workers (each holds tens of MiB more than
/// before), from a process of the server's own; its budget pools their memory, and greedy
/// output is the same as serving alone.
#[tokio::test]
async fn a_model_spread_over_two_workers_answers_as_it_does_alone() {
    let (alone, url) = common::serve_process(&[], Stdio::null());
    let expected = greedy_answer(&url).await;
    let expected_embedding = embedding(&url).await;
    stop(alone);

    let workers = [Worker::start(), Worker::start()];
    let before: Vec<u64> = workers.iter().map(Worker::resident_bytes).collect();
    let rpc = format!("{},{}", workers[0].endpoint, workers[1].endpoint);
    let log = log_file("spread");
    let (server, url) =
        common::serve_process(&["--rpc", &rpc], std::fs::File::create(&log).unwrap());
    assert_eq!(greedy_answer(&url).await, expected);
    // Embeddings and slot reports go through the model's own process too.
    let spread_embedding = embedding(&url).await;
    let cosine: f64 = spread_embedding
        .iter()
        .zip(&expected_embedding)
        .map(|(a, b)| a * b)
        .sum();
    assert!(cosine > 0.999, "cosine {cosine}");
    let (code, slots) =
        common::send_to(format!("{url}/slots"), reqwest::Method::GET, Value::Null).await;
    assert_eq!(code, 200, "{slots}");
    assert_eq!(slots.as_array().unwrap().len(), 2, "{slots}");
    // A client that goes away mid-stream frees its slot in the model's process: 4000 tokens
    // would take a minute here, the cancel a moment.
    let mut stream = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({
            "messages": [{"role": "user", "content": "Count to a thousand."}],
            "max_tokens": 4000, "temperature": 0, "ignore_eos": true, "stream": true,
        }))
        .send()
        .await
        .unwrap();
    stream.chunk().await.unwrap().expect("the stream started");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, slots) =
            common::send_to(format!("{url}/slots"), reqwest::Method::GET, Value::Null).await;
        if slots
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "idle")
        {
            break;
        }
        assert!(Instant::now() < deadline, "still generating: {slots}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let status = status(&url).await;
    let devices = status["memory"]["workers"]["devices"].as_array().unwrap();
    let endpoints: Vec<&str> = devices
        .iter()
        .map(|d| d["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints, [&workers[0].endpoint, &workers[1].endpoint]);
    let free: u64 = devices
        .iter()
        .map(|d| d["memory_free"].as_u64().unwrap())
        .sum();
    assert!(free > 0, "{devices:?}");
    assert_eq!(status["memory"]["workers"]["missing"], json!([]));
    // The server's own process has no GPU here; the model's budget counts the workers'.
    assert_eq!(status["memory"]["machine"]["gpu_memory"], Value::Null);
    let model = &status["models"][0];
    assert_eq!(
        model["workers"],
        json!([&workers[0].endpoint, &workers[1].endpoint])
    );
    // Offloaded layers count on the workers' side; this machine has no GPU to take them.
    assert!(
        model["predicted"]["weights_gpu"].as_u64().unwrap() > 0,
        "{model}"
    );
    // Each worker's predicted part, by its free memory, adds up to the model's GPU side.
    let (_, listed) = common::send_to(
        format!("{url}/api/workers"),
        reqwest::Method::GET,
        Value::Null,
    )
    .await;
    let parts: Vec<u64> = listed["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["predicted"].as_u64().unwrap())
        .collect();
    assert!(parts.iter().all(|&p| p > 0), "{listed}");
    let on_gpu = model["predicted"]["on_gpu"].as_u64().unwrap();
    assert!(
        on_gpu.abs_diff(parts.iter().sum()) <= 2,
        "{parts:?} vs {on_gpu}"
    );
    for (worker, before) in workers.iter().zip(before) {
        let grew = worker.resident_bytes().saturating_sub(before);
        // SmolLM2 Q4_1 is 92 MB, split in two by free memory, plus each half's KV cache.
        assert!(
            grew > 20 << 20,
            "worker {} grew by only {} KiB",
            worker.endpoint,
            grew >> 10
        );
    }
    stop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log.matches("RPC device added").count(), 2, "{log}");
    assert!(
        log.contains("model loaded in a process of its own"),
        "{log}"
    );
}

/// A worker killed mid-generation: the open stream ends with an error chunk that says why,
/// the server goes on serving the model loaded beside it, and the next request for the
/// spread model loads it again on the worker that is left.
#[tokio::test]
async fn a_lost_worker_fails_its_model_s_requests_and_the_server_keeps_serving() {
    let mut workers = vec![Worker::start(), Worker::start()];
    let rpc = format!("{},{}", workers[0].endpoint, workers[1].endpoint);
    let log = log_file("lost");
    let (mut server, url) =
        common::serve_process(&["--rpc", &rpc], std::fs::File::create(&log).unwrap());
    let (code, loaded) = common::send_to(
        format!("{url}/api/models/load"),
        reqwest::Method::POST,
        json!({"model": GEMMA}),
    )
    .await;
    assert_eq!(code, 200, "{loaded}");
    let beside = greedy_answer_of(&url, Some(GEMMA)).await;

    let body = json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": "Count to a thousand."}],
        "max_tokens": 4000, "temperature": 0, "ignore_eos": true, "stream": true,
    });
    let mut stream = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    stream.chunk().await.unwrap().expect("the stream started");
    let lost = workers.pop().unwrap();
    let lost_endpoint = lost.endpoint.clone();
    drop(lost); // SIGKILL

    let mut text = String::new();
    while let Ok(Some(chunk)) = stream.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let error = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|chunk| chunk.get("error").is_some())
        .unwrap_or_else(|| panic!("no error chunk in the stream:\n{text}"));
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the model stopped") && message.contains("llama.cpp aborted"),
        "{message}"
    );
    assert!(server.try_wait().unwrap().is_none(), "the server died");

    // The model beside it answers as before; the lost one is no longer listed.
    assert_eq!(greedy_answer_of(&url, Some(GEMMA)).await, beside);
    let ids: Vec<Value> = status(&url).await["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, [json!(GEMMA)]);

    // Asked for again, it loads on the worker that is left.
    assert!(!greedy_answer_of(&url, Some(SMOL)).await.is_empty());
    stop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("a model host stopped"), "{log}");
    let reload = log.rsplit("llama.cpp aborted").next().unwrap();
    assert!(
        reload.contains(&lost_endpoint) && reload.contains("cannot connect"),
        "the reload did not leave the lost worker out:\n{reload}"
    );
}

/// A worker lent to the LAN is advertised over mDNS; the server's `/api/workers` lists it with
/// its memory, and saving it as the model's worker spreads the model over it at the next load.
#[tokio::test]
async fn a_worker_found_on_the_network_can_be_picked_for_the_model() {
    if !has_multicast() {
        eprintln!("SKIPPED: no network interface here is up with multicast; mDNS cannot work");
        return;
    }
    // A port of this test's own, so nothing else on the network hears it.
    let mdns_port = UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let env = [("PADDOCK_MDNS_PORT", mdns_port.as_str())];
    let port = TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .envs(env)
        .args(["worker", "--lan", "--host", "0.0.0.0", "-t", "1"])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let config = log_file("picked").with_extension("toml");
    let _ = std::fs::remove_file(&config);
    let (server, url) =
        common::serve_process_env(&["--config", config.to_str().unwrap()], Stdio::null(), &env);
    let alone = greedy_answer(&url).await;

    let workers_now = || async {
        let (code, workers) = common::send_to(
            format!("{url}/api/workers"),
            reqwest::Method::GET,
            Value::Null,
        )
        .await;
        assert_eq!(code, 200, "{workers}");
        workers
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let workers = workers_now().await;
        let mine = workers["found"].as_array().unwrap().iter().find(|w| {
            w["endpoint"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{port}"))
        });
        if let Some(found) = mine {
            break found.clone();
        }
        assert!(Instant::now() < deadline, "never found: {workers}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(found["memory_free"].as_u64().unwrap() > 0, "{found}");
    assert!(!found["name"].as_str().unwrap().is_empty(), "{found}");
    assert_eq!(found["in_use"], json!(false));
    let endpoint = found["endpoint"].as_str().unwrap().to_string();

    let (code, saved) = common::send_to(
        format!("{url}/api/settings"),
        reqwest::Method::PUT,
        json!({"rpc": [&endpoint]}),
    )
    .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["settings"]["rpc"], json!([&endpoint]));
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains(&endpoint));
    let (code, loaded) = common::send_to(
        format!("{url}/api/models/load"),
        reqwest::Method::POST,
        json!({"model": SMOL}),
    )
    .await;
    assert_eq!(code, 200, "{loaded}");
    let status = status(&url).await;
    assert_eq!(
        status["models"][0]["workers"],
        json!([&endpoint]),
        "{status}"
    );
    assert_eq!(greedy_answer(&url).await, alone);
    let workers = workers_now().await;
    let listed = workers["found"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["endpoint"] == json!(endpoint));
    assert_eq!(listed.unwrap()["in_use"], json!(true), "{workers}");
    assert_eq!(
        workers["devices"][0]["endpoint"],
        json!(endpoint),
        "{workers}"
    );
    stop(server);
    let _ = worker.kill();
    let _ = worker.wait();
}

/// The app's toggle: `PUT /api/lend` runs a worker in a child process, which answers the RPC
/// greeting until it is turned off or the server stops; a taken port is a clear error.
#[tokio::test]
async fn the_server_lends_this_machine_until_told_to_stop() {
    let (server, url) = common::serve_process(&[], Stdio::null());
    let lend = |body: Value| {
        let url = url.clone();
        async move { common::send_to(format!("{url}/api/lend"), reqwest::Method::PUT, body).await }
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, lending) = lend(json!({"on": true, "port": port})).await;
    assert_eq!(code, 200, "{lending}");
    let endpoint = format!("127.0.0.1:{port}");
    assert_eq!(
        lending,
        json!({"on": true, "endpoint": endpoint, "lan": false, "cache": false})
    );
    let version = paddock::engine::rpc::greet(&endpoint).unwrap();
    assert!(version.starts_with("7."), "{version}");

    let (code, off) = lend(json!({"on": false})).await;
    assert_eq!(code, 200, "{off}");
    assert_eq!(off, json!({"on": false}));
    let err = paddock::engine::rpc::greet(&endpoint)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot connect"), "{err}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let (code, refused) = lend(json!({"on": true, "port": busy})).await;
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in use"),
        "{refused}"
    );
    let (code, bad) = lend(json!({"on": "yes"})).await;
    assert_eq!(code, 400, "{bad}");

    // A worker lent by a server that stops stops too.
    let (code, _) = lend(json!({"on": true, "port": port})).await;
    assert_eq!(code, 200);
    stop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while paddock::engine::rpc::greet(&endpoint).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the lent worker outlived the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The RPC protocol has no authentication: a worker listens beyond loopback only when told
/// to, and then warns.
#[test]
fn a_worker_listens_beyond_loopback_only_with_lan() {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["worker", "--host", "0.0.0.0", "--port", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no authentication") && err.contains("--lan"),
        "{err}"
    );

    // With --lan it starts, warns, and serves a greeting.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args([
            "worker",
            "--lan",
            "--host",
            "0.0.0.0",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let warning = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("WARN"))
        .expect("a warning");
    assert!(warning.contains("trusted network"), "{warning}");
    let endpoint = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let version = loop {
        match paddock::engine::rpc::greet(&endpoint) {
            Ok(version) => break version,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(version.starts_with("7."), "{version}");
    let _ = child.kill();
    let _ = child.wait();
}
