//! PII: detection over a request's messages, and the policy's effect (allow, redact and
//! restore, force local, block). Values never leave this module except to the models the
//! policy allows; the audit log and the logs only ever see the types.

pub mod detect;
pub mod eval;
pub mod redact;

use std::collections::BTreeMap;

pub use detect::{detect, Finding, TYPES};
pub use redact::{Redactions, StreamRestorer};

use crate::wire::openai::{ChatRequest, Content};

/// The types found in a request and how many of each.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PiiReport {
    pub types: BTreeMap<&'static str, usize>,
}

impl PiiReport {
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.types.keys().map(|k| k.to_string()).collect()
    }
}

/// The detector's configured types.
#[derive(Debug, Clone)]
pub struct PiiScanner {
    enabled: Vec<&'static str>,
}

impl PiiScanner {
    /// `types`: the names to detect (None: all). Unknown names were rejected by validation.
    pub fn new(types: Option<&[String]>) -> Self {
        let enabled = match types {
            Some(t) => TYPES
                .iter()
                .copied()
                .filter(|k| t.iter().any(|x| x == k))
                .collect(),
            None => TYPES.to_vec(),
        };
        Self { enabled }
    }

    pub fn detect(&self, text: &str) -> Vec<Finding> {
        detect(text, &self.enabled)
    }

    /// Counts the PII in every text part of every message.
    pub fn scan(&self, req: &ChatRequest) -> PiiReport {
        let mut report = PiiReport::default();
        for m in &req.messages {
            for_each_text(m.content.as_ref(), |t| {
                for f in self.detect(t) {
                    *report.types.entry(f.kind).or_default() += 1;
                }
            });
        }
        report
    }

    /// The request with every PII value replaced by a placeholder, and the placeholders.
    pub fn redact(&self, req: &ChatRequest) -> (ChatRequest, Redactions) {
        let mut out = req.clone();
        let mut r = Redactions::default();
        for m in &req.messages {
            for_each_text(m.content.as_ref(), |t| r.reserve(t));
        }
        for m in out.messages.iter_mut() {
            map_text(m.content.as_mut(), |t| {
                let f = self.detect(t);
                if f.is_empty() {
                    None
                } else {
                    Some(r.redact(t, &f))
                }
            });
        }
        (out, r)
    }

    /// `text` with each value replaced by its type in brackets (for stored content).
    pub fn mask(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in self.detect(text) {
            out.push_str(&text[at..f.start]);
            out.push('[');
            out.push_str(&f.kind.to_ascii_uppercase());
            out.push(']');
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

fn for_each_text(c: Option<&Content>, mut f: impl FnMut(&str)) {
    match c {
        Some(Content::Text(t)) => f(t),
        Some(Content::Parts(parts)) => {
            for p in parts {
                if let Some(t) = p.text.as_deref() {
                    f(t)
                }
            }
        }
        None => {}
    }
}

fn map_text(c: Option<&mut Content>, mut f: impl FnMut(&str) -> Option<String>) {
    match c {
        Some(Content::Text(t)) => {
            if let Some(n) = f(t) {
                *t = n;
            }
        }
        Some(Content::Parts(parts)) => {
            for p in parts.iter_mut() {
                if let Some(t) = p.text.as_mut() {
                    if let Some(n) = f(t) {
                        *t = n;
                    }
                }
            }
        }
        None => {}
    }
}
