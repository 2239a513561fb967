//! A corpus of malformed and hostile requests, kept as data: every route family gets broken
//! JSON, wrong types, absurd numbers, out-of-vocabulary token ids, path-like model names and
//! oversized bodies. Each must get a 4xx in its own API's error shape with a useful message,
//! nothing outside the test's folder may change, and the server must keep serving.
//!
//! Requests go over a raw socket so paths (`..%2F`), headers and body bytes (invalid UTF-8)
//! reach the server exactly as written; an HTTP client would normalise or refuse some of them.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, TestServer, SMOLLM2_ID};

/// The error body a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"error": {"message", "type", "param", "code"}}`
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`
    Anthropic,
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: RangeInclusive<u16>,
    shape: Shape,
    /// Must appear (case-insensitive) in the message or the `param`: the error says what is wrong.
    hint: &'static str,
}

const BAD: RangeInclusive<u16> = 400..=400;
const NOT_FOUND: RangeInclusive<u16> = 404..=404;

const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";
const EMBEDDINGS: &str = "/v1/embeddings";
const MESSAGES: &str = "/v1/messages";
const COUNT_TOKENS: &str = "/v1/messages/count_tokens";
const RESPONSES: &str = "/v1/responses";

/// A JSON POST (or PUT) expected to fail.
fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: RangeInclusive<u16>,
    hint: &'static str,
) -> Case {
    let shape = if path.starts_with(MESSAGES) {
        Shape::Anthropic
    } else {
        Shape::OpenAi
    };
    Case {
        name,
        method,
        path: path.to_string(),
        headers: vec![("content-type", "application/json".into())],
        body: body.into(),
        status,
        shape,
        hint,
    }
}

fn post(
    name: &'static str,
    path: &str,
    body: Value,
    status: RangeInclusive<u16>,
    hint: &'static str,
) -> Case {
    case(name, "POST", path, body.to_string(), status, hint)
}

fn get(name: &'static str, path: &str, status: RangeInclusive<u16>, hint: &'static str) -> Case {
    Case {
        headers: Vec::new(),
        ..case(name, "GET", path, "", status, hint)
    }
}

fn delete(name: &'static str, path: &str, status: RangeInclusive<u16>, hint: &'static str) -> Case {
    Case {
        headers: Vec::new(),
        ..case(name, "DELETE", path, "", status, hint)
    }
}

fn user(content: &str) -> Value {
    json!([{"role": "user", "content": content}])
}

/// A chat body with `extra` fields over a valid one.
fn chat_with(extra: Value) -> Value {
    let mut body = json!({"model": SMOLLM2_ID, "messages": user("hi"), "max_tokens": 4});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn anthropic_with(extra: Value) -> Value {
    let mut body = json!({"model": SMOLLM2_ID, "max_tokens": 4, "messages": user("hi")});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Folders of one test run: the served model sits in `models/`; next to it, a loadable model
/// (`sentinel.gguf`) and a plain file that no request may reach, load or delete.
struct Sandbox {
    root: PathBuf,
    model: PathBuf,
    sentinel: PathBuf,
    secret: PathBuf,
    config: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("paddock-hostile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("models")).unwrap();
        let model = root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        std::os::unix::fs::symlink(common::smollm2(), &model).unwrap();
        let sentinel = root.join("sentinel.gguf");
        std::os::unix::fs::symlink(common::smollm2(), &sentinel).unwrap();
        let secret = root.join("secret.txt");
        std::fs::write(&secret, "do not touch").unwrap();
        let config = root.join("config/paddock.toml");
        Self {
            root,
            model,
            sentinel,
            secret,
            config,
        }
    }

    /// Every path under the root (symlinks not followed).
    fn listing(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                out.push(entry.path());
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out.sort();
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn start(sandbox: &Sandbox, api_key: Option<&str>) -> TestServer {
    let mut settings = common::settings(|raw| {
        raw.model.path = Some(sandbox.model.clone());
        raw.server.max_body_mib = Some(1);
        raw.server.api_key = api_key.map(str::to_string);
    });
    settings.config_file = Some(sandbox.config.clone());
    TestServer::start(settings)
}

/// The corpus. `sandbox` gives the real paths that path-like names aim at.
#[rustfmt::skip]
fn corpus(sandbox: &Sandbox) -> Vec<Case> {
    let sentinel = sandbox.sentinel.display().to_string();
    let sentinel_stem = sandbox.sentinel.with_extension("").display().to_string();
    let over_context = "word ".repeat(5000);
    let nested = "[".repeat(100_000);
    let giant_stop: Vec<String> = (0..10_000).map(|i| format!("stop{i}")).collect();
    let too_big = {
        let mut body = br#"{"messages":[{"role":"user","content":""#.to_vec();
        body.extend(std::iter::repeat_n(b'a', 2 << 20));
        body.extend(br#""}]}"#);
        body
    };
    let mut invalid_utf8 = br#"{"model":"SmolLM2-135M-Instruct.Q4_1","max_tokens":4,"messages":[{"role":"user","content":""#.to_vec();
    invalid_utf8.extend([0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend(br#""}]}"#);
    let many_sizes: Vec<u32> = (1..=100_000).collect();
    let weather = |parameters: Value| json!([{"type": "function", "function": {"name": "get_weather", "parameters": parameters}}]);

    let mut cases = vec![
        // --- /v1/chat/completions: syntax ---
        case("chat: truncated JSON", "POST", CHAT, r#"{"messages": ["#, BAD, "JSON"),
        case("chat: not JSON", "POST", CHAT, "hello there", BAD, "JSON"),
        case("chat: empty body", "POST", CHAT, "", BAD, "empty"),
        case("chat: invalid UTF-8 in a string", "POST", CHAT, invalid_utf8.clone(), BAD, "JSON"),
        case("chat: 100k nested [", "POST", CHAT, nested.clone(), BAD, "JSON"),
        case("chat: 100k nested [in a field", "POST", CHAT, format!(r#"{{"messages": {nested}"#), BAD, "JSON"),
        case("chat: number overflowing f64", "POST", CHAT, r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}"#, BAD, "JSON"),
        post("chat: top-level array", CHAT, json!([SMOLLM2_ID, user("hi")]), BAD, "object"),
        // --- /v1/chat/completions: shape and ranges ---
        post("chat: messages is a string", CHAT, json!({"messages": "hi"}), BAD, "messages"),
        post("chat: temperature is a string", CHAT, chat_with(json!({"temperature": "hot"})), BAD, "temperature"),
        post("chat: temperature 1e308", CHAT, chat_with(json!({"temperature": 1e308})), BAD, "temperature"),
        case("chat: max_tokens 2^70", "POST", CHAT, r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1180591620717411303424}"#, BAD, "max_tokens"),
        post("chat: negative max_tokens", CHAT, chat_with(json!({"max_tokens": -1})), BAD, "max_tokens"),
        post("chat: n = 1,000,000", CHAT, chat_with(json!({"n": 1_000_000})), BAD, "n"),
        post("chat: n = -3", CHAT, chat_with(json!({"n": -3})), BAD, "n"),
        post("chat: 10,000 stop strings", CHAT, chat_with(json!({"stop": giant_stop})), BAD, "stop"),
        post("chat: one 100 KB stop string", CHAT, chat_with(json!({"stop": "x".repeat(100_000)})), BAD, "stop"),
        post("chat: seed is a string", CHAT, chat_with(json!({"seed": "lucky"})), BAD, "seed"),
        post("chat: top_logprobs 1000", CHAT, chat_with(json!({"logprobs": true, "top_logprobs": 1000})), BAD, "top_logprobs"),
        post("chat: logit_bias id out of vocabulary", CHAT, chat_with(json!({"logit_bias": {"99999999": 5}})), BAD, "logit_bias"),
        post("chat: logit_bias negative id", CHAT, chat_with(json!({"logit_bias": {"-1": 5}})), BAD, "logit_bias"),
        post("chat: logit_bias key not a number", CHAT, chat_with(json!({"logit_bias": {"abc": 5}})), BAD, "logit_bias"),
        post("chat: logit_bias bias 1e9", CHAT, chat_with(json!({"logit_bias": {"1": 1e9}})), BAD, "logit_bias"),
        post("chat: prediction of an unknown type", CHAT, chat_with(json!({"prediction": {"type": "diff", "content": "x"}})), BAD, "prediction"),
        post("chat: prediction content a number", CHAT, chat_with(json!({"prediction": {"type": "content", "content": 7}})), BAD, "prediction"),
        post("chat: prediction part not text", CHAT, chat_with(json!({"prediction": {"type": "content", "content": [{"type": "image_url"}]}})), BAD, "prediction"),
        post("chat: prediction longer than the context", CHAT, chat_with(json!({"prediction": {"type": "content", "content": "word ".repeat(5000)}})), BAD, "prediction"),
        post("chat: speculative.n_max negative", CHAT, chat_with(json!({"speculative.n_max": -1})), BAD, "speculative.n_max"),
        post("completions: speculative.n_max a string", COMPLETIONS, json!({"model": SMOLLM2_ID, "prompt": "hi", "speculative.n_max": "many"}), BAD, "speculative.n_max"),
        post("chat: empty messages", CHAT, chat_with(json!({"messages": []})), BAD, "messages"),
        post("chat: message without role", CHAT, chat_with(json!({"messages": [{"content": "hi"}]})), BAD, "role"),
        post("chat: unknown role", CHAT, chat_with(json!({"messages": [{"role": "wizard", "content": "hi"}]})), BAD, "messages[0].role"),
        post("chat: prompt over the context", CHAT, chat_with(json!({"messages": user(&over_context)})), BAD, "context"),
        post("chat: grammar that does not parse", CHAT, chat_with(json!({"grammar": "root ::= \"unterminated"})), BAD, "grammar"),
        // --- tools and structured output ---
        post("chat: tool parameters not an object", CHAT, chat_with(json!({"tools": weather(json!("nope")), "tool_choice": "required"})), BAD, "tools"),
        post("chat: tool without function", CHAT, chat_with(json!({"tools": [{"type": "function"}]})), BAD, "tools"),
        post("chat: tool schema with a numeric type", CHAT, chat_with(json!({"tools": weather(json!({"type": 5})), "tool_choice": "required"})), BAD, "tools"),
        post("chat: tool schema with a dangling $ref", CHAT, chat_with(json!({"tools": weather(json!({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})), "tool_choice": "required"})), BAD, "tools"),
        post("chat: tool_choice names no tool", CHAT, chat_with(json!({"tools": weather(json!({"type": "object"})), "tool_choice": {"type": "function", "function": {"name": "rm_rf"}}})), BAD, "tool_choice"),
        post("chat: response_format schema not a schema", CHAT, chat_with(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": ["object", 7]}}}})), BAD, "response_format"),
        // --- model names that look like paths ---
        post("chat: model ../../etc/passwd", CHAT, chat_with(json!({"model": "../../etc/passwd"})), NOT_FOUND, "model"),
        post("chat: model ../sentinel", CHAT, chat_with(json!({"model": "../sentinel"})), NOT_FOUND, "model"),
        post("chat: model is an absolute path to a GGUF", CHAT, chat_with(json!({"model": sentinel})), NOT_FOUND, "model"),
        post("chat: model is an absolute path without .gguf", CHAT, chat_with(json!({"model": sentinel_stem})), NOT_FOUND, "model"),
        post("chat: model %2e%2e%2fsentinel", CHAT, chat_with(json!({"model": "%2e%2e%2fsentinel"})), NOT_FOUND, "model"),
        get("chat: GET on a POST route", CHAT, 405..=405, "method"),
        // --- /v1/completions ---
        case("completions: truncated JSON", "POST", COMPLETIONS, r#"{"prompt": "#, BAD, "JSON"),
        post("completions: prompt is a number", COMPLETIONS, json!({"prompt": 5}), BAD, "prompt"),
        post("completions: token id out of vocabulary", COMPLETIONS, json!({"prompt": [99_999_999], "max_tokens": 2}), BAD, "vocabulary"),
        post("completions: negative token id in a batch", COMPLETIONS, json!({"prompt": [[1, 2], [-5]], "max_tokens": 2}), BAD, "prompt"),
        post("completions: empty token list", COMPLETIONS, json!({"prompt": [], "max_tokens": 2}), BAD, "prompt"),
        post("completions: prompt over the context", COMPLETIONS, json!({"prompt": over_context, "max_tokens": 2}), BAD, "context"),
        post("completions: logprobs 100", COMPLETIONS, json!({"prompt": "hi", "logprobs": 100}), BAD, "logprobs"),
        post("completions: echo", COMPLETIONS, json!({"prompt": "hi", "echo": true}), BAD, "echo"),
        // --- /v1/embeddings ---
        post("embeddings: token id out of vocabulary", EMBEDDINGS, json!({"input": [99_999_999]}), BAD, "vocabulary"),
        post("embeddings: negative token id", EMBEDDINGS, json!({"input": [[-1]]}), BAD, "input"),
        post("embeddings: empty input list", EMBEDDINGS, json!({"input": []}), BAD, "input"),
        post("embeddings: input is an object", EMBEDDINGS, json!({"input": {"a": 1}}), BAD, "input"),
        post("embeddings: unknown encoding_format", EMBEDDINGS, json!({"input": "hi", "encoding_format": "hex"}), BAD, "encoding_format"),
        post("embeddings: input over the context", EMBEDDINGS, json!({"input": over_context}), BAD, "input"),
        // --- llama-server's routes ---
        post("detokenize: id out of vocabulary", "/detokenize", json!({"tokens": [1, 99_999_999]}), BAD, "vocabulary"),
        post("detokenize: negative id", "/detokenize", json!({"tokens": [-1]}), BAD, "vocabulary"),
        post("detokenize: tokens is a string", "/detokenize", json!({"tokens": "abc"}), BAD, "tokens"),
        post("tokenize: content is a number", "/tokenize", json!({"content": 5}), BAD, "content"),
        case("tokenize: truncated JSON", "POST", "/tokenize", r#"{"content": "x"#, BAD, "JSON"),
        post("tokenize: model is /etc/passwd", "/tokenize", json!({"content": "x", "model": "/etc/passwd"}), NOT_FOUND, "model"),
        post("apply-template: empty messages", "/apply-template", json!({"messages": []}), BAD, "messages"),
        get("props: model ../../etc/passwd", "/props?model=../../etc/passwd", NOT_FOUND, "model"),
        get("props: model not UTF-8", "/props?model=%FF%FE", NOT_FOUND, "model"),
        get("models: id ..%2F..%2Fetc%2Fpasswd", "/v1/models/..%2F..%2Fetc%2Fpasswd", NOT_FOUND, "etc"),
        get("models: id not UTF-8", "/v1/models/%FF%FE", BAD, "UTF-8"),
        get("ui: ..%2F..%2FCargo.toml", "/ui/..%2F..%2FCargo.toml", NOT_FOUND, "Cargo.toml"),
        // --- /v1/messages (Anthropic) ---
        case("messages: truncated JSON", "POST", MESSAGES, r#"{"messages": ["#, BAD, "JSON"),
        case("messages: invalid UTF-8", "POST", MESSAGES, invalid_utf8.clone(), BAD, "JSON"),
        case("messages: 100k nested [", "POST", MESSAGES, nested.clone(), BAD, "JSON"),
        post("messages: body is a string", MESSAGES, json!("not an object"), BAD, "object"),
        post("messages: no max_tokens", MESSAGES, json!({"messages": user("hi")}), BAD, "max_tokens"),
        post("messages: negative max_tokens", MESSAGES, anthropic_with(json!({"max_tokens": -1})), BAD, "max_tokens"),
        post("messages: empty messages", MESSAGES, anthropic_with(json!({"messages": []})), BAD, "messages"),
        post("messages: unknown role", MESSAGES, anthropic_with(json!({"messages": [{"role": "wizard", "content": "x"}]})), BAD, "role"),
        post("messages: unknown content block", MESSAGES, anthropic_with(json!({"messages": [{"role": "user", "content": [{"type": "hologram"}]}]})), BAD, "messages"),
        post("messages: temperature is a string", MESSAGES, anthropic_with(json!({"temperature": "hot"})), BAD, "temperature"),
        post("messages: 10,000 stop_sequences", MESSAGES, anthropic_with(json!({"stop_sequences": (0..10_000).map(|i| format!("s{i}")).collect::<Vec<_>>()})), BAD, "stop"),
        post("messages: tool input_schema not an object", MESSAGES, anthropic_with(json!({"tools": [{"name": "t", "input_schema": "nope"}], "tool_choice": {"type": "any"}})), BAD, "tools"),
        post("messages: model ../../etc/passwd", MESSAGES, anthropic_with(json!({"model": "../../etc/passwd"})), NOT_FOUND, "model"),
        post("messages: prompt over the context", MESSAGES, anthropic_with(json!({"messages": user(&over_context)})), BAD, "prompt is too long"),
        post("count_tokens: messages is a number", COUNT_TOKENS, json!({"messages": 5}), BAD, "messages"),
        case("count_tokens: 100k nested [", "POST", COUNT_TOKENS, nested.clone(), BAD, "JSON"),
        get("messages: GET on a POST route", MESSAGES, 405..=405, "method"),
        // --- /v1/responses ---
        case("responses: truncated JSON", "POST", RESPONSES, r#"{"input": "#, BAD, "JSON"),
        post("responses: input is a number", RESPONSES, json!({"input": 42}), BAD, "input"),
        post("responses: empty input list", RESPONSES, json!({"input": []}), BAD, "input"),
        post("responses: unknown input item", RESPONSES, json!({"input": [{"type": "bogus"}]}), BAD, "input"),
        post("responses: negative max_output_tokens", RESPONSES, json!({"input": "hi", "max_output_tokens": -5}), BAD, "max_output_tokens"),
        post("responses: tool without a name", RESPONSES, json!({"input": "hi", "tools": [{"type": "function"}]}), BAD, "tools"),
        post("responses: previous_response_id (stateless)", RESPONSES, json!({"input": "hi", "previous_response_id": "resp_123"}), BAD, "previous_response_id"),
        post("responses: model ../../etc/passwd", RESPONSES, json!({"input": "hi", "model": "../../etc/passwd"}), NOT_FOUND, "model"),
        post("responses: prompt over the context", RESPONSES, json!({"input": over_context, "max_output_tokens": 4}), BAD, "context"),
        // --- admin: loading ---
        post("load: model ../../etc/passwd", "/api/models/load", json!({"model": "../../etc/passwd"}), NOT_FOUND, "model"),
        post("load: model ../sentinel", "/api/models/load", json!({"model": "../sentinel"}), NOT_FOUND, "model"),
        post("load: model is an absolute path", "/api/models/load", json!({"model": sentinel}), NOT_FOUND, "model"),
        post("load: model is a number", "/api/models/load", json!({"model": 5}), BAD, "model"),
        post("load: no model", "/api/models/load", json!({}), BAD, "model"),
        post("load: negative ctx_size", "/api/models/load", json!({"model": SMOLLM2_ID, "ctx_size": -1}), BAD, "ctx_size"),
        case("load: truncated JSON", "POST", "/api/models/load", r#"{"model": "#, BAD, "JSON"),
        post("unload: model is a number", "/api/models/unload", json!({"model": 5}), BAD, "model"),
        post("unload: unknown field", "/api/models/unload", json!({"modle": SMOLLM2_ID}), BAD, "modle"),
        post("unload: model ../../etc/passwd", "/api/models/unload", json!({"model": "../../etc/passwd"}), NOT_FOUND, "model"),
        case("unload: truncated JSON", "POST", "/api/models/unload", r#"{"model": "#, BAD, "JSON"),
        case("unload: a JSON array", "POST", "/api/models/unload", "[1]", BAD, "object"),
        Case {
            headers: vec![("content-type", "text/plain".into())],
            ..case(
                "load: text/plain body (CSRF form)",
                "POST",
                "/api/models/load",
                r#"{"model":"x"}"#,
                415..=415,
                "application/json",
            )
        },
        Case {
            headers: vec![
                ("content-type", "application/json".into()),
                ("origin", "http://evil.example".into()),
            ],
            ..case(
                "load: another site's Origin",
                "POST",
                "/api/models/load",
                json!({"model": SMOLLM2_ID}).to_string(),
                403..=403,
                "cross-site",
            )
        },
        // --- admin: deleting ---
        delete("delete: ..%2F..%2Fetc", "/api/models/..%2F..%2Fetc", NOT_FOUND, "model"),
        delete("delete: ..%2Fsentinel", "/api/models/..%2Fsentinel", NOT_FOUND, "model"),
        delete("delete: %2e%2e%2fsentinel", "/api/models/%2e%2e%2fsentinel", NOT_FOUND, "model"),
        delete("delete: the loaded model", &format!("/api/models/{SMOLLM2_ID}"), 409..=409, "loaded"),
        delete("delete: id not UTF-8", "/api/models/%FF%FE", BAD, "UTF-8"),
        // --- admin: benchmarks (none may start) ---
        post("bench: model ../../etc/passwd", "/api/bench", json!({"model": "../../etc/passwd", "n_prompt": [8], "n_gen": [], "repetitions": 1}), NOT_FOUND, "model"),
        post("bench: 100,000 prompt sizes", "/api/bench", json!({"model": SMOLLM2_ID, "n_prompt": many_sizes}), BAD, "tests"),
        post("bench: negative prompt size", "/api/bench", json!({"model": SMOLLM2_ID, "n_prompt": [-1]}), BAD, "n_prompt"),
        post("bench: prompt size 2^21", "/api/bench", json!({"model": SMOLLM2_ID, "n_prompt": [2_097_152]}), BAD, "n_prompt"),
        post("bench: 0 repetitions", "/api/bench", json!({"model": SMOLLM2_ID, "repetitions": 0}), BAD, "repetitions"),
        post("bench: 2^32 repetitions", "/api/bench", json!({"model": SMOLLM2_ID, "repetitions": 4_294_967_296u64}), BAD, "repetitions"),
        post("bench: n_gen is a string", "/api/bench", json!({"model": SMOLLM2_ID, "n_gen": "128,256"}), BAD, "n_gen"),
        post("bench: unknown field", "/api/bench", json!({"model": SMOLLM2_ID, "threads": 999}), BAD, "threads"),
        get("bench: run id ..%2F..%2Fetc%2Fpasswd", "/api/bench/runs/..%2F..%2Fetc%2Fpasswd", NOT_FOUND, "passwd"),
        get("bench: unknown run, hostile format", "/api/bench/runs/x?format=../../exe", NOT_FOUND, "no benchmark run"),
        // --- admin: downloads (repo and names end up in local paths) ---
        post("downloads: repo ../x", "/api/downloads", json!({"repo": "../x", "model": "m"}), BAD, "repo"),
        post("downloads: repo owner/..", "/api/downloads", json!({"repo": "owner/..", "model": "m"}), BAD, "repo"),
        post("downloads: repo x/../../etc", "/api/downloads", json!({"repo": "x/../../etc", "model": "m"}), BAD, "repo"),
        post("downloads: repo /abs/path", "/api/downloads", json!({"repo": "/abs/path", "model": "m"}), BAD, "repo"),
        post("downloads: model name with .. and a bad repo", "/api/downloads", json!({"repo": "..", "model": "../../sentinel"}), BAD, "repo"),
        post("downloads: no model", "/api/downloads", json!({"repo": "a/b"}), BAD, "model"),
        post("downloads: repo is a number", "/api/downloads", json!({"repo": 5, "model": "m"}), BAD, "repo"),
        delete("downloads: cancel id not a number", "/api/downloads/abc", BAD, "id"),
        get("hub: repo ../x", "/api/hub?repo=../x", BAD, "repo"),
        get("hub: no repo", "/api/hub", BAD, "repo"),
        // --- admin: settings (the config file must stay unwritten) ---
        case("settings: port as a string", "PUT", "/api/settings", json!({"port": "80"}).to_string(), BAD, "port"),
        case("settings: port 70000", "PUT", "/api/settings", json!({"port": 70_000}).to_string(), BAD, "port"),
        case("settings: lan as a string", "PUT", "/api/settings", json!({"lan": "yes"}).to_string(), BAD, "lan"),
        case("settings: negative ctx_size", "PUT", "/api/settings", json!({"ctx_size": -1}).to_string(), BAD, "ctx_size"),
        case("settings: model ../sentinel", "PUT", "/api/settings", json!({"model": "../sentinel"}).to_string(), BAD, "model"),
        case("settings: model is an absolute path", "PUT", "/api/settings", json!({"model": sentinel}).to_string(), BAD, "model"),
        case("settings: cache type ../../x", "PUT", "/api/settings", json!({"cache_type_k": "../../x"}).to_string(), BAD, "cache"),
        case("settings: unknown field", "PUT", "/api/settings", json!({"models_dir": "/"}).to_string(), BAD, "models_dir"),
        case("settings: wrapped in a number", "PUT", "/api/settings", json!({"settings": 5}).to_string(), BAD, "shape"),
        case("autostart: enabled as a string", "PUT", "/api/autostart", json!({"enabled": "yes"}).to_string(), BAD, "enabled"),
        get("budget: model ../../etc/passwd", "/api/budget?model=../../etc/passwd", NOT_FOUND, "model"),
        get("budget: negative ctx_size", &format!("/api/budget?model={SMOLLM2_ID}&ctx_size=-1"), BAD, "ctx_size"),
        // --- everyone: Host header and body size ---
        Case {
            headers: vec![
                ("content-type", "application/json".into()),
                ("host", "evil.example:8080".into()),
            ],
            ..post(
                "chat: foreign Host (DNS rebinding)",
                CHAT,
                chat_with(json!({})),
                403..=403,
                "localhost",
            )
        },
        case("chat: 2 MiB body over the 1 MiB limit", "POST", CHAT, too_big.clone(), 413..=413, "too large"),
        case("messages: 2 MiB body over the 1 MiB limit", "POST", MESSAGES, too_big.clone(), 413..=413, "too large"),
        case("settings: 2 MiB body over the 1 MiB limit", "PUT", "/api/settings", too_big.clone(), 413..=413, "too large"),
    ];
    // The same body chunked, without a Content-Length: refused once 1 MiB has been read.
    let mut chunked = format!("{:x}\r\n", too_big.len()).into_bytes();
    chunked.extend_from_slice(&too_big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    cases.push(Case {
        headers: vec![
            ("content-type", "application/json".into()),
            ("transfer-encoding", "chunked".into()),
        ],
        ..case(
            "chat: 2 MiB chunked body",
            "POST",
            CHAT,
            chunked,
            413..=413,
            "too large",
        )
    });
    // A Content-Length far beyond the limit with no body behind it: refused before reading.
    cases.push(Case {
        headers: vec![
            ("content-type", "application/json".into()),
            ("content-length", "99999999999".into()),
        ],
        ..case(
            "responses: Content-Length 100 GB",
            "POST",
            RESPONSES,
            "",
            413..=413,
            "too large",
        )
    });
    cases
}

/// One HTTP/1.1 exchange over a fresh connection, bytes exactly as given. Answers the status,
/// the lower-cased headers and the body (de-chunked).
async fn exchange(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let addr = base.strip_prefix("http://").unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut head = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|(k, _)| *k == "host") {
        head.push_str(&format!("host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| matches!(*k, "content-length" | "transfer-encoding"))
    {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    // Written alongside the read: a server refusing a big body early may stop reading it.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&bytes).await;
        let _ = write.flush().await;
        write
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match read.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived (the server closed on an unread body).
            Err(_) if !answer.is_empty() => break,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
    drop(writer);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {answer:?}"));
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// Sends one case and checks status, content type, error shape and message; the failure, if
/// any, as text.
async fn check(server: &TestServer, c: &Case) -> Result<(), String> {
    let sent = exchange(&server.url, c.method, &c.path, &c.headers, &c.body);
    let (status, headers, body) = tokio::time::timeout(Duration::from_secs(120), sent)
        .await
        .map_err(|_| format!("{}: no answer within 120 s (hang)", c.name))?;
    let text = String::from_utf8_lossy(&body);
    let fail = |why: &str| Err(format!("{}: {why}: {status} {text}", c.name));
    if !c.status.contains(&status) {
        return fail(&format!("status not in {:?}", c.status));
    }
    let json_type = headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/json"));
    if !json_type {
        return fail("not application/json");
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return fail("body is not JSON");
    };
    let error = &value["error"];
    let shape_ok = match c.shape {
        Shape::OpenAi => {
            error["type"].is_string() && value.get("type").is_none() && error.get("param").is_some()
        }
        Shape::Anthropic => value["type"] == "error" && error["type"].is_string(),
    };
    if !shape_ok {
        return fail(&format!("not {:?}'s error shape", c.shape));
    }
    let message = error["message"].as_str().unwrap_or("");
    let param = error["param"].as_str().unwrap_or("");
    let hint = c.hint.to_lowercase();
    if message.trim().is_empty()
        || !(message.to_lowercase().contains(&hint) || param.to_lowercase().contains(&hint))
    {
        return fail(&format!("message does not mention {:?}", c.hint));
    }
    Ok(())
}

#[tokio::test]
async fn the_hostile_corpus_gets_4xx_in_each_apis_shape_and_the_server_keeps_serving() {
    let sandbox = Sandbox::new("corpus");
    let before = sandbox.listing();
    let server = start(&sandbox, None);
    let cases = corpus(&sandbox);
    assert!(cases.len() >= 50, "{} cases", cases.len());

    let mut failures = Vec::new();
    for c in &cases {
        if let Err(why) = check(&server, c).await {
            failures.push(why);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Still serving, and correctly.
    let client = reqwest::Client::new();
    let (_, health) = common::get(&server, "/health").await;
    assert_eq!(health["status"], "ok");
    let answer = client
        .post(server.url(CHAT))
        .json(&common::chat("What is the capital of France?", 8))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["model"], SMOLLM2_ID);
    assert!(!answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .trim()
        .is_empty());
    let (_, status) = common::get(&server, "/api/status").await;
    assert_eq!(
        status["model"]["id"], SMOLLM2_ID,
        "the served model is unchanged"
    );
    assert!(status["bench"].is_null(), "no benchmark started: {status}");

    // Nothing was created, deleted or loaded outside the models folder.
    assert_eq!(
        sandbox.listing(),
        before,
        "files changed under {}",
        sandbox.root.display()
    );
    assert!(sandbox.sentinel.exists() && sandbox.secret.exists() && sandbox.model.exists());
    assert!(
        !sandbox.config.exists(),
        "no refused setting reached the config file"
    );
    assert!(Path::new("/etc/passwd").exists());
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_a_401_in_each_apis_shape() {
    let sandbox = Sandbox::new("key");
    let server = start(&sandbox, Some("s3cret"));
    let routes: [(&str, &str, Value, Shape); 12] = [
        ("POST", CHAT, chat_with(json!({})), Shape::OpenAi),
        (
            "POST",
            COMPLETIONS,
            json!({"prompt": "hi", "max_tokens": 1}),
            Shape::OpenAi,
        ),
        ("POST", EMBEDDINGS, json!({"input": "hi"}), Shape::OpenAi),
        ("GET", "/v1/models", Value::Null, Shape::OpenAi),
        ("POST", RESPONSES, json!({"input": "hi"}), Shape::OpenAi),
        (
            "POST",
            MESSAGES,
            anthropic_with(json!({})),
            Shape::Anthropic,
        ),
        (
            "POST",
            COUNT_TOKENS,
            anthropic_with(json!({})),
            Shape::Anthropic,
        ),
        ("POST", "/tokenize", json!({"content": "hi"}), Shape::OpenAi),
        ("GET", "/props", Value::Null, Shape::OpenAi),
        ("GET", "/slots", Value::Null, Shape::OpenAi),
        ("GET", "/api/status", Value::Null, Shape::OpenAi),
        (
            "POST",
            "/api/models/load",
            json!({"model": "../../etc/passwd"}),
            Shape::OpenAi,
        ),
    ];
    let keys: [(&str, Vec<(&'static str, String)>); 5] = [
        ("no key", vec![]),
        (
            "wrong bearer",
            vec![("authorization", "Bearer s3cre".into())],
        ),
        (
            "longer bearer",
            vec![("authorization", "Bearer s3cret0".into())],
        ),
        ("wrong x-api-key", vec![("x-api-key", "S3CRET".into())]),
        (
            "key without Bearer",
            vec![("authorization", "s3cret".into())],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, shape) in &routes {
        for (what, key) in &keys {
            let mut headers = key.clone();
            let body = if body.is_null() {
                String::new()
            } else {
                headers.push(("content-type", "application/json".into()));
                body.to_string()
            };
            let c = Case {
                name: "key",
                method,
                path: path.to_string(),
                headers,
                body: body.into_bytes(),
                status: 401..=401,
                shape: *shape,
                hint: "API key",
            };
            if let Err(why) = check(&server, &c).await {
                failures.push(format!("{method} {path} with {what}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // /health stays public, and the right key still works after all the wrong ones.
    let client = reqwest::Client::new();
    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ok = client
        .post(server.url(CHAT))
        .bearer_auth("s3cret")
        .json(&common::chat("Hi", 2))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = client
        .post(server.url(MESSAGES))
        .header("x-api-key", "s3cret")
        .json(&anthropic_with(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn guessing_keys_locks_the_address_out_in_each_apis_shape() {
    let sandbox = Sandbox::new("lockout");
    let server = start(&sandbox, Some("s3cret"));
    let client = reqwest::Client::new();
    let models = |key: &str| client.get(server.url("/v1/models")).bearer_auth(key).send();
    // Requests without a key, and one stale key sent again and again (an agent whose key was
    // changed), are not guesses: they never lock the machine out.
    for _ in 0..20 {
        let resp = client.get(server.url("/v1/models")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(models("the old key").await.unwrap().status(), 401);
    }
    for i in 2..10 {
        let resp = models(&format!("guess-{i}")).await.unwrap();
        assert_eq!(resp.status(), 401, "guess {i}");
    }
    let tenth = models("guess-10").await.unwrap();
    assert_eq!(tenth.status(), 429);
    assert_eq!(tenth.headers()["retry-after"], "60");
    let err: Value = tenth.json().await.unwrap();
    assert_eq!(err["error"]["code"], "too_many_wrong_keys");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("try again in 60 s"));
    // Locked out: the right key is refused too, so guessing on learns nothing; the Anthropic
    // API says so in its own shape.
    let c = Case {
        name: "locked out",
        method: "POST",
        path: MESSAGES.into(),
        headers: vec![
            ("x-api-key", "s3cret".into()),
            ("content-type", "application/json".into()),
        ],
        body: anthropic_with(json!({})).to_string().into_bytes(),
        status: 429..=429,
        shape: Shape::Anthropic,
        hint: "too many wrong API keys",
    };
    check(&server, &c).await.unwrap();
    let right = models("s3cret").await.unwrap();
    assert_eq!(right.status(), 429);
    let retry: u64 = right.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // /health stays public, and the server goes on serving.
    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
