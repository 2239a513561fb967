//! Qwen3-Coder's XML calls:
//! `<tool_call>\n<function=NAME>\n<parameter=KEY>\nvalue\n</parameter>\n</function>\n</tool_call>`.

use serde_json::{Map, Value};

use super::cursor::{Cur, Step, Stop};
use super::scan::{find_first, scan_markers, Out};
use super::ToolCall;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";
const FUNCTION: &str = "<function=";
const FUNCTION_END: &str = "</function>";
const PARAM: &str = "<parameter=";
const PARAM_END: &str = "</parameter>";

pub(super) fn scan(body: &str, out: &mut Out) {
    // The model sometimes leaves out <tool_call>, so <function= starts a call on its own too.
    scan_markers(body, &[OPEN, FUNCTION], out, read_block);
}

fn read_block(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    if cur.eat(OPEN)? {
        cur.skip_ws();
    }
    cur.expect(FUNCTION)?;
    let name = tag_name(cur)?;
    let mut args = Map::new();
    loop {
        cur.skip_ws();
        if cur.eat(FUNCTION_END)? {
            break;
        }
        cur.expect(PARAM)?;
        let key = tag_name(cur)?;
        args.insert(key, parameter_value(cur)?);
    }
    cur.skip_closing(CLOSE)?;
    Ok(vec![ToolCall {
        name,
        arguments: Value::Object(args).to_string(),
    }])
}

/// The `NAME>` that ends a `<function=` or `<parameter=` tag.
fn tag_name(cur: &mut Cur) -> Step<String> {
    let name = cur.take_while(|c| c != '>' && c != '\n')?.trim();
    cur.expect(">")?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(Stop::NoCall);
    }
    Ok(name.to_string())
}

/// A parameter's value runs to `</parameter>`. Models sometimes drop that tag, so the next
/// parameter or the end of the function ends it too.
fn parameter_value(cur: &mut Cur) -> Step<Value> {
    let rest = cur.rest();
    let (len, end) =
        find_first(rest, &[PARAM_END, PARAM, FUNCTION_END]).ok_or(cur.out_of_text())?;
    cur.pos += len;
    if end == PARAM_END {
        cur.pos += end.len();
    }
    // The template puts each value on lines of its own: `<parameter=x>\nvalue\n</parameter>`.
    let raw = &rest[..len];
    let raw = raw.strip_prefix('\n').unwrap_or(raw);
    let raw = raw.strip_suffix('\n').unwrap_or(raw);
    Ok(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())))
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    Fixture {
        format: ToolFormat::Qwen3Coder,
        thinking_open: false,
        text: "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris","days":3}"#)],
    },
    // Text first; a multi-line code value; a JSON list value; two calls.
    Fixture {
        format: ToolFormat::Qwen3Coder,
        thinking_open: false,
        text: "I'll write the file, then test.\n\n<tool_call>\n<function=write_file>\n<parameter=path>\nsrc/main.rs\n</parameter>\n<parameter=content>\nfn main() {\n    println!(\"<hi>\");\n}\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=run>\n<parameter=argv>\n[\"cargo\", \"test\"]\n</parameter>\n<parameter=quiet>\ntrue\n</parameter>\n</function>\n</tool_call>",
        reasoning: "",
        content: "I'll write the file, then test.",
        calls: &[
            ("write_file", r#"{"path":"src/main.rs","content":"fn main() {\n    println!(\"<hi>\");\n}"}"#),
            ("run", r#"{"argv":["cargo","test"],"quiet":true}"#),
        ],
    },
    // No <tool_call> wrapper, a dropped </parameter>, no closing tag at the end.
    Fixture {
        format: ToolFormat::Qwen3Coder,
        thinking_open: false,
        text: "<function=get_weather>\n<parameter=city>\nParis\n<parameter=unit>\ncelsius\n</function>",
        reasoning: "",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris","unit":"celsius"}"#)],
    },
    // Cut off inside a value: content.
    Fixture {
        format: ToolFormat::Qwen3Coder,
        thinking_open: false,
        text: "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
        reasoning: "",
        content: "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
        calls: &[],
    },
    // A name with a space is not a call.
    Fixture {
        format: ToolFormat::Qwen3Coder,
        thinking_open: false,
        text: "<tool_call>\n<function=get weather>\n</function>\n</tool_call>",
        reasoning: "",
        content: "<tool_call>\n<function=get weather>\n</function>\n</tool_call>",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    #[test]
    fn qwen3_coder_fixtures() {
        super::super::fixtures::check(super::FIXTURES);
    }
}
