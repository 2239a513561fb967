//! Which tool-call format a model writes, told from its chat template.

/// A model family's way of writing tool calls in its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    /// `<tool_call>{"name": …, "arguments": …}</tool_call>` (Hermes 2 Pro, Qwen2.5, Qwen3).
    Hermes,
    /// `<tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call>`.
    Qwen3Coder,
    /// A bare `{"name": …, "parameters": …}` at the start of the answer, maybe after `<|python_tag|>`.
    Llama3,
    /// `[TOOL_CALLS][{"name": …, "arguments": …}]`, or `[TOOL_CALLS]NAME[ARGS]{…}`.
    Mistral,
    /// gpt-oss channels: a message `to=functions.NAME` is a call.
    Harmony,
    /// `<｜tool▁call▁begin｜>…<｜tool▁sep｜>…<｜tool▁call▁end｜>` (DeepSeek V3, R1, V3.1).
    DeepSeek,
    /// ```` ```tool_code ```` blocks with Python-style calls, or JSON calls.
    Gemma,
    /// Paddock's own prompt ([`super::generic_tools_prompt`]): the Hermes form, or a bare JSON
    /// call as the whole answer.
    Generic,
}

/// The text around each call of a JSON-based format, for building a grammar that forces a call:
/// `open`, then a JSON object with the tool's name under `name_key` and its arguments object
/// under `args_key`, then `close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub open: &'static str,
    pub close: &'static str,
    pub name_key: &'static str,
    pub args_key: &'static str,
}

impl ToolFormat {
    /// Picks the format from the model's Jinja chat template source, by the markers each
    /// family's template writes. No template, or no known marker: [`ToolFormat::Generic`].
    pub fn detect(template: Option<&str>) -> ToolFormat {
        let Some(t) = template else {
            return ToolFormat::Generic;
        };
        // Order matters: Qwen3-Coder templates also contain "<tool_call>".
        if t.contains("<|channel|>") || t.contains("<|start|>assistant") {
            ToolFormat::Harmony
        } else if t.contains("<｜tool▁calls▁begin｜>") || t.contains("<｜tool▁call▁begin｜>")
        {
            ToolFormat::DeepSeek
        } else if t.contains("<function=") && t.contains("<parameter=") {
            ToolFormat::Qwen3Coder
        } else if t.contains("<tool_call>") {
            ToolFormat::Hermes
        } else if t.contains("[TOOL_CALLS]") {
            ToolFormat::Mistral
        } else if t.contains("<|python_tag|>")
            || (t.contains("ipython") && t.contains("\"parameters\""))
        {
            ToolFormat::Llama3
        } else if t.contains("tool_code") || t.contains("```tool_call") {
            ToolFormat::Gemma
        } else {
            ToolFormat::Generic
        }
    }

    /// The envelope around each call, for formats that write one JSON object per call.
    /// Generic uses the Hermes envelope, which Paddock's generic prompt asks for. None for
    /// formats whose calls are not a JSON object holding the name (Qwen3-Coder's XML,
    /// Harmony's channel header, DeepSeek's name before the arguments).
    pub fn envelope(self) -> Option<Envelope> {
        let (open, close, args_key) = match self {
            ToolFormat::Hermes | ToolFormat::Generic => {
                ("<tool_call>\n", "\n</tool_call>", "arguments")
            }
            ToolFormat::Llama3 => ("", "", "parameters"),
            ToolFormat::Mistral => ("[TOOL_CALLS][", "]", "arguments"),
            ToolFormat::Gemma => ("```json\n", "\n```", "arguments"),
            ToolFormat::Qwen3Coder | ToolFormat::Harmony | ToolFormat::DeepSeek => return None,
        };
        Some(Envelope {
            open,
            close,
            name_key: "name",
            args_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ToolFormat::{self, *};

    #[test]
    fn detects_each_family_from_template_markers() {
        let cases = [
            (
                "{%- if tools %}<tool_call>\\n{{ tool_call | tojson }}\\n</tool_call>",
                Hermes,
            ),
            (
                "<tool_call>\\n<function={{ name }}>\\n<parameter={{ key }}>",
                Qwen3Coder,
            ),
            ("{{- '<|python_tag|>' + tool_call.name }}", Llama3),
            (
                "{%- if message.role == 'ipython' %}{\"name\": ..., \"parameters\": ...}",
                Llama3,
            ),
            ("{{- '[TOOL_CALLS]' + tool_calls | tojson }}", Mistral),
            (
                "{{- '<|start|>assistant<|channel|>final<|message|>' }}",
                Harmony,
            ),
            (
                "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] }}",
                DeepSeek,
            ),
            ("Wrap calls in ```tool_code blocks", Gemma),
            (
                "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",
                Generic,
            ),
        ];
        for (template, format) in cases {
            assert_eq!(ToolFormat::detect(Some(template)), format, "{template}");
        }
        assert_eq!(ToolFormat::detect(None), Generic);
    }

    #[test]
    fn envelopes_for_json_formats_only() {
        let hermes = Hermes.envelope().expect("Hermes is JSON-based");
        assert_eq!(
            (hermes.open, hermes.close),
            ("<tool_call>\n", "\n</tool_call>")
        );
        assert_eq!((hermes.name_key, hermes.args_key), ("name", "arguments"));
        assert_eq!(Generic.envelope(), Hermes.envelope());
        assert_eq!(Llama3.envelope().map(|e| e.args_key), Some("parameters"));
        assert!(Mistral.envelope().is_some() && Gemma.envelope().is_some());
        for format in [Qwen3Coder, Harmony, DeepSeek] {
            assert_eq!(format.envelope(), None);
        }
    }
}
