use serde_json::{json, Value};

use crate::common::{self, chat, sse_events, TestServer, SMOLLM2_ID};

async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(server.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn server() -> TestServer {
    TestServer::start(common::settings(|_| {}))
}

#[tokio::test]
async fn chat_completion_has_openai_shape_and_is_deterministic_at_temperature_0() {
    let server = server();
    let (status, a) = post(&server, "/v1/chat/completions", &chat("What is 2+2?", 16)).await;
    assert_eq!(status, 200, "{a}");
    let (_, b) = post(&server, "/v1/chat/completions", &chat("What is 2+2?", 16)).await;
    assert_eq!(a["object"], "chat.completion");
    assert!(a["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(a["model"], SMOLLM2_ID);
    let choice = &a["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let text = choice["message"]["content"].as_str().unwrap();
    assert!(!text.trim().is_empty());
    assert_eq!(
        text,
        b["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let usage = &a["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    // The second identical request reuses all but the last prompt token.
    assert_eq!(
        b["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
        b["usage"]["prompt_tokens"].as_u64().unwrap() - 1
    );
}

#[tokio::test]
async fn max_tokens_ends_with_length_and_stop_strings_end_with_stop() {
    let server = server();
    let (_, full) = post(
        &server,
        "/v1/chat/completions",
        &chat("Write a sentence about cats.", 24),
    )
    .await;
    let text = full["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, short) = post(
        &server,
        "/v1/chat/completions",
        &chat("Write a sentence about cats.", 5),
    )
    .await;
    assert_eq!(short["choices"][0]["finish_reason"], "length");
    assert_eq!(short["usage"]["completion_tokens"], 5);

    // Stop at the second word of the greedy answer: the text must end right before it.
    let word = text
        .split_whitespace()
        .nth(1)
        .expect("answer has two words")
        .to_string();
    let at = text.find(&word).unwrap();
    let mut body = chat("Write a sentence about cats.", 24);
    body["stop"] = json!([word, "never-appears"]);
    let (_, stopped) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        stopped["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
        &text[..at]
    );
}

#[tokio::test]
async fn streaming_follows_openai_framing_exactly() {
    let server = server();
    let (_, plain) = post(&server, "/v1/chat/completions", &chat("Say hello.", 12)).await;
    let mut body = chat("Say hello.", 12);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let raw = resp.text().await.unwrap();
    // Every event is exactly `data: <payload>\n\n` (keep-alive comments aside), ending in [DONE].
    assert!(raw.ends_with("data: [DONE]\n\n"), "{raw}");
    let events: Vec<&str> = raw
        .split("\n\n")
        .filter(|e| !e.is_empty() && !e.starts_with(':'))
        .collect();
    assert!(events
        .iter()
        .all(|e| e.starts_with("data: ") && !e.contains('\n')));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e["data: ".len()..]).unwrap())
        .collect();
    let id = &chunks[0]["id"];
    assert!(chunks
        .iter()
        .all(|c| &c["id"] == id && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    for field in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(
            usage_chunk["usage"][field], plain["usage"][field],
            "{field}"
        );
    }
    let (last, deltas) = rest.split_last().unwrap();
    assert_eq!(
        last["choices"][0]["finish_reason"],
        plain["choices"][0]["finish_reason"]
    );
    assert!(deltas
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null() && c["usage"].is_null()));
    let streamed: String = deltas
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        streamed,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
}

#[tokio::test]
async fn text_completions_accept_text_and_token_prompts() {
    let server = server();
    let body = json!({"model": SMOLLM2_ID, "prompt": "The capital of France is", "max_tokens": 6, "temperature": 0});
    let (status, text) = post(&server, "/v1/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text["object"], "text_completion");
    let out = text["choices"][0]["text"].as_str().unwrap();
    assert!(!out.is_empty());
    assert_eq!(text["usage"]["completion_tokens"], 6);

    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let resp = reqwest::Client::new()
        .post(server.url("/v1/completions"))
        .json(&stream)
        .send()
        .await
        .unwrap();
    let events = sse_events(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let streamed: String = events[..events.len() - 1]
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(streamed, out);

    let (status, _) = post(
        &server,
        "/v1/completions",
        &json!({"prompt": [1, 504, 3458], "max_tokens": 2}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn chat_logprobs_have_openai_shape() {
    let server = server();
    let mut body = chat("Hi", 4);
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(2);
    let (status, resp) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{resp}");
    let content = resp["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(content.len(), 4);
    for entry in content {
        assert!(entry["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(entry["top_logprobs"].as_array().unwrap().len(), 2);
        assert_eq!(entry["token"], entry["top_logprobs"][0]["token"]);
    }
}

#[tokio::test]
async fn models_are_listed_in_openai_format() {
    let server = server();
    let list: Value = reqwest::get(server.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], SMOLLM2_ID);
    assert_eq!(list["data"][0]["object"], "model");
    assert_eq!(list["data"][0]["meta"]["n_ctx"], 4096);
    assert_eq!(list["data"][0]["loaded"], true);
    let health: Value = reqwest::get(server.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let server = server();
    let client = reqwest::Client::new();
    let raw = |body: &'static str| {
        client
            .post(server.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let resp = raw("{\"messages\": [").await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("JSON"));

    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}),
            400,
            "temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}),
            400,
            "max_tokens",
        ),
        (
            json!({"messages": [{"role": "wizard", "content": "hi"}]}),
            400,
            "messages[0].role",
        ),
        (json!({"messages": []}), 400, "messages"),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "n": 2}),
            400,
            "n",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "top_p": 7}),
            400,
            "top_p",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"99999999": 5}}),
            400,
            "logit_bias",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            400,
            "messages[0].content[0]",
        ),
        (
            json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}),
            404,
            "model",
        ),
    ];
    for (body, status, param) in cases {
        let (got, err) = post(&server, "/v1/chat/completions", &body).await;
        assert_eq!(got, status, "{body} -> {err}");
        assert_eq!(err["error"]["param"], param, "{body} -> {err}");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    let (got, err) = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );

    let resp = client
        .get(server.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());

    // Still serving after all that.
    let (status, _) = post(&server, "/v1/chat/completions", &chat("Hi", 2)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_prompt_over_the_context_is_a_400_with_the_numbers() {
    let server = TestServer::start(common::settings(|raw| raw.engine.ctx_size = Some(512)));
    let long = "word ".repeat(1000);
    let (status, err) = post(&server, "/v1/chat/completions", &chat(&long, 4)).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "exceed_context_size_error");
    assert_eq!(err["error"]["n_ctx"], 512);
    assert!(err["error"]["n_prompt_tokens"].as_u64().unwrap() > 512);
}

#[tokio::test]
async fn the_api_key_guards_everything_but_health() {
    let server = TestServer::start(common::settings(|raw| {
        raw.server.api_key = Some("s3cret".into())
    }));
    let client = reqwest::Client::new();
    let resp = client.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_api_key");
    let wrong = client
        .get(server.url("/v1/models"))
        .bearer_auth("s3cre")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bearer = client
        .get(server.url("/v1/models"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let x_key = client
        .get(server.url("/v1/models"))
        .header("x-api-key", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(x_key.status(), 200);
    assert_eq!(
        client
            .get(server.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_foreign_host_header_is_refused_on_loopback() {
    let server = server();
    let resp = reqwest::Client::new()
        .get(server.url("/v1/models"))
        .header("host", "attacker.example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn other_sites_pages_are_refused_unless_listed_in_cors_origins() {
    let server = TestServer::start(common::settings(|raw| {
        raw.server.cors_origins = Some(vec!["http://app.example".into()])
    }));
    let client = reqwest::Client::new();
    let post = |origin: &str, content_type: &str| {
        client
            .post(server.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("content-type", content_type)
            .body(chat("Hi", 2).to_string())
            .send()
    };
    // A page of any other site: a simple (preflight-free) text/plain post, or JSON.
    for content_type in ["text/plain", "application/json"] {
        let refused = post("http://evil.example", content_type).await.unwrap();
        assert_eq!(refused.status(), 403);
        assert!(refused
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        let body: Value = refused.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("http://evil.example") && message.contains("cors_origins"),
            "{message}"
        );
    }
    // The listed site: its preflight, then the request, both with CORS headers.
    let preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/v1/chat/completions"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://app.example");
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let allowed = post("http://app.example", "application/json")
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(allowed.headers()["vary"], "Origin");
    let done: Value = allowed.json().await.unwrap();
    assert_eq!(done["usage"]["completion_tokens"], 2);
    // Never the admin API, listed or not.
    let admin = client
        .get(server.url("/api/status"))
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 403);
    // Clients that are not browsers send no Origin and are served as before.
    let sdk = client
        .post(server.url("/v1/chat/completions"))
        .json(&chat("Hi", 2))
        .send()
        .await
        .unwrap();
    assert_eq!(sdk.status(), 200);
    assert!(sdk.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_client_leaving_mid_stream_frees_its_slot() {
    let server = TestServer::start(common::settings(|raw| raw.engine.parallel = Some(1)));
    let mut body = chat("Count to ten thousand.", 3000);
    body["stream"] = json!(true);
    body["ignore_eos"] = json!(true);
    let mut resp = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        resp.chunk().await.unwrap().expect("stream has started");
    }
    drop(resp);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let slots = server.slots().await;
        if slots[0]["state"] == "idle" {
            assert!(slots[0]["n_cached"].as_u64().unwrap() < 1000, "{slots:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slot never freed: {slots:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, done) = post(&server, "/v1/chat/completions", &chat("Hi", 3)).await;
    assert_eq!(status, 200);
    assert_eq!(done["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn a_model_without_a_chat_template_gets_the_chatml_fallback() {
    let mut settings = common::settings(|_| {});
    settings.engine.model_path = common::gemma3();
    settings.model_path = common::gemma3();
    let server = TestServer::start(settings);
    let body = json!({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "temperature": 0});
    let (status, resp) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["model"], "gemma-3-270m-q4_k_m");
    // <bos> + "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n" as Gemma tokenizes it.
    assert!(resp["usage"]["prompt_tokens"].as_u64().unwrap() > 5);
}

#[tokio::test]
async fn a_wrong_method_gets_an_openai_error() {
    let server = server();
    let resp = reqwest::Client::new()
        .get(server.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());
}

#[tokio::test]
async fn the_admin_api_lists_the_library_with_budgets() {
    let server = server();
    let body: serde_json::Value = reqwest::get(server.url("/api/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["loaded"], json!([common::SMOLLM2_ID]));
    assert_eq!(body["settings"]["n_ctx"], 4096);
    assert!(body["machine"]["total_memory"].as_u64().unwrap() > 0);
    let smol = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == common::SMOLLM2_ID)
        .expect("the served model's folder is in the library");
    // The serving settings' KV cache, as llama.cpp allocates it (90.00 MiB).
    assert_eq!(smol["budget"]["kv_cache"], 94_371_840u64);
    assert_eq!(
        smol["facts"]["chat_template"]
            .as_str()
            .map(|t| t.contains("im_start")),
        Some(true)
    );
}

#[tokio::test]
async fn requests_without_sampling_get_the_configured_defaults() {
    // Agents send no temperature: the model's settings decide. Here the model's own table
    // makes it greedy, over a hotter [engine] default.
    let server = TestServer::start(common::settings(|raw| {
        raw.engine.temp = Some(1.5);
        let own = raw.models.entry(SMOLLM2_ID.into()).or_default();
        own.engine.temp = Some(0.0);
        own.engine.top_k = Some(7);
    }));
    let props = reqwest::get(server.url("/props")).await.unwrap();
    let props: Value = props.json().await.unwrap();
    let params = &props["default_generation_settings"]["params"];
    assert_eq!(
        (&params["temperature"], &params["top_k"]),
        (&json!(0.0), &json!(7)),
        "{props}"
    );
    let ask = |temperature: Option<f64>| {
        let mut body = json!({"model": SMOLLM2_ID, "max_tokens": 48,
            "messages": [{"role": "user", "content": "Tell me a story about a fox."}]});
        if let Some(t) = temperature {
            body["temperature"] = json!(t);
        }
        body
    };
    let text = |v: &Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (_, greedy) = post(&server, "/v1/chat/completions", &ask(Some(0.0))).await;
    for _ in 0..2 {
        let (status, left_out) = post(&server, "/v1/chat/completions", &ask(None)).await;
        assert_eq!(status, 200, "{left_out}");
        assert_eq!(text(&left_out), text(&greedy));
    }
}

#[test]
fn sampling_settings_out_of_range_are_refused_by_name() {
    for (set, says) in [
        (json!({"temp": -1.0}), "temp"),
        (json!({"top_p": 0.0}), "top-p"),
        (json!({"min_p": 1.5}), "min-p"),
        (json!({"top_k": -2}), "top-k"),
    ] {
        let engine: paddock::config::RawEngine = serde_json::from_value(set.clone()).unwrap();
        let mut raw = paddock::config::RawSettings::default();
        raw.model.path = Some(common::smollm2());
        raw.engine = engine;
        let err = paddock::config::Settings::resolve(raw)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{set}: {err}");
    }
}
