//! Reading reasoning, content and tool calls out of raw model output.
//!
//! Each model family writes tool calls its own way ([`ToolFormat`]). [`parse`] splits a complete
//! output; [`StreamParser`] does the same while the output is still being generated.
//!
//! How it works: each format has a scanner that walks the text and produces segments (reasoning,
//! content, calls) in order. The scanner is told whether the text is complete. When it is not, it
//! stops at the first place whose meaning could still change (a marker cut in half, a call not
//! closed yet), so what it produced is always a prefix of what the complete text will produce.
//! The stream parser re-scans the text so far after each piece and sends only what is new.
//!
//! A call is known to be a call only once its text is complete: a cut-off or malformed call
//! stays content, word for word. So streaming sends a call's name and its arguments together,
//! when the call closes; sending the name earlier could mean taking it back later.
//!
//! Reasoning is trimmed of surrounding whitespace. Content is kept as written, except the
//! whitespace next to a think block or call taken out of it; while streaming, trailing
//! whitespace is held back until something else follows it (a call would take it away).

mod cursor;
mod deepseek;
mod format;
mod gemma;
mod harmony;
mod hermes;
mod json_calls;
mod llama3;
mod mistral;
mod prompt;
mod python;
mod qwen3_coder;
mod scan;
mod split;
mod stream;

#[cfg(test)]
mod fixtures;

pub use format::{Envelope, ToolFormat};
pub use prompt::generic_tools_prompt;
pub use stream::{OutputDelta, StreamParser};

/// One parsed call. `arguments` is the JSON text of an object: re-serialized compactly (key order
/// kept) when the model wrote JSON; for XML- or Python-style formats, built from the parameters
/// (values that parse as JSON stay JSON, others become strings).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// A model output split into its parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedOutput {
    pub reasoning: String,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}

/// How to read one model output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// Parse tool calls at all (false when the request had no tools or tool_choice "none":
    /// then markers stay in content).
    pub tools: bool,
    pub format: ToolFormat,
    /// Split `<think>…</think>` (`[THINK]…[/THINK]` for Mistral, the analysis channel for
    /// Harmony) into `reasoning`. If false, thinking stays in content: think blocks as written,
    /// Harmony analysis messages as their text.
    pub reasoning: bool,
    /// The prompt already opened a think block (the template ended the prompt with
    /// "<think>\n"): the output starts inside reasoning.
    pub thinking_open: bool,
}

/// Splits a complete model output into reasoning, content and tool calls.
pub fn parse(text: &str, opts: &OutputOptions) -> ParsedOutput {
    split::assemble(split::scan(text, opts, true))
}
