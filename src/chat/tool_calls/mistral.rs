//! Mistral calls: `[TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]`, or the newer
//! `[TOOL_CALLS]f[ARGS]{...}` (maybe with `[CALL_ID]id` before `[ARGS]`), one marker per call.

use super::cursor::{Cur, Step, Stop};
use super::json_calls::{arguments_text, calls_from_value};
use super::scan::{scan_markers, Out};
use super::ToolCall;

const TAG: &str = "[TOOL_CALLS]";

pub(super) fn scan(body: &str, out: &mut Out) {
    scan_markers(body, &[TAG], out, read_block);
}

fn read_block(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.expect(TAG)?;
    cur.skip_ws();
    if matches!(cur.peek()?, '[' | '{') {
        return calls_from_value(&cur.json()?, false).ok_or(Stop::NoCall);
    }
    let name = cur.take_while(|c| c.is_alphanumeric() || "_-.".contains(c))?;
    if name.is_empty() {
        return Err(Stop::NoCall);
    }
    if cur.eat("[CALL_ID]")? {
        cur.take_while(|c| c != '[')?;
    }
    cur.expect("[ARGS]")?;
    let arguments = arguments_text(&cur.json()?).ok_or(Stop::NoCall)?;
    Ok(vec![ToolCall {
        name: name.to_string(),
        arguments,
    }])
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    Fixture {
        format: ToolFormat::Mistral,
        thinking_open: false,
        text: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#), ("get_time", "{}")],
    },
    Fixture {
        format: ToolFormat::Mistral,
        thinking_open: false,
        text: "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{}",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#), ("get_time", "{}")],
    },
    Fixture {
        format: ToolFormat::Mistral,
        thinking_open: false,
        text: "[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{\"city\": \"Paris\"}",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#)],
    },
    // Magistral thinks in [THINK] blocks.
    Fixture {
        format: ToolFormat::Mistral,
        thinking_open: false,
        text: "[THINK]Need the weather.[/THINK]Let me check.[TOOL_CALLS]get_weather[ARGS]{\"city\":\"Paris\"}",
        reasoning: "Need the weather.",
        content: "Let me check.",
        calls: &[("get_weather", r#"{"city":"Paris"}"#)],
    },
    // Cut off: content.
    Fixture {
        format: ToolFormat::Mistral,
        thinking_open: false,
        text: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}",
        reasoning: "",
        content: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}",
        calls: &[],
    },
    // Not a name: content.
    Fixture {
        format: ToolFormat::Mistral,
        thinking_open: false,
        text: "Markers look like [TOOL_CALLS] in the docs.",
        reasoning: "",
        content: "Markers look like [TOOL_CALLS] in the docs.",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    #[test]
    fn mistral_fixtures() {
        super::super::fixtures::check(super::FIXTURES);
    }
}
