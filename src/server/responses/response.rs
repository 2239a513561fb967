//! The pipeline's `chat.completion` as a Response object (pure JSON), and the item builders the
//! streaming path shares, so both paths build the same object.

use serde_json::{json, Value};

use super::request::str_at;
use crate::server::ids::{new_id, unix_now};

/// What names one response; the streaming path keeps one so both paths build the same object.
pub(super) struct Head {
    pub id: String,
    pub created_at: u64,
    pub model: String,
}

/// OpenAI chat.completion → Response object. `request` is the original Responses request, whose
/// settings the Response echoes as the SDKs expect.
pub fn from_chat_response(chat: &Value, request: &Value) -> Value {
    let model = str_at(chat, "/model").or_else(|| str_at(request, "/model"));
    let head = Head {
        id: new_id("resp_"),
        created_at: chat
            .get("created")
            .and_then(Value::as_u64)
            .unwrap_or_else(unix_now),
        model: model.unwrap_or("").to_string(),
    };
    let message = chat.pointer("/choices/0/message").unwrap_or(&Value::Null);
    let text = |key: &str| str_at(message, key).filter(|s| !s.is_empty());
    let mut output = Vec::new();
    if let Some(reasoning) = text("/reasoning_content") {
        output.push(reasoning_item(&new_id("rs_"), reasoning));
    }
    if let Some(content) = text("/content") {
        output.push(message_item(&new_id("msg_"), content, "completed"));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        let field = |pointer: &str| str_at(call, pointer).unwrap_or("");
        let (name, arguments) = (field("/function/name"), field("/function/arguments"));
        let item = function_call_item(&new_id("fc_"), field("/id"), name, arguments, "completed");
        output.push(item);
    }
    let status = response_status(str_at(chat, "/choices/0/finish_reason"));
    // The item the model was writing when it ran out of tokens is the unfinished one.
    let last = output.last_mut().and_then(|item| item.get_mut("status"));
    if let Some(last) = last.filter(|_| status == "incomplete") {
        *last = status.into();
    }
    response_object(&head, request, status, output, usage(chat.get("usage")))
}

/// A Response object; the client's settings are echoed, with OpenAI's defaults otherwise.
pub(super) fn response_object(
    head: &Head,
    request: &Value,
    status: &str,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    let echo = |key: &str, default: Value| {
        request
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let incomplete = match status {
        "incomplete" => json!({"reason": "max_output_tokens"}),
        _ => Value::Null,
    };
    json!({
        "id": head.id,
        "object": "response",
        "created_at": head.created_at,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": echo("instructions", Value::Null),
        "max_output_tokens": echo("max_output_tokens", Value::Null),
        "metadata": echo("metadata", json!({})),
        "model": head.model,
        "output": output,
        "parallel_tool_calls": echo("parallel_tool_calls", true.into()),
        "previous_response_id": null,
        "prompt_cache_key": echo("prompt_cache_key", Value::Null),
        "reasoning": echo("reasoning", json!({"effort": null, "summary": null})),
        "store": false,
        "temperature": echo("temperature", Value::Null),
        "text": echo("text", json!({"format": {"type": "text"}})),
        "tool_choice": echo("tool_choice", "auto".into()),
        "tools": echo("tools", json!([])),
        "top_p": echo("top_p", Value::Null),
        "truncation": echo("truncation", "disabled".into()),
        "usage": usage,
        "user": echo("user", Value::Null),
    })
}

/// Running out of tokens leaves the response incomplete; any other stop completes it.
pub(super) fn response_status(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "incomplete",
        _ => "completed",
    }
}

/// Chat usage → Responses usage; null when the pipeline reported none.
pub(super) fn usage(chat_usage: Option<&Value>) -> Value {
    let Some(u) = chat_usage.filter(|u| u.is_object()) else {
        return Value::Null;
    };
    let count = |pointer: &str| u.pointer(pointer).and_then(Value::as_u64);
    let (input, output) = (count("/prompt_tokens"), count("/completion_tokens"));
    let (input, output) = (input.unwrap_or(0), output.unwrap_or(0));
    // cache_write_tokens: the newest SDK requires it; llama.cpp does not report it.
    let cached = count("/prompt_tokens_details/cached_tokens").unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": count("/total_tokens").unwrap_or(input + output),
    })
}

pub(super) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [], "content": [reasoning_part(text)]})
}

pub(super) fn reasoning_part(text: &str) -> Value {
    json!({"type": "reasoning_text", "text": text})
}

pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = [text_part(text)];
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn function_call_item(
    id: &str,
    call: &str,
    name: &str,
    args: &str,
    status: &str,
) -> Value {
    json!({
        "type": "function_call", "id": id, "call_id": call, "name": name, "arguments": args,
        "status": status,
    })
}
