//! Llama 3.x JSON calls: the answer starts with `{"name": "f", "parameters": {...}}`, maybe
//! after `<|python_tag|>`, several separated by `;` or newlines. JSON later in an answer that
//! started with text is content.

use super::cursor::{Cur, Step, Stop};
use super::json_calls::calls_from_value;
use super::scan::{scan_with_lead, Out};
use super::ToolCall;

const TAG: &str = "<|python_tag|>";

pub(super) fn scan(body: &str, out: &mut Out) {
    scan_with_lead(body, out, lead, &[TAG], tagged);
}

/// Calls at the very start of the answer.
fn lead(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.skip_ws();
    cur.eat(TAG)?;
    calls(cur)
}

/// Calls after a python tag written later in the answer.
fn tagged(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.expect(TAG)?;
    calls(cur)
}

/// One or more JSON calls, separated by `;` or whitespace.
fn calls(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    let mut calls = call(cur)?;
    loop {
        let before = cur.pos;
        cur.skip_ws();
        cur.eat(";")?;
        match call(cur) {
            Ok(more) => calls.extend(more),
            Err(Stop::NoCall) => {
                cur.pos = before;
                return Ok(calls);
            }
            Err(pending) => return Err(pending),
        }
    }
}

fn call(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    // Bare JSON could be an answer: only an object naming its parameters too is a call.
    calls_from_value(&cur.json()?, true).ok_or(Stop::NoCall)
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    Fixture {
        format: ToolFormat::Llama3,
        thinking_open: false,
        text: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#)],
    },
    Fixture {
        format: ToolFormat::Llama3,
        thinking_open: false,
        text: "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}",
        reasoning: "",
        content: "",
        calls: &[("a", "{}"), ("b", r#"{"x":1}"#)],
    },
    // Calls on separate lines, then text.
    Fixture {
        format: ToolFormat::Llama3,
        thinking_open: false,
        text: "\n{\"name\": \"a\", \"parameters\": {}}\n{\"name\": \"b\", \"parameters\": {}}\nDone.",
        reasoning: "",
        content: "Done.",
        calls: &[("a", "{}"), ("b", "{}")],
    },
    // JSON that does not start the answer is content.
    Fixture {
        format: ToolFormat::Llama3,
        thinking_open: false,
        text: "Call it like this: {\"name\": \"get_weather\", \"parameters\": {}}",
        reasoning: "",
        content: "Call it like this: {\"name\": \"get_weather\", \"parameters\": {}}",
        calls: &[],
    },
    // JSON that is an answer.
    Fixture {
        format: ToolFormat::Llama3,
        thinking_open: false,
        text: "{\"answer\": 42}",
        reasoning: "",
        content: "{\"answer\": 42}",
        calls: &[],
    },
    // Cut off.
    Fixture {
        format: ToolFormat::Llama3,
        thinking_open: false,
        text: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}",
        reasoning: "",
        content: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    #[test]
    fn llama3_fixtures() {
        super::super::fixtures::check(super::FIXTURES);
    }
}
