//! What a chat request asks for beyond its messages, checked and in domain terms: the tools
//! the model may call, whether it must call one, and the shape its answer must take. Built
//! from OpenAI-shaped JSON, which the Anthropic and Responses adapters produce too.

use serde_json::Value;

/// OpenAI's limit on tools per request.
pub const MAX_TOOLS: usize = 128;

/// A rejected request field: `param` is the JSON path, `message` says what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct FieldError {
    pub param: String,
    pub message: String,
}

impl FieldError {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    /// JSON schema of the arguments object.
    pub parameters: Value,
    /// The tool as the client sent it (`{"type":"function","function":{...}}`), for templates.
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    /// Tools are neither shown to the model nor parsed from its answer.
    None,
    Auto,
    /// The answer must be one or more tool calls.
    Required,
    /// The answer must be a call of this tool.
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    /// Output must validate against this JSON schema.
    JsonSchema(Value),
    /// A raw llama.cpp GBNF grammar (llama-server's `grammar` extension).
    Grammar(String),
}

/// Checks `tools` (OpenAI function tools) and returns them in order.
pub fn parse_tools(tools: &[Value]) -> Result<Vec<Tool>, FieldError> {
    if tools.len() > MAX_TOOLS {
        return Err(FieldError::new(
            "tools",
            format!("at most {MAX_TOOLS} tools, not {}", tools.len()),
        ));
    }
    let mut out: Vec<Tool> = Vec::with_capacity(tools.len());
    for (i, raw) in tools.iter().enumerate() {
        let at = |field: &str| format!("tools[{i}]{field}");
        if raw.get("type").and_then(Value::as_str) != Some("function") {
            return Err(FieldError::new(
                at(".type"),
                "only tools of type \"function\" are supported",
            ));
        }
        let function = raw
            .get("function")
            .filter(|f| f.is_object())
            .ok_or_else(|| FieldError::new(at(".function"), "a function object is required"))?;
        let name = function.get("name").and_then(Value::as_str).unwrap_or("");
        if !valid_name(name) {
            return Err(FieldError::new(
                at(".function.name"),
                "a name of 1 to 64 letters, digits, '_', '-' or '.' is required",
            ));
        }
        if out.iter().any(|t| t.name == name) {
            return Err(FieldError::new(
                at(".function.name"),
                format!("two tools are named {name:?}"),
            ));
        }
        let parameters = match function.get("parameters") {
            None | Some(Value::Null) => serde_json::json!({ "type": "object", "properties": {} }),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => {
                return Err(FieldError::new(
                    at(".function.parameters"),
                    "parameters must be a JSON schema object",
                ))
            }
        };
        out.push(Tool {
            name: name.to_string(),
            parameters,
            raw: raw.clone(),
        });
    }
    Ok(out)
}

/// OpenAI's rule for function names (letters, digits, `_`, `-`), plus `.` for namespaced tools.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `tool_choice`: absent means `auto` when there are tools, as in OpenAI.
pub fn parse_tool_choice(choice: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, FieldError> {
    let bad = |m: &str| FieldError::new("tool_choice", m);
    let choice = match choice {
        None | Some(Value::Null) => {
            return Ok(if tools.is_empty() {
                ToolChoice::None
            } else {
                ToolChoice::Auto
            })
        }
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            _ => {
                return Err(bad(
                    "must be \"none\", \"auto\", \"required\" or a function",
                ))
            }
        },
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad("a named choice is {\"type\":\"function\",\"function\":{\"name\":...}}")
                })?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(bad(&format!("no tool named {name:?} in tools")));
            }
            ToolChoice::Named(name.to_string())
        }
    };
    if tools.is_empty() && matches!(choice, ToolChoice::Required) {
        return Err(bad("\"required\" needs at least one tool"));
    }
    Ok(choice)
}

/// `response_format` plus the `grammar` extension; both at once is ambiguous and refused.
pub fn parse_response_format(
    format: Option<&Value>,
    grammar: Option<String>,
) -> Result<ResponseFormat, FieldError> {
    let bad = |param: &str, m: &str| FieldError::new(param, m);
    let format = match format {
        None | Some(Value::Null) => ResponseFormat::Text,
        Some(f) => match f.get("type").and_then(Value::as_str) {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => {
                let schema = f
                    .get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        bad(
                            "response_format.json_schema.schema",
                            "a JSON schema object is required",
                        )
                    })?;
                ResponseFormat::JsonSchema(schema.clone())
            }
            _ => {
                return Err(bad(
                    "response_format.type",
                    "must be \"text\", \"json_object\" or \"json_schema\"",
                ))
            }
        },
    };
    match (format, grammar) {
        (f, None) => Ok(f),
        (ResponseFormat::Text, Some(g)) => Ok(ResponseFormat::Grammar(g)),
        (_, Some(_)) => Err(bad(
            "grammar",
            "give either grammar or response_format, not both",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object"}}})
    }

    #[test]
    fn tools_are_checked_with_paths() {
        assert_eq!(
            parse_tools(&[tool("get_weather")]).unwrap()[0].name,
            "get_weather"
        );
        let cases = [
            (json!([{"type": "web_search"}]), "tools[0].type"),
            (json!([{"type": "function"}]), "tools[0].function"),
            (json!([tool("a b")]), "tools[0].function.name"),
            (json!([tool("a"), tool("a")]), "tools[1].function.name"),
            (
                json!([{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
                "tools[0].function.parameters",
            ),
        ];
        for (tools, param) in cases {
            let err = parse_tools(tools.as_array().unwrap()).unwrap_err();
            assert_eq!(err.param, param, "{tools}");
        }
        let many: Vec<_> = (0..=MAX_TOOLS).map(|i| tool(&format!("t{i}"))).collect();
        assert_eq!(parse_tools(&many).unwrap_err().param, "tools");
    }

    #[test]
    fn tool_choice_follows_openai() {
        let tools = parse_tools(&[tool("f")]).unwrap();
        assert_eq!(parse_tool_choice(None, &tools).unwrap(), ToolChoice::Auto);
        assert_eq!(parse_tool_choice(None, &[]).unwrap(), ToolChoice::None);
        let named = json!({"type": "function", "function": {"name": "f"}});
        assert_eq!(
            parse_tool_choice(Some(&named), &tools).unwrap(),
            ToolChoice::Named("f".into())
        );
        let unknown = json!({"type": "function", "function": {"name": "g"}});
        assert!(parse_tool_choice(Some(&unknown), &tools).is_err());
        assert!(parse_tool_choice(Some(&json!("required")), &[]).is_err());
        assert!(parse_tool_choice(Some(&json!("sometimes")), &tools).is_err());
    }

    #[test]
    fn response_format_and_grammar() {
        let schema = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}});
        assert!(matches!(
            parse_response_format(Some(&schema), None).unwrap(),
            ResponseFormat::JsonSchema(_)
        ));
        assert_eq!(
            parse_response_format(None, Some("root ::= \"a\"".into())).unwrap(),
            ResponseFormat::Grammar("root ::= \"a\"".into())
        );
        let no_schema = json!({"type": "json_schema", "json_schema": {"name": "x"}});
        assert!(parse_response_format(Some(&no_schema), None).is_err());
        let json_obj = json!({"type": "json_object"});
        assert!(parse_response_format(Some(&json_obj), Some("root ::= \"a\"".into())).is_err());
    }
}
