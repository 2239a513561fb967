//! Chat templates come from model files, so a hostile GGUF can carry any Jinja. The input is a
//! template source, a NUL byte, then a conversation as JSON:
//! `{"messages": [...], "tools": [...], "add_generation_prompt": true, "kwargs": {...}}`
//! (the shape of tests/data/templates/cases, plus `chat_template_kwargs`).
//! The source is compiled and rendered in Paddock's template environment (Python-flavoured
//! output, `tojson`, `raise_exception`, `strftime_now`); the conversation is also rendered with
//! the real families' templates, as a request's messages are. Errors are fine; panics, hangs
//! (the run's `-timeout`) and runaway memory (`-rss_limit_mb`) are not.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use paddock::chat::ChatTemplate;
use serde_json::{json, Map, Value};

macro_rules! family {
    ($dir:literal, $bos:literal, $eos:literal) => {
        (
            include_str!(concat!(
                "../../tests/data/templates/",
                $dir,
                "/template.jinja"
            )),
            $bos,
            $eos,
        )
    };
}

/// The template families Paddock's goldens cover, with their special tokens (families.json).
static FAMILIES: LazyLock<Vec<ChatTemplate>> = LazyLock::new(|| {
    [
        family!("smollm2", "<|im_start|>", "<|im_end|>"),
        family!("gemma3", "<bos>", "<eos>"),
        family!("llama31", "<|begin_of_text|>", "<|eot_id|>"),
        family!("qwen25", "", "<|im_end|>"),
        family!("mistral", "<s>", "</s>"),
    ]
    .into_iter()
    .map(|(source, bos, eos)| ChatTemplate::new(source, bos, eos).expect("family template"))
    .chain([ChatTemplate::chatml_fallback("", "")])
    .collect()
});

struct Conversation {
    messages: Vec<Value>,
    tools: Option<Value>,
    add_generation_prompt: bool,
    kwargs: Map<String, Value>,
}

impl Conversation {
    /// Missing or broken JSON gets a plain two-turn chat, so the template source is still
    /// rendered with something.
    fn read(text: &str) -> Self {
        let case: Value = serde_json::from_str(text).unwrap_or_else(|_| {
            json!({"messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ]})
        });
        Self {
            messages: case["messages"].as_array().cloned().unwrap_or_default(),
            tools: Some(case["tools"].clone()).filter(|t| !t.is_null()),
            add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap_or(true),
            kwargs: case["kwargs"].as_object().cloned().unwrap_or_default(),
        }
    }

    fn render(&self, template: &ChatTemplate) {
        let _ = template.render(
            &self.messages,
            self.tools.as_ref(),
            self.add_generation_prompt,
            Some(&self.kwargs),
        );
    }
}

fuzz_target!(init: paddock_fuzz::report_stack_overflows(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, case) = text.split_once('\0').unwrap_or((text, ""));
    let conversation = Conversation::read(case);
    if let Ok(template) = ChatTemplate::new(source, "<s>", "</s>") {
        let _ = (template.supports_tools(), template.tool_format());
        conversation.render(&template);
    }
    for template in FAMILIES.iter() {
        conversation.render(template);
    }
});
