//! Incremental detokenization: token bytes in, valid UTF-8 text out, with stop strings held
//! back until they can no longer match (so a stop string never leaks to a streaming client).

/// Turns a stream of token byte pieces into text deltas and detects stop strings.
#[derive(Debug, Default)]
pub(crate) struct Detokenizer {
    /// Bytes of an incomplete UTF-8 sequence, waiting for the next token.
    partial: Vec<u8>,
    /// Decoded text not yet released because it could be the start of a stop string.
    held: String,
    stops: Vec<String>,
    /// Total text released so far.
    pub released: String,
}

/// Outcome of pushing one token's bytes.
#[derive(Debug, PartialEq)]
pub(crate) enum Pushed {
    /// Text that is safe to send now (possibly empty).
    Text(String),
    /// A stop string matched: send this text (the part before the stop), then finish.
    Stop(String),
}

impl Detokenizer {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Self::default()
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Pushed {
        self.partial.extend_from_slice(bytes);
        let valid_up_to = match std::str::from_utf8(&self.partial) {
            Ok(_) => self.partial.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid bytes (not just incomplete): replace them, never stall the stream.
            Err(_) => {
                let s = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                return self.feed(&s);
            }
        };
        let rest = self.partial.split_off(valid_up_to);
        let text =
            String::from_utf8(std::mem::replace(&mut self.partial, rest)).unwrap_or_default();
        self.feed(&text)
    }

    fn feed(&mut self, text: &str) -> Pushed {
        self.held.push_str(text);
        if self.stops.is_empty() {
            let out = std::mem::take(&mut self.held);
            self.released.push_str(&out);
            return Pushed::Text(out);
        }
        // A full stop string anywhere in the held text ends generation.
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..pos].to_string();
            self.held.clear();
            self.released.push_str(&out);
            return Pushed::Stop(out);
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        self.released.push_str(&out);
        Pushed::Text(out)
    }

    /// Text still held at the end of generation (no stop matched): release it.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.held);
        if !self.partial.is_empty() {
            out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.partial)));
        }
        self.released.push_str(&out);
        out
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of `stop`,
/// measured on char boundaries.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.starts_with(&text[start..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_split_across_tokens() {
        let mut d = Detokenizer::new(vec![]);
        let euro = "€".as_bytes();
        assert_eq!(d.push(&euro[..1]), Pushed::Text(String::new()));
        assert_eq!(d.push(&euro[1..]), Pushed::Text("€".into()));
    }

    #[test]
    fn stop_string_split_across_tokens_is_never_released() {
        let mut d = Detokenizer::new(vec!["END".into()]);
        assert_eq!(d.push(b"hello E"), Pushed::Text("hello ".into()));
        assert_eq!(d.push(b"N"), Pushed::Text(String::new()));
        assert_eq!(d.push(b"D more"), Pushed::Stop(String::new()));
        assert_eq!(d.released, "hello ");
    }

    #[test]
    fn false_start_is_released() {
        let mut d = Detokenizer::new(vec!["END".into()]);
        assert_eq!(d.push(b"E"), Pushed::Text(String::new()));
        assert_eq!(d.push(b"x"), Pushed::Text("Ex".into()));
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn held_text_released_at_finish() {
        let mut d = Detokenizer::new(vec!["\n\n".into()]);
        assert_eq!(d.push(b"a\n"), Pushed::Text("a".into()));
        assert_eq!(d.finish(), "\n");
        assert_eq!(d.released, "a\n");
    }

    #[test]
    fn stop_inside_one_token() {
        let mut d = Detokenizer::new(vec!["##".into()]);
        assert_eq!(d.push(b"ab##cd"), Pushed::Stop("ab".into()));
    }

    #[test]
    fn invalid_utf8_does_not_stall() {
        let mut d = Detokenizer::new(vec![]);
        assert_eq!(d.push(&[0xff, b'a']), Pushed::Text("\u{fffd}a".into()));
    }
}
