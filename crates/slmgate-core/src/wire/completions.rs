//! The legacy Completions API (`POST /v1/completions`): a prompt in, text out, with the
//! old `logprobs` shape (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::invalid::InvalidRequest;
use super::openai::{ChatChunk, ChatRequest, ChatResponse, Message, Stop, StreamOptions};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompletionRequest {
    pub model: String,
    #[serde(default)]
    pub prompt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// The number of alternatives per token to return (0..=5), or absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// OpenAI's default when `max_tokens` is absent.
const DEFAULT_MAX_TOKENS: u32 = 16;

impl CompletionRequest {
    /// The canonical request: one user message holding the raw prompt.
    pub fn to_chat(&self) -> Result<ChatRequest, InvalidRequest> {
        let prompt = match &self.prompt {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                a[0].as_str().unwrap_or_default().to_string()
            }
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                return Err(InvalidRequest::param(
                    "prompt",
                    format!("one prompt per request is supported, got {}", a.len()),
                ))
            }
            None => return Err(InvalidRequest::param("prompt", "`prompt` is required")),
            Some(_) => {
                return Err(InvalidRequest::param(
                    "prompt",
                    "`prompt` must be a string (token-id prompts are not supported)",
                ))
            }
        };
        if self.echo == Some(true) {
            return Err(InvalidRequest::param("echo", "`echo` is not supported"));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(InvalidRequest::param(
                "suffix",
                "`suffix` (insertion) is not supported",
            ));
        }
        if let Some(k) = self.logprobs {
            if k > 5 {
                return Err(InvalidRequest::param(
                    "logprobs",
                    format!("logprobs must be between 0 and 5, got {k}"),
                ));
            }
        }
        let mut req = ChatRequest::new(self.model.clone(), vec![Message::text("user", prompt)]);
        req.raw_prompt = true;
        req.max_tokens = Some(self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS));
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.n = self.n;
        req.stream = self.stream;
        req.stream_options = self.stream_options.clone();
        req.logprobs = self.logprobs.map(|_| true);
        req.top_logprobs = self.logprobs.filter(|k| *k > 0);
        req.stop = self.stop.clone();
        req.seed = self.seed;
        req.frequency_penalty = self.frequency_penalty;
        req.presence_penalty = self.presence_penalty;
        req.logit_bias = self.logit_bias.clone();
        if let Some(u) = &self.user {
            req.extra.insert("user".into(), json!(u));
        }
        Ok(req)
    }
}

/// `cmpl-` plus 24 hex characters.
pub fn completion_id() -> String {
    format!("cmpl-{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}

/// Chat `logprobs.content` entries → the legacy shape; `offset` is where the text starts.
fn legacy_logprobs(lp: &Value, offset: usize) -> Value {
    let items = lp
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut tokens, mut lps, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
    let mut at = offset;
    for t in &items {
        let tok = t["token"].as_str().unwrap_or("").to_string();
        offsets.push(at);
        at += tok.len();
        tokens.push(json!(tok));
        lps.push(t["logprob"].clone());
        let mut top = Map::new();
        for alt in t["top_logprobs"].as_array().into_iter().flatten() {
            top.insert(
                alt["token"].as_str().unwrap_or("").to_string(),
                alt["logprob"].clone(),
            );
        }
        tops.push(Value::Object(top));
    }
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

pub fn from_chat(resp: &ChatResponse, id: &str, model: &str) -> Value {
    let c = resp.choices.first();
    json!({
        "id": id, "object": "text_completion", "created": resp.created, "model": model,
        "choices": [{
            "text": c.and_then(|c| c.message.content.clone()).unwrap_or_default(),
            "index": 0,
            "logprobs": c.and_then(|c| c.logprobs.as_ref()).map(|l| legacy_logprobs(l, 0)),
            "finish_reason": c.and_then(|c| c.finish_reason.clone()),
        }],
        "usage": resp.usage,
    })
}

/// One streamed chunk in the legacy shape; `offset` counts the text sent before it.
pub fn chunk(c: &ChatChunk, id: &str, model: &str, offset: &mut usize) -> Value {
    let choices: Vec<Value> = c
        .choices
        .iter()
        .map(|ch| {
            let text = ch.delta.content.clone().unwrap_or_default();
            let lp = ch.logprobs.as_ref().map(|l| legacy_logprobs(l, *offset));
            *offset += text.len();
            json!({"text": text, "index": ch.index, "logprobs": lp, "finish_reason": ch.finish_reason})
        })
        .collect();
    let mut v = json!({"id": id, "object": "text_completion", "created": c.created, "model": model,
                       "choices": choices});
    if let Some(u) = &c.usage {
        v["usage"] = json!(u);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_and_options_map() {
        let r: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": ["Once"], "logprobs": 2}))
                .unwrap();
        let c = r.to_chat().unwrap();
        assert!(c.raw_prompt);
        assert_eq!(c.max_tokens, Some(16));
        assert_eq!((c.logprobs, c.top_logprobs), (Some(true), Some(2)));
        let bad: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": [1, 2]})).unwrap();
        assert_eq!(bad.to_chat().unwrap_err().param.as_deref(), Some("prompt"));
        let bad: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "x", "echo": true})).unwrap();
        assert_eq!(bad.to_chat().unwrap_err().param.as_deref(), Some("echo"));
    }

    #[test]
    fn legacy_logprobs_shape() {
        let lp = json!({"content": [{"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}, {"token": "Yo", "logprob": -1.5}]},
                                    {"token": "!", "logprob": -0.1, "top_logprobs": []}]});
        let v = legacy_logprobs(&lp, 3);
        assert_eq!(v["tokens"], json!(["Hi", "!"]));
        assert_eq!(v["text_offset"], json!([3, 5]));
        assert_eq!(v["top_logprobs"][0]["Yo"], json!(-1.5));
    }
}
