//! Chat prompts: rendering a conversation through the model's own Jinja chat template.
//! Used by the server only; the engine sees tokens.

mod template;

pub use template::{ChatTemplate, TemplateError};

use serde_json::Value;

use crate::engine::ModelInfo;

/// The prompt text for a conversation, ending with the assistant's turn opened. A BOS the
/// template writes itself is removed when the tokenizer adds one anyway (no double BOS),
/// as llama.cpp's own chat code does.
pub fn prompt_text(
    template: &ChatTemplate,
    messages: &[Value],
    tools: Option<&Value>,
    info: &ModelInfo,
) -> Result<String, TemplateError> {
    let text = template.render(messages, tools, true)?;
    let text = match text.strip_prefix(info.bos_text.as_str()) {
        Some(rest) if info.add_bos && !info.bos_text.is_empty() => rest.to_string(),
        _ => text,
    };
    Ok(text)
}
