//! Streaming: turns the pipeline's `chat.completion.chunk`s into Anthropic's SSE events:
//! message_start, then per content block content_block_start / _delta… / _stop, then
//! message_delta (stop reason and usage) and message_stop.

use serde_json::{json, Value};

use super::convert::{error_body_from_chat, stop_reason, tool_use_id, usage_counts};
use crate::server::ids::new_id;

/// One SSE event: its name and its data (whose `type` repeats the name, as Anthropic sends it).
type Event = (&'static str, Value);

/// The kind of an open content block; a tool block remembers its tool call's index.
#[derive(Clone, Copy, PartialEq)]
enum Block {
    Thinking,
    Text,
    Tool(u64),
}

/// Turns the pipeline's chunk stream into Anthropic SSE events (event name, data).
pub struct MessageStream {
    id: String,
    model: String,
    input_tokens_hint: u32,
    started: bool,
    /// The open content block with its index; at most one is open at a time.
    open: Option<(usize, Block)>,
    /// How many blocks were opened: the next block's index.
    blocks: usize,
    saw_tool: bool,
    /// Set by the finish chunk; the usage chunk comes after it.
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// message_stop or an error was sent: nothing more may follow.
    done: bool,
}

impl MessageStream {
    pub fn new(model: &str, input_tokens_hint: u32) -> Self {
        Self {
            id: new_id("msg_"),
            model: model.to_owned(),
            input_tokens_hint,
            started: false,
            open: None,
            blocks: 0,
            saw_tool: false,
            finish_reason: None,
            usage: None,
            done: false,
        }
    }

    pub fn push(&mut self, chunk: &Value) -> Vec<Event> {
        let mut events = Vec::new();
        if self.done {
            return events;
        }
        if let Some(error) = chunk.get("error") {
            // The SDKs raise on an `error` event wherever it comes; no block needs closing.
            self.done = true;
            events.push(("error", error_body_from_chat(error)));
            return events;
        }
        self.start(&mut events);
        let choice = chunk.get("choices").and_then(|c| c.get(0));
        let delta = choice.and_then(|c| c.get("delta")).unwrap_or(&Value::Null);
        if let Some(thinking) = non_empty(delta, "reasoning_content") {
            let start = || json!({"type": "thinking", "thinking": "", "signature": ""});
            let delta = json!({"type": "thinking_delta", "thinking": thinking});
            self.append(Block::Thinking, start, Some(delta), &mut events);
        }
        if let Some(text) = non_empty(delta, "content") {
            let start = || json!({"type": "text", "text": ""});
            let delta = json!({"type": "text_delta", "text": text});
            self.append(Block::Text, start, Some(delta), &mut events);
        }
        let calls = delta.get("tool_calls").and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            self.push_tool_call(call, &mut events);
        }
        if let Some(reason) = choice.and_then(|c| non_empty(c, "finish_reason")) {
            self.close_block(&mut events);
            self.finish_reason = Some(reason.to_owned());
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        if self.finish_reason.is_some() && self.usage.is_some() {
            self.end(&mut events);
        }
        events
    }

    /// Called when the chunk stream ended. Returns trailing events (message_delta + message_stop
    /// if not sent yet).
    pub fn finish(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.done {
            self.start(&mut events);
            self.end(&mut events);
        }
        events
    }

    /// A call's first fragment (a new `index`) opens a tool_use block; its argument fragments
    /// pass through as partial JSON, which the client joins and parses at the block's end.
    fn push_tool_call(&mut self, call: &Value, events: &mut Vec<Event>) {
        let function = call.get("function").unwrap_or(&Value::Null);
        let call_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        self.saw_tool = true;
        let start = || {
            let id = tool_use_id(call.get("id").and_then(Value::as_str));
            let name = function.get("name").and_then(Value::as_str).unwrap_or("");
            json!({"type": "tool_use", "id": id, "name": name, "input": {}})
        };
        // The start fragment has empty arguments: it opens the block without a delta.
        let arguments = non_empty(function, "arguments");
        let delta = arguments.map(|a| json!({"type": "input_json_delta", "partial_json": a}));
        self.append(Block::Tool(call_index), start, delta, events);
    }

    fn start(&mut self, events: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        // Usage so far, as the real API sends it: the prompt (from the hint) and one output token.
        let usage = json!({"input_tokens": self.input_tokens_hint, "output_tokens": 1,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage,
        });
        events.push((
            "message_start",
            json!({"type": "message_start", "message": message}),
        ));
    }

    /// Appends `delta` to the open block of `kind`, first closing another block and opening one
    /// (`start` makes its content_block) if needed.
    fn append(
        &mut self,
        kind: Block,
        start: impl FnOnce() -> Value,
        delta: Option<Value>,
        events: &mut Vec<Event>,
    ) {
        let index = match self.open {
            Some((index, open)) if open == kind => index,
            _ => {
                self.close_block(events);
                let index = self.blocks;
                (self.blocks, self.open) = (index + 1, Some((index, kind)));
                let data = json!({"type": "content_block_start", "index": index, "content_block": start()});
                events.push(("content_block_start", data));
                index
            }
        };
        events.extend(delta.map(|delta| block_delta(index, delta)));
    }

    fn close_block(&mut self, events: &mut Vec<Event>) {
        let Some((index, kind)) = self.open.take() else {
            return;
        };
        if kind == Block::Thinking {
            // Clients keep the signature to send the block back; a local model signs nothing.
            events.push(block_delta(
                index,
                json!({"type": "signature_delta", "signature": ""}),
            ));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }

    fn end(&mut self, events: &mut Vec<Event>) {
        self.close_block(events);
        self.done = true;
        let reason = stop_reason(self.finish_reason.as_deref(), self.saw_tool);
        let (mut input, output, cached) = usage_counts(self.usage.as_ref());
        if self.usage.is_none() {
            input = u64::from(self.input_tokens_hint);
        }
        let usage = json!({"output_tokens": output, "input_tokens": input, "cache_read_input_tokens": cached});
        let delta = json!({"stop_reason": reason, "stop_sequence": null});
        events.push((
            "message_delta",
            json!({"type": "message_delta", "delta": delta, "usage": usage}),
        ));
        events.push(("message_stop", json!({"type": "message_stop"})));
    }
}

/// A field's string value unless it is missing or empty.
fn non_empty<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn block_delta(index: usize, delta: Value) -> Event {
    (
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

#[cfg(test)]
mod tests;
