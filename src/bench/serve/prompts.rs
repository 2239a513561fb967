//! The requests the serving benchmark sends: source-code-like prompts of a given length, each
//! behind its own nonce so that no request reuses another's cache.

use serde_json::{json, Value};

/// First guess of tokens per filler line (BPE tokenizers on code); the warm-up measures it.
pub(super) const GUESS_TOKENS_PER_LINE: f64 = 30.0;

pub(super) fn lines_for(tokens: u32, per_line: f64) -> usize {
    ((f64::from(tokens) / per_line).round() as usize).max(1)
}

pub(super) fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A system message that starts with `nonce`: nothing after the template's first tokens is
/// shared with any other request.
pub(super) fn system(nonce: &str) -> Value {
    json!({"role": "system", "content": format!("Session {nonce}. You are a careful coding agent.")})
}

pub(super) fn user(content: &str) -> Value {
    json!({"role": "user", "content": content})
}

/// Source-code-like filler, about 30 tokens a line for common BPE tokenizers; `seed` varies it.
fn code(lines: usize, seed: u32) -> String {
    (0..lines)
        .map(|i| {
            let j = i + seed as usize * 1000;
            format!(
                "    let value_{j} = compute_{}(input[{j}], &config.field_{})?; // step {j}\n",
                j % 17,
                j % 11
            )
        })
        .collect()
}

pub(super) fn task(lines: usize, seed: u32) -> String {
    format!(
        "fn pipeline(input: &[u32], config: &Config) -> Result<u32> {{\n{}}}\n\
         Explain what this function does, step by step.",
        code(lines, seed)
    )
}

pub(super) fn tool_result(lines: usize, turn: u32) -> String {
    format!(
        "Tool result (read_file src/step_{turn}.rs):\n{}\nWhat should change next?",
        code(lines, turn)
    )
}
