//! One streamed chat completion over HTTP, timed as it arrives: a small SSE parser and the
//! `reqwest` client around it. Every failure (refused connection, non-200, timeout, a stream
//! that is not OpenAI's SSE) becomes a [`ServeBenchError`] naming the URL.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use super::ServeBenchError;

/// Content chunks, usage and text of one streamed chat completion.
#[derive(Debug, Clone)]
pub(super) struct Timed {
    /// When the request was sent.
    pub sent: Instant,
    /// When each chunk carrying text (`content` or `reasoning_content`) arrived; empty deltas
    /// (the role chunk, tokens that render as nothing) are not counted.
    pub chunks: Vec<Instant>,
    pub text: String,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// `usage.prompt_tokens_details.cached_tokens`, when the server reports it.
    pub cached_tokens: Option<u32>,
}

impl Timed {
    pub fn first(&self) -> Instant {
        self.chunks[0]
    }

    pub fn last(&self) -> Instant {
        self.chunks[self.chunks.len() - 1]
    }

    /// Completion tokens: the server's count, else the content chunks seen.
    pub fn completion_tokens(&self) -> u32 {
        self.usage
            .map_or(self.chunks.len() as u32, |u| u.completion_tokens)
    }
}

/// A model `GET /v1/models` lists, with the sizes Paddock's `meta` tells (llama-server tells
/// `n_ctx_train` only; other servers nothing).
#[derive(Debug, Clone)]
pub(super) struct ModelInfo {
    pub id: String,
    pub n_ctx: Option<u32>,
    pub n_parallel: Option<u32>,
}

/// An OpenAI-compatible server: base URL (no `/v1`), optional bearer key.
#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    timeout: Duration,
}

impl Client {
    pub fn new(
        url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ServeBenchError> {
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ServeBenchError::Config(format!(
                "the server URL must start with http:// or https://, not {url:?}"
            )));
        }
        // No proxy from the environment: it would be part of what is timed.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| ServeBenchError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            api_key,
            timeout,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    fn error(&self, path: &str, e: reqwest::Error) -> ServeBenchError {
        let url = format!("{}{path}", self.base);
        if e.is_timeout() {
            ServeBenchError::Timeout {
                url,
                secs: self.timeout.as_secs_f64(),
            }
        } else if e.is_connect() {
            ServeBenchError::Unreachable {
                url,
                reason: chain(&e),
            }
        } else {
            ServeBenchError::Request {
                url,
                reason: chain(&e),
            }
        }
    }

    async fn check(
        &self,
        path: &str,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, ServeBenchError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(500).collect();
        Err(ServeBenchError::Http {
            url: format!("{}{path}", self.base),
            status,
            body,
        })
    }

    /// The models `GET /v1/models` lists.
    pub async fn models(&self) -> Result<Vec<ModelInfo>, ServeBenchError> {
        const PATH: &str = "/v1/models";
        let resp = self
            .request(reqwest::Method::GET, PATH)
            .send()
            .await
            .map_err(|e| self.error(PATH, e))?;
        let resp = self.check(PATH, resp).await?;
        let body = resp.bytes().await.map_err(|e| self.error(PATH, e))?;
        let malformed = |reason: String| ServeBenchError::Stream {
            url: format!("{}{PATH}", self.base),
            reason,
        };
        let body: Value =
            serde_json::from_slice(&body).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let ids = body["data"]
            .as_array()
            .ok_or_else(|| malformed("no `data` list".into()))?
            .iter()
            .filter_map(|m| {
                let meta = |field: &str| m["meta"][field].as_u64().map(|n| n as u32);
                Some(ModelInfo {
                    id: m["id"].as_str()?.to_string(),
                    n_ctx: meta("n_ctx"),
                    n_parallel: meta("n_parallel"),
                })
            })
            .collect();
        Ok(ids)
    }

    /// `POST /v1/chat/completions` with `body` made a stream with usage; reads it to `[DONE]`.
    pub async fn stream_chat(&self, mut body: Value) -> Result<Timed, ServeBenchError> {
        const PATH: &str = "/v1/chat/completions";
        body["stream"] = Value::Bool(true);
        body["stream_options"] = serde_json::json!({"include_usage": true});
        let sent = Instant::now();
        let resp = self
            .request(reqwest::Method::POST, PATH)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| self.error(PATH, e))?;
        let resp = self.check(PATH, resp).await?;
        let malformed = |reason: String| ServeBenchError::Stream {
            url: format!("{}{PATH}", self.base),
            reason,
        };
        let mut timed = Timed {
            sent,
            chunks: Vec::new(),
            text: String::new(),
            usage: None,
        };
        let mut parser = SseParser::default();
        let mut bytes = resp.bytes_stream();
        let mut done = false;
        while let Some(piece) = bytes.next().await {
            let piece = piece.map_err(|e| self.error(PATH, e))?;
            let now = Instant::now();
            for data in parser.feed(&piece) {
                if done {
                    return Err(malformed(format!("data after [DONE]: {data:.200}")));
                }
                if data == "[DONE]" {
                    done = true;
                    continue;
                }
                apply_chunk(&mut timed, &data, now).map_err(malformed)?;
            }
        }
        if !done {
            return Err(malformed("the stream ended before `data: [DONE]`".into()));
        }
        if timed.chunks.is_empty() {
            return Err(malformed("the stream carried no content".into()));
        }
        Ok(timed)
    }
}

/// Applies one `data:` payload (a chat completion chunk, or an error object) to `timed`.
fn apply_chunk(timed: &mut Timed, data: &str, now: Instant) -> Result<(), String> {
    let chunk: Value =
        serde_json::from_str(data).map_err(|e| format!("chunk is not JSON ({e}): {data:.200}"))?;
    if let Some(error) = chunk.get("error") {
        let message = error["message"]
            .as_str()
            .map_or_else(|| error.to_string(), str::to_string);
        return Err(format!(
            "the server reported an error mid-stream: {message}"
        ));
    }
    let choices = match &chunk["choices"] {
        Value::Array(choices) => choices.as_slice(),
        Value::Null => &[],
        other => return Err(format!("`choices` is not a list: {other}")),
    };
    let mut text = false;
    for choice in choices {
        for field in ["content", "reasoning_content"] {
            if let Some(piece) = choice["delta"][field].as_str().filter(|p| !p.is_empty()) {
                timed.text.push_str(piece);
                text = true;
            }
        }
    }
    if text {
        timed.chunks.push(now);
    }
    if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
        let count = |field: &str| {
            usage[field]
                .as_u64()
                .map(|n| n as u32)
                .ok_or_else(|| format!("usage without `{field}`: {usage}"))
        };
        timed.usage = Some(Usage {
            prompt_tokens: count("prompt_tokens")?,
            completion_tokens: count("completion_tokens")?,
            cached_tokens: usage["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .map(|n| n as u32),
        });
    }
    Ok(())
}

/// Server-Sent Events framing: bytes in, each event's `data` out (multi-line data joined with
/// `\n`); comments (`: keep-alive`) and other fields ignored; `\n` or `\r\n` line ends.
#[derive(Default)]
pub(super) struct SseParser {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                events.extend(self.data.take());
                continue;
            }
            let line = String::from_utf8_lossy(&line);
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_ref(), ""),
            };
            if field == "data" {
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
        }
        events
    }
}

/// An error with its causes: reqwest's own message alone says little ("error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_split_lines_comments_and_crlf() {
        let mut p = SseParser::default();
        let mut out = p.feed(b": keep-alive\n\ndata: {\"a\"");
        assert!(out.is_empty());
        out.extend(p.feed(b":1}\r\n\r\ndata: x\ndata: y\n\nevent: e\ndata: [DONE]\n"));
        assert_eq!(out, ["{\"a\":1}", "x\ny"]);
        assert_eq!(p.feed(b"\n"), ["[DONE]"]);
    }

    #[test]
    fn chunks_count_text_only_and_read_usage() {
        let now = Instant::now();
        let mut t = Timed {
            sent: now,
            chunks: vec![],
            text: String::new(),
            usage: None,
        };
        let role = r#"{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}"#;
        apply_chunk(&mut t, role, now).unwrap();
        assert!(t.chunks.is_empty());
        apply_chunk(&mut t, r#"{"choices":[{"delta":{"content":"Hi"}}]}"#, now).unwrap();
        apply_chunk(&mut t, r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":3}}}"#, now).unwrap();
        assert_eq!((t.chunks.len(), t.text.as_str()), (1, "Hi"));
        assert_eq!(
            t.usage,
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 4,
                cached_tokens: Some(3)
            })
        );
        assert_eq!(t.completion_tokens(), 4);
        let err = apply_chunk(&mut t, r#"{"error":{"message":"boom"}}"#, now).unwrap_err();
        assert!(err.contains("boom"), "{err}");
        assert!(apply_chunk(&mut t, "not json", now).is_err());
    }
}
