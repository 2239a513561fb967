//! Turns a slot's token bytes into the text sent to the client: UTF-8 characters split across
//! tokens are carried over, and text that may be the start of a stop string is held back until
//! it is known not to be one. Pure code, no llama.cpp.

/// Output text of one generation. Feed it each token's bytes; it returns what may be sent now.
#[derive(Debug, Default)]
pub struct OutputText {
    stop: Vec<String>,
    /// Bytes of an unfinished UTF-8 character.
    partial: Vec<u8>,
    /// All complete text generated so far.
    text: String,
    /// How much of `text` was already returned.
    sent: usize,
}

/// What one fed token produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Text that can be sent now (may be empty).
    Text(String),
    /// A stop string appeared: send this text (what precedes the stop string), then finish.
    Stopped(String),
}

impl OutputText {
    pub fn new(stop: Vec<String>) -> Self {
        Self {
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Self::default()
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Output {
        self.partial.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            // An invalid sequence (not merely an unfinished one) can never become valid:
            // replace it, as a lossy decoder would, instead of holding it forever.
            Err(e) if e.error_len().is_some() => {
                let lossy = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.text.push_str(&lossy);
                return self.release();
            }
            Err(e) => e.valid_up_to(),
        };
        let done: Vec<u8> = self.partial.drain(..valid).collect();
        // Cannot fail: `valid` bytes were just checked.
        self.text
            .push_str(std::str::from_utf8(&done).unwrap_or_default());
        self.release()
    }

    /// Everything not yet sent, at the end of generation (held-back text was no stop string).
    pub fn finish(&mut self) -> String {
        if !self.partial.is_empty() {
            let rest = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            self.text.push_str(&rest);
        }
        let rest = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        rest
    }

    fn release(&mut self) -> Output {
        // A stop string may start in text already checked: look back by the longest one.
        let longest = self.stop.iter().map(String::len).max().unwrap_or(0);
        let from = floor_char_boundary(&self.text, self.sent.saturating_sub(longest));
        let hit = self
            .stop
            .iter()
            .filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i))
            .min();
        if let Some(at) = hit {
            let out = self.text[self.sent.min(at)..at].to_string();
            self.sent = self.text.len();
            return Output::Stopped(out);
        }
        let hold = self.held_back();
        let end = self.text.len() - hold;
        let out = self.text[self.sent.min(end)..end].to_string();
        self.sent = self.sent.max(end);
        Output::Text(out)
    }

    /// Length of the longest tail of `text` that is a proper prefix of some stop string.
    fn held_back(&self) -> usize {
        let text = &self.text[self.sent..];
        self.stop
            .iter()
            .flat_map(|stop| {
                (1..stop.len().min(text.len() + 1))
                    .rev()
                    .filter(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
                    .take(1)
            })
            .max()
            .unwrap_or(0)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` and returns everything sent, and whether a stop string ended it.
    fn run(stop: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut out = OutputText::new(stop.iter().map(|s| s.to_string()).collect());
        let mut sent = String::new();
        for piece in pieces {
            match out.feed(piece) {
                Output::Text(t) => sent.push_str(&t),
                Output::Stopped(t) => {
                    sent.push_str(&t);
                    return (sent, true);
                }
            }
        }
        sent.push_str(&out.finish());
        (sent, false)
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(
            run(&[], &[b"Hello", b", ", b"world"]),
            ("Hello, world".into(), false)
        );
    }

    #[test]
    fn utf8_split_across_tokens_is_carried_over() {
        let snowman = "☃".as_bytes();
        let mut out = OutputText::new(vec![]);
        assert_eq!(out.feed(&snowman[..1]), Output::Text(String::new()));
        assert_eq!(out.feed(&snowman[1..2]), Output::Text(String::new()));
        assert_eq!(out.feed(&snowman[2..]), Output::Text("☃".into()));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_held() {
        assert_eq!(run(&[], &[b"a\xffb"]), ("a\u{fffd}b".into(), false));
    }

    #[test]
    fn stop_string_inside_one_token() {
        assert_eq!(run(&["END"], &[b"abcENDxyz"]), ("abc".into(), true));
    }

    #[test]
    fn stop_string_split_across_tokens_is_held_then_cut() {
        let mut out = OutputText::new(vec!["\n\nUser:".into()]);
        assert_eq!(out.feed(b"Hi"), Output::Text("Hi".into()));
        assert_eq!(out.feed(b"\n"), Output::Text(String::new()));
        assert_eq!(out.feed(b"\nUs"), Output::Text(String::new()));
        assert_eq!(out.feed(b"er:"), Output::Stopped(String::new()));
    }

    #[test]
    fn held_text_is_released_when_it_stops_matching() {
        let mut out = OutputText::new(vec!["STOP".into()]);
        assert_eq!(out.feed(b"ST"), Output::Text(String::new()));
        assert_eq!(out.feed(b"AR"), Output::Text("STAR".into()));
        assert_eq!(out.finish(), "");
    }

    #[test]
    fn held_text_is_flushed_at_the_end() {
        assert_eq!(run(&["STOP"], &[b"ok ST"]), ("ok ST".into(), false));
    }

    #[test]
    fn earliest_of_several_stop_strings_wins() {
        assert_eq!(run(&["b", "a"], &[b"xxab"]), ("xx".into(), true));
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_text() {
        let text = "héllo wörld ☃ END tail".as_bytes();
        for cut in 0..=text.len() {
            let got = run(&["END"], &[&text[..cut], &text[cut..]]);
            assert_eq!(got, ("héllo wörld ☃ ".into(), true), "cut at {cut}");
        }
    }
}
