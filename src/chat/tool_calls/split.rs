//! The top of the scan: the think block, then the format's own scanner for the answer, and
//! the segments joined into the final output.

use super::cursor::Cur;
use super::scan::{Out, Seg};
use super::{deepseek, gemma, harmony, hermes, llama3, mistral, qwen3_coder};
use super::{OutputOptions, ParsedOutput, ToolFormat};

/// Scans `text` into segments. With `done` false, stops where the meaning is not certain yet.
pub(super) fn scan(text: &str, opts: &OutputOptions, done: bool) -> Vec<Seg> {
    let mut out = Out {
        segs: Vec::new(),
        done,
    };
    // Harmony carries reasoning in its own channels, so it has no think block.
    let start = match opts.format {
        ToolFormat::Harmony => Some(0),
        _ => think(text, opts, &mut out),
    };
    let Some(start) = start else {
        return out.segs;
    };
    let body = &text[start..];
    match opts.format {
        ToolFormat::Harmony => harmony::scan(body, opts, &mut out),
        _ if !opts.tools => out.content(body),
        ToolFormat::Hermes => hermes::scan(body, &mut out),
        ToolFormat::Generic => hermes::scan_generic(body, &mut out),
        ToolFormat::Qwen3Coder => qwen3_coder::scan(body, &mut out),
        ToolFormat::Llama3 => llama3::scan(body, &mut out),
        ToolFormat::Mistral => mistral::scan(body, &mut out),
        ToolFormat::DeepSeek => deepseek::scan(body, &mut out),
        ToolFormat::Gemma => gemma::scan(body, &mut out),
    }
    out.segs
}

/// Joins segments into the final output. Reasoning is trimmed; content keeps what the model
/// wrote, except whitespace next to the reasoning or calls taken out of it (see [`kept`]).
pub(super) fn assemble(segs: Vec<Seg>) -> ParsedOutput {
    let (r, c) = (kept(&segs, true, true), kept(&segs, false, true));
    let mut parsed = ParsedOutput::default();
    for seg in segs {
        match seg {
            Seg::Reasoning(text) => parsed.reasoning.push_str(&text),
            Seg::Content(text) => parsed.content.push_str(&text),
            Seg::Call(call) => parsed.tool_calls.push(call),
        }
    }
    parsed.reasoning = parsed
        .reasoning
        .get(r.0..r.1)
        .unwrap_or_default()
        .to_string();
    parsed.content = parsed.content.get(c.0..c.1).unwrap_or_default().to_string();
    parsed
}

/// The byte range of the joined reasoning (or content) that is kept. Reasoning is trimmed.
/// Content loses leading whitespace only after a think block or call, and trailing whitespace
/// only before one, or while the output is not `done` (a call may still follow): plain answers
/// come out exactly as written, and streaming never sends what the end would take back.
pub(super) fn kept(segs: &[Seg], reasoning: bool, done: bool) -> (usize, usize) {
    let mine = |seg: &Seg| match seg {
        Seg::Reasoning(_) => reasoning,
        Seg::Content(_) => !reasoning,
        Seg::Call(_) => false,
    };
    // Whitespace between two calls belongs to neither side: only text with words decides.
    let worded = |seg: &Seg| match seg {
        Seg::Reasoning(t) | Seg::Content(t) => mine(seg) && !t.trim().is_empty(),
        Seg::Call(_) => false,
    };
    let other = |segs: &[Seg]| segs.iter().any(|s| !mine(s));
    let joined: String = segs
        .iter()
        .filter_map(|seg| match seg {
            Seg::Reasoning(t) if reasoning => Some(t.as_str()),
            Seg::Content(t) if !reasoning => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let other_before = match segs.iter().position(worded) {
        Some(i) => other(&segs[..i]),
        None => other(segs),
    };
    let other_after = match segs.iter().rposition(worded) {
        Some(i) => other(&segs[i + 1..]),
        None => other(segs),
    };
    let start = if reasoning || other_before {
        joined.len() - joined.trim_start().len()
    } else {
        0
    };
    let end = if reasoning || other_after || !done {
        joined.trim_end().len()
    } else {
        joined.len()
    };
    (start.min(end), end)
}

/// Splits off a think block at the start of the output. Returns where the answer starts, or
/// None while the output is still inside the think block (or may be starting one).
fn think(text: &str, opts: &OutputOptions, out: &mut Out) -> Option<usize> {
    let (open, close) = match opts.format {
        ToolFormat::Mistral => ("[THINK]", "[/THINK]"),
        _ => ("<think>", "</think>"),
    };
    let mut cur = Cur::new(text, 0, out.done);
    if !opts.thinking_open {
        cur.skip_ws();
        match cur.eat(open) {
            Ok(true) => {}
            Ok(false) => return Some(0),
            Err(_) => return None,
        }
    }
    let inner_start = cur.pos;
    let rest = &text[inner_start..];
    let (inner, end) = match rest.find(close) {
        Some(i) => (&rest[..i], Some(inner_start + i + close.len())),
        // Never closed: a cut-off output is all reasoning.
        None => (out.certain(rest, &[close]), None),
    };
    if opts.reasoning {
        out.reasoning(inner);
    } else {
        out.content(&text[..end.unwrap_or(inner_start + inner.len())]);
    }
    end
}
