//! GBNF grammars that make the model's answer take a shape: a tool call in the model's own
//! envelope whose arguments validate against the tool's schema, or JSON for `response_format`.
//! JSON schemas go through llama.cpp's own converter.

use serde_json::{json, Value};

use crate::engine::{schema_grammar, Grammar};

use super::request::{FieldError, ResponseFormat, Tool};
use super::tool_calls::Envelope;

/// The rule the converted call schema is renamed to, so it can sit under our own `root`.
const CALL_RULE: &str = "paddock-call";

/// A grammar for `response_format`; `None` for plain text.
pub fn response_grammar(format: &ResponseFormat) -> Result<Option<Grammar>, FieldError> {
    let gbnf = match format {
        ResponseFormat::Text => return Ok(None),
        ResponseFormat::Grammar(g) => g.clone(),
        ResponseFormat::JsonObject => convert(&json!({ "type": "object" }), "response_format")?,
        ResponseFormat::JsonSchema(schema) => {
            convert(schema, "response_format.json_schema.schema")?
        }
    };
    Ok(Some(Grammar {
        gbnf,
        triggers: Vec::new(),
    }))
}

/// A grammar for calls of `tools` written in `envelope`, one call or (with `parallel`) several.
/// `lazy`: free text is allowed until the model opens the envelope itself (`tool_choice: auto`);
/// otherwise the answer starts with a call.
pub fn tool_call_grammar(
    tools: &[&Tool],
    envelope: &Envelope,
    parallel: bool,
    lazy: bool,
) -> Result<Grammar, FieldError> {
    let variants: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    envelope.name_key: { "const": t.name },
                    envelope.args_key: t.parameters,
                },
                "required": [envelope.name_key, envelope.args_key],
                "additionalProperties": false,
            })
        })
        .collect();
    let schema = match <[Value; 1]>::try_from(variants) {
        Ok([one]) => one,
        Err(many) => json!({ "anyOf": many }),
    };
    let call = convert(&schema, "tools")?;
    let call = rename_root(&call);
    let open = envelope.open.trim_end();
    let close = envelope.close.trim_start();
    let repeat = if parallel { " (tc-ws tool-call)*" } else { "" };
    let gbnf = format!(
        "root ::= tool-call{repeat} tc-ws\n\
         tool-call ::= {} tc-ws {CALL_RULE} tc-ws {}\n\
         tc-ws ::= [ \\t\\n]*\n{call}",
        literal(open),
        literal(close),
    );
    let triggers = if !lazy {
        Vec::new()
    } else if open.is_empty() {
        // Bare-JSON formats (Llama 3): a call only when the answer starts with one.
        vec![r"\s*(\{)[\s\S]*".to_string()]
    } else {
        vec![format!(r"[\s\S]*?({})[\s\S]*", regex_escape(open))]
    };
    Ok(Grammar { gbnf, triggers })
}

fn convert(schema: &Value, param: &str) -> Result<String, FieldError> {
    schema_grammar(schema).map_err(|e| {
        FieldError::new(
            param,
            format!("this JSON schema cannot be turned into a grammar ({e})"),
        )
    })
}

/// Renames the converter's `root` rule (its definition and any reference from a recursive
/// `$ref: "#"`) so that our own `root` can wrap it.
fn rename_root(gbnf: &str) -> String {
    let mut out = String::with_capacity(gbnf.len());
    for line in gbnf.lines() {
        let renamed = match line.strip_prefix("root ::=") {
            Some(rest) => format!("{CALL_RULE} ::={rest}"),
            None => line.to_string(),
        };
        let refs = renamed
            .split(' ')
            .map(|w| if w == "root" { CALL_RULE } else { w });
        out.push_str(&refs.collect::<Vec<_>>().join(" "));
        out.push('\n');
    }
    out
}

/// A GBNF string literal; empty text is an empty sequence.
fn literal(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_renamed_only_as_a_whole_rule_name() {
        let g = "root ::= \"{\" space rooted \"}\"\nrooted ::= root | \"x\"\n";
        let r = rename_root(g);
        assert!(r.starts_with("paddock-call ::= \"{\" space rooted"));
        assert!(r.contains("rooted ::= paddock-call | \"x\""));
    }

    #[test]
    fn literals_and_regexes_escape_their_specials() {
        assert_eq!(literal("<tool_call>\n"), "\"<tool_call>\\n\"");
        assert_eq!(literal("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(regex_escape("[TOOL_CALLS]"), "\\[TOOL_CALLS\\]");
    }
}
