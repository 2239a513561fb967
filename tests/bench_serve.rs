use std::time::{Duration, Instant};

use paddock::bench::serve::{self, ServeBenchConfig, ServeBenchError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{self, TestServer, SMOLLM2_ID};

/// Tiny settings: a few seconds on 2 cores.
fn tiny(url: &str) -> ServeBenchConfig {
    ServeBenchConfig {
        url: url.to_string(),
        clients: vec![1, 2],
        max_tokens: 8,
        prompt_tokens: 64,
        rounds: 1,
        agent_turns: 2,
        agent_turn_tokens: 32,
        agent_reply_tokens: 8,
        request_timeout: Duration::from_secs(120),
        ..ServeBenchConfig::default()
    }
}

#[tokio::test]
async fn serving_bench_measures_streams_and_the_agent_loop_of_a_real_server() {
    let server = TestServer::start(common::settings(|raw| raw.engine.parallel = Some(2)));
    let cfg = tiny(&server.url);
    let mut calls = Vec::new();
    let report = serve::run(&cfg, |done, total| calls.push((done, total)))
        .await
        .expect("the serving bench runs");

    assert_eq!(report.model, SMOLLM2_ID);
    assert_eq!(report.server_n_parallel, Some(2));
    // Warm-up, 1 + 2 sweep streams, 2 warm + 2 cold agent turns; every step reported once.
    let total = 1 + 3 + 4;
    assert_eq!(calls, (1..=total).map(|d| (d, total)).collect::<Vec<_>>());

    let clients: Vec<u32> = report.concurrency.iter().map(|r| r.clients).collect();
    assert_eq!(clients, [1, 2]);
    for row in &report.concurrency {
        assert_eq!((row.requests, row.errors), (row.clients, 0), "{row:?}");
        // ignore_eos: exactly max_tokens from every stream, counted from usage.
        assert!(
            row.samples.iter().all(|s| s.completion_tokens == 8),
            "{row:?}"
        );
        assert_eq!(row.completion_tokens, 8 * u64::from(row.clients));
        // Prompts come out near the asked length (the warm-up calibrates the filler).
        assert!(
            (32.0..128.0).contains(&row.prompt_tokens),
            "{}",
            row.prompt_tokens
        );
        // Each stream has its own nonce: nothing beyond the template's first tokens is shared.
        assert!(row
            .samples
            .iter()
            .all(|s| s.cached_tokens.unwrap() < s.prompt_tokens.unwrap() / 4));
        assert!(row.ttft_ms.mean > 0.0 && row.ttft_ms.p95 >= row.ttft_ms.p50);
        assert!(row.itl_ms.mean > 0.0, "{row:?}");
        assert!(row.stream_tps.is_finite() && row.stream_tps > 0.0);
        assert!(row.aggregate_tps.is_finite() && row.aggregate_tps > 0.0);
    }

    // Paddock reports cached_tokens: the warm turn reuses the conversation, the cold one does not.
    assert!(report.cached_tokens_reported);
    let [first, second] = report.agent.as_slice() else {
        panic!("two agent turns: {:?}", report.agent);
    };
    assert_eq!((first.turn, second.turn), (1, 2));
    assert!(second.prompt_tokens > first.prompt_tokens, "{report:?}");
    let warm_cached = second.cached_tokens.unwrap();
    assert!(
        warm_cached > 0.0 && warm_cached < second.prompt_tokens,
        "{second:?}"
    );
    assert!(second.cold_cached_tokens.unwrap() < warm_cached / 4.0);
    // Same messages behind another nonce: the cold prompt is as long, give or take the nonce.
    assert!((second.cold_prompt_tokens - second.prompt_tokens).abs() <= 8.0);
    for turn in &report.agent {
        assert!(turn.ttft_warm_ms > 0.0 && turn.ttft_cold_ms > 0.0);
        assert!(turn.warm_over_cold.is_finite());
    }

    let md = serve::markdown(&report);
    assert!(
        md.contains("| 1 | 1 | 0 |") && md.contains("| 2 | 2 | 0 |"),
        "{md}"
    );
    assert!(md.contains("Agent loop") && md.contains("| 2 |"), "{md}");
    assert_eq!(serve::csv(&report).lines().count(), 1 + 2 + 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["concurrency"][1]["samples"].as_array().unwrap().len(),
        2
    );
    assert!(json["agent"][1]["cached_tokens"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_mode_serves_the_model_and_stops_it_afterwards() {
    let cfg = ServeBenchConfig {
        clients: vec![1],
        agent_turns: 0,
        ..tiny("http://unused")
    };
    let report = serve::run_in_process(common::settings(|_| {}), &cfg, |_, _| {})
        .await
        .expect("bench of an in-process Paddock");
    assert_eq!(report.model, SMOLLM2_ID);
    assert!(report.url.starts_with("http://127.0.0.1:"));
    assert_eq!(report.concurrency[0].completion_tokens, 8);
    assert!(report.agent.is_empty());
    // Stopped: the port no longer answers.
    let addr = report.url.trim_start_matches("http://");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_closed_port_fails_fast_with_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let err = serve::run(&tiny(&url), |_, _| {}).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(err, ServeBenchError::Unreachable { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot reach {url}/v1/models")),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_model_is_the_servers_http_error() {
    let server = TestServer::start(common::settings(|_| {}));
    let cfg = ServeBenchConfig {
        model: Some("no-such-model".into()),
        ..tiny(&server.url)
    };
    let err = serve::run(&cfg, |_, _| {}).await.unwrap_err();
    let ServeBenchError::Http { status, body, .. } = &err else {
        panic!("{err:?}");
    };
    assert!((400..500).contains(status), "{err}");
    assert!(body.contains("no-such-model"), "{err}");
}

/// How the fake server answers chat completions.
#[derive(Clone, Copy)]
enum Chat {
    /// These raw HTTP bytes, then close.
    Answer(&'static str),
    /// Nothing at all, connection kept open.
    Silent,
    /// These bytes, then nothing more, connection kept open.
    Stall(&'static str),
}

/// A fake server: `GET /v1/models` lists one model, chat completions answer as `chat` says.
async fn fake_server(chat: Chat) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The whole request: headers, then the body they announce.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let answer = if request.starts_with(b"GET /v1/models") {
                    let body = r#"{"object":"list","data":[{"id":"fake"}]}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    match chat {
                        Chat::Answer(raw) => raw.to_string(),
                        Chat::Silent => std::future::pending().await,
                        Chat::Stall(raw) => {
                            let _ = socket.write_all(raw.as_bytes()).await;
                            std::future::pending().await
                        }
                    }
                };
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn malformed_streams_and_silent_servers_are_errors_not_hangs() {
    let garbage = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
                   data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: not json\n\n";
    let err = serve::run(&tiny(&fake_server(Chat::Answer(garbage)).await), |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ServeBenchError::Stream { .. }), "{err:?}");
    assert!(err.to_string().contains("not JSON"), "{err}");

    let unfinished =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    let err = serve::run(
        &tiny(&fake_server(Chat::Answer(unfinished)).await),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("[DONE]"), "{err}");

    // A server that never answers, or stops mid-stream: the request timeout ends the wait.
    let stalled = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
                   data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    for chat in [Chat::Silent, Chat::Stall(stalled)] {
        let cfg = ServeBenchConfig {
            request_timeout: Duration::from_secs(1),
            ..tiny(&fake_server(chat).await)
        };
        let started = Instant::now();
        let err = serve::run(&cfg, |_, _| {}).await.unwrap_err();
        assert!(matches!(err, ServeBenchError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
