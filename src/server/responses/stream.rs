//! Streaming: OpenAI `chat.completion.chunk`s in, Responses API events out. An output item
//! (reasoning, message, function call) opens at its first delta and closes when the next one
//! starts or the model finishes. The last event carries the same Response object that
//! `from_chat_response` builds, as the SDKs check the streamed items against it.

use serde_json::{json, Value};

use super::response::{self, Head};
use crate::server::ids::{new_id, unix_now};

/// An event for the SSE wire: its name, and its data (which repeats the name as `type`).
type Event = (&'static str, Value);

/// The output item receiving deltas.
struct OpenItem {
    id: String,
    kind: Kind,
    /// Reasoning text, message text or call arguments, so far.
    text: String,
}

enum Kind {
    Reasoning,
    Message,
    /// `index` is the chat stream's tool-call index, which ties fragments to their call.
    Call {
        index: u64,
        call_id: String,
        name: String,
    },
}

impl OpenItem {
    fn to_json(&self, status: &str) -> Value {
        match &self.kind {
            Kind::Reasoning => response::reasoning_item(&self.id, &self.text),
            Kind::Message => response::message_item(&self.id, &self.text, status),
            Kind::Call { call_id, name, .. } => {
                response::function_call_item(&self.id, call_id, name, &self.text, status)
            }
        }
    }

    /// The one content part of a reasoning or message item; calls have none.
    fn part(&self, text: &str) -> Option<Value> {
        match self.kind {
            Kind::Reasoning => Some(response::reasoning_part(text)),
            Kind::Message => Some(response::text_part(text)),
            Kind::Call { .. } => None,
        }
    }
}

/// `base`'s fields followed by `extra`'s.
fn merged(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Some(fields), Value::Object(extra)) = (out.as_object_mut(), extra) {
        fields.extend(extra);
    }
    out
}

/// Turns one request's chunk stream into Responses events.
pub struct ResponseStream {
    request: Value,
    head: Head,
    /// The next event's `sequence_number`.
    sequence: u64,
    started: bool,
    /// Closed output items, as the final Response lists them.
    output: Vec<Value>,
    /// The item receiving deltas; its `output_index` is `output.len()`.
    open: Option<OpenItem>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// A final event (completed, incomplete or failed) went out: nothing may follow it.
    ended: bool,
}

impl ResponseStream {
    pub fn new(request: &Value) -> Self {
        let model = request.get("model").and_then(Value::as_str).unwrap_or("");
        Self {
            request: request.clone(),
            head: Head {
                id: new_id("resp_"),
                created_at: unix_now(),
                model: model.to_string(),
            },
            sequence: 0,
            started: false,
            output: Vec::new(),
            open: None,
            finish_reason: None,
            usage: None,
            ended: false,
        }
    }

    /// The events for one chunk. Usage comes after the finish chunk, so the final event goes
    /// out once both have arrived (or in `finish`).
    pub fn push(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if !self.started {
            // The served model's name, as the non-streaming response reports it.
            if let Some(model) = chunk.get("model").and_then(Value::as_str) {
                self.head.model = model.to_string();
            }
            self.start(&mut out);
        }
        if let Some(error) = chunk.get("error") {
            self.fail(&mut out, error);
            return out;
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(response::usage(Some(usage)));
        }
        if let Some(choice) = chunk.pointer("/choices/0") {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            let text = |key: &str| {
                delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            if let Some(piece) = text("reasoning_content") {
                self.text_delta(Kind::Reasoning, piece, &mut out);
            }
            if let Some(piece) = text("content") {
                self.text_delta(Kind::Message, piece, &mut out);
            }
            let calls = delta.get("tool_calls").and_then(Value::as_array);
            for call in calls.into_iter().flatten() {
                self.call_delta(call, &mut out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
                self.close(&mut out);
            }
        }
        if self.finish_reason.is_some() && self.usage.is_some() {
            self.complete(&mut out);
        }
        out
    }

    /// The events once the chunks have ended: the final event, unless it went out already.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if !self.started {
            self.start(&mut out);
        }
        if self.finish_reason.is_some() {
            self.complete(&mut out);
        } else {
            let error = json!({"message": "the model stream ended before the answer was finished"});
            self.fail(&mut out, &error);
        }
        out
    }

    fn emit(&mut self, out: &mut Vec<Event>, kind: &'static str, data: Value) {
        let head = json!({"type": kind, "sequence_number": self.sequence});
        self.sequence += 1;
        out.push((kind, merged(&head, data)));
    }

    fn response(&self, status: &str) -> Value {
        let usage = self.usage.clone().unwrap_or(Value::Null);
        let output = self.output.clone();
        response::response_object(&self.head, &self.request, status, output, usage)
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        self.started = true;
        let response = json!({ "response": self.response("in_progress") });
        self.emit(out, "response.created", response.clone());
        self.emit(out, "response.in_progress", response);
    }

    /// A reasoning or message piece: it opens its item unless that kind is the open one.
    fn text_delta(&mut self, kind: Kind, piece: &str, out: &mut Vec<Event>) {
        let open = self.open.as_ref().map(|o| &o.kind);
        let same = matches!(
            (open, &kind),
            (Some(Kind::Reasoning), Kind::Reasoning) | (Some(Kind::Message), Kind::Message)
        );
        if !same {
            self.open_item(kind, out);
        }
        self.delta(piece, out);
    }

    /// A tool-call fragment: the first one of a call (a new index) opens its item.
    fn call_delta(&mut self, call: &Value, out: &mut Vec<Event>) {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let open = self.open.as_ref().map(|o| &o.kind);
        if !matches!(open, Some(Kind::Call { index: i, .. }) if *i == index) {
            let field = |pointer: &str| call.pointer(pointer).and_then(Value::as_str);
            let call_id = field("/id").map_or_else(|| new_id("call_"), str::to_string);
            let name = field("/function/name").unwrap_or("").to_string();
            let kind = Kind::Call {
                index,
                call_id,
                name,
            };
            self.open_item(kind, out);
        }
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
        if let Some(piece) = arguments.filter(|s| !s.is_empty()) {
            self.delta(piece, out);
        }
    }

    fn open_item(&mut self, kind: Kind, out: &mut Vec<Event>) {
        self.close(out);
        let prefix = match kind {
            Kind::Reasoning => "rs_",
            Kind::Message => "msg_",
            Kind::Call { .. } => "fc_",
        };
        let open = OpenItem {
            id: new_id(prefix),
            kind,
            text: String::new(),
        };
        let mut item = open.to_json("in_progress");
        // The SDK adds content parts to the item as their `content_part.added` events arrive.
        if let Some(content) = item.get_mut("content") {
            *content = json!([]);
        }
        let index = self.output.len();
        let added = json!({"output_index": index, "item": item});
        self.emit(out, "response.output_item.added", added);
        if let Some(part) = open.part("") {
            let at = json!({"item_id": open.id, "output_index": index, "content_index": 0});
            self.emit(
                out,
                "response.content_part.added",
                merged(&at, json!({ "part": part })),
            );
        }
        self.open = Some(open);
    }

    /// A piece of the open item's text.
    fn delta(&mut self, piece: &str, out: &mut Vec<Event>) {
        let index = self.output.len();
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.text.push_str(piece);
        let at = json!({"item_id": open.id, "output_index": index});
        let (kind, fields) = match open.kind {
            Kind::Reasoning => ("response.reasoning_text.delta", json!({"content_index": 0})),
            Kind::Message => {
                let fields = json!({"content_index": 0, "logprobs": []});
                ("response.output_text.delta", fields)
            }
            Kind::Call { .. } => ("response.function_call_arguments.delta", json!({})),
        };
        self.emit(
            out,
            kind,
            merged(&merged(&at, fields), json!({ "delta": piece })),
        );
    }

    /// Closes the open item: its done events, then it joins the output.
    fn close(&mut self, out: &mut Vec<Event>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let index = self.output.len();
        let text = open.text.as_str();
        let at = json!({"item_id": open.id, "output_index": index});
        let (kind, fields) = match &open.kind {
            Kind::Reasoning => {
                let fields = json!({"content_index": 0, "text": text});
                ("response.reasoning_text.done", fields)
            }
            Kind::Message => {
                let fields = json!({"content_index": 0, "text": text, "logprobs": []});
                ("response.output_text.done", fields)
            }
            Kind::Call { name, .. } => {
                let fields = json!({"arguments": text, "name": name});
                ("response.function_call_arguments.done", fields)
            }
        };
        self.emit(out, kind, merged(&at, fields));
        if let Some(part) = open.part(text) {
            let fields = json!({"content_index": 0, "part": part});
            self.emit(out, "response.content_part.done", merged(&at, fields));
        }
        // Only the item cut short by the token limit is incomplete.
        let item = open.to_json(response::response_status(self.finish_reason.as_deref()));
        let done = json!({"output_index": index, "item": item});
        self.emit(out, "response.output_item.done", done);
        self.output.push(item);
    }

    fn complete(&mut self, out: &mut Vec<Event>) {
        self.close(out);
        let status = response::response_status(self.finish_reason.as_deref());
        let kind = match status {
            "incomplete" => "response.incomplete",
            _ => "response.completed",
        };
        let response = json!({ "response": self.response(status) });
        self.emit(out, kind, response);
        self.ended = true;
    }

    /// An error ends the response as failed. The unfinished item is left out: partial output
    /// would pass for a finished answer.
    fn fail(&mut self, out: &mut Vec<Event>, error: &Value) {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| error.as_str());
        // Codex CLI acts on `code` (context_length_exceeded makes it compact the history).
        let code = error
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("server_error");
        let error = json!({"code": code, "message": message.unwrap_or("the model failed")});
        let response = merged(&self.response("failed"), json!({ "error": error }));
        self.emit(out, "response.failed", json!({ "response": response }));
        self.ended = true;
    }
}

#[cfg(test)]
mod tests;
