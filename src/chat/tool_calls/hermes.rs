//! Hermes-style calls (Hermes 2 Pro, Qwen2.5, Qwen3, and Paddock's generic prompt):
//! `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`, one block per call.

use super::cursor::{Cur, Step, Stop};
use super::json_calls::{calls_from_value, whole_output};
use super::scan::{scan_markers, scan_with_lead, Out};
use super::ToolCall;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

pub(super) fn scan(body: &str, out: &mut Out) {
    scan_markers(body, &[OPEN], out, read_block);
}

/// Generic: Hermes blocks, or the whole answer being one bare JSON call.
pub(super) fn scan_generic(body: &str, out: &mut Out) {
    scan_with_lead(body, out, whole_output, &[OPEN], read_block);
}

fn read_block(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.expect(OPEN)?;
    let calls = calls_from_value(&cur.json()?, false).ok_or(Stop::NoCall)?;
    // Models often leave out the closing tag at the end of the output: a complete object is enough.
    cur.skip_closing(CLOSE)?;
    Ok(calls)
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    // Qwen3: thinking, then a call.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "<think>\nThe user wants the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
        reasoning: "The user wants the weather.",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris","days":3}"#)],
    },
    // Text before two calls; the second has its arguments as a JSON string.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "Let me check both cities.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Rome\\\"}\"}\n</tool_call>\n",
        reasoning: "",
        content: "Let me check both cities.",
        calls: &[("get_weather", r#"{"city":"Paris"}"#), ("get_weather", r#"{"city":"Rome"}"#)],
    },
    // Closing tag left out at the end; no arguments at all.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "<tool_call>  {\"name\": \"get_time\"}",
        reasoning: "",
        content: "",
        calls: &[("get_time", "{}")],
    },
    // Two calls with no closing tags in between, whitespace everywhere.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "<tool_call>{\"name\": \"a\", \"arguments\": {}}<tool_call>\n\n{ \"name\" : \"b\" , \"arguments\" : { \"x\" : [1, 2] } }\n\n</tool_call>",
        reasoning: "",
        content: "",
        calls: &[("a", "{}"), ("b", r#"{"x":[1,2]}"#)],
    },
    // Malformed JSON inside the tags: all of it stays content.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>",
        reasoning: "",
        content: "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>",
        calls: &[],
    },
    // Cut off mid-call (max tokens): content.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci",
        reasoning: "",
        content: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci",
        calls: &[],
    },
    // An object that names nothing is not a call; look-alike tags are just text.
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: false,
        text: "Use <tool> or <tool_calls> if a < b.\n<tool_call>{\"city\": \"Paris\"}</tool_call>",
        reasoning: "",
        content: "Use <tool> or <tool_calls> if a < b.\n<tool_call>{\"city\": \"Paris\"}</tool_call>",
        calls: &[],
    },
    // The prompt opened the think block (Qwen3 thinking templates).
    Fixture {
        format: ToolFormat::Hermes,
        thinking_open: true,
        text: "Just a greeting.\n</think>\n\nHello! How can I help?",
        reasoning: "Just a greeting.",
        content: "Hello! How can I help?",
        calls: &[],
    },
];

#[cfg(test)]
pub(super) const GENERIC_FIXTURES: &[Fixture] = &[
    // The envelope Paddock's prompt asks for.
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "I'll look it up.\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"rust\"}}\n</tool_call>",
        reasoning: "",
        content: "I'll look it up.",
        calls: &[("search", r#"{"q":"rust"}"#)],
    },
    // A bare JSON call as the whole answer.
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#)],
    },
    // Wrapped forms, in a fence.
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "```json\n{\"tool_calls\": [{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"n\": 1}}]}\n```",
        reasoning: "",
        content: "",
        calls: &[("a", "{}"), ("b", r#"{"n":1}"#)],
    },
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "{\"tool_call\": {\"name\": \"a\", \"arguments\": {\"x\": true}}}",
        reasoning: "",
        content: "",
        calls: &[("a", r#"{"x":true}"#)],
    },
    // JSON that is an answer, not a call.
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "{\"name\": \"Ada\", \"born\": 1815}",
        reasoning: "",
        content: "{\"name\": \"Ada\", \"born\": 1815}",
        calls: &[],
    },
    // A bare call followed by more text is not the whole answer: content.
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "{\"name\": \"f\", \"arguments\": {}} is how you would call it.",
        reasoning: "",
        content: "{\"name\": \"f\", \"arguments\": {}} is how you would call it.",
        calls: &[],
    },
    // Cut off.
    Fixture {
        format: ToolFormat::Generic,
        thinking_open: false,
        text: "{\"name\": \"f\", \"arguments\": {\"x\": \"unfinish",
        reasoning: "",
        content: "{\"name\": \"f\", \"arguments\": {\"x\": \"unfinish",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::super::fixtures::check;
    use super::super::{parse, OutputOptions, ToolFormat};

    #[test]
    fn hermes_fixtures() {
        check(super::FIXTURES);
    }

    #[test]
    fn generic_fixtures() {
        check(super::GENERIC_FIXTURES);
    }

    #[test]
    fn without_tools_markers_stay_content() {
        let opts = OutputOptions {
            tools: false,
            format: ToolFormat::Hermes,
            reasoning: true,
            thinking_open: false,
        };
        let text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
        let parsed = parse(text, &opts);
        assert!(parsed.tool_calls.is_empty());
        assert_eq!(parsed.content, text);
    }
}
