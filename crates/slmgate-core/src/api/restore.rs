//! Puts redacted PII back into the answer (plain or streamed) and hands the answer's text to
//! the audit ticket.

use std::collections::BTreeMap;

use futures::StreamExt;

use super::audit::Ticket;
use crate::govern::pii::{Redactions, StreamRestorer};
use crate::providers::ChatStream;
use crate::wire::openai::ChatResponse;

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
pub fn restore_stream(
    mut inner: ChatStream,
    redactions: Option<Redactions>,
    ticket: Ticket,
) -> ChatStream {
    Box::pin(async_stream::stream! {
        let mut restorers: BTreeMap<u32, StreamRestorer> = BTreeMap::new();
        let mut last = None;
        while let Some(item) = inner.next().await {
            let mut chunk = match item {
                Ok(c) => c,
                Err(e) => {
                    yield Err(e);
                    return;
                }
            };
            if let Some(r) = &redactions {
                for c in chunk.choices.iter_mut() {
                    let restorer = restorers
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
            }
            for c in &chunk.choices {
                if let Some(t) = c.delta.content.as_deref() {
                    ticket.answer(t);
                }
            }
            last = Some(chunk.clone());
            yield Ok(chunk);
        }
        // Text still held when the stream ended without a finish chunk.
        if let Some(mut tail) = last {
            let mut any = false;
            tail.usage = None;
            for c in tail.choices.iter_mut() {
                let held = restorers.get_mut(&c.index).map(|r| r.finish()).unwrap_or_default();
                any |= !held.is_empty();
                ticket.answer(&held);
                c.delta = Default::default();
                c.delta.content = Some(held);
                c.finish_reason = None;
                c.logprobs = None;
            }
            if any {
                yield Ok(tail);
            }
        }
    })
}
