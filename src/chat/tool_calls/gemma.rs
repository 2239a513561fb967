//! Gemma calls: a ```` ```tool_code ```` block of Python-style calls (see `python`), a
//! ```` ```tool_call ```` or ```` ```json ```` block holding a JSON call, or the whole answer
//! being a bare JSON call or a Python-style list `[f(a=1)]`.

use super::cursor::{Cur, Step, Stop};
use super::json_calls::calls_from_value;
use super::python;
use super::scan::{scan_with_lead, Out};
use super::ToolCall;

const CODE: &str = "```tool_code";
const CALL: &str = "```tool_call";
const JSON: &str = "```json";
const FENCE: &str = "```";

pub(super) fn scan(body: &str, out: &mut Out) {
    scan_with_lead(body, out, whole_answer, &[CODE, CALL, JSON], read_block);
}

fn read_block(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    let calls = if cur.eat(CODE)? {
        python::calls(cur)?
    } else {
        if !cur.eat(CALL)? {
            cur.expect(JSON)?;
        }
        json_or_python(cur, false)?
    };
    cur.skip_ws();
    // A closing fence left out at the very end of the output is forgiven.
    if !cur.eat(FENCE)? {
        cur.at_end()?;
    }
    Ok(calls)
}

fn whole_answer(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.skip_ws();
    if !matches!(cur.peek()?, '{' | '[') {
        return Err(Stop::NoCall);
    }
    // Bare JSON could be an answer: only an object naming its arguments too is a call.
    let calls = json_or_python(cur, true)?;
    cur.skip_ws();
    cur.at_end()?;
    Ok(calls)
}

fn json_or_python(cur: &mut Cur, need_args: bool) -> Step<Vec<ToolCall>> {
    let start = *cur;
    let json = cur
        .json()
        .and_then(|v| calls_from_value(&v, need_args).ok_or(Stop::NoCall));
    match json {
        Err(Stop::NoCall) => {
            *cur = start;
            python::calls(cur)
        }
        other => other,
    }
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "```tool_code\nget_weather(city=\"Paris\", days=3, metric=True)\n```",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris","days":3,"metric":true}"#)],
    },
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "I'll check.\n```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```\n",
        reasoning: "",
        content: "I'll check.",
        calls: &[("get_weather", r#"{"city":"Paris"}"#)],
    },
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "```tool_code\nprint(default_api.search(query='rust \"serde\"', tags=['a', \"b\"], opts={'limit': 2.5, 'x': None}))\nget_time()\n```",
        reasoning: "",
        content: "",
        calls: &[
            ("default_api.search", r#"{"query":"rust \"serde\"","tags":["a","b"],"opts":{"limit":2.5,"x":null}}"#),
            ("get_time", "{}"),
        ],
    },
    // Whole answer: a bare JSON call; a Python-style list.
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "{\"name\": \"get_time\", \"arguments\": {}}",
        reasoning: "",
        content: "",
        calls: &[("get_time", "{}")],
    },
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "[get_weather(city='Paris'), get_time(zone=\"UTC\")]",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#), ("get_time", r#"{"zone":"UTC"}"#)],
    },
    // An unquoted value is not a literal: content. So is an ordinary code block or a link.
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "```tool_code\nget_weather(city=Paris)\n```",
        reasoning: "",
        content: "```tool_code\nget_weather(city=Paris)\n```",
        calls: &[],
    },
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "[Docs](https://example.com):\n```python\nprint(get_weather(city='x'))\n```",
        reasoning: "",
        content: "[Docs](https://example.com):\n```python\nprint(get_weather(city='x'))\n```",
        calls: &[],
    },
    // Cut off inside the block.
    Fixture {
        format: ToolFormat::Gemma,
        thinking_open: false,
        text: "```tool_code\nget_weather(city=\"Par",
        reasoning: "",
        content: "```tool_code\nget_weather(city=\"Par",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    #[test]
    fn gemma_fixtures() {
        super::super::fixtures::check(super::FIXTURES);
    }
}
