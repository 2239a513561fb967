//! A read position in model output that may still be growing.
//!
//! Every read ends one of three ways: it read what it wanted; the text cannot be what it wanted
//! (`Stop::NoCall`); or the text ends too early to tell while more may still come
//! (`Stop::Pending`). Once the output is complete (`done`), running out of text is a plain
//! `NoCall`, so `Pending` never comes back from a complete output.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    Pending,
    NoCall,
}

pub(super) type Step<T> = Result<T, Stop>;

#[derive(Clone, Copy)]
pub(super) struct Cur<'a> {
    text: &'a str,
    pub(super) pos: usize,
    done: bool,
}

impl<'a> Cur<'a> {
    pub(super) fn new(text: &'a str, pos: usize, done: bool) -> Self {
        Self { text, pos, done }
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// What running out of text means: wait for more, or give up at the real end.
    pub(super) fn out_of_text(&self) -> Stop {
        if self.done {
            Stop::NoCall
        } else {
            Stop::Pending
        }
    }

    pub(super) fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes `lit` if the text goes on with it.
    pub(super) fn eat(&mut self, lit: &str) -> Step<bool> {
        let rest = self.rest();
        if rest.starts_with(lit) {
            self.pos += lit.len();
            Ok(true)
        } else if !self.done && lit.starts_with(rest) {
            Err(Stop::Pending)
        } else {
            Ok(false)
        }
    }

    pub(super) fn expect(&mut self, lit: &str) -> Step<()> {
        if self.eat(lit)? {
            Ok(())
        } else {
            Err(Stop::NoCall)
        }
    }

    /// Consumes `lit` after optional whitespace if it is there; otherwise moves nowhere. For
    /// closing tags that models sometimes leave out.
    pub(super) fn skip_closing(&mut self, lit: &str) -> Step<()> {
        let before = self.pos;
        self.skip_ws();
        if !self.eat(lit)? {
            self.pos = before;
        }
        Ok(())
    }

    /// The text up to the next `lit`, consuming both.
    pub(super) fn until(&mut self, lit: &str) -> Step<&'a str> {
        let rest = self.rest();
        let i = rest.find(lit).ok_or(self.out_of_text())?;
        self.pos += i + lit.len();
        Ok(&rest[..i])
    }

    /// The chars for which `keep` holds. If they run to the end of a text that may still grow,
    /// more of them may follow: Pending.
    pub(super) fn take_while(&mut self, keep: impl Fn(char) -> bool) -> Step<&'a str> {
        let rest = self.rest();
        let n = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        if n == rest.len() && !self.done {
            return Err(Stop::Pending);
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    /// The next char, without consuming it.
    pub(super) fn peek(&self) -> Step<char> {
        self.rest().chars().next().ok_or(self.out_of_text())
    }

    /// Fine only at the end of the output.
    pub(super) fn at_end(&self) -> Step<()> {
        match (self.rest().is_empty(), self.done) {
            (true, true) => Ok(()),
            (true, false) => Err(Stop::Pending),
            (false, _) => Err(Stop::NoCall),
        }
    }

    /// A JSON object or array, after optional whitespace.
    pub(super) fn json(&mut self) -> Step<Value> {
        self.skip_ws();
        if !matches!(self.peek()?, '{' | '[') {
            return Err(Stop::NoCall);
        }
        let mut values = serde_json::Deserializer::from_str(self.rest()).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => {
                self.pos += values.byte_offset();
                Ok(value)
            }
            // Cut off mid-value: the rest may still come.
            Some(Err(e)) if e.is_eof() => Err(self.out_of_text()),
            _ => Err(Stop::NoCall),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cur, Stop};

    #[test]
    fn growing_text_is_pending_where_complete_text_is_not_a_call() {
        assert_eq!(
            Cur::new("<tool_", 0, false).eat("<tool_call>"),
            Err(Stop::Pending)
        );
        assert_eq!(Cur::new("<tool_", 0, true).eat("<tool_call>"), Ok(false));
        assert_eq!(Cur::new("{\"a\": tr", 0, false).json(), Err(Stop::Pending));
        assert_eq!(Cur::new("{\"a\": tr", 0, true).json(), Err(Stop::NoCall));
        assert_eq!(Cur::new("{\"a\": x", 0, false).json(), Err(Stop::NoCall));
    }

    #[test]
    fn json_stops_right_after_the_value() {
        let mut cur = Cur::new("  {\"a\": [1, \"}\"]}\n</tool_call>", 0, false);
        assert_eq!(cur.json(), Ok(serde_json::json!({"a": [1, "}"]})));
        assert_eq!(cur.rest(), "\n</tool_call>");
    }
}
