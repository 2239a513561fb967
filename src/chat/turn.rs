//! One chat turn made ready for the engine: the prompt rendered through the model's template
//! (with its tools, or Paddock's generic tool prompt when the template has no tool support),
//! the grammar that shapes the answer, and how to read the answer back.

use serde_json::{json, Map, Value};

use crate::engine::{Grammar, ModelInfo};

use super::grammar::{response_grammar, tool_call_grammar};
use super::request::{FieldError, ResponseFormat, Tool, ToolChoice};
use super::tool_calls::{generic_tools_prompt, OutputOptions, ToolFormat};
use super::ChatTemplate;

pub struct TurnRequest {
    /// OpenAI-shaped messages with checked roles.
    pub messages: Vec<Value>,
    pub tools: Vec<Tool>,
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: bool,
    pub format: ResponseFormat,
    /// Extra template variables (`chat_template_kwargs`).
    pub template_kwargs: Map<String, Value>,
    /// Put `<think>` text into `reasoning_content` (else it stays in the content).
    pub split_reasoning: bool,
}

pub struct PreparedTurn {
    pub prompt: String,
    pub grammar: Option<Grammar>,
    pub output: OutputOptions,
}

pub fn prepare(
    template: &ChatTemplate,
    info: &ModelInfo,
    req: TurnRequest,
) -> Result<PreparedTurn, FieldError> {
    let offered: Vec<&Tool> = match req.tool_choice {
        ToolChoice::None => Vec::new(),
        _ => req.tools.iter().collect(),
    };
    let native = template.supports_tools();
    let format = if native {
        template.tool_format()
    } else {
        ToolFormat::Generic
    };
    let mut messages = if native {
        req.messages.into_iter().map(object_arguments).collect()
    } else {
        req.messages.into_iter().map(plain_tool_turns).collect()
    };
    let tools_json = (!offered.is_empty())
        .then(|| Value::Array(offered.iter().map(|t| t.raw.clone()).collect()));
    if !native {
        if let Some(Value::Array(tools)) = &tools_json {
            add_system_text(&mut messages, &generic_tools_prompt(tools));
        }
    }
    let tools_arg = tools_json.as_ref().filter(|_| native);
    let kwargs = Some(&req.template_kwargs);
    let rendered = template
        .render(&messages, tools_arg, true, kwargs)
        .or_else(|e| {
            // Many templates (Qwen, Gemma) refuse a system message after the first turn, which
            // Claude Code sends; such a message joins the leading system message instead.
            let hoisted = hoist_system_messages(&messages).ok_or(e)?;
            template.render(&hoisted, tools_arg, true, kwargs)
        })
        .map_err(|e| FieldError::new("messages", e.to_string()))?;
    let prompt = strip_bos(rendered, info);

    let envelope = format.envelope();
    let grammar = match (&req.tool_choice, envelope) {
        (ToolChoice::Required, Some(env)) => Some(tool_call_grammar(
            &offered,
            &env,
            req.parallel_tool_calls,
            false,
        )?),
        (ToolChoice::Named(name), Some(env)) => {
            let named: Vec<&Tool> = offered
                .iter()
                .copied()
                .filter(|t| &t.name == name)
                .collect();
            Some(tool_call_grammar(&named, &env, false, false)?)
        }
        (ToolChoice::Auto, Some(env)) if req.format == ResponseFormat::Text => Some(
            tool_call_grammar(&offered, &env, req.parallel_tool_calls, true)?,
        ),
        // Formats without a JSON envelope (XML parameters, harmony) are parsed, not enforced.
        _ => response_grammar(&req.format)?,
    };
    let thinking_open = prompt.trim_end().ends_with("<think>");
    Ok(PreparedTurn {
        prompt,
        grammar,
        output: OutputOptions {
            tools: !offered.is_empty(),
            format,
            reasoning: req.split_reasoning,
            thinking_open,
        },
    })
}

/// A BOS the template writes itself is removed when the tokenizer adds one anyway (no double
/// BOS), as llama.cpp's own chat code does.
fn strip_bos(text: String, info: &ModelInfo) -> String {
    match text.strip_prefix(info.bos_text.as_str()) {
        Some(rest) if info.add_bos && !info.bos_text.is_empty() => rest.to_string(),
        _ => text,
    }
}

/// Tool-aware templates (Qwen, Llama 3.1, Hermes) expect call arguments as objects, while
/// OpenAI clients send JSON text: parse it where it is valid JSON.
fn object_arguments(mut message: Value) -> Value {
    if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
        for call in calls {
            let Some(function) = call.get_mut("function") else {
                continue;
            };
            let parsed = function
                .get("arguments")
                .and_then(Value::as_str)
                .and_then(|a| serde_json::from_str::<Value>(a).ok());
            if let Some(args) = parsed {
                function["arguments"] = args;
            }
        }
    }
    message
}

/// For templates that know nothing of tools: past calls become `<tool_call>` text in the
/// assistant's turn and results become user turns in `<tool_response>`, the same envelope the
/// generic tool prompt teaches, so any template (even strict user/assistant ones) renders them.
fn plain_tool_turns(mut message: Value) -> Value {
    match message.get("role").and_then(Value::as_str) {
        Some("tool") => {
            let content = text_of(message.get("content"));
            json!({ "role": "user", "content": format!("<tool_response>\n{content}\n</tool_response>") })
        }
        Some("assistant") => {
            let Some(Value::Array(calls)) = message.get("tool_calls").cloned() else {
                return message;
            };
            let mut text = text_of(message.get("content"));
            for call in &calls {
                let function = call.get("function").cloned().unwrap_or(Value::Null);
                let args = function.get("arguments").cloned().unwrap_or(json!({}));
                let args = match &args {
                    Value::String(s) => serde_json::from_str(s).unwrap_or(args),
                    _ => args,
                };
                let body = json!({ "name": function.get("name"), "arguments": args });
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("<tool_call>\n{body}\n</tool_call>"));
            }
            if let Some(object) = message.as_object_mut() {
                object.remove("tool_calls");
                object.insert("content".into(), text.into());
            }
            message
        }
        _ => message,
    }
}

fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The conversation with every later system message appended to the leading one; `None` when
/// there is no later system message to move.
fn hoist_system_messages(messages: &[Value]) -> Option<Vec<Value>> {
    let is_system = |m: &Value| m.get("role").and_then(Value::as_str) == Some("system");
    let later: Vec<String> = messages
        .iter()
        .skip(1)
        .filter(|m| is_system(m))
        .map(|m| text_of(m.get("content")))
        .collect();
    if later.is_empty() {
        return None;
    }
    let mut out: Vec<Value> = messages
        .iter()
        .enumerate()
        .filter(|(i, m)| *i == 0 || !is_system(m))
        .map(|(_, m)| m.clone())
        .collect();
    for text in later {
        add_system_text(&mut out, &text);
    }
    Some(out)
}

/// Appends `text` to the leading system message, creating one if there is none.
fn add_system_text(messages: &mut Vec<Value>, text: &str) {
    if let Some(first) = messages.first_mut() {
        if first.get("role").and_then(Value::as_str) == Some("system") {
            let existing = text_of(first.get("content"));
            first["content"] = format!("{existing}\n\n{text}")
                .trim_start()
                .to_string()
                .into();
            return;
        }
    }
    messages.insert(0, json!({ "role": "system", "content": text }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_becomes_plain_text_for_templates_without_tools() {
        let call = json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        ]});
        let out = plain_tool_turns(call);
        assert_eq!(
            out["content"],
            "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>"
        );
        assert!(out.get("tool_calls").is_none());
        let result =
            plain_tool_turns(json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"}));
        assert_eq!(
            result,
            json!({"role": "user", "content": "<tool_response>\n18C\n</tool_response>"})
        );
    }

    #[test]
    fn arguments_become_objects_for_tool_templates() {
        let call = json!({"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": "{\"a\":1}"}},
            {"function": {"name": "g", "arguments": "not json"}}
        ]});
        let out = object_arguments(call);
        assert_eq!(
            out["tool_calls"][0]["function"]["arguments"],
            json!({"a": 1})
        );
        assert_eq!(out["tool_calls"][1]["function"]["arguments"], "not json");
    }

    fn info() -> ModelInfo {
        ModelInfo {
            architecture: "llama".into(),
            n_ctx_train: 4096,
            n_ctx: 4096,
            n_parallel: 1,
            n_vocab: 100,
            n_params: 1,
            size_bytes: 1,
            chat_template: None,
            bos_text: String::new(),
            eos_text: String::new(),
            sampling: Default::default(),
            add_bos: false,
            add_eos: false,
            allocated: None,
            speculation: Default::default(),
        }
    }

    fn turn(messages: Vec<Value>) -> TurnRequest {
        TurnRequest {
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::None,
            parallel_tool_calls: true,
            format: ResponseFormat::Text,
            template_kwargs: Map::new(),
            split_reasoning: true,
        }
    }

    #[test]
    fn a_template_that_refuses_late_system_messages_gets_them_up_front() {
        let strict = "{% for m in messages %}{% if m.role == 'system' and not loop.first %}\
            {{ raise_exception('System message must be at the beginning.') }}{% endif %}\
            [{{ m.role }}] {{ m.content }}\n{% endfor %}";
        let template = ChatTemplate::new(strict, "", "").unwrap();
        let messages = vec![
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "hi"}),
            json!({"role": "system", "content": "Skills: none."}),
        ];
        let prepared = prepare(&template, &info(), turn(messages)).unwrap();
        assert_eq!(
            prepared.prompt,
            "[system] Be brief.\n\nSkills: none.\n[user] hi\n"
        );
    }

    #[test]
    fn later_system_messages_join_the_first() {
        let m = vec![
            json!({"role": "user", "content": "hi"}),
            json!({"role": "system", "content": "skills"}),
            json!({"role": "assistant", "content": "ok"}),
        ];
        let out = hoist_system_messages(&m).unwrap();
        assert_eq!(out[0], json!({"role": "system", "content": "skills"}));
        assert_eq!(out.len(), 3);
        assert_eq!(out[1]["role"], "user");
        assert!(hoist_system_messages(&out).is_none());
    }

    #[test]
    fn system_text_goes_first() {
        let mut m = vec![json!({"role": "user", "content": "hi"})];
        add_system_text(&mut m, "tools");
        assert_eq!(m[0], json!({"role": "system", "content": "tools"}));
        add_system_text(&mut m, "more");
        assert_eq!(m[0]["content"], "tools\n\nmore");
    }
}
