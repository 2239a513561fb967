//! Tool calls written as JSON, in the shapes models use.

use serde_json::Value;

use super::cursor::{Cur, Step, Stop};
use super::ToolCall;

/// The calls in `value`: a call object `{"name": …, "arguments": …}` (or `"parameters"`), an
/// array of them, or one of the wrappers models add. `need_args`: where bare JSON could just as
/// well be an answer, only an object that also names arguments counts as a call.
pub(super) fn calls_from_value(value: &Value, need_args: bool) -> Option<Vec<ToolCall>> {
    match value {
        Value::Array(items) if !items.is_empty() => {
            let mut calls = Vec::new();
            for item in items {
                calls.extend(calls_from_value(item, need_args)?);
            }
            Some(calls)
        }
        Value::Object(obj) => {
            // {"tool_calls": [...]}, {"tool_call": {...}}, OpenAI's {"type": "function", "function": {...}}.
            let wrapped = ["tool_calls", "tool_call", "function"]
                .iter()
                .find_map(|key| obj.get(*key).filter(|v| v.is_object() || v.is_array()));
            if let Some(inner) = wrapped {
                return calls_from_value(inner, need_args);
            }
            let name = obj.get("name")?.as_str()?.trim();
            if name.is_empty() {
                return None;
            }
            let arguments = match obj.get("arguments").or_else(|| obj.get("parameters")) {
                Some(args) => arguments_text(args)?,
                None if need_args => return None,
                None => "{}".to_string(),
            };
            Some(vec![ToolCall {
                name: name.to_string(),
                arguments,
            }])
        }
        _ => None,
    }
}

/// Arguments as compact JSON text of an object. Models sometimes write the object inside a
/// JSON string; that is unwrapped.
pub(super) fn arguments_text(args: &Value) -> Option<String> {
    match args {
        Value::Object(_) => Some(args.to_string()),
        Value::Null => Some("{}".to_string()),
        Value::String(s) if s.trim().is_empty() => Some("{}".to_string()),
        Value::String(s) => match serde_json::from_str::<Value>(s).ok()? {
            inner @ Value::Object(_) => Some(inner.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The whole answer being one bare JSON call, maybe in a ```json fence: small models answer
/// that way when told about tools.
pub(super) fn whole_output(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.skip_ws();
    let fenced = cur.eat("```json")?;
    let calls = calls_from_value(&cur.json()?, true).ok_or(Stop::NoCall)?;
    if fenced {
        cur.skip_ws();
        cur.expect("```")?;
    }
    cur.skip_ws();
    cur.at_end()?;
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::{arguments_text, calls_from_value};
    use serde_json::json;

    #[test]
    fn call_shapes() {
        let one =
            |v| calls_from_value(&v, false).map(|c| (c[0].name.clone(), c[0].arguments.clone()));
        let expected = Some(("f".to_string(), r#"{"b":1,"a":2}"#.to_string()));
        assert_eq!(
            one(json!({"name": "f", "arguments": {"b": 1, "a": 2}})),
            expected
        );
        assert_eq!(
            one(json!({"name": "f", "parameters": {"b": 1, "a": 2}})),
            expected
        );
        assert_eq!(
            one(json!({"name": "f", "arguments": "{\"b\": 1, \"a\": 2}"})),
            expected
        );
        assert_eq!(
            one(json!({"tool_call": {"name": "f", "arguments": {"b": 1, "a": 2}}})),
            expected
        );
        let openai = json!({"type": "function", "function": {"name": "f", "arguments": "{\"b\":1,\"a\":2}"}});
        assert_eq!(one(openai), expected);
        assert_eq!(
            one(json!({"name": "f"})),
            Some(("f".to_string(), "{}".to_string()))
        );
    }

    #[test]
    fn not_calls() {
        for v in [
            json!({"name": ""}),
            json!({"city": "Paris"}),
            json!([]),
            json!("f"),
            json!({"name": "f", "arguments": [1]}),
        ] {
            assert_eq!(calls_from_value(&v, false), None, "{v}");
        }
        assert_eq!(
            calls_from_value(&json!({"name": "John", "age": 3}), true),
            None
        );
        assert_eq!(arguments_text(&json!("not json")), None);
    }
}
