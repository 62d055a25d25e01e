//! A streamed response as the official typed events.

use serde_json::{json, Value};

use super::output::{call_item, item_id, message_item, usage_of, Echo};
use crate::wire::openai::ChatChunk;
use crate::wire::tools::{FunctionCall, ToolCall};

/// The typed events of a streamed response, built from canonical chunks. Every event carries
/// its `sequence_number`; the last is `response.completed` (or `response.incomplete`) with
/// the whole response object.
pub struct StreamWriter {
    echo: Echo,
    seq: u64,
    output: Vec<Value>,
    open: Option<Open>,
    finish: Option<String>,
    usage: Option<Value>,
}

enum Open {
    Text {
        id: String,
        text: String,
    },
    Call {
        id: String,
        index: u32,
        call: ToolCall,
    },
}

impl StreamWriter {
    pub fn new(echo: Echo) -> Self {
        Self {
            echo,
            seq: 0,
            output: Vec::new(),
            open: None,
            finish: None,
            usage: None,
        }
    }

    fn event(&mut self, kind: &'static str, mut body: Value) -> (&'static str, Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        (kind, body)
    }

    pub fn start(&mut self) -> Vec<(&'static str, Value)> {
        let r = self.echo.response("in_progress", Vec::new(), None, None);
        vec![
            self.event("response.created", json!({"response": r.clone()})),
            self.event("response.in_progress", json!({"response": r})),
        ]
    }

    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(u) = &chunk.usage {
            self.usage = Some(usage_of(u));
        }
        for c in &chunk.choices {
            if let Some(t) = c.delta.content.as_deref().filter(|t| !t.is_empty()) {
                if !matches!(self.open, Some(Open::Text { .. })) {
                    self.close(&mut out);
                    let id = item_id("msg");
                    let oi = self.output.len();
                    let e = self.event("response.output_item.added", json!({"output_index": oi,
                        "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}}));
                    out.push(e);
                    let e = self.event("response.content_part.added", json!({"item_id": id, "output_index": oi,
                        "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
                    out.push(e);
                    self.open = Some(Open::Text {
                        id,
                        text: String::new(),
                    });
                }
                let oi = self.output.len();
                if let Some(Open::Text { id, text }) = &mut self.open {
                    text.push_str(t);
                    let body = json!({"item_id": id, "output_index": oi, "content_index": 0, "delta": t, "logprobs": []});
                    out.push(self.event("response.output_text.delta", body));
                }
            }
            for d in c.delta.tool_calls.iter().flatten() {
                let same =
                    matches!(&self.open, Some(Open::Call { index, .. }) if *index == d.index);
                if !same {
                    self.close(&mut out);
                    let f = d.function.as_ref();
                    let call = ToolCall {
                        id: d.id.clone().unwrap_or_default(),
                        kind: "function".into(),
                        function: FunctionCall {
                            name: f.and_then(|f| f.name.clone()).unwrap_or_default(),
                            arguments: String::new(),
                        },
                    };
                    let id = item_id("fc");
                    let oi = self.output.len();
                    let e = self.event(
                        "response.output_item.added",
                        json!({"output_index": oi, "item": call_item(&id, &call, "in_progress")}),
                    );
                    out.push(e);
                    self.open = Some(Open::Call {
                        id,
                        index: d.index,
                        call,
                    });
                }
                let oi = self.output.len();
                let args = d
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.as_deref())
                    .unwrap_or("");
                if let Some(Open::Call { id, call, .. }) = &mut self.open {
                    if !args.is_empty() {
                        call.function.arguments.push_str(args);
                        let body = json!({"item_id": id, "output_index": oi, "delta": args});
                        out.push(self.event("response.function_call_arguments.delta", body));
                    }
                }
            }
            if c.finish_reason.is_some() {
                self.finish = c.finish_reason.clone();
            }
        }
        out
    }

    fn close(&mut self, out: &mut Vec<(&'static str, Value)>) {
        let oi = self.output.len();
        match self.open.take() {
            None => {}
            Some(Open::Text { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let e = self.event("response.output_text.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "text": text, "logprobs": []}));
                out.push(e);
                let e = self.event(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "part": part}),
                );
                out.push(e);
                let item = message_item(&id, &text, "completed");
                out.push(self.event(
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item.clone()}),
                ));
                self.output.push(item);
            }
            Some(Open::Call { id, call, .. }) => {
                let e = self.event("response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": oi, "name": call.function.name, "arguments": call.function.arguments}));
                out.push(e);
                let item = call_item(&id, &call, "completed");
                out.push(self.event(
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item.clone()}),
                ));
                self.output.push(item);
            }
        }
    }

    /// The closing events; returns them with the final response object (to store).
    pub fn end(&mut self) -> (Vec<(&'static str, Value)>, Value) {
        let mut out = Vec::new();
        self.close(&mut out);
        let truncated = self.finish.as_deref() == Some("length");
        let (status, incomplete, kind) = if truncated {
            (
                "incomplete",
                Some("max_output_tokens"),
                "response.incomplete",
            )
        } else {
            ("completed", None, "response.completed")
        };
        let r = self.echo.response(
            status,
            std::mem::take(&mut self.output),
            self.usage.clone(),
            incomplete,
        );
        out.push(self.event(kind, json!({"response": r.clone()})));
        (out, r)
    }

    /// A failure after the stream started: `response.failed` with the error.
    pub fn failed(&mut self, code: &str, message: &str) -> (&'static str, Value) {
        let mut r = self.echo.response(
            "failed",
            std::mem::take(&mut self.output),
            self.usage.clone(),
            None,
        );
        r["error"] = json!({"code": code, "message": message});
        self.event("response.failed", json!({"response": r}))
    }
}
