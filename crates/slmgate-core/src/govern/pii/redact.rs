//! Redact-and-restore: values become stable placeholders (`[EMAIL_1]`: the same value gets
//! the same placeholder everywhere in a request), and placeholders in the answer become the
//! values again — also when a placeholder arrives split over several stream chunks.

use super::detect::Finding;

/// The placeholders of one request and the values they stand for.
#[derive(Debug, Default, Clone)]
pub struct Redactions {
    /// (placeholder, original value)
    pairs: Vec<(String, String)>,
    /// Placeholder-shaped text the request itself contains (`[EMAIL_1]` typed by the
    /// user): never chosen as a placeholder, or restoring would rewrite it.
    taken: Vec<String>,
}

impl Redactions {
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Notes placeholder-shaped text in `text` (every text of a request, before any is
    /// redacted), so no placeholder collides with it.
    pub fn reserve(&mut self, text: &str) {
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            rest = &rest[open..];
            let Some(close) = rest[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            else {
                return;
            };
            if rest[1 + close..].starts_with(']') {
                let candidate = &rest[..close + 2];
                if !self.taken.iter().any(|t| t == candidate) {
                    self.taken.push(candidate.to_string());
                }
            }
            rest = &rest[1..];
        }
    }

    /// Replaces each finding in `text` with its placeholder. Every text of the request
    /// must have been [`reserve`](Self::reserve)d first.
    pub fn redact(&mut self, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in findings {
            out.push_str(&text[at..f.start]);
            out.push_str(&self.placeholder(f.kind, &text[f.start..f.end]));
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }

    fn placeholder(&mut self, kind: &str, value: &str) -> String {
        if let Some((p, _)) = self.pairs.iter().find(|(_, v)| v == value) {
            return p.clone();
        }
        let upper = kind.to_ascii_uppercase();
        let mut n = self
            .pairs
            .iter()
            .filter(|(p, _)| p[1..].starts_with(&upper))
            .count()
            + 1;
        let mut p = format!("[{upper}_{n}]");
        while self.taken.contains(&p) || self.pairs.iter().any(|(q, _)| *q == p) {
            n += 1;
            p = format!("[{upper}_{n}]");
        }
        self.pairs.push((p.clone(), value.to_string()));
        p
    }

    /// Puts the original values back.
    pub fn restore(&self, text: &str) -> String {
        if !text.contains('[') {
            return text.to_string();
        }
        let mut out = text.to_string();
        // Longest first: `[EMAIL_12]` before `[EMAIL_1]` cannot clash (brackets), but keep
        // the order deterministic anyway.
        for (p, v) in &self.pairs {
            out = out.replace(p.as_str(), v);
        }
        out
    }

    fn longest(&self) -> usize {
        self.pairs.iter().map(|(p, _)| p.len()).max().unwrap_or(0)
    }

    fn is_prefix_of_any(&self, s: &str) -> bool {
        self.pairs.iter().any(|(p, _)| p.starts_with(s))
    }
}

/// Restores placeholders in a stream of text pieces: text that might be the start of a
/// placeholder is held back until it is complete or clearly is not one.
#[derive(Debug)]
pub struct StreamRestorer {
    redactions: Redactions,
    held: String,
}

impl StreamRestorer {
    pub fn new(redactions: Redactions) -> Self {
        Self {
            redactions,
            held: String::new(),
        }
    }

    /// The restored text that can be sent now.
    pub fn push(&mut self, piece: &str) -> String {
        self.held.push_str(piece);
        let mut out = String::new();
        loop {
            let Some(open) = self.held.find('[') else {
                out.push_str(&self.held);
                self.held.clear();
                return self.redactions.restore(&out);
            };
            out.push_str(&self.held[..open]);
            let rest = &self.held[open..];
            if let Some(close) = rest.find(']') {
                let candidate = &rest[..=close];
                out.push_str(&self.redactions.restore(candidate));
                self.held = rest[close + 1..].to_string();
                continue;
            }
            if rest.len() <= self.redactions.longest() && self.redactions.is_prefix_of_any(rest) {
                // Maybe a placeholder still arriving: hold it.
                self.held = rest.to_string();
                return out;
            }
            // Not a placeholder: release the bracket and look further.
            out.push('[');
            self.held = rest[1..].to_string();
        }
    }

    /// Whatever is still held (the stream ended).
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.held);
        self.redactions.restore(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::govern::pii::detect::{detect, TYPES};

    fn redacted(text: &str) -> (String, Redactions) {
        let mut r = Redactions::default();
        r.reserve(text);
        let f = detect(text, TYPES);
        (r.redact(text, &f), r)
    }

    #[test]
    fn stable_placeholders_and_restore() {
        let t = "a@x.org wrote to b@y.org and again to a@x.org";
        let (red, r) = redacted(t);
        assert_eq!(red, "[EMAIL_1] wrote to [EMAIL_2] and again to [EMAIL_1]");
        assert_eq!(r.restore(&red), t);
    }

    #[test]
    fn placeholder_text_the_user_typed_is_left_alone() {
        // Caught by the pii_roundtrip fuzz property (restore(redact(x)) == x) on its seed
        // corpus: `[EMAIL_1]` typed by the user came back as the address after restoring.
        let t = "[EMAIL_1] is not a@x.org";
        let (red, r) = redacted(t);
        assert_eq!(red, "[EMAIL_1] is not [EMAIL_2]");
        assert_eq!(r.restore(&red), t);
        // Found by `cargo fuzz run pii_roundtrip`: after skipping a taken number, the next
        // value got the placeholder of the one before (b@y.org restored as a@x.org).
        let t = "a@x.org [EMAIL_1] b@y.org";
        let (red, r) = redacted(t);
        assert_eq!(red, "[EMAIL_2] [EMAIL_1] [EMAIL_3]");
        assert_eq!(r.restore(&red), t);
    }

    #[test]
    fn stream_restores_split_placeholders() {
        let (_, r) = redacted("mail a@x.org now");
        for cut in 1..9 {
            let answer = "Sure: [EMAIL_1] [x] done [";
            let mut s = StreamRestorer::new(r.clone());
            let mut out = String::new();
            for piece in answer.as_bytes().chunks(cut) {
                out.push_str(&s.push(std::str::from_utf8(piece).unwrap()));
            }
            out.push_str(&s.finish());
            assert_eq!(out, "Sure: a@x.org [x] done [", "cut {cut}");
        }
    }
}
