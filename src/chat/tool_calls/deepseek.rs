//! DeepSeek calls, between `<｜tool▁calls▁begin｜>` and `<｜tool▁calls▁end｜>` (full-width bars,
//! `▁` for spaces). V3 and R1 write each call as
//! `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜>`;
//! V3.1 as `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>`.

use super::cursor::{Cur, Step, Stop};
use super::json_calls::arguments_text;
use super::scan::{scan_markers, Out};
use super::ToolCall;

const CALLS_BEGIN: &str = "<｜tool▁calls▁begin｜>";
const CALLS_END: &str = "<｜tool▁calls▁end｜>";
const CALL_BEGIN: &str = "<｜tool▁call▁begin｜>";
const CALL_END: &str = "<｜tool▁call▁end｜>";
const SEP: &str = "<｜tool▁sep｜>";

pub(super) fn scan(body: &str, out: &mut Out) {
    // A call without the outer wrapper counts too; so when a wrapped call is broken, scanning
    // goes on at the calls after it.
    scan_markers(body, &[CALLS_BEGIN, CALL_BEGIN], out, read_block);
}

fn read_block(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    if cur.eat(CALLS_BEGIN)? {
        cur.skip_ws();
    }
    let mut calls = vec![call(cur)?];
    loop {
        let before = cur.pos;
        cur.skip_ws();
        match call(cur) {
            Ok(next) => calls.push(next),
            Err(Stop::NoCall) => {
                cur.pos = before;
                break;
            }
            Err(pending) => return Err(pending),
        }
    }
    cur.skip_closing(CALLS_END)?;
    Ok(calls)
}

fn call(cur: &mut Cur) -> Step<ToolCall> {
    cur.expect(CALL_BEGIN)?;
    let head = cur.until(SEP)?.trim();
    cur.skip_ws();
    let v3 = head == "function" && cur.peek()? != '{';
    let name = if v3 {
        cur.take_while(|c| !c.is_whitespace() && c != '`')?
    } else {
        head
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(Stop::NoCall);
    }
    if v3 {
        cur.skip_ws();
        cur.expect("```")?;
        cur.eat("json")?;
    }
    let arguments = arguments_text(&cur.json()?).ok_or(Stop::NoCall)?;
    cur.skip_ws();
    if v3 {
        cur.expect("```")?;
        cur.skip_ws();
    }
    cur.expect(CALL_END)?;
    Ok(ToolCall {
        name: name.to_string(),
        arguments,
    })
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    // V3 / R1 form, two calls, text before.
    Fixture {
        format: ToolFormat::DeepSeek,
        thinking_open: false,
        text: "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reasoning: "",
        content: "Let me look.",
        calls: &[("get_weather", r#"{"city":"Paris"}"#), ("get_time", "{}")],
    },
    // V3.1 form.
    Fixture {
        format: ToolFormat::DeepSeek,
        thinking_open: false,
        text: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\", \"days\": 2}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris","days":2}"#)],
    },
    // R1: the prompt opened the think block.
    Fixture {
        format: ToolFormat::DeepSeek,
        thinking_open: true,
        text: "I need the weather.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"北京\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reasoning: "I need the weather.",
        content: "",
        calls: &[("get_weather", r#"{"city":"北京"}"#)],
    },
    // Broken arguments: content.
    Fixture {
        format: ToolFormat::DeepSeek,
        thinking_open: false,
        text: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": }<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reasoning: "",
        content: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": }<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        calls: &[],
    },
    // Cut off.
    Fixture {
        format: ToolFormat::DeepSeek,
        thinking_open: false,
        text: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\"",
        reasoning: "",
        content: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\"",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    #[test]
    fn deepseek_fixtures() {
        super::super::fixtures::check(super::FIXTURES);
    }
}
