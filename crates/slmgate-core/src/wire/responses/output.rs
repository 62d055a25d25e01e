//! The answer as a `response` object: output items, usage, and the assistant turn a stored
//! response adds to its conversation.

use serde_json::{json, Value};

use super::ResponsesRequest;
use crate::wire::openai::{ChatResponse, Content, Message};
use crate::wire::tools::{FunctionCall, ToolCall};

/// `resp_` plus 32 hex characters.
pub fn response_id() -> String {
    format!("resp_{}", uuid::Uuid::new_v4().simple())
}

pub(super) fn item_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}

/// What the response object echoes of its request.
pub struct Echo {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    pub instructions: Option<String>,
    pub tools: Value,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_output_tokens: Option<u32>,
    pub metadata: Value,
    pub store: bool,
    pub text: Value,
}

impl Echo {
    pub fn of(req: &ResponsesRequest, id: String, created_at: u64) -> Self {
        Self {
            id,
            created_at,
            model: req.model.clone(),
            instructions: req.instructions.clone(),
            tools: json!(req.tools.clone().unwrap_or_default()),
            tool_choice: req.tool_choice.clone().unwrap_or(json!("auto")),
            parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
            previous_response_id: req.previous_response_id.clone(),
            temperature: req.temperature,
            top_p: req.top_p,
            max_output_tokens: req.max_output_tokens,
            metadata: req.metadata.clone().unwrap_or(json!({})),
            store: req.stores(),
            text: req
                .text
                .clone()
                .unwrap_or(json!({"format": {"type": "text"}})),
        }
    }

    /// The response object with these output items, status and usage.
    pub fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        incomplete: Option<&str>,
    ) -> Value {
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "error": null,
            "incomplete_details": incomplete.map(|r| json!({"reason": r})),
            "instructions": self.instructions, "max_output_tokens": self.max_output_tokens,
            "model": self.model, "output": output, "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": self.previous_response_id, "reasoning": {"effort": null, "summary": null},
            "store": self.store, "temperature": self.temperature, "text": self.text,
            "tool_choice": self.tool_choice, "tools": self.tools, "top_p": self.top_p,
            "truncation": "disabled", "usage": usage, "user": null, "metadata": self.metadata,
        })
    }
}

pub(super) fn usage_of(u: &crate::wire::openai::Usage) -> Value {
    json!({"input_tokens": u.prompt_tokens, "input_tokens_details": {"cached_tokens": u.cached_tokens()},
           "output_tokens": u.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": u.prompt_tokens + u.completion_tokens})
}

pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

pub(super) fn call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call.id, "name": call.function.name,
           "arguments": call.function.arguments, "status": status})
}

/// A whole canonical answer as a response object.
pub fn from_chat(echo: &Echo, resp: &ChatResponse) -> Value {
    let choice = resp.choices.first();
    let text = choice
        .and_then(|c| c.message.content.as_deref())
        .unwrap_or("");
    let calls = choice
        .and_then(|c| c.message.tool_calls.as_deref())
        .unwrap_or(&[]);
    let truncated = choice.and_then(|c| c.finish_reason.as_deref()) == Some("length");
    let mut output = Vec::new();
    if !text.is_empty() || calls.is_empty() {
        output.push(message_item(
            &item_id("msg"),
            text,
            if truncated { "incomplete" } else { "completed" },
        ));
    }
    output.extend(
        calls
            .iter()
            .map(|c| call_item(&item_id("fc"), c, "completed")),
    );
    let (status, incomplete) = if truncated {
        ("incomplete", Some("max_output_tokens"))
    } else {
        ("completed", None)
    };
    echo.response(
        status,
        output,
        resp.usage.as_ref().map(usage_of),
        incomplete,
    )
}

/// The assistant turn a response adds to its conversation (what a later
/// `previous_response_id` continues from).
pub fn assistant_turn(resp: &Value) -> Option<Message> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in resp["output"].as_array()? {
        match item["type"].as_str() {
            Some("message") => {
                for p in item["content"].as_array().into_iter().flatten() {
                    text.push_str(p["text"].as_str().unwrap_or(""));
                }
            }
            Some("function_call") => calls.push(ToolCall {
                id: item["call_id"].as_str().unwrap_or_default().into(),
                kind: "function".into(),
                function: FunctionCall {
                    name: item["name"].as_str().unwrap_or_default().into(),
                    arguments: item["arguments"].as_str().unwrap_or("{}").into(),
                },
            }),
            _ => {}
        }
    }
    let mut m = Message::text("assistant", text);
    if !calls.is_empty() {
        if m.content
            .as_ref()
            .and_then(Content::as_text)
            .is_some_and(|t| t.is_empty())
        {
            m.content = None;
        }
        m.tool_calls = Some(calls);
    }
    Some(m)
}
