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

/// Joins segments into the final output: reasoning and content trimmed.
pub(super) fn assemble(segs: Vec<Seg>) -> ParsedOutput {
    let mut parsed = ParsedOutput::default();
    for seg in segs {
        match seg {
            Seg::Reasoning(r) => parsed.reasoning.push_str(&r),
            Seg::Content(c) => parsed.content.push_str(&c),
            Seg::Call(call) => parsed.tool_calls.push(call),
        }
    }
    parsed.reasoning = parsed.reasoning.trim().to_string();
    parsed.content = parsed.content.trim().to_string();
    parsed
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
