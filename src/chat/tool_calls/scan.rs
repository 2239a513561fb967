//! What the format scanners share: segments, where they put them, and finding marker-started
//! blocks in text.

use super::cursor::{Cur, Step, Stop};
use super::ToolCall;

/// One part of the output, in the order written.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Seg {
    Reasoning(String),
    Content(String),
    Call(ToolCall),
}

/// Where scanners put what they found. `done`: the text is the complete output.
pub(super) struct Out {
    pub(super) segs: Vec<Seg>,
    pub(super) done: bool,
}

impl Out {
    pub(super) fn reasoning(&mut self, text: &str) {
        match self.segs.last_mut() {
            Some(Seg::Reasoning(r)) => r.push_str(text),
            _ if text.is_empty() => {}
            _ => self.segs.push(Seg::Reasoning(text.to_string())),
        }
    }

    pub(super) fn content(&mut self, text: &str) {
        match self.segs.last_mut() {
            Some(Seg::Content(c)) => c.push_str(text),
            _ if text.is_empty() => {}
            _ => self.segs.push(Seg::Content(text.to_string())),
        }
    }

    pub(super) fn calls(&mut self, calls: Vec<ToolCall>) {
        self.segs.extend(calls.into_iter().map(Seg::Call));
    }

    /// The part of `text` that is certain: all of it once the output is done; before that,
    /// all but an end that could be the start of one of `markers`.
    pub(super) fn certain<'t>(&self, text: &'t str, markers: &[&str]) -> &'t str {
        if self.done {
            return text;
        }
        let longest = markers.iter().map(|m| m.len()).max().unwrap_or(0);
        let held = (text.len().saturating_sub(longest)..text.len())
            .filter(|&i| text.is_char_boundary(i))
            .find(|&i| markers.iter().any(|m| m.starts_with(&text[i..])));
        &text[..held.unwrap_or(text.len())]
    }
}

/// Reads one block, starting at its marker, into calls.
pub(super) type ReadBlock = fn(&mut Cur) -> Step<Vec<ToolCall>>;

/// Scans `text` for blocks starting with one of `markers`. A block that is not a valid call
/// stays content, marker included, and scanning goes on right after its marker.
pub(super) fn scan_markers(text: &str, markers: &[&str], out: &mut Out, read: ReadBlock) {
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        let Some((at, marker)) = find_first(rest, markers) else {
            let certain = out.certain(rest, markers);
            out.content(certain);
            return;
        };
        out.content(&rest[..at]);
        let start = pos + at;
        let mut cur = Cur::new(text, start, out.done);
        match read(&mut cur) {
            Ok(calls) if !calls.is_empty() => {
                out.calls(calls);
                pos = cur.pos;
            }
            Err(Stop::Pending) if !out.done => return,
            _ => {
                out.content(marker);
                pos = start + marker.len();
            }
        }
    }
}

/// For formats that may also write calls bare at the very start of the answer: `lead` reads
/// those; the text after them (or all of it, when there are none) is scanned for markers.
pub(super) fn scan_with_lead(
    body: &str,
    out: &mut Out,
    lead: ReadBlock,
    markers: &[&str],
    read: ReadBlock,
) {
    let mut cur = Cur::new(body, 0, out.done);
    match lead(&mut cur) {
        Ok(calls) if !calls.is_empty() => {
            out.calls(calls);
            scan_markers(&body[cur.pos..], markers, out, read);
        }
        Err(Stop::Pending) if !out.done => {}
        _ => scan_markers(body, markers, out, read),
    }
}

/// The earliest occurrence of any of `markers`: (position, marker).
pub(super) fn find_first<'m>(text: &str, markers: &[&'m str]) -> Option<(usize, &'m str)> {
    markers
        .iter()
        .filter_map(|m| text.find(m).map(|i| (i, *m)))
        .min_by_key(|&(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::{parse, OutputOptions, ToolFormat};
    use super::Out;

    fn opts(reasoning: bool, thinking_open: bool) -> OutputOptions {
        OutputOptions {
            tools: true,
            format: ToolFormat::Hermes,
            reasoning,
            thinking_open,
        }
    }

    #[test]
    fn holds_back_only_a_possible_marker_start() {
        let out = Out {
            segs: Vec::new(),
            done: false,
        };
        assert_eq!(out.certain("Hello <tool_c", &["<tool_call>"]), "Hello ");
        assert_eq!(
            out.certain("Hello <tool>", &["<tool_call>"]),
            "Hello <tool>"
        );
        assert_eq!(out.certain("a <", &["<tool_call>", "<function="]), "a ");
        assert_eq!(out.certain("été", &["<x>"]), "été");
    }

    #[test]
    fn think_block_goes_to_reasoning_or_stays_inline() {
        let text = "<think>\nPlan.\n</think>\n\nAnswer.";
        let split = parse(text, &opts(true, false));
        assert_eq!(
            (split.reasoning.as_str(), split.content.as_str()),
            ("Plan.", "Answer.")
        );
        let inline = parse(text, &opts(false, false));
        assert_eq!(inline.reasoning, "");
        assert_eq!(inline.content, text);
        let open = parse("Plan.\n</think>\nAnswer.", &opts(true, true));
        assert_eq!(
            (open.reasoning.as_str(), open.content.as_str()),
            ("Plan.", "Answer.")
        );
    }

    #[test]
    fn tool_calls_inside_thinking_are_not_calls() {
        let text = "<think><tool_call>{\"name\": \"f\"}</tool_call></think>Done.";
        let parsed = parse(text, &opts(true, false));
        assert!(parsed.tool_calls.is_empty());
        assert_eq!(parsed.content, "Done.");
    }

    #[test]
    fn unclosed_think_is_all_reasoning() {
        let parsed = parse("<think>Still thinking", &opts(true, false));
        assert_eq!(
            (parsed.reasoning.as_str(), parsed.content.as_str()),
            ("Still thinking", "")
        );
    }
}
