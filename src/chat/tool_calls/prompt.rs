//! The tool instructions Paddock writes itself for models whose template cannot.

use serde_json::{Map, Value};

/// The system-prompt text Paddock adds when a model's own chat template does not render tools.
///
/// It lists each tool as one line of JSON holding the function's `name`, `description` and
/// `parameters` (tools come in OpenAI shape, `{"type": "function", "function": {...}}`), then
/// asks the model to call a tool by answering, once per call,
///
/// ```text
/// <tool_call>
/// {"name": <tool name>, "arguments": <arguments object>}
/// </tool_call>
/// ```
///
/// and to answer normally when no tool is needed. [`super::ToolFormat::Generic`] reads that
/// form back (and also a bare JSON call, which small models write instead).
pub fn generic_tools_prompt(tools: &[Value]) -> String {
    let mut prompt = String::from("# Tools\n\nYou can call these tools:\n");
    for tool in tools {
        let function = tool.get("function").unwrap_or(tool);
        let mut summary = Map::new();
        for key in ["name", "description", "parameters"] {
            if let Some(value) = function.get(key) {
                summary.insert(key.to_string(), value.clone());
            }
        }
        prompt.push_str(&Value::Object(summary).to_string());
        prompt.push('\n');
    }
    prompt.push_str(concat!(
        "\nTo call a tool, answer with one block per call, exactly like this:\n",
        "<tool_call>\n",
        "{\"name\": \"<tool name>\", \"arguments\": {<arguments as a JSON object>}}\n",
        "</tool_call>\n",
        "\nIf no tool is needed, answer normally.",
    ));
    prompt
}

#[cfg(test)]
mod tests {
    use super::super::{parse, OutputOptions, ToolFormat};
    use super::generic_tools_prompt;
    use serde_json::json;

    #[test]
    fn lists_tools_and_the_call_form() {
        let tools = [json!({"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }})];
        let prompt = generic_tools_prompt(&tools);
        assert!(prompt.contains(
            r#"{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}"#
        ));
        assert!(prompt.contains("<tool_call>\n{\"name\": "));
        // The form it asks for is what the Generic format reads.
        let answer = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
        let opts = OutputOptions {
            tools: true,
            format: ToolFormat::Generic,
            reasoning: true,
            thinking_open: false,
        };
        assert_eq!(parse(answer, &opts).tool_calls[0].name, "get_weather");
    }
}
