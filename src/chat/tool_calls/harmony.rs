//! Harmony (gpt-oss): the output is a run of messages, each
//! `<|start|>assistant<|channel|>CHANNEL [to=RECIPIENT] [<|constrain|>json]<|message|>BODY<|end|>`
//! (the first `<|start|>assistant` is in the prompt). The analysis channel is reasoning, final
//! and other channels are content, and a message to `functions.NAME` is a call whose body is
//! the JSON arguments, ended by `<|call|>`.

use super::cursor::{Cur, Step, Stop};
use super::json_calls::arguments_text;
use super::scan::{find_first, Out};
use super::{OutputOptions, ToolCall};

const START: &str = "<|start|>";
const CHANNEL: &str = "<|channel|>";
const MESSAGE: &str = "<|message|>";
const HEADERS: [&str; 2] = [START, CHANNEL];
/// What ends a body: an end token, or the next message's header when the end token is missing.
const BODY_ENDS: [&str; 5] = ["<|end|>", "<|call|>", "<|return|>", START, CHANNEL];

pub(super) fn scan(text: &str, opts: &OutputOptions, out: &mut Out) {
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        let Some((at, header)) = find_first(rest, &HEADERS) else {
            let certain = out.certain(rest, &HEADERS);
            out.content(certain);
            return;
        };
        out.content(&rest[..at]);
        let start = pos + at;
        match message(text, start, opts, out) {
            Ok(end) => pos = end,
            Err(Stop::Pending) if !out.done => return,
            // A header that never reaches <|message|> is plain text.
            Err(_) => {
                out.content(header);
                pos = start + header.len();
            }
        }
    }
}

/// Reads the message starting at `start` into `out`; returns where it ends.
fn message(text: &str, start: usize, opts: &OutputOptions, out: &mut Out) -> Step<usize> {
    let mut cur = Cur::new(text, start, out.done);
    cur.eat(START)?;
    let header = cur.until(MESSAGE)?;
    let body_start = cur.pos;
    let rest = cur.rest();
    let (body, end) = match find_first(rest, &BODY_ENDS) {
        Some((i, mark)) if mark == START || mark == CHANNEL => (&rest[..i], body_start + i),
        Some((i, mark)) => (&rest[..i], body_start + i + mark.len()),
        None if out.done => (rest, text.len()),
        None => {
            // Text is streamed as it comes; a call waits for its end.
            if recipient(header).is_none() {
                let certain = out.certain(rest, &BODY_ENDS);
                emit_text(header, certain, opts, out);
            }
            return Err(Stop::Pending);
        }
    };
    match recipient(header) {
        None => emit_text(header, body, opts, out),
        Some(name) => match arguments(body) {
            Some(arguments) if opts.tools => out.calls(vec![ToolCall {
                name: name.to_string(),
                arguments,
            }]),
            // Broken arguments, or calls not wanted: the message stays as written.
            _ => out.content(&text[start..end]),
        },
    }
    Ok(end)
}

fn emit_text(header: &str, body: &str, opts: &OutputOptions, out: &mut Out) {
    let channel = header.split(CHANNEL).nth(1).unwrap_or("");
    let channel = channel
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    if channel == "analysis" && opts.reasoning {
        out.reasoning(body);
    } else {
        out.content(body);
    }
}

/// The function a message is addressed to: `to=functions.NAME`, in the header's role or
/// channel part.
fn recipient(header: &str) -> Option<&str> {
    let to = header
        .split(|c: char| c.is_whitespace() || c == '<')
        .find_map(|w| w.strip_prefix("to="))?;
    Some(to.strip_prefix("functions.").unwrap_or(to))
}

fn arguments(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return Some("{}".to_string());
    }
    arguments_text(&serde_json::from_str(body).ok()?)
}

#[cfg(test)]
use super::{fixtures::Fixture, ToolFormat};

#[cfg(test)]
pub(super) const FIXTURES: &[Fixture] = &[
    Fixture {
        format: ToolFormat::Harmony,
        thinking_open: false,
        text: "<|channel|>analysis<|message|>User wants the weather in Paris.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>",
        reasoning: "User wants the weather in Paris.",
        content: "",
        calls: &[("get_weather", r#"{"city":"Paris"}"#)],
    },
    Fixture {
        format: ToolFormat::Harmony,
        thinking_open: false,
        text: "<|channel|>analysis<|message|>Simple greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hello there! <b>Hi</b><|return|>",
        reasoning: "Simple greeting.",
        content: "Hello there! <b>Hi</b>",
        calls: &[],
    },
    // The recipient in the role part; a preamble on the commentary channel first.
    Fixture {
        format: ToolFormat::Harmony,
        thinking_open: false,
        text: "<|channel|>commentary<|message|>Checking now.<|end|><|start|>assistant to=functions.lookup<|channel|>commentary json<|message|>{\"q\": \"rust\"}<|call|>",
        reasoning: "",
        content: "Checking now.",
        calls: &[("lookup", r#"{"q":"rust"}"#)],
    },
    // Broken arguments: the message stays content as written.
    Fixture {
        format: ToolFormat::Harmony,
        thinking_open: false,
        text: "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": Paris}<|call|>",
        reasoning: "",
        content: "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": Paris}<|call|>",
        calls: &[],
    },
    // Cut off in the final answer; a missing <|end|> after analysis.
    Fixture {
        format: ToolFormat::Harmony,
        thinking_open: false,
        text: "<|channel|>analysis<|message|>Thinking<|start|>assistant<|channel|>final<|message|>Partial answ",
        reasoning: "Thinking",
        content: "Partial answ",
        calls: &[],
    },
    // No header at all; a header cut off.
    Fixture {
        format: ToolFormat::Harmony,
        thinking_open: false,
        text: "Just text, then <|channel|>fin",
        reasoning: "",
        content: "Just text, then <|channel|>fin",
        calls: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::super::{parse, OutputOptions, ToolFormat};

    #[test]
    fn harmony_fixtures() {
        super::super::fixtures::check(super::FIXTURES);
    }

    #[test]
    fn options_off() {
        let text = super::FIXTURES[0].text;
        let opts = OutputOptions {
            tools: false,
            format: ToolFormat::Harmony,
            reasoning: false,
            thinking_open: false,
        };
        let parsed = parse(text, &opts);
        assert!(parsed.tool_calls.is_empty());
        assert_eq!(
            parsed.content,
            "User wants the weather in Paris.<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>"
        );
    }
}
