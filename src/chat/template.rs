//! Renders a model's Hugging Face Jinja chat template (`tokenizer.chat_template`) with minijinja,
//! configured to behave like `transformers`' `apply_chat_template`.
//! Key order (tools JSON schemas!) survives only with the `preserve_order` features of both
//! `serde_json` and `minijinja`; without them objects come out sorted and the tools goldens fail.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{
    context, AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior,
};

use super::tool_calls::ToolFormat;

const NAME: &str = "chat";

/// Used when a GGUF carries no template.
const CHATML: &str = "{%- for message in messages -%}\
{{ '<|im_start|>' + message['role'] + '\\n' }}{{ message['content'] if message['content'] is string else '' }}{{ '<|im_end|>\\n' }}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

/// A model's chat template, compiled once per model and rendered per request.
pub struct ChatTemplate {
    env: Environment<'static>,
    supports_tools: bool,
    tool_format: ToolFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("chat template does not compile: {0}")]
    Compile(String),
    #[error("chat template failed: {0}")]
    Render(String),
}

/// Marks errors raised by the template itself, so their message is reported verbatim.
#[derive(Debug, thiserror::Error)]
#[error("raise_exception")]
struct Raised;

impl ChatTemplate {
    /// `source` = the Jinja text; `bos_token`/`eos_token` = the model's special token texts.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // transformers: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), no autoescape.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // More forgiving than jinja2's Undefined: a template that renders under HF renders here too.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_filter("tojson", tojson);
        // jinja2 semantics: None is not iterable (minijinja iterates none as empty); str/dict are sequences.
        env.add_test("iterable", |v: &Value| !v.is_none() && v.try_iter().is_ok());
        env.add_test("sequence", |v: &Value| {
            matches!(
                v.kind(),
                ValueKind::String | ValueKind::Bytes | ValueKind::Seq | ValueKind::Map
            )
        });
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg).with_source(Raised))
        });
        env.add_function("strftime_now", strftime_now);
        env.add_global("bos_token", bos_token);
        env.add_global("eos_token", eos_token);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| TemplateError::Compile(e.to_string()))?;
        let supports_tools = env
            .get_template(NAME)
            .map(|t| t.undeclared_variables(false).contains("tools"))
            .unwrap_or(false);
        Ok(Self {
            env,
            supports_tools,
            tool_format: ToolFormat::detect(Some(source)),
        })
    }

    /// The documented fallback when a GGUF has no template: ChatML.
    pub fn chatml_fallback(bos_token: &str, eos_token: &str) -> Self {
        Self::new(CHATML, bos_token, eos_token).expect("built-in ChatML template compiles")
    }

    /// Renders OpenAI-shaped messages; array content is flattened to text first. `kwargs` are
    /// extra template variables (`chat_template_kwargs`, e.g. `enable_thinking`).
    pub fn render(
        &self,
        messages: &[serde_json::Value],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
        kwargs: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, TemplateError> {
        let messages = messages
            .iter()
            .map(flatten_content)
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = context! {
            messages => Value::from_serialize(&messages),
            // HF passes tools=None when absent, so `tools is defined` holds and `tools is none`.
            tools => tools.map(Value::from_serialize).unwrap_or(Value::from(())),
            add_generation_prompt => add_generation_prompt,
            ..Value::from_serialize(kwargs.cloned().unwrap_or_default())
        };
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| TemplateError::Render(e.to_string()))?;
        tmpl.render(ctx).map_err(|e| {
            let raised = std::error::Error::source(&e).is_some_and(|s| s.is::<Raised>());
            match (raised, e.detail()) {
                (true, Some(msg)) => TemplateError::Render(msg.to_owned()),
                _ => TemplateError::Render(e.to_string()),
            }
        })
    }

    /// Whether the template renders `tools` itself; otherwise Paddock's generic tool prompt is used.
    pub fn supports_tools(&self) -> bool {
        self.supports_tools
    }

    /// How this model family writes tool calls, judged from the template's markers.
    pub fn tool_format(&self) -> ToolFormat {
        self.tool_format
    }
}

/// OpenAI allows `content: [{type:"text", text}, ...]`; templates expect a string. Text parts are
/// joined with "\n" (as llama.cpp does); other part types are refused rather than silently dropped.
fn flatten_content(msg: &serde_json::Value) -> Result<serde_json::Value, TemplateError> {
    let mut msg = msg.clone();
    if let Some(parts) = msg.get("content").and_then(|c| c.as_array()) {
        let texts = parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text),
                (ty, _) => Err(TemplateError::Render(format!(
                    "unsupported content part type {ty:?}"
                ))),
            });
        let joined = texts.collect::<Result<Vec<_>, _>>()?.join("\n");
        msg["content"] = joined.into();
    }
    Ok(msg)
}

fn strftime_now(fmt: String) -> Result<String, Error> {
    let mut out = String::new();
    // chrono reports bad specifiers as fmt::Error (format!/to_string would panic instead).
    write!(out, "{}", chrono::Local::now().format(&fmt))
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "bad strftime format"))?;
    Ok(out)
}

/// Python prints None/True/False and containers as repr; minijinja would print none/true/[..json..].
fn python_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => {
            let mut s = String::new();
            py_repr(value, &mut s)?;
            Ok(out.write_str(&s)?)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn py_repr(v: &Value, out: &mut String) -> Result<(), Error> {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            let q = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            out.push(q);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == q => out.extend(['\\', c]),
                    c if c.is_control() && (c as u32) < 0x100 => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push(q);
        }
        ValueKind::Seq | ValueKind::Map => {
            let is_map = matches!(v.kind(), ValueKind::Map);
            out.push(if is_map { '{' } else { '[' });
            for (i, item) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(&item, out)?;
                if is_map {
                    out.push_str(": ");
                    py_repr(&v.get_item(&item)?, out)?;
                }
            }
            out.push(if is_map { '}' } else { ']' });
        }
        _ => {
            let _ = write!(out, "{v}");
        }
    }
    Ok(())
}

/// Longest `tojson` indent: real templates use 2 or 4, and the indent is repeated once per
/// nesting level on every line, so a template asking for 2^40 spaces aborted the process.
const MAX_INDENT: usize = 64;

/// HF's tojson: `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=False)`.
/// Replaces minijinja's builtin, which HTML-escapes `<`, `>`, `&` and `'`.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = kwargs.get::<Option<Value>>("indent")?.and_then(|v| {
        // One space past the limit is enough to be refused below.
        let width = v.as_i64().map(|n| usize::try_from(n).unwrap_or(0));
        let spaces = width.map(|w| " ".repeat(w.min(MAX_INDENT + 1)));
        v.as_str().map(str::to_owned).or(spaces)
    });
    if indent.as_ref().is_some_and(|i| i.len() > MAX_INDENT) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson indent is limited to {MAX_INDENT} characters"),
        ));
    }
    let seps: Option<Vec<String>> = kwargs.get("separators")?;
    let (item_sep, key_sep) = match seps.as_deref() {
        Some([item, key]) => (item.clone(), key.clone()),
        // Python drops the space after ',' when indenting.
        _ if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        _ => (", ".to_owned(), ": ".to_owned()),
    };
    let opts = JsonOpts {
        indent,
        item_sep,
        key_sep,
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let mut out = String::new();
    opts.write(&value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct JsonOpts {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
    sort_keys: bool,
}

impl JsonOpts {
    fn newline(&self, depth: usize, out: &mut String) {
        if let Some(ind) = &self.indent {
            out.push('\n');
            out.push_str(&ind.repeat(depth));
        }
    }

    fn string(&self, s: &str, out: &mut String) {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        for c in quoted.chars() {
            if c.is_ascii() || !self.ensure_ascii {
                out.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }

    fn write(&self, v: &Value, depth: usize, out: &mut String) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
            ValueKind::Number => match f64::try_from(v.clone()).unwrap_or(f64::NAN) {
                f if f.is_finite() => out.push_str(&serde_json::to_string(&f).unwrap_or_default()),
                f if f.is_nan() => out.push_str("NaN"),
                f => out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" }),
            },
            ValueKind::String => self.string(v.as_str().unwrap_or_default(), out),
            ValueKind::Map | ValueKind::Seq | ValueKind::Iterable => {
                let is_map = matches!(v.kind(), ValueKind::Map);
                let mut items: Vec<Value> = v.try_iter()?.collect();
                if is_map && self.sort_keys {
                    items.sort();
                }
                out.push(if is_map { '{' } else { '[' });
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(depth + 1, out);
                    if !is_map {
                        self.write(item, depth + 1, out)?;
                        continue;
                    }
                    // json.dumps turns int/bool/None keys into strings.
                    let mut key = String::new();
                    match item.as_str() {
                        Some(s) => key.push_str(s),
                        None => self.write(item, depth, &mut key)?,
                    }
                    self.string(&key, out);
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(item)?, depth + 1, out)?;
                }
                if !items.is_empty() {
                    self.newline(depth, out);
                }
                out.push(if is_map { '}' } else { ']' });
            }
            // Python would raise TypeError; stringifying is the lenient choice.
            _ => self.string(&v.to_string(), out),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/templates")
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Every family x case: `<case>.txt` is the exact render; `<case>.err` the raise_exception
    /// message (empty: any other error, whose wording differs between Python and Rust).
    #[test]
    fn goldens_match_transformers() {
        let root = data();
        let families: serde_json::Value =
            serde_json::from_str(&read(&root.join("families.json"))).unwrap();
        let mut cases: Vec<_> = std::fs::read_dir(root.join("cases"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        cases.sort();
        let (mut checked, mut failures) = (0, Vec::new());
        for (family, tokens) in families.as_object().unwrap() {
            let dir = root.join(family);
            let (bos, eos) = (
                tokens["bos_token"].as_str().unwrap(),
                tokens["eos_token"].as_str().unwrap(),
            );
            let tmpl = ChatTemplate::new(&read(&dir.join("template.jinja")), bos, eos).unwrap();
            for case_path in &cases {
                let case: serde_json::Value = serde_json::from_str(&read(case_path)).unwrap();
                let name = case_path.file_stem().unwrap().to_str().unwrap();
                let got = tmpl.render(
                    case["messages"].as_array().unwrap(),
                    Some(&case["tools"]).filter(|t| !t.is_null()),
                    case["add_generation_prompt"].as_bool().unwrap(),
                    None,
                );
                let (txt, err) = (
                    dir.join(format!("{name}.txt")),
                    dir.join(format!("{name}.err")),
                );
                let ok = match (&got, txt.exists()) {
                    (Ok(out), true) => *out == read(&txt),
                    (Err(TemplateError::Render(msg)), false) => {
                        let want = read(&err);
                        want.is_empty() || *msg == want
                    }
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{family}/{name}: got {got:?}"));
                }
                checked += 1;
            }
        }
        assert!(checked >= 30, "only {checked} goldens checked");
        assert!(
            failures.is_empty(),
            "{} golden mismatches:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn compile_error_supports_tools_and_fallback() {
        let err = ChatTemplate::new("{% for %}", "", "");
        assert!(matches!(err, Err(TemplateError::Compile(_))));
        assert_eq!(read(&data().join("chatml/template.jinja")), CHATML);
        assert!(!ChatTemplate::chatml_fallback("", "").supports_tools());
        let tools: Vec<bool> = ["qwen25", "llama31", "smollm2", "gemma3", "mistral"]
            .iter()
            .map(|f| read(&data().join(f).join("template.jinja")))
            .map(|src| ChatTemplate::new(&src, "", "").unwrap().supports_tools())
            .collect();
        assert_eq!(tools, [true, true, false, false, false]);
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let src = "{% set x = messages[0] %}{{ x | tojson }}|{{ x | tojson(indent=2) }}|\
                   {{ x | tojson(separators=(',', ':')) }}|{{ x | tojson(ensure_ascii=true) }}";
        let x = serde_json::json!({"z": "<b>é</b>\n", "a": [1, 2.5, true, null], "e": {}});
        let out = ChatTemplate::new(src, "", "")
            .unwrap()
            .render(&[x], None, false, None);
        // Expected strings produced with Python 3 json.dumps.
        assert_eq!(
            out.unwrap(),
            "{\"z\": \"<b>é</b>\\n\", \"a\": [1, 2.5, true, null], \"e\": {}}|\
             {\n  \"z\": \"<b>é</b>\\n\",\n  \"a\": [\n    1,\n    2.5,\n    true,\n    null\n  ],\n  \"e\": {}\n}|\
             {\"z\":\"<b>é</b>\\n\",\"a\":[1,2.5,true,null],\"e\":{}}|\
             {\"z\": \"<b>\\u00e9</b>\\n\", \"a\": [1, 2.5, true, null], \"e\": {}}"
        );
    }

    #[test]
    fn a_huge_tojson_indent_is_an_error_not_an_abort() {
        // `tojson(indent=1099511627776)` in a model's template made " ".repeat(2^40) fail to
        // allocate, which aborts the whole server (fuzz/fuzz_targets/chat_template.rs).
        for indent in ["1099511627776", "65", "' ' * 65"] {
            let src = format!("{{{{ messages | tojson(indent={indent}) }}}}");
            let out = ChatTemplate::new(&src, "", "")
                .unwrap()
                .render(&[], None, false, None);
            assert!(
                matches!(&out, Err(TemplateError::Render(m)) if m.contains("limited to 64")),
                "{indent}: {out:?}"
            );
        }
        let t = ChatTemplate::new("{{ [1] | tojson(indent=64) }}", "", "").unwrap();
        assert_eq!(
            t.render(&[], None, false, None).unwrap(),
            format!("[\n{}1\n]", " ".repeat(64))
        );
    }

    #[test]
    fn python_flavoured_output_methods_and_strftime() {
        let t = ChatTemplate::new(
            "{{ none }} {{ true }} {{ [1, 'a', none] }} {{ {'k': false} }} {{ ' Hi '.strip().upper() }} \
             {{ 'a,b'.split(',') }} {{ {'k': 1}.get('k') }} {{ 'x'.startswith('x') }} {{ strftime_now('%Y') }} \
             {{ foo.bar.baz }}|{{ bos_token }}{{ eos_token }}",
            "<s>",
            "</s>",
        )
        .unwrap();
        let year = chrono::Local::now().format("%Y").to_string();
        assert_eq!(
            t.render(&[], None, false, None).unwrap(),
            format!("None True [1, 'a', None] {{'k': False}} HI ['a', 'b'] 1 True {year} |<s></s>")
        );
    }

    #[test]
    fn content_parts_flatten_and_non_text_parts_are_refused() {
        let t = ChatTemplate::chatml_fallback("", "");
        let parts = serde_json::json!({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
        assert_eq!(
            t.render(&[parts], None, false, None).unwrap(),
            "<|im_start|>user\na\nb<|im_end|>\n"
        );
        let img = serde_json::json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]});
        assert!(matches!(
            t.render(&[img], None, false, None),
            Err(TemplateError::Render(_))
        ));
    }

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<ChatTemplate>();
    }
}
