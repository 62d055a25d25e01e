//! Puts redacted PII back into the answer (plain or streamed) and hands the answer's text to
//! the audit ticket.

use std::collections::BTreeMap;

use super::ticket::Ticket;
use crate::govern::pii::{Redactions, StreamRestorer};
use crate::wire::openai::{ChatChunk, ChatResponse};

pub fn restore_response(resp: &mut ChatResponse, redactions: Option<&Redactions>, ticket: &Ticket) {
    for c in resp.choices.iter_mut() {
        if let (Some(text), Some(r)) = (c.message.content.as_mut(), redactions) {
            *text = r.restore(text);
        }
        if let Some(text) = c.message.content.as_deref() {
            ticket.answer(text);
        }
    }
}

/// Restores placeholders chunk by chunk (a placeholder split over chunks is held until it is
/// whole) and records the streamed text.
pub struct StreamRestore {
    redactions: Option<Redactions>,
    /// One restorer per choice index.
    restorers: BTreeMap<u32, StreamRestorer>,
    /// The last chunk seen: the shape of a tail chunk for text still held at the end.
    last: Option<ChatChunk>,
}

impl StreamRestore {
    pub fn new(redactions: Option<Redactions>) -> Self {
        Self {
            redactions,
            restorers: BTreeMap::new(),
            last: None,
        }
    }

    pub fn chunk(&mut self, chunk: &mut ChatChunk, ticket: &Ticket) {
        if let Some(r) = &self.redactions {
            for c in chunk.choices.iter_mut() {
                let restorer = self
                    .restorers
                    .entry(c.index)
                    .or_insert_with(|| StreamRestorer::new(r.clone()));
                let mut text = match c.delta.content.take() {
                    Some(t) => restorer.push(&t),
                    None => String::new(),
                };
                if c.finish_reason.is_some() {
                    text.push_str(&restorer.finish());
                }
                if !text.is_empty() || c.finish_reason.is_none() {
                    c.delta.content = Some(text);
                }
            }
            // Only a redacted stream can end with text held back.
            self.last = Some(chunk.clone());
        }
        for c in &chunk.choices {
            if let Some(t) = c.delta.content.as_deref() {
                ticket.answer(t);
            }
        }
    }

    /// Text still held when the stream ended without a finish chunk, as one more chunk.
    pub fn tail(&mut self, ticket: &Ticket) -> Option<ChatChunk> {
        let mut tail = self.last.take()?;
        let mut any = false;
        tail.usage = None;
        for c in tail.choices.iter_mut() {
            let held = self
                .restorers
                .get_mut(&c.index)
                .map(|r| r.finish())
                .unwrap_or_default();
            any |= !held.is_empty();
            ticket.answer(&held);
            c.delta = Default::default();
            c.delta.content = Some(held);
            c.finish_reason = None;
            c.logprobs = None;
        }
        any.then_some(tail)
    }
}
