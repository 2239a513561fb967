//! Model output is text the model chose, steered by whoever wrote the prompt, so the tool-call
//! parsers see anything. The first byte picks the format and options, the rest is the output
//! (lossy UTF-8, as detokenized text is). Checks, for every format: `parse` and the streaming
//! parser never panic, and the stream keeps its documented promise: however the output is cut
//! into pieces, the deltas joined per kind equal `parse` of the whole text, and so does
//! `finish`'s parse (the same check as the unit tests in src/chat/tool_calls/fixtures.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paddock::chat::tool_calls::{
    parse, OutputDelta, OutputOptions, ParsedOutput, StreamParser, ToolCall, ToolFormat,
};

const FORMATS: [ToolFormat; 8] = [
    ToolFormat::Hermes,
    ToolFormat::Qwen3Coder,
    ToolFormat::Llama3,
    ToolFormat::Mistral,
    ToolFormat::Harmony,
    ToolFormat::DeepSeek,
    ToolFormat::Gemma,
    ToolFormat::Generic,
];

fuzz_target!(init: paddock_fuzz::report_stack_overflows(), |data: &[u8]| {
    let Some((&options, output)) = data.split_first() else {
        return;
    };
    let opts = OutputOptions {
        format: FORMATS[usize::from(options & 7)],
        tools: options & 0x08 == 0,
        reasoning: options & 0x10 == 0,
        thinking_open: options & 0x20 != 0,
    };
    let text = String::from_utf8_lossy(output);
    let expected = parse(&text, &opts);

    // Pieces of 1 to 4 chars, in a pattern taken from the top bits: tokens are short.
    let mut parser = StreamParser::new(opts);
    let mut deltas = Vec::new();
    let mut rest: &str = &text;
    let mut step = usize::from(options >> 6);
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(1 + step % 4)
            .map_or(rest.len(), |(i, _)| i);
        deltas.extend(parser.push(&rest[..cut]));
        rest = &rest[cut..];
        step = step.wrapping_mul(5).wrapping_add(3);
    }
    let (last, parsed) = parser.finish();
    deltas.extend(last);
    assert_eq!(parsed, expected, "finish's parse differs from parse");

    let mut joined = ParsedOutput::default();
    for delta in deltas {
        match delta {
            OutputDelta::Reasoning(r) => joined.reasoning.push_str(&r),
            OutputDelta::Content(c) => joined.content.push_str(&c),
            OutputDelta::ToolCallStart { index, name } => {
                assert_eq!(index, joined.tool_calls.len(), "call index out of order");
                joined.tool_calls.push(ToolCall {
                    name,
                    arguments: String::new(),
                });
            }
            OutputDelta::ToolCallArgs { index, fragment } => {
                assert_eq!(
                    index + 1,
                    joined.tool_calls.len(),
                    "arguments of another call"
                );
                joined.tool_calls[index].arguments.push_str(&fragment);
            }
        }
    }
    assert_eq!(joined, expected, "streamed deltas differ from parse");
});
