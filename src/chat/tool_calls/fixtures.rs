//! Test fixtures: a model output and what it must parse to. Each format's file holds its own;
//! `all()` gathers them for the streaming tests.

use super::{parse, OutputOptions, ParsedOutput, ToolCall, ToolFormat};

pub(super) struct Fixture {
    pub(super) format: ToolFormat,
    /// The prompt opened a think block.
    pub(super) thinking_open: bool,
    pub(super) text: &'static str,
    pub(super) reasoning: &'static str,
    pub(super) content: &'static str,
    /// (name, arguments)
    pub(super) calls: &'static [(&'static str, &'static str)],
}

impl Fixture {
    /// Tools on, reasoning split: the options the expectations are written for.
    pub(super) fn opts(&self) -> OutputOptions {
        OutputOptions {
            tools: true,
            format: self.format,
            reasoning: true,
            thinking_open: self.thinking_open,
        }
    }

    pub(super) fn expected(&self) -> ParsedOutput {
        ParsedOutput {
            reasoning: self.reasoning.to_string(),
            content: self.content.to_string(),
            tool_calls: self
                .calls
                .iter()
                .map(|&(name, arguments)| ToolCall {
                    name: name.to_string(),
                    arguments: arguments.to_string(),
                })
                .collect(),
        }
    }
}

/// Asserts that each fixture parses as expected.
pub(super) fn check(fixtures: &[Fixture]) {
    for f in fixtures {
        assert_eq!(
            parse(f.text, &f.opts()),
            f.expected(),
            "parsing {:?}",
            f.text
        );
    }
}

pub(super) fn all() -> impl Iterator<Item = &'static Fixture> {
    use super::{deepseek, gemma, harmony, hermes, llama3, mistral, qwen3_coder};
    [
        hermes::FIXTURES,
        hermes::GENERIC_FIXTURES,
        qwen3_coder::FIXTURES,
        llama3::FIXTURES,
        mistral::FIXTURES,
        harmony::FIXTURES,
        deepseek::FIXTURES,
        gemma::FIXTURES,
    ]
    .into_iter()
    .flatten()
}

/// The streaming invariant, over every fixture: however the output is split into pieces, the
/// deltas joined per kind equal `parse` of the whole text, and so does `finish`'s parse.
mod tests {
    use super::super::stream::{OutputDelta, StreamParser};
    use super::super::{parse, OutputOptions, ParsedOutput, ToolCall, ToolFormat};
    use super::{all, Fixture};

    /// A small deterministic generator, so failures replay.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Streams `pieces` and checks the deltas against `parse` of the whole text.
    fn check_stream(pieces: &[&str], opts: OutputOptions) {
        let text: String = pieces.concat();
        let expected = parse(&text, &opts);
        let mut parser = StreamParser::new(opts);
        let mut deltas: Vec<OutputDelta> = pieces.iter().flat_map(|p| parser.push(p)).collect();
        let (last, parsed) = parser.finish();
        deltas.extend(last);
        assert_eq!(parsed, expected, "final parse of {text:?}");
        let mut joined = ParsedOutput::default();
        for delta in deltas {
            match delta {
                OutputDelta::Reasoning(r) => joined.reasoning.push_str(&r),
                OutputDelta::Content(c) => joined.content.push_str(&c),
                OutputDelta::ToolCallStart { index, name } => {
                    assert_eq!(index, joined.tool_calls.len());
                    joined.tool_calls.push(ToolCall {
                        name,
                        arguments: String::new(),
                    });
                }
                OutputDelta::ToolCallArgs { index, fragment } => {
                    assert_eq!(index + 1, joined.tool_calls.len());
                    joined.tool_calls[index].arguments.push_str(&fragment);
                }
            }
        }
        assert_eq!(joined, expected, "deltas of {text:?} split as {pieces:?}");
    }

    /// Splits `text` at random char boundaries.
    fn random_split<'t>(text: &'t str, rng: &mut Rng) -> Vec<&'t str> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = (1 + rng.below(12)).min(rest.len());
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            pieces.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        pieces
    }

    fn variants(f: &Fixture) -> [OutputOptions; 3] {
        let opts = f.opts();
        [
            opts,
            OutputOptions {
                reasoning: false,
                ..opts
            },
            OutputOptions {
                tools: false,
                ..opts
            },
        ]
    }

    #[test]
    fn deltas_join_to_the_whole_parse_for_any_split() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for f in all() {
            for opts in variants(f) {
                check_stream(&[f.text], opts);
                let chars: Vec<&str> = f.text.split_inclusive(|_| true).collect();
                check_stream(&chars, opts);
                for _ in 0..40 {
                    check_stream(&random_split(f.text, &mut rng), opts);
                }
            }
        }
    }

    #[test]
    fn every_prefix_streams_consistently() {
        // Each fixture cut short anywhere is an output of its own (max tokens, a stop string).
        for f in all() {
            let cuts = (0..=f.text.len()).filter(|&i| f.text.is_char_boundary(i));
            for cut in cuts {
                let text = &f.text[..cut];
                check_stream(
                    &text.split_inclusive(|_| true).collect::<Vec<_>>(),
                    f.opts(),
                );
            }
        }
    }

    #[test]
    fn random_marker_soup_streams_consistently() {
        // Texts built from every format's markers and pieces of calls, cut and split anywhere.
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "<tool_call>", "</tool_call>", "{\"name\": \"f\", \"arguments\": {\"a\": 1}}", "{", "}",
            "\"", "\n", " ", "text", "<think>", "</think>", "[THINK]", "[/THINK]", "<function=f>",
            "<parameter=a>", "</parameter>", "</function>", "<|python_tag|>", ";", "[TOOL_CALLS]",
            "[ARGS]", "[CALL_ID]", "[", "]", "f", "<|channel|>", "analysis", "final",
            " to=functions.f", "<|message|>", "<|end|>", "<|call|>", "<|start|>",
            "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>",
            "```", "```tool_code", "```json", "f(a=1)", "(", ")", "=", "'", "é", "function",
            "\"parameters\": {}", ",",
        ];
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
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..4000 {
            let text: String = (0..1 + rng.below(20))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect();
            let opts = OutputOptions {
                tools: rng.below(6) > 0,
                format: FORMATS[round % FORMATS.len()],
                reasoning: rng.below(4) > 0,
                thinking_open: rng.below(4) == 0,
            };
            check_stream(&random_split(&text, &mut rng), opts);
        }
    }
}
