//! A served Anthropic stream: canonical chunks as Messages API events.

use serde_json::{json, Value};

use super::stop_reason;
use crate::wire::openai;

/// The SSE events of a served Anthropic stream, built from canonical chunks: text and
/// `tool_use` content blocks opened as they come, each closed before the next.
pub struct StreamWriter {
    open: Option<OpenBlock>,
    blocks: u32,
    finish: Option<String>,
    output_tokens: u32,
}

enum OpenBlock {
    Text,
    /// A call, by its canonical `tool_calls[i].index`.
    Tool(u32),
}

/// One event: its name and data.
pub type Event = (&'static str, Value);

impl Default for StreamWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamWriter {
    pub fn new() -> Self {
        Self {
            open: None,
            blocks: 0,
            finish: None,
            output_tokens: 0,
        }
    }

    pub fn start(id: &str, model: &str) -> Event {
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        )
    }

    pub fn chunk(&mut self, chunk: &openai::ChatChunk) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(u) = chunk.usage {
            self.output_tokens = u.completion_tokens;
        }
        for c in &chunk.choices {
            if let Some(t) = c.delta.content.as_deref().filter(|t| !t.is_empty()) {
                if !matches!(self.open, Some(OpenBlock::Text)) {
                    self.close(&mut out);
                    out.push(self.open_block(json!({"type": "text", "text": ""})));
                    self.open = Some(OpenBlock::Text);
                }
                out.push(self.delta(json!({"type": "text_delta", "text": t})));
            }
            for d in c.delta.tool_calls.iter().flatten() {
                let same = matches!(self.open, Some(OpenBlock::Tool(i)) if i == d.index);
                let f = d.function.as_ref();
                if !same {
                    self.close(&mut out);
                    let name = f.and_then(|f| f.name.clone()).unwrap_or_default();
                    let id = d.id.clone().unwrap_or_default();
                    out.push(self.open_block(
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    ));
                    self.open = Some(OpenBlock::Tool(d.index));
                }
                if let Some(a) = f
                    .and_then(|f| f.arguments.as_deref())
                    .filter(|a| !a.is_empty())
                {
                    out.push(self.delta(json!({"type": "input_json_delta", "partial_json": a})));
                }
            }
            if c.finish_reason.is_some() {
                self.finish = c.finish_reason.clone();
            }
        }
        out
    }

    /// The closing events: the open block (an empty text block when there was none),
    /// `message_delta` with the stop reason, `message_stop`.
    pub fn end(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.blocks == 0 {
            out.push(self.open_block(json!({"type": "text", "text": ""})));
            self.open = Some(OpenBlock::Text);
        }
        self.close(&mut out);
        let reason = stop_reason(self.finish.as_deref()).unwrap_or_else(|| "end_turn".into());
        out.push((
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null},
                   "usage": {"output_tokens": self.output_tokens}}),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }

    fn open_block(&mut self, block: Value) -> Event {
        self.blocks += 1;
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": self.blocks - 1, "content_block": block}),
        )
    }

    fn delta(&self, delta: Value) -> Event {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.blocks.saturating_sub(1), "delta": delta}),
        )
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if self.open.take().is_some() {
            out.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.blocks - 1}),
            ));
        }
    }
}
