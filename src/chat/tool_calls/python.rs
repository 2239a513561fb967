//! Python-style calls, as Gemma writes them: `get_weather(city="Paris", days=3)`, several on
//! separate lines or in a list `[f(a=1), g(b='x')]`, maybe wrapped in `print(...)`. Keyword
//! arguments with literal values only: strings, numbers, True/False/None, lists and dicts.

use serde_json::{Map, Number, Value};

use super::cursor::{Cur, Step, Stop};
use super::ToolCall;

/// Deeper nesting than this is not a call (and must not overflow the stack).
const MAX_DEPTH: usize = 32;

pub(super) fn calls(cur: &mut Cur) -> Step<Vec<ToolCall>> {
    cur.skip_ws();
    let list = cur.eat("[")?;
    let mut calls = Vec::new();
    loop {
        cur.skip_ws();
        calls.push(call(cur)?);
        let before = cur.pos;
        cur.skip_ws();
        if list {
            if !cur.eat(",")? {
                cur.expect("]")?;
                return Ok(calls);
            }
            continue;
        }
        // Outside a list, another call may follow on the next line.
        match cur.peek() {
            Ok(c) if is_name_start(c) => {}
            Err(Stop::Pending) => return Err(Stop::Pending),
            _ => {
                cur.pos = before;
                return Ok(calls);
            }
        }
    }
}

fn call(cur: &mut Cur) -> Step<ToolCall> {
    let mut name = function_name(cur)?;
    let printed = name == "print";
    if printed {
        cur.skip_ws();
        name = function_name(cur)?;
    }
    let mut args = Map::new();
    loop {
        cur.skip_ws();
        if cur.eat(")")? {
            break;
        }
        let key = cur.take_while(is_name_char)?;
        if !key.starts_with(is_name_start) {
            return Err(Stop::NoCall);
        }
        cur.skip_ws();
        cur.expect("=")?;
        cur.skip_ws();
        args.insert(key.to_string(), value(cur, 0)?);
        cur.skip_ws();
        if !cur.eat(",")? {
            cur.expect(")")?;
            break;
        }
    }
    if printed {
        cur.skip_ws();
        cur.expect(")")?;
    }
    Ok(ToolCall {
        name: name.to_string(),
        arguments: Value::Object(args).to_string(),
    })
}

/// `name(`, where the name may be dotted (`default_api.get_weather`).
fn function_name<'a>(cur: &mut Cur<'a>) -> Step<&'a str> {
    let name = cur.take_while(|c| is_name_char(c) || c == '.')?;
    if !name.starts_with(is_name_start) {
        return Err(Stop::NoCall);
    }
    cur.expect("(")?;
    Ok(name)
}

fn value(cur: &mut Cur, depth: usize) -> Step<Value> {
    if depth > MAX_DEPTH {
        return Err(Stop::NoCall);
    }
    match cur.peek()? {
        quote @ ('"' | '\'') => string(cur, quote).map(Value::String),
        '[' => {
            cur.expect("[")?;
            let mut items = Vec::new();
            while let Some(item) = next_item(cur, "]", |cur| value(cur, depth + 1))? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        '{' => {
            cur.expect("{")?;
            let mut map = Map::new();
            let entry = |cur: &mut Cur| {
                let Value::String(key) = value(cur, depth + 1)? else {
                    return Err(Stop::NoCall);
                };
                cur.skip_ws();
                cur.expect(":")?;
                cur.skip_ws();
                Ok((key, value(cur, depth + 1)?))
            };
            while let Some((key, item)) = next_item(cur, "}", entry)? {
                map.insert(key, item);
            }
            Ok(Value::Object(map))
        }
        _ => literal(cur),
    }
}

/// The next item of a comma-separated list that ends with `close`; None at the end.
fn next_item<'a, T>(
    cur: &mut Cur<'a>,
    close: &str,
    item: impl Fn(&mut Cur<'a>) -> Step<T>,
) -> Step<Option<T>> {
    cur.skip_ws();
    if cur.eat(close)? {
        return Ok(None);
    }
    let got = item(cur)?;
    cur.skip_ws();
    if !cur.eat(",")? && !matches!(cur.peek()?, c if close.starts_with(c)) {
        return Err(Stop::NoCall);
    }
    Ok(Some(got))
}

fn literal(cur: &mut Cur) -> Step<Value> {
    let word = cur.take_while(|c| c.is_alphanumeric() || "+-._".contains(c))?;
    let value = match word {
        "True" | "true" => Value::Bool(true),
        "False" | "false" => Value::Bool(false),
        "None" | "null" => Value::Null,
        _ => match word.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::Number(
                word.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .ok_or(Stop::NoCall)?,
            ),
        },
    };
    Ok(value)
}

/// A quoted string, with the usual backslash escapes.
fn string(cur: &mut Cur, quote: char) -> Step<String> {
    let rest = cur.rest();
    let mut text = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            cur.pos += i + c.len_utf8();
            return Ok(text);
        }
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some((_, 'n')) => text.push('\n'),
            Some((_, 't')) => text.push('\t'),
            Some((_, e @ ('\\' | '"' | '\''))) => text.push(e),
            Some((_, other)) => {
                text.push('\\');
                text.push(other);
            }
            None => break,
        }
    }
    Err(cur.out_of_text())
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::super::cursor::{Cur, Stop};
    use super::calls;

    fn parse(text: &str) -> Result<Vec<(String, String)>, Stop> {
        let mut cur = Cur::new(text, 0, true);
        calls(&mut cur).map(|calls| calls.into_iter().map(|c| (c.name, c.arguments)).collect())
    }

    #[test]
    fn literals() {
        let got = parse(
            r#"f(s='it\'s', n=-2, x=1.5e3, ok=False, none=None, l=[1, "a", []], d={'k': {"z": True}})"#,
        );
        let args = r#"{"s":"it's","n":-2,"x":1500.0,"ok":false,"none":null,"l":[1,"a",[]],"d":{"k":{"z":true}}}"#;
        assert_eq!(got, Ok(vec![("f".to_string(), args.to_string())]));
    }

    #[test]
    fn not_calls() {
        for text in [
            "f(x)",
            "f(x=y)",
            "f(1)",
            "(x=1)",
            "f(x=1",
            "f(x=[1 2])",
            "f(x=nan)",
            "f(x={1: 2})",
        ] {
            assert_eq!(parse(text), Err(Stop::NoCall), "{text}");
        }
        let deep = format!("f(x={}{})", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse(&deep), Err(Stop::NoCall));
    }

    #[test]
    fn cut_off_is_pending_while_streaming() {
        for text in ["f(x=1", "f(x='ab", "f(x=[1,", "[f(x=1), g("] {
            assert_eq!(
                calls(&mut Cur::new(text, 0, false)),
                Err(Stop::Pending),
                "{text}"
            );
        }
    }
}
