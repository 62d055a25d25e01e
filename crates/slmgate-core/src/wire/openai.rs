//! OpenAI Chat Completions wire types — the gateway's canonical request/response shape.
//! Unknown fields are kept (`extra`) so OpenAI-compatible upstreams receive them unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tools::{Tool, ToolCall, ToolCallDelta, ToolChoice};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Extension (llama.cpp, vLLM): top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Token id (as a string) → bias in -100..100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// A legacy completion (`/v1/completions`): the one user message is the raw prompt, fed
    /// to a local model without its chat template (remote tiers get it as a user message).
    #[serde(skip)]
    pub raw_prompt: bool,
    /// Extension: speculative decoding on a local model, e.g. `{"type": "lookup", "n_draft":
    /// 8}`, `{"type": "draft"}` or `{"type": "none"}`; absent: the model's config. Never sent
    /// upstream.
    #[serde(default, skip_serializing)]
    pub speculative: Option<SpeculativeRequest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `speculative` extension of a chat request.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpeculativeRequest {
    #[serde(rename = "type")]
    pub kind: SpeculativeKind,
    /// Prompt lookup: the longest and shortest n-gram matched, and most tokens per step.
    pub ngram_max: Option<usize>,
    pub ngram_min: Option<usize>,
    pub n_draft: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SpeculativeKind {
    None,
    Lookup,
    Draft,
}

impl ChatRequest {
    /// A request for `model` with these messages and every option unset.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            stream: None,
            stream_options: None,
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            n: None,
            stop: None,
            seed: None,
            logprobs: None,
            top_logprobs: None,
            response_format: None,
            frequency_penalty: None,
            presence_penalty: None,
            logit_bias: None,
            tools: None,
            tool_choice: None,
            parallel_tool_calls: None,
            raw_prompt: false,
            speculative: None,
            extra: Map::new(),
        }
    }

    /// The tools offered, if any.
    pub fn tool_list(&self) -> &[Tool] {
        self.tools.as_deref().unwrap_or(&[])
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
    /// `max_completion_tokens` wins over the deprecated `max_tokens`.
    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }
    /// The last user message's text: what the learned router and domain routing score, and
    /// what a review item shows.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .and_then(|m| m.content.as_ref().and_then(|c| c.as_text()))
    }

    /// The text of every message whose role is one of `roles`, one per line.
    pub fn texts(&self, roles: &[&str]) -> String {
        let mut out = String::new();
        for m in self
            .messages
            .iter()
            .filter(|m| roles.contains(&m.role.as_str()))
        {
            if let Some(t) = m.content.as_ref().and_then(|c| c.as_text()) {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&t);
            }
        }
        out
    }

    pub fn stop_list(&self) -> Vec<String> {
        match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    /// An assistant turn's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// A `tool` turn: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn text(role: &str, text: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(Content::Text(text.into())),
            tool_calls: None,
            tool_call_id: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl Content {
    /// The length in characters of [`Content::as_text`], without building it (0 when a part
    /// is not text).
    pub fn text_chars(&self) -> usize {
        match self {
            Content::Text(s) => s.chars().count(),
            Content::Parts(parts) => {
                if parts.iter().any(|p| p.kind != "text") {
                    return 0;
                }
                parts
                    .iter()
                    .map(|p| p.text.as_deref().map_or(0, |t| t.chars().count()))
                    .sum()
            }
        }
    }

    /// The text of a message; `None` when a part is not text (images, audio …).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Content::Text(s) => Some(s.clone()),
            Content::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    if p.kind != "text" {
                        return None;
                    }
                    out.push_str(p.text.as_deref().unwrap_or(""));
                }
                Some(out)
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatResponse {
    pub id: String,
    #[serde(default = "chat_completion")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatResponse {
    /// One assistant message: the shape every generated (not relayed) response takes.
    pub fn assistant(
        id: String,
        created: u64,
        model: String,
        text: String,
        logprobs: Option<Value>,
        finish_reason: Option<String>,
        usage: Option<Usage>,
    ) -> Self {
        Self {
            id,
            object: chat_completion(),
            created,
            model,
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage::text(text),
                logprobs,
                finish_reason,
                extra: Map::new(),
            }],
            usage,
            extra: Map::new(),
        }
    }
}

fn chat_completion() -> String {
    "chat.completion".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: ResponseMessage,
    #[serde(default)]
    pub logprobs: Option<Value>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResponseMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponseMessage {
    pub fn text(text: String) -> Self {
        Self {
            role: "assistant".into(),
            content: Some(text),
            tool_calls: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
    /// OpenAI: prompt tokens served from the provider's prompt cache (priced apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u32,
}

impl Usage {
    pub fn new(prompt: u32, completion: u32) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: None,
        }
    }

    pub fn cached_tokens(&self) -> u32 {
        self.prompt_tokens_details
            .map(|d| d.cached_tokens)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatChunk {
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub logprobs: Option<Value>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatChunk {
    pub fn new(id: &str, created: u64, model: &str) -> Self {
        Self {
            id: id.to_string(),
            object: chunk_object(),
            created,
            model: model.to_string(),
            choices: Vec::new(),
            usage: None,
            extra: Map::new(),
        }
    }

    pub fn delta(mut self, delta: Delta, logprobs: Option<Value>, finish: Option<&str>) -> Self {
        self.choices.push(ChunkChoice {
            index: 0,
            delta,
            logprobs,
            finish_reason: finish.map(str::to_string),
            extra: Map::new(),
        });
        self
    }

    /// True once this chunk carries anything a client would see (content, a tool call, a
    /// finish reason). Used to decide when a stream is committed to one deployment.
    pub fn is_substantive(&self) -> bool {
        self.choices.iter().any(|c| {
            c.finish_reason.is_some()
                || c.delta.content.as_deref().is_some_and(|s| !s.is_empty())
                || c.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
                || !c.delta.extra.is_empty()
        })
    }
}

impl Delta {
    pub fn content(text: impl Into<String>) -> Self {
        Self {
            content: Some(text.into()),
            ..Default::default()
        }
    }
    pub fn calls(calls: Vec<ToolCallDelta>) -> Self {
        Self {
            tool_calls: Some(calls),
            ..Default::default()
        }
    }
    pub fn role(role: &str) -> Self {
        Self {
            role: Some(role.into()),
            content: Some(String::new()),
            ..Default::default()
        }
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `chatcmpl-` plus 24 random hex characters.
pub fn completion_id() -> String {
    format!(
        "chatcmpl-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let v = json!({"model": "m", "messages": [{"role": "user", "content": "hi", "name": "bob"}],
                       "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                       "tool_choice": "auto", "user": "u1", "max_tokens": 5, "metadata": {"a": "b"},
                       "web_search_options": {}});
        let r: ChatRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.tool_list()[0].function.name, "f");
        assert_eq!(r.extra["web_search_options"], json!({}));
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn text_parts_join_and_images_are_not_text() {
        let c: Content = serde_json::from_value(
            json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
        )
        .unwrap();
        assert_eq!(c.as_text().as_deref(), Some("ab"));
        let c: Content =
            serde_json::from_value(json!([{"type": "image_url", "image_url": {"url": "x"}}]))
                .unwrap();
        assert_eq!(c.as_text(), None);
    }

    #[test]
    fn chunk_visibility() {
        let role = ChatChunk::new("i", 0, "m").delta(Delta::role("assistant"), None, None);
        assert!(!role.is_substantive());
        assert!(ChatChunk::new("i", 0, "m")
            .delta(Delta::content("x"), None, None)
            .is_substantive());
        assert!(ChatChunk::new("i", 0, "m")
            .delta(Delta::default(), None, Some("stop"))
            .is_substantive());
    }
}
