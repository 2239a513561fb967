//! A Responses request as an OpenAI chat request for Paddock's one chat pipeline (pure JSON).
//! The server is stateless: nothing is stored, so clients resend the whole history in `input`
//! (Codex CLI does, with `store: false`).

use serde_json::{json, Map, Value};

/// A client mistake: `param` is the field's path in the Responses request; Paddock answers 400.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterError {
    pub param: String,
    pub message: String,
}

fn err<T>(param: impl Into<String>, message: impl Into<String>) -> Result<T, AdapterError> {
    let (param, message) = (param.into(), message.into());
    Err(AdapterError { param, message })
}

/// The string at a JSON pointer (`"/a/0/b"`), if there is one.
pub(super) fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Whether a field's value has the right type.
type Check = fn(&Value) -> bool;

const STATELESS: &str = "this server is stateless and stores nothing: resend the whole history";

/// Responses request → OpenAI chat request (the pipeline's contract shape).
/// Sets `stream_options.include_usage` when streaming: the final Responses event needs usage.
pub fn to_chat_request(body: &Value) -> Result<Value, AdapterError> {
    for key in ["previous_response_id", "conversation"] {
        if body.get(key).is_some_and(|v| !v.is_null()) {
            return err(
                key,
                format!("{key} is not supported: {STATELESS} in `input`"),
            );
        }
    }
    let mut messages = Messages::default();
    match body.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push("system", s.clone()),
        Some(_) => return err("instructions", "instructions must be a string"),
    }
    match body.get("input") {
        Some(Value::String(s)) => messages.push("user", s.clone()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                messages.add_item(item, &format!("input[{i}]"))?;
            }
        }
        _ => return err("input", "input must be a string or a list of items"),
    }
    if messages.list.is_empty() {
        return err("input", "input must contain at least one item");
    }

    let mut chat = Map::new();
    if let Some(model) = str_at(body, "/model") {
        chat.insert("model".into(), model.into());
    }
    chat.insert("messages".into(), messages.list.into());
    let tools = function_tools(body.get("tools"))?;
    if !tools.is_empty() {
        chat.insert("tools".into(), tools.into());
    }
    if let Some(choice) = tool_choice(body.get("tool_choice"))? {
        chat.insert("tool_choice".into(), choice);
    }
    let positive: Check = |v| v.as_u64().is_some_and(|n| n > 0);
    let checks: [(&str, &str, Check, &str); 5] = [
        (
            "parallel_tool_calls",
            "parallel_tool_calls",
            Value::is_boolean,
            "a boolean",
        ),
        ("temperature", "temperature", Value::is_number, "a number"),
        ("top_p", "top_p", Value::is_number, "a number"),
        (
            "max_output_tokens",
            "max_tokens",
            positive,
            "a positive integer",
        ),
        ("stream", "stream", Value::is_boolean, "a boolean"),
    ];
    for (key, chat_key, ok, what) in checks {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if ok(v) => {
                chat.insert(chat_key.into(), v.clone());
            }
            Some(_) => return err(key, format!("{key} must be {what}")),
        }
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(format) = response_format(body.get("text"))? {
        chat.insert("response_format".into(), format);
    }
    // Only an explicit effort switches thinking; "none" and "minimal" mean none at all.
    if let Some(effort) = str_at(body, "/reasoning/effort") {
        let thinking = !matches!(effort, "none" | "minimal");
        let kwargs = json!({"enable_thinking": thinking});
        chat.insert("chat_template_kwargs".into(), kwargs);
    }
    Ok(Value::Object(chat))
}

/// Chat messages built from Responses items, in order.
#[derive(Default)]
struct Messages {
    list: Vec<Value>,
    /// Thinking from a `reasoning` item, waiting for the assistant turn it belongs to.
    reasoning: Option<String>,
}

impl Messages {
    fn push(&mut self, role: &str, content: String) {
        // One leading system message (instructions + developer items): some templates want one.
        if let [first] = self.list.as_mut_slice() {
            if role == "system" && str_at(first, "/role") == Some("system") {
                let joined = format!("{}\n\n{content}", str_at(first, "/content").unwrap_or(""));
                first["content"] = joined.into();
                return;
            }
        }
        self.push_message(json!({"role": role, "content": content}));
    }

    /// Pending thinking goes on the next message if it is the assistant's; otherwise no answer
    /// followed it, and it is dropped.
    fn push_message(&mut self, mut message: Value) {
        if let Some(text) = self.reasoning.take() {
            if str_at(&message, "/role") == Some("assistant") {
                message["reasoning_content"] = text.into();
            }
        }
        self.list.push(message);
    }

    /// Consecutive calls form one assistant turn, as does a text message right before them.
    fn push_call(&mut self, call: Value) {
        let open = self.reasoning.is_none(); // thinking before the calls starts a new turn
        let last = self
            .list
            .last_mut()
            .filter(|m| open && str_at(m, "/role") == Some("assistant"));
        match last {
            Some(last) => match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                Some(calls) => calls.push(call),
                None => last["tool_calls"] = json!([call]),
            },
            None => {
                let message = json!({"role": "assistant", "content": null, "tool_calls": [call]});
                self.push_message(message);
            }
        }
    }

    fn add_item(&mut self, item: &Value, path: &str) -> Result<(), AdapterError> {
        if !item.is_object() {
            return err(path, "each input item must be an object");
        }
        let field = |key: &str| format!("{path}.{key}");
        let kind = match item.get("type") {
            None | Some(Value::Null) => "message",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return err(field("type"), "type must be a string"),
        };
        match kind {
            "message" => {
                let role = match str_at(item, "/role") {
                    Some(r @ ("user" | "assistant" | "system")) => r,
                    Some("developer") => "system",
                    _ => {
                        return err(
                            field("role"),
                            "role must be user, assistant, system or developer",
                        )
                    }
                };
                let what = "content must be a string or a list of content parts";
                self.push(role, text_of(item.get("content"), &field("content"), what)?);
            }
            "function_call" => {
                let arguments = match item.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ Value::Object(_)) => v.to_string(),
                    _ => return err(field("arguments"), "arguments must be a JSON string"),
                };
                let name = required_str(item, "name", path)?;
                let function = json!({"name": name, "arguments": arguments});
                let id = required_str(item, "call_id", path)?;
                self.push_call(json!({"id": id, "type": "function", "function": function}));
            }
            "function_call_output" => {
                let call_id = required_str(item, "call_id", path)?;
                let what = "output must be a string or a list of input_text parts";
                let output = media_as_text(item.get("output"));
                let output = text_of(output.as_ref(), &field("output"), what)?;
                let message = json!({"role": "tool", "tool_call_id": call_id, "content": output});
                self.push_message(message);
            }
            "reasoning" => self.reasoning = reasoning_text(item),
            "item_reference" => return err(field("type"), format!("item_reference: {STATELESS}")),
            other => {
                let known = "message, function_call, function_call_output or reasoning";
                return err(
                    field("type"),
                    format!("unsupported item type {other:?}; use {known}"),
                );
            }
        }
        Ok(())
    }
}

/// A tool's output may hold an image (Codex's `view_image`); it stays in every later turn's
/// history, so refusing it would break the session. The model is told it was left out instead.
fn media_as_text(output: Option<&Value>) -> Option<Value> {
    let Some(Value::Array(parts)) = output else {
        return output.cloned();
    };
    let parts = parts.iter().map(|part| match str_at(part, "/type") {
        Some(kind @ ("input_image" | "input_file" | "input_audio")) => {
            json!({"type": "input_text", "text": format!("[{kind} left out: this model reads text only]")})
        }
        _ => part.clone(),
    });
    Some(Value::Array(parts.collect()))
}

fn required_str(item: &Value, key: &str, path: &str) -> Result<String, AdapterError> {
    match item.get(key).and_then(Value::as_str) {
        Some(s) => Ok(s.to_string()),
        None => err(format!("{path}.{key}"), format!("{key} must be a string")),
    }
}

/// A string, or the text of content parts joined by newlines (as llama.cpp joins them);
/// `what` says what was expected.
fn text_of(content: Option<&Value>, path: &str, what: &str) -> Result<String, AdapterError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(parts)) => parts,
        _ => return err(path, what),
    };
    let mut texts = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let key = match str_at(part, "/type") {
            Some("input_text" | "output_text" | "text") => "text",
            Some("refusal") => "refusal",
            Some(kind @ ("input_image" | "input_file" | "input_audio")) => {
                let why = "the models this server runs read text only";
                return err(
                    format!("{path}[{j}].type"),
                    format!("{kind} is not supported: {why}"),
                );
            }
            _ => {
                return err(
                    format!("{path}[{j}].type"),
                    "parts must be input_text or output_text",
                )
            }
        };
        match str_at(part, &format!("/{key}")) {
            Some(text) => texts.push(text),
            None => {
                return err(
                    format!("{path}[{j}].{key}"),
                    format!("{key} must be a string"),
                )
            }
        }
    }
    Ok(texts.join("\n"))
}

/// A reasoning item's full text (`content`), else its summary; None when empty.
fn reasoning_text(item: &Value) -> Option<String> {
    let texts = |key: &str| -> Vec<&str> {
        let parts = item
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        parts.filter_map(|p| str_at(p, "/text")).collect()
    };
    let content = texts("content");
    let text = if content.is_empty() {
        texts("summary")
    } else {
        content
    }
    .join("\n");
    (!text.is_empty()).then_some(text)
}

/// Function tools in chat form. Other types (web_search, namespace, custom, mcp…) need tools
/// that this server does not run; Codex CLI sends them anyway, so they are skipped, not rejected.
fn function_tools(tools: Option<&Value>) -> Result<Vec<Value>, AdapterError> {
    let list = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return err("tools", "tools must be a list"),
    };
    let mut out = Vec::new();
    for (i, tool) in list.iter().enumerate() {
        if str_at(tool, "/type") != Some("function") {
            continue;
        }
        let name = required_str(tool, "name", &format!("tools[{i}]"))?;
        let mut function = Map::from_iter([("name".to_string(), Value::from(name))]);
        for key in ["description", "parameters", "strict"] {
            if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
                function.insert(key.into(), v.clone());
            }
        }
        // Chat templates iterate over the parameters, so a tool without any gets an empty schema.
        let empty = || json!({"type": "object", "properties": {}});
        function.entry("parameters").or_insert_with(empty);
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}

fn tool_choice(choice: Option<&Value>) -> Result<Option<Value>, AdapterError> {
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok(Some(s.as_str().into()))
        }
        Some(c) if str_at(c, "/type") == Some("function") => {
            let name = required_str(c, "name", "tool_choice")?;
            Ok(Some(
                json!({"type": "function", "function": {"name": name}}),
            ))
        }
        Some(_) => {
            let forms = r#""auto", "none", "required" or {"type": "function", "name": ...}"#;
            err(
                "tool_choice",
                format!("tool_choice must be {forms}: no other tools run here"),
            )
        }
    }
}

/// `text.format` → chat `response_format`; plain text needs none.
fn response_format(text: Option<&Value>) -> Result<Option<Value>, AdapterError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match str_at(format, "/type") {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
                return err(
                    "text.format.schema",
                    "a json_schema format needs a schema object",
                );
            };
            let name = str_at(format, "/name").unwrap_or("response");
            let mut spec = json!({"name": name, "schema": schema});
            for key in ["strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    spec[key] = v.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": spec})))
        }
        _ => err(
            "text.format.type",
            "must be text, json_object or json_schema",
        ),
    }
}
