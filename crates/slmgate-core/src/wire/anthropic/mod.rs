//! Anthropic Messages API types and their translation to and from the canonical OpenAI shape.

mod stream;

pub use stream::{Event, StreamWriter};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::wire::openai::{self, ChatRequest, ChatResponse, Content, Message, Stop};
use crate::wire::tools::{FunctionCall, FunctionDef, Tool, ToolCall, ToolChoice};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<AMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<AContent>,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ATool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<AToolChoice>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AMessage {
    pub role: String,
    pub content: AContent,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum AContent {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AContent {
    fn text(&self) -> String {
        match self {
            AContent::Text(s) => s.clone(),
            AContent::Blocks(b) => b
                .iter()
                .filter(|b| b.kind == "text")
                .filter_map(|b| b.text.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

impl Block {
    fn text(text: String) -> Self {
        Self {
            kind: "text".into(),
            text: Some(text),
            extra: Map::new(),
        }
    }

    /// A `tool_use` block for a canonical call.
    fn tool_use(call: &ToolCall) -> Self {
        let mut extra = Map::new();
        extra.insert("id".into(), json!(call.id));
        extra.insert("name".into(), json!(call.function.name));
        extra.insert("input".into(), call.arguments_value());
        Self {
            kind: "tool_use".into(),
            text: None,
            extra,
        }
    }

    /// A `tool_use` block as a canonical call.
    fn as_call(&self) -> ToolCall {
        ToolCall {
            id: self.str_field("id"),
            kind: "function".into(),
            function: FunctionCall {
                name: self.str_field("name"),
                arguments: self
                    .extra
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| json!({}))
                    .to_string(),
            },
        }
    }

    fn str_field(&self, k: &str) -> String {
        self.extra
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// The text of a `tool_result` block's content (a string or text blocks).
    fn result_text(&self) -> String {
        match self.extra.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            Some(other) if !other.is_null() => other.to_string(),
            _ => String::new(),
        }
    }
}

/// `tools[i]` of the Messages API: `{name, description?, input_schema}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ATool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_object_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// `tool_choice`: `{"type": "auto" | "any" | "tool" | "none", "name"?, "disable_parallel_tool_use"?}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

impl ATool {
    fn to_openai(&self) -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: self.name.clone(),
                description: self.description.clone(),
                parameters: Some(self.input_schema.clone()),
                strict: None,
            },
        }
    }
    fn from_openai(t: &Tool) -> Self {
        Self {
            name: t.function.name.clone(),
            description: t.function.description.clone(),
            input_schema: t.function.parameters_schema(),
            extra: Map::new(),
        }
    }
}

impl AToolChoice {
    fn to_openai(&self) -> ToolChoice {
        match self.kind.as_str() {
            "any" => ToolChoice::Mode("required".into()),
            "tool" => ToolChoice::named(self.name.as_deref().unwrap_or_default()),
            "none" => ToolChoice::Mode("none".into()),
            "auto" => ToolChoice::Mode("auto".into()),
            // Checked by the canonical validation: a 400 naming `tool_choice`.
            other => ToolChoice::Mode(other.to_string()),
        }
    }
    fn from_openai(c: &ToolChoice, parallel: Option<bool>) -> Self {
        let (kind, name) = match c {
            ToolChoice::Mode(m) if m == "required" => ("any", None),
            ToolChoice::Mode(m) if m == "none" => ("none", None),
            ToolChoice::Mode(_) => ("auto", None),
            ToolChoice::Named(n) => ("tool", Some(n.function.name.clone())),
        };
        Self {
            kind: kind.into(),
            name,
            disable_parallel_tool_use: (parallel == Some(false) && kind != "none").then_some(true),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessagesResponse {
    pub id: String,
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    #[serde(default = "assistant")]
    pub role: String,
    pub model: String,
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    pub usage: AUsage,
}

fn message_type() -> String {
    "message".into()
}
fn assistant() -> String {
    "assistant".into()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
pub struct AUsage {
    #[serde(default)]
    pub input_tokens: u32,
    #[serde(default)]
    pub output_tokens: u32,
}

/// OpenAI finish reason → Anthropic stop reason.
pub fn stop_reason(finish: Option<&str>) -> Option<String> {
    finish.map(|f| match f {
        "length" => "max_tokens".to_string(),
        "tool_calls" => "tool_use".to_string(),
        _ => "end_turn".to_string(),
    })
}

/// Anthropic stop reason → OpenAI finish reason.
pub fn finish_reason(stop: Option<&str>) -> Option<String> {
    stop.map(|s| match s {
        "max_tokens" => "length".to_string(),
        "tool_use" => "tool_calls".to_string(),
        _ => "stop".to_string(),
    })
}

impl MessagesRequest {
    /// Served `/v1/messages` → the canonical request. `tool_use` blocks become the assistant
    /// turn's calls; `tool_result` blocks become `tool` messages (before the turn's text).
    pub fn to_openai(&self) -> ChatRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        if let Some(sys) = &self.system {
            messages.push(Message::text("system", sys.text()));
        }
        for m in &self.messages {
            let blocks = match &m.content {
                AContent::Text(t) => {
                    messages.push(Message::text(&m.role, t.clone()));
                    continue;
                }
                AContent::Blocks(b) => b,
            };
            let mut parts = Vec::new();
            let mut calls = Vec::new();
            for b in blocks {
                match b.kind.as_str() {
                    "tool_use" => calls.push(b.as_call()),
                    "tool_result" => {
                        let mut t = Message::text("tool", b.result_text());
                        t.tool_call_id = Some(b.str_field("tool_use_id"));
                        messages.push(t);
                    }
                    _ => parts.push(openai::ContentPart {
                        kind: b.kind.clone(),
                        text: b.text.clone(),
                        extra: b.extra.clone(),
                    }),
                }
            }
            if parts.is_empty() && calls.is_empty() {
                continue;
            }
            messages.push(Message {
                role: m.role.clone(),
                content: (!parts.is_empty()).then_some(Content::Parts(parts)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                tool_call_id: None,
                extra: Map::new(),
            });
        }
        let mut req = ChatRequest::new(self.model.clone(), messages);
        req.stream = self.stream;
        req.max_tokens = Some(self.max_tokens);
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.top_k = self.top_k;
        req.stop = self.stop_sequences.clone().map(Stop::Many);
        req.tools = self
            .tools
            .as_ref()
            .map(|t| t.iter().map(ATool::to_openai).collect());
        if let Some(c) = &self.tool_choice {
            req.tool_choice = Some(c.to_openai());
            if c.disable_parallel_tool_use == Some(true) {
                req.parallel_tool_calls = Some(false);
            }
        }
        req
    }

    /// Canonical request → an upstream Anthropic request: system turns move to `system`,
    /// calls become `tool_use` blocks and `tool` messages `tool_result` blocks of one user
    /// turn.
    pub fn from_openai(req: &ChatRequest, upstream_model: &str, default_max_tokens: u32) -> Self {
        let mut system = Vec::new();
        let mut messages: Vec<AMessage> = Vec::new();
        for m in &req.messages {
            let text = m
                .content
                .as_ref()
                .and_then(|c| c.as_text())
                .unwrap_or_default();
            match m.role.as_str() {
                "system" | "developer" => system.push(text),
                "tool" | "function" => {
                    let mut extra = Map::new();
                    extra.insert(
                        "tool_use_id".into(),
                        json!(m.tool_call_id.clone().unwrap_or_default()),
                    );
                    extra.insert("content".into(), json!(text));
                    let block = Block {
                        kind: "tool_result".into(),
                        text: None,
                        extra,
                    };
                    // Results of one turn's calls go together in one user turn.
                    match messages.last_mut() {
                        Some(AMessage {
                            role,
                            content: AContent::Blocks(b),
                        }) if role == "user" && b.iter().all(|x| x.kind == "tool_result") => {
                            b.push(block)
                        }
                        _ => messages.push(AMessage {
                            role: "user".into(),
                            content: AContent::Blocks(vec![block]),
                        }),
                    }
                }
                role => {
                    let mut blocks = match &m.content {
                        Some(Content::Parts(parts)) => parts
                            .iter()
                            .map(|p| Block {
                                kind: p.kind.clone(),
                                text: p.text.clone(),
                                extra: p.extra.clone(),
                            })
                            .collect(),
                        _ if text.is_empty() && m.tool_calls.is_some() => Vec::new(),
                        _ => vec![Block::text(text.clone())],
                    };
                    for c in m.tool_calls.iter().flatten() {
                        blocks.push(Block::tool_use(c));
                    }
                    let content = match (&m.content, m.tool_calls.is_some()) {
                        (Some(Content::Text(_)) | None, false) => AContent::Text(text),
                        _ => AContent::Blocks(blocks),
                    };
                    messages.push(AMessage {
                        role: if role == "assistant" {
                            "assistant".into()
                        } else {
                            "user".into()
                        },
                        content,
                    });
                }
            }
        }
        Self {
            model: upstream_model.to_string(),
            messages,
            system: (!system.is_empty()).then(|| AContent::Text(system.join("\n\n"))),
            max_tokens: req.max_output_tokens().unwrap_or(default_max_tokens),
            temperature: req.temperature.map(|t| t.min(1.0)),
            top_p: req.top_p,
            top_k: req.top_k,
            stop_sequences: (!req.stop_list().is_empty()).then(|| req.stop_list()),
            stream: req.stream,
            metadata: None,
            tools: req
                .tools
                .as_ref()
                .map(|t| t.iter().map(ATool::from_openai).collect()),
            tool_choice: req
                .tool_choice
                .as_ref()
                .map(|c| AToolChoice::from_openai(c, req.parallel_tool_calls)),
            extra: Map::new(),
        }
    }
}

impl MessagesResponse {
    pub fn from_openai(resp: &ChatResponse, public_model: &str) -> Self {
        let choice = resp.choices.first();
        let text = choice
            .and_then(|c| c.message.content.clone())
            .unwrap_or_default();
        let calls = choice
            .and_then(|c| c.message.tool_calls.as_deref())
            .unwrap_or(&[]);
        let mut content = Vec::with_capacity(1 + calls.len());
        if !text.is_empty() || calls.is_empty() {
            content.push(Block::text(text));
        }
        content.extend(calls.iter().map(Block::tool_use));
        let usage = resp.usage.unwrap_or_default();
        Self {
            id: format!("msg_{}", resp.id.trim_start_matches("chatcmpl-")),
            kind: "message".into(),
            role: "assistant".into(),
            model: public_model.to_string(),
            content,
            stop_reason: stop_reason(choice.and_then(|c| c.finish_reason.as_deref())),
            stop_sequence: None,
            usage: AUsage {
                input_tokens: usage.prompt_tokens,
                output_tokens: usage.completion_tokens,
            },
        }
    }

    pub fn to_openai(&self) -> ChatResponse {
        let text: String = self
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.clone())
            .collect();
        let calls: Vec<ToolCall> = self
            .content
            .iter()
            .filter(|b| b.kind == "tool_use")
            .map(Block::as_call)
            .collect();
        let mut message = openai::ResponseMessage::text(text);
        message.tool_calls = (!calls.is_empty()).then_some(calls);
        ChatResponse {
            id: self.id.clone(),
            object: "chat.completion".into(),
            created: openai::now_secs(),
            model: self.model.clone(),
            choices: vec![openai::Choice {
                index: 0,
                message,
                logprobs: None,
                finish_reason: finish_reason(self.stop_reason.as_deref()),
                extra: Map::new(),
            }],
            usage: Some(openai::Usage::new(
                self.usage.input_tokens,
                self.usage.output_tokens,
            )),
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn openai_to_anthropic_moves_system_and_maps_params() {
        let r = req(
            json!({"model": "m", "max_tokens": 50, "temperature": 1.7, "stop": "END",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "No emojis."},
                         {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                         {"role": "user", "content": [{"type": "text", "text": "again"}]}]}),
        );
        let a = MessagesRequest::from_openai(&r, "claude-x", 4096);
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["model"], "claude-x");
        assert_eq!(v["system"], "Be brief.\n\nNo emojis.");
        assert_eq!(v["max_tokens"], 50);
        assert_eq!(v["temperature"], 1.0); // Anthropic's range is 0..1
        assert_eq!(v["stop_sequences"], json!(["END"]));
        assert_eq!(v["messages"].as_array().unwrap().len(), 3);
        assert_eq!(v["messages"][2]["content"][0]["text"], "again");
    }

    #[test]
    fn default_max_tokens_when_absent() {
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(MessagesRequest::from_openai(&r, "c", 123).max_tokens, 123);
    }

    #[test]
    fn anthropic_response_to_openai_and_back() {
        let a: MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 7, "output_tokens": 2}}))
        .unwrap();
        let o = a.to_openai();
        assert_eq!(o.choices[0].message.content.as_deref(), Some("Hello"));
        assert_eq!(o.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(o.usage.unwrap().total_tokens, 9);
        let back = MessagesResponse::from_openai(&o, "auto");
        assert_eq!(back.stop_reason.as_deref(), Some("max_tokens"));
        assert_eq!(back.usage.input_tokens, 7);
        assert_eq!(back.model, "auto");
    }

    #[test]
    fn served_request_to_openai() {
        let a: MessagesRequest = serde_json::from_value(json!({
            "model": "auto", "max_tokens": 10, "system": [{"type": "text", "text": "S"}],
            "stop_sequences": ["x"], "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
        let o = a.to_openai();
        assert_eq!(o.messages[0].role, "system");
        assert_eq!(
            o.messages[0].content.as_ref().unwrap().as_text().unwrap(),
            "S"
        );
        assert_eq!(o.max_tokens, Some(10));
        assert_eq!(o.stop_list(), vec!["x".to_string()]);
    }
}
