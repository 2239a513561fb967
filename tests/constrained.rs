use paddock::engine::{EngineError, Grammar};
use serde_json::{json, Value};

use crate::common::{self, post, TestServer};
use crate::engine::{chatml, engine, greedy, wait};

fn grammar(gbnf: &str) -> Option<Grammar> {
    Some(Grammar {
        gbnf: gbnf.into(),
        triggers: Vec::new(),
    })
}

#[test]
fn a_grammar_decides_the_shape_of_the_answer() {
    let engine = engine(1, 1024, |_| {});
    let mut req = greedy(&engine, &chatml("Is the sky green?"), 32);
    req.sampling.grammar = grammar(r#"root ::= ("yes" | "no") "." "#);
    let (text, done) = wait(engine.submit(req).unwrap());
    assert!(text == "yes." || text == "no.", "{text:?}");
    // The grammar ends after the period: only end-of-generation may follow.
    assert_eq!(done.finish_reason, paddock::engine::FinishReason::Stop);

    // A JSON schema through llama.cpp's converter.
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false});
    let mut req = greedy(&engine, &chatml("Give me a number as JSON."), 48);
    req.sampling.grammar = grammar(&paddock::engine::schema_grammar(&schema).unwrap());
    let (text, _) = wait(engine.submit(req).unwrap());
    let value: Value = serde_json::from_str(&text).expect("output is JSON");
    assert!(
        value["n"].is_i64() && value.as_object().unwrap().len() == 1,
        "{text}"
    );
}

#[test]
fn a_grammar_llama_cpp_cannot_parse_is_refused_and_the_engine_keeps_serving() {
    let engine = engine(1, 1024, |_| {});
    // The last one would overflow llama.cpp's recursive parser if it got there.
    let deep = format!(
        "root ::= {}\"a\"{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    for bad in [
        "root ::= undefined-rule",
        "root ::= root \"a\"",
        "not a grammar",
        "",
        &deep,
    ] {
        let mut req = greedy(&engine, &chatml("Hi"), 4);
        req.sampling.grammar = grammar(bad);
        assert!(
            matches!(
                engine.submit(req),
                Err(EngineError::InvalidRequest {
                    param: "grammar",
                    ..
                })
            ),
            "{bad:?} should be refused"
        );
    }
    let (_, done) = wait(engine.submit(greedy(&engine, &chatml("Hi"), 2)).unwrap());
    assert_eq!(done.usage.completion_tokens, 2);
}

#[tokio::test]
async fn embeddings_are_unit_vectors_and_do_not_disturb_generation() {
    let engine = tokio::task::spawn_blocking(|| engine(1, 1024, |_| {}))
        .await
        .unwrap();
    let prompt = chatml("Write a short poem about the sea.");
    let alone = {
        let e = engine.clone();
        let p = prompt.clone();
        tokio::task::spawn_blocking(move || wait(e.submit(greedy(&e, &p, 40)).unwrap()).0)
            .await
            .unwrap()
    };

    // The same request again, with embeddings asked for while it generates.
    let rx = engine.submit(greedy(&engine, &prompt, 40)).unwrap();
    let texts = [
        "The cat sits on the mat.",
        "A cat is sitting on a mat.",
        "Quarks carry colour charge.",
    ];
    let inputs: Vec<_> = texts.iter().map(|t| engine.tokenize(t, true)).collect();
    let first = engine.embed(inputs.clone()).await.unwrap();
    let during = tokio::task::spawn_blocking(move || wait(rx).0)
        .await
        .unwrap();
    assert_eq!(
        during, alone,
        "an embeddings request changed a running generation"
    );

    let again = engine.embed(inputs).await.unwrap();
    assert_eq!(first, again, "embeddings are deterministic");
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for v in &first {
        assert!((dot(v, v) - 1.0).abs() < 1e-4);
    }
    assert!(dot(&first[0], &first[1]) > dot(&first[0], &first[2]));

    for bad in [
        vec![],
        vec![-1],
        vec![1; paddock::engine::MAX_EMBED_TOKENS as usize + 1],
    ] {
        assert!(matches!(
            engine.embed(vec![bad]).await,
            Err(EngineError::InvalidRequest { param: "input", .. })
        ));
    }
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

#[tokio::test]
async fn streamed_tool_calls_add_up_to_the_non_streamed_answer() {
    let server = TestServer::start(common::settings(|_| {}));
    let mut body = common::chat("What is the weather in Paris?", 64);
    body["tools"] = json!([weather_tool()]);
    body["tool_choice"] = json!("required");
    body["parallel_tool_calls"] = json!(false);
    let (status, whole) = post(&server, "/v1/chat/completions", body.clone()).await;
    assert_eq!(status, 200, "{whole}");
    let call = &whole["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");

    body["stream"] = json!(true);
    let resp = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (mut name, mut args, mut finish) = (String::new(), String::new(), Value::Null);
    for data in common::sse_events(resp).await {
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
            continue; // [DONE]
        };
        let choice = &chunk["choices"][0];
        if let Some(delta) = choice["delta"]["tool_calls"].get(0) {
            name.push_str(delta["function"]["name"].as_str().unwrap_or(""));
            args.push_str(delta["function"]["arguments"].as_str().unwrap_or(""));
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    assert_eq!(name, call["function"]["name"].as_str().unwrap());
    assert_eq!(args, call["function"]["arguments"].as_str().unwrap());
    assert_eq!(finish, "tool_calls");
}

#[tokio::test]
async fn agent_routes_refuse_bad_input_in_their_own_error_shape() {
    let server = TestServer::start(common::settings(|_| {}));
    let bad_grammar =
        json!({"messages": [{"role": "user", "content": "hi"}], "grammar": "root ::= nope"});
    let (status, body) = post(&server, "/v1/chat/completions", bad_grammar).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("grammar"))
    );

    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("max_tokens"),
        "{body}"
    );

    let (status, body) = post(&server, "/v1/messages", json!("not an object")).await;
    assert_eq!((status, body["type"].as_str()), (400, Some("error")));

    let (status, body) = post(&server, "/v1/responses", json!({"input": 42})).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("input"))
    );

    let (status, body) = post(
        &server,
        "/v1/embeddings",
        json!({"input": [[1, 2], "mixed"]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );

    let (status, body) = post(&server, "/tokenize", json!({"content": 5})).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("content"))
    );
}
