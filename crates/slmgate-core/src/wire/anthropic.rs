//! Anthropic Messages API types and their translation to and from the canonical OpenAI shape.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::openai::{self, ChatRequest, ChatResponse, Content, Message, Stop};

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
    fn to_openai(&self) -> Content {
        match self {
            AContent::Text(s) => Content::Text(s.clone()),
            AContent::Blocks(b) => Content::Parts(
                b.iter()
                    .map(|b| openai::ContentPart {
                        kind: b.kind.clone(),
                        text: b.text.clone(),
                        extra: b.extra.clone(),
                    })
                    .collect(),
            ),
        }
    }
    fn text(&self) -> String {
        match self {
            AContent::Text(s) => s.clone(),
            AContent::Blocks(b) => b
                .iter()
                .filter_map(|b| b.text.clone())
                .collect::<Vec<_>>()
                .join("\n"),
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
    /// Served `/v1/messages` → the canonical request.
    pub fn to_openai(&self) -> ChatRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        if let Some(sys) = &self.system {
            messages.push(Message::text("system", sys.text()));
        }
        for m in &self.messages {
            messages.push(Message {
                role: m.role.clone(),
                content: Some(m.content.to_openai()),
                extra: Map::new(),
            });
        }
        ChatRequest {
            model: self.model.clone(),
            messages,
            stream: self.stream,
            stream_options: None,
            max_tokens: Some(self.max_tokens),
            max_completion_tokens: None,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            n: None,
            stop: self.stop_sequences.clone().map(Stop::Many),
            seed: None,
            logprobs: None,
            top_logprobs: None,
            response_format: None,
            frequency_penalty: None,
            presence_penalty: None,
            logit_bias: None,
            extra: Map::new(),
        }
    }

    /// Canonical request → an upstream Anthropic request.
    pub fn from_openai(req: &ChatRequest, upstream_model: &str, default_max_tokens: u32) -> Self {
        let mut system = Vec::new();
        let mut messages = Vec::new();
        for m in &req.messages {
            let text = m
                .content
                .as_ref()
                .and_then(|c| c.as_text())
                .unwrap_or_default();
            match m.role.as_str() {
                "system" | "developer" => system.push(text),
                role => {
                    let content = match &m.content {
                        Some(Content::Parts(parts)) => AContent::Blocks(
                            parts
                                .iter()
                                .map(|p| Block {
                                    kind: p.kind.clone(),
                                    text: p.text.clone(),
                                    extra: p.extra.clone(),
                                })
                                .collect(),
                        ),
                        _ => AContent::Text(text),
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
        let usage = resp.usage.unwrap_or_default();
        Self {
            id: format!("msg_{}", resp.id.trim_start_matches("chatcmpl-")),
            kind: "message".into(),
            role: "assistant".into(),
            model: public_model.to_string(),
            content: vec![Block {
                kind: "text".into(),
                text: Some(text),
                extra: Map::new(),
            }],
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
        ChatResponse {
            id: self.id.clone(),
            object: "chat.completion".into(),
            created: openai::now_secs(),
            model: self.model.clone(),
            choices: vec![openai::Choice {
                index: 0,
                message: openai::ResponseMessage {
                    role: "assistant".into(),
                    content: Some(text),
                    extra: Map::new(),
                },
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

/// The SSE events of a served Anthropic stream, built from canonical chunks.
pub mod events {
    use super::*;

    pub fn message_start(id: &str, model: &str, input_tokens: u32) -> Value {
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0}}})
    }
    pub fn block_start() -> Value {
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    }
    pub fn text_delta(text: &str) -> Value {
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
    }
    pub fn block_stop() -> Value {
        json!({"type": "content_block_stop", "index": 0})
    }
    pub fn message_delta(stop_reason: Option<String>, output_tokens: u32) -> Value {
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": output_tokens}})
    }
    pub fn message_stop() -> Value {
        json!({"type": "message_stop"})
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
