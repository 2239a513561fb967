//! Anthropic Messages API ⇄ Paddock's internal OpenAI chat shapes: the request, the
//! non-streaming response and error bodies. Pure functions over JSON; no I/O.

use crate::server::ids::new_id;
use serde_json::{json, Map, Value};

/// A client mistake in one field of the Anthropic request; Paddock answers it with a 400.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterError {
    /// Path in the Anthropic request, e.g. `messages[2].content[0].type`.
    pub param: String,
    pub message: String,
}

fn fail<T>(param: impl Into<String>, message: impl Into<String>) -> Result<T, AdapterError> {
    Err(AdapterError {
        param: param.into(),
        message: message.into(),
    })
}

/// A field's value, with JSON `null` read as absent (SDKs send explicit nulls).
fn opt<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

fn str_of<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

fn need_str<'a>(object: &'a Value, key: &str, path: &str) -> Result<&'a str, AdapterError> {
    match str_of(object, key) {
        Some(s) => Ok(s),
        None => fail(format!("{path}.{key}"), format!("{key} must be a string")),
    }
}

/// A top-level field if present, checked with `ok`; else an error saying it must be `what`.
fn checked<'a>(
    body: &'a Value,
    key: &str,
    ok: fn(&Value) -> bool,
    what: &str,
) -> Result<Option<&'a Value>, AdapterError> {
    match opt(body, key) {
        Some(v) if !ok(v) => fail(key, format!("{key} must be {what}")),
        v => Ok(v),
    }
}

/// Anthropic Messages request → OpenAI chat request (contract shape). Always sets
/// `stream_options.include_usage` when `stream` is true.
pub fn to_chat_request(body: &Value) -> Result<Value, AdapterError> {
    if !body.is_object() {
        return fail("", "the request body must be a JSON object");
    }
    let mut out = Map::new();
    if let Some(model) = str_of(body, "model") {
        out.insert("model".into(), model.into());
    }
    out.insert("messages".into(), Value::Array(messages(body)?));
    let tools = tools(body)?;
    let choice = opt(body, "tool_choice").map(tool_choice).transpose()?;
    // Without tools a choice means nothing (server tools are skipped: nothing here runs them).
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some((choice, serial)) = choice {
            out.insert("tool_choice".into(), choice);
            if serial {
                out.insert("parallel_tool_calls".into(), false.into());
            }
        }
    }
    let positive = |v: &Value| v.as_u64().is_some_and(|n| n > 0);
    match checked(body, "max_tokens", positive, "a positive integer")? {
        Some(n) => {
            out.insert("max_tokens".into(), n.clone());
        }
        None => return fail("max_tokens", "max_tokens is required"),
    }
    for key in ["temperature", "top_p", "top_k"] {
        if let Some(v) = checked(body, key, Value::is_number, "a number")? {
            out.insert(key.into(), v.clone());
        }
    }
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    let stops = checked(body, "stop_sequences", strings, "an array of strings")?;
    if let Some(stops) = stops.filter(|s| s.as_array().is_some_and(|a| !a.is_empty())) {
        out.insert("stop".into(), stops.clone());
    }
    let stream = checked(body, "stream", Value::is_boolean, "a boolean")?;
    let stream = stream.and_then(Value::as_bool).unwrap_or(false);
    out.insert("stream".into(), stream.into());
    if stream {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    // "enabled", "adaptive" and newer modes all mean "think"; only "disabled" turns it off.
    if let Some(kind) = opt(body, "thinking").and_then(|t| str_of(t, "type")) {
        let kwargs = json!({"enable_thinking": kind != "disabled"});
        out.insert("chat_template_kwargs".into(), kwargs);
    }
    // Structured outputs: `output_config.format`, or `output_format` from the older beta.
    let format = opt(body, "output_config").and_then(|c| opt(c, "format"));
    let format = format.or_else(|| opt(body, "output_format"));
    if let Some(format) = format.filter(|f| str_of(f, "type") == Some("json_schema")) {
        let schema = opt(format, "schema").cloned().unwrap_or_else(|| json!({}));
        let json_schema = json!({"name": "output", "schema": schema, "strict": true});
        let format = json!({"type": "json_schema", "json_schema": json_schema});
        out.insert("response_format".into(), format);
    }
    Ok(Value::Object(out))
}

fn messages(body: &Value) -> Result<Vec<Value>, AdapterError> {
    let list = match body.get("messages").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list,
        Some(_) => return fail("messages", "messages must contain at least one message"),
        None => return fail("messages", "messages is required and must be an array"),
    };
    // Templates want one leading system message: the `system` field plus the system-role
    // messages (Claude Code sends them) that come before the first turn.
    let mut system = Vec::new();
    if let Some(s) = opt(body, "system") {
        system.push(text_of(s, "system")?);
    }
    let mut out = Vec::new();
    for (i, message) in list.iter().enumerate() {
        let path = format!("messages[{i}].content");
        let Some(content) = opt(message, "content") else {
            return fail(path, "content is required");
        };
        match str_of(message, "role") {
            Some("system") if out.is_empty() => system.push(text_of(content, &path)?),
            Some("system") => {
                out.push(json!({"role": "system", "content": text_of(content, &path)?}))
            }
            Some("user") => {
                let parts = parts(content, &path, "user")?;
                // Tool results first: templates need them right after the assistant's calls.
                let only_results = parts.texts.is_empty() && !parts.results.is_empty();
                out.extend(parts.results);
                if !only_results {
                    out.push(json!({"role": "user", "content": parts.texts.join("\n")}));
                }
            }
            Some("assistant") => out.push(assistant_message(parts(content, &path, "assistant")?)),
            _ => {
                return fail(
                    format!("messages[{i}].role"),
                    "role must be user, assistant or system",
                )
            }
        }
    }
    system.retain(|s| !s.is_empty());
    if !system.is_empty() {
        out.insert(0, json!({"role": "system", "content": system.join("\n")}));
    }
    Ok(out)
}

/// A message's content blocks, sorted by kind.
#[derive(Default)]
struct Parts {
    texts: Vec<String>,
    thinking: Vec<String>,
    calls: Vec<Value>,
    results: Vec<Value>,
}

/// Reads `content` (a string or an array of blocks) of a `role` message; the role decides which
/// block types are allowed: "system" (system prompts, tool results) takes text only.
fn parts(content: &Value, path: &str, role: &str) -> Result<Parts, AdapterError> {
    let mut parts = Parts::default();
    if let Some(text) = content.as_str() {
        parts.texts.push(text.to_owned());
        return Ok(parts);
    }
    let Some(list) = content.as_array() else {
        return fail(path, "content must be a string or an array of blocks");
    };
    for (j, block) in list.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let text = |key| need_str(block, key, &path).map(String::from);
        match (str_of(block, "type").unwrap_or(""), role) {
            ("text", _) => parts.texts.push(text("text")?),
            ("tool_result", "user") => parts.results.push(tool_result(block, &path)?),
            ("tool_use", "assistant") => parts.calls.push(tool_call(block, &path)?),
            ("thinking", "assistant") => parts.thinking.push(text("thinking")?),
            // Encrypted: nothing a local model could read.
            ("redacted_thinking", "assistant") => {}
            (kind, _) => {
                let why = match kind {
                    "image" | "document" => {
                        format!("{kind} blocks are not supported: the model takes text only")
                    }
                    _ => format!("content block type {kind:?} is not allowed here"),
                };
                return fail(format!("{path}.type"), why);
            }
        }
    }
    Ok(parts)
}

/// Text from a string or an array of text blocks, joined by "\n".
fn text_of(content: &Value, path: &str) -> Result<String, AdapterError> {
    Ok(parts(content, path, "system")?.texts.join("\n"))
}

fn tool_result(block: &Value, path: &str) -> Result<Value, AdapterError> {
    let id = need_str(block, "tool_use_id", path)?;
    let mut text = match opt(block, "content") {
        Some(content) => text_of(content, &format!("{path}.content"))?,
        None => String::new(),
    };
    if block.get("is_error") == Some(&Value::Bool(true)) {
        text = format!("Error: {text}");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

fn tool_call(block: &Value, path: &str) -> Result<Value, AdapterError> {
    let (id, name) = (need_str(block, "id", path)?, need_str(block, "name", path)?);
    let arguments = opt(block, "input").map_or_else(|| "{}".to_owned(), Value::to_string);
    Ok(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
}

fn assistant_message(parts: Parts) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = match parts.texts.is_empty() && !parts.calls.is_empty() {
        true => Value::Null,
        false => parts.texts.join("\n").into(),
    };
    message.insert("content".into(), content);
    if !parts.thinking.is_empty() {
        message.insert("reasoning_content".into(), parts.thinking.join("\n").into());
    }
    if !parts.calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(parts.calls));
    }
    Value::Object(message)
}

fn tools(body: &Value) -> Result<Vec<Value>, AdapterError> {
    let Some(list) = checked(body, "tools", Value::is_array, "an array")?.and_then(Value::as_array)
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, tool) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let schema = opt(tool, "input_schema");
        // Server tools (web_search_…, bash_…, text_editor_…) run on Anthropic's side: skip them.
        if schema.is_none() && str_of(tool, "type").is_some_and(|t| t != "custom") {
            continue;
        }
        let mut function = Map::new();
        function.insert("name".into(), need_str(tool, "name", &path)?.into());
        if let Some(description) = str_of(tool, "description") {
            function.insert("description".into(), description.into());
        }
        let Some(schema) = schema.filter(|s| s.is_object()) else {
            return fail(
                format!("{path}.input_schema"),
                "input_schema must be a JSON schema object",
            );
        };
        function.insert("parameters".into(), schema.clone());
        if let Some(strict) = tool.get("strict").and_then(Value::as_bool) {
            function.insert("strict".into(), strict.into());
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}

/// `tool_choice` → (OpenAI tool_choice, whether parallel tool calls are turned off).
fn tool_choice(choice: &Value) -> Result<(Value, bool), AdapterError> {
    let mapped = match str_of(choice, "type") {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = need_str(choice, "name", "tool_choice")?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return fail(
                "tool_choice.type",
                "tool_choice.type must be auto, any, tool or none",
            )
        }
    };
    let serial = choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true));
    Ok((mapped, serial))
}

/// Anthropic tool ids start with `toolu_`; the pipeline's id stays inside so it round-trips.
pub(super) fn tool_use_id(call_id: Option<&str>) -> String {
    match call_id.filter(|id| !id.is_empty()) {
        Some(id) if id.starts_with("toolu_") => id.to_owned(),
        Some(id) => format!("toolu_{id}"),
        None => new_id("toolu_"),
    }
}

pub(super) fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        _ if has_tool_calls => "tool_use",
        // The pipeline does not say whether a stop string or the end token ended the answer.
        _ => "end_turn",
    }
}

/// OpenAI usage → (input_tokens, output_tokens, cache_read_input_tokens). Anthropic counts
/// cache hits apart: input_tokens + cache_read_input_tokens is the whole prompt.
pub(super) fn usage_counts(usage: Option<&Value>) -> (u64, u64, u64) {
    let count = |pointer: &str| {
        usage
            .and_then(|u| u.pointer(pointer)?.as_u64())
            .unwrap_or(0)
    };
    let cached = count("/prompt_tokens_details/cached_tokens");
    let input = count("/prompt_tokens").saturating_sub(cached);
    (input, count("/completion_tokens"), cached)
}

/// OpenAI `chat.completion` → Anthropic message object; `model` echoes the request's name.
pub fn from_chat_response(chat: &Value, model: &str) -> Value {
    let choice = chat.get("choices").and_then(|c| c.get(0));
    let message = choice.and_then(|c| c.get("message"));
    let message = message.unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(thinking) = str_of(message, "reasoning_content").filter(|s| !s.is_empty()) {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
    }
    if let Some(text) = str_of(message, "content").filter(|s| !s.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        let function = call.get("function").unwrap_or(&Value::Null);
        let input = match function.get("arguments") {
            Some(Value::String(arguments)) => serde_json::from_str(arguments).ok(),
            other => other.cloned(),
        };
        content.push(json!({
            "type": "tool_use",
            "id": tool_use_id(str_of(call, "id")),
            "name": str_of(function, "name").unwrap_or(""),
            "input": input.filter(Value::is_object).unwrap_or_else(|| json!({})),
        }));
    }
    let finish = choice.and_then(|c| str_of(c, "finish_reason"));
    let has_calls = calls.is_some_and(|c| !c.is_empty());
    let (input, output, cached) = usage_counts(chat.get("usage"));
    json!({
        "id": new_id("msg_"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason(finish, has_calls), "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": output,
                  "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0},
    })
}

/// Anthropic error body for an HTTP status and a message.
pub fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Anthropic error body for the pipeline's OpenAI error object (an error chunk's `error`).
pub fn error_body_from_chat(error: &Value) -> Value {
    let status = match (str_of(error, "type"), str_of(error, "code")) {
        (_, Some("invalid_api_key")) => 401,
        (_, Some("not_found" | "model_not_found")) => 404,
        (Some("invalid_request_error" | "exceed_context_size_error"), _) => 400,
        (Some("unavailable_error"), _) => 503,
        _ => 500,
    };
    let message = str_of(error, "message").unwrap_or("internal server error");
    error_body(status, message)
}

#[cfg(test)]
mod tests;
