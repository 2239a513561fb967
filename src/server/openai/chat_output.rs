//! Streamed chat answers: the model's text read back into reasoning, content and tool calls as
//! it arrives, and sent as `chat.completion.chunk`s the way OpenAI streams them (a call's id
//! and name first, then its arguments).

use serde_json::{json, Value};

use crate::chat::tool_calls::{OutputDelta, OutputOptions, StreamParser};
use crate::engine::{Completion, TokenDelta};
use crate::server::sse::ChunkEncoder;

use super::{chat_logprobs, finish_reason, new_id, StreamHeader};

/// Tool call ids, made up once per call index (models do not write ids).
#[derive(Default)]
pub struct ToolCallIds(Vec<String>);

impl ToolCallIds {
    pub fn get(&mut self, index: usize) -> String {
        while self.0.len() <= index {
            self.0.push(new_id("call_"));
        }
        self.0[index].clone()
    }
}

pub struct ChatChunks {
    header: StreamHeader,
    logprobs: bool,
    parser: Option<StreamParser>,
    ids: ToolCallIds,
    calls: usize,
}

impl ChatChunks {
    pub fn new(header: StreamHeader, output: OutputOptions, logprobs: bool) -> Self {
        Self {
            header,
            logprobs,
            parser: Some(StreamParser::new(output)),
            ids: ToolCallIds::default(),
            calls: 0,
        }
    }

    fn delta_chunk(&mut self, delta: OutputDelta) -> Value {
        let body = match delta {
            OutputDelta::Reasoning(text) => json!({ "reasoning_content": text }),
            OutputDelta::Content(text) => json!({ "content": text }),
            OutputDelta::ToolCallStart { index, name } => {
                self.calls = self.calls.max(index + 1);
                json!({ "tool_calls": [{
                    "index": index,
                    "id": self.ids.get(index),
                    "type": "function",
                    "function": { "name": name, "arguments": "" },
                }]})
            }
            OutputDelta::ToolCallArgs { index, fragment } => json!({ "tool_calls": [{
                "index": index,
                "function": { "arguments": fragment },
            }]}),
        };
        self.choice(body, Value::Null)
    }

    fn choice(&self, delta: Value, logprobs: Value) -> Value {
        self.header.chunk(json!([{
            "index": 0,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": null,
        }]))
    }
}

impl ChunkEncoder for ChatChunks {
    fn start(&mut self) -> Vec<Value> {
        vec![self.choice(json!({ "role": "assistant", "content": "" }), Value::Null)]
    }

    fn delta(&mut self, delta: &TokenDelta) -> Vec<Value> {
        let deltas = match self.parser.as_mut() {
            Some(parser) if !delta.text.is_empty() => parser.push(&delta.text),
            _ => Vec::new(),
        };
        let mut chunks: Vec<Value> = deltas.into_iter().map(|d| self.delta_chunk(d)).collect();
        if let (Some(lp), true) = (&delta.logprob, self.logprobs) {
            // Each token's log-probability rides on the first chunk its text produced.
            let logprobs = chat_logprobs(std::slice::from_ref(lp));
            match chunks.first_mut() {
                Some(first) => first["choices"][0]["logprobs"] = logprobs,
                None => chunks.push(self.choice(json!({ "content": "" }), logprobs)),
            }
        }
        chunks
    }

    fn finish(&mut self, done: &Completion) -> Vec<Value> {
        let mut chunks = Vec::new();
        if let Some(parser) = self.parser.take() {
            let (rest, _) = parser.finish();
            for d in rest {
                let chunk = self.delta_chunk(d);
                chunks.push(chunk);
            }
        }
        let reason = if self.calls > 0 {
            "tool_calls"
        } else {
            finish_reason(done.finish_reason)
        };
        let last = json!({
            "index": 0,
            "delta": {},
            "logprobs": null,
            "finish_reason": reason,
        });
        chunks.extend(self.header.closing(last, done));
        chunks
    }
}
