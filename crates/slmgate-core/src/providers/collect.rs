//! Folds a chunk stream into one complete response (the cascade streams internally so it can
//! stop a low-confidence decode early, even for clients that did not ask to stream).

use futures::StreamExt;
use serde_json::{json, Value};

use super::{ChatStream, ProviderError};
use crate::wire::openai::{now_secs, ChatResponse};
use crate::wire::tools::ToolCallFold;

pub async fn collect(mut s: ChatStream) -> Result<ChatResponse, ProviderError> {
    let mut id = String::new();
    let mut model = String::new();
    let mut created = 0;
    let mut text = String::new();
    let mut logprobs: Option<Vec<Value>> = None;
    let mut finish = None;
    let mut usage = None;
    let mut calls = ToolCallFold::default();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        if id.is_empty() {
            id = chunk.id.clone();
            model = chunk.model.clone();
            created = chunk.created;
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
        for c in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(t) = c.delta.content {
                text.push_str(&t);
            }
            for d in c.delta.tool_calls.iter().flatten() {
                calls.push(d);
            }
            if let Some(items) = c
                .logprobs
                .as_ref()
                .and_then(|l| l.get("content"))
                .and_then(Value::as_array)
            {
                logprobs
                    .get_or_insert_with(Vec::new)
                    .extend(items.iter().cloned());
            }
            if c.finish_reason.is_some() {
                finish = c.finish_reason;
            }
        }
    }
    let mut resp = ChatResponse::assistant(
        id,
        if created == 0 { now_secs() } else { created },
        model,
        text,
        logprobs.map(|l| json!({"content": l, "refusal": null})),
        finish,
        usage,
    );
    let m = &mut resp.choices[0].message;
    m.tool_calls = calls.finish();
    if m.tool_calls.is_some() && m.content.as_deref().is_some_and(|t| t.trim().is_empty()) {
        m.content = None;
    }
    Ok(resp)
}
