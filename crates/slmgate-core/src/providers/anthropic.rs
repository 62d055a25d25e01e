//! Anthropic Messages upstreams, translated to and from the canonical shape.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::error::{FailureKind, ProviderError};
use super::http::{encode, RemoteHttp};
use super::ChatStream;
use crate::wire::anthropic::{finish_reason, MessagesRequest, MessagesResponse};
use crate::wire::openai::{
    completion_id, now_secs, ChatChunk, ChatRequest, ChatResponse, Delta, Usage,
};
use crate::wire::tools::{FunctionCallDelta, ToolCallDelta};

pub struct AnthropicProvider {
    pub(crate) http: RemoteHttp,
    auth: HeaderMap,
    messages: reqwest::Url,
}

impl AnthropicProvider {
    pub fn new(http: RemoteHttp) -> Result<Self, String> {
        let mut auth = http.key_header("x-api-key", "");
        auth.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let path = if http.cfg.base_url.trim_end_matches('/').ends_with("/v1") {
            "messages"
        } else {
            "v1/messages"
        };
        let messages = http.endpoint(path)?;
        Ok(Self {
            http,
            auth,
            messages,
        })
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        let mut up = MessagesRequest::from_openai(
            req,
            &self.http.cfg.model,
            self.http.cfg.default_max_tokens,
        );
        up.stream = stream.then_some(true);
        encode(&up)
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let out: MessagesResponse = self
            .http
            .call(&self.messages, &self.auth, self.body(req, false)?)
            .await?;
        Ok(out.to_openai())
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let mut events = self
            .http
            .call_stream(&self.messages, &self.auth, self.body(req, true)?)
            .await?;
        let mut dec = AnthropicEvents::new(&self.http.cfg.model);
        Ok(Box::pin(async_stream::stream! {
            while let Some(ev) = events.next().await {
                let ev = match ev { Ok(ev) => ev, Err(e) => { yield Err(e); return; } };
                match dec.event(&ev.data) {
                    Step::Chunks(chunks) => for c in chunks { yield Ok(c); },
                    Step::End(chunks) => {
                        for c in chunks { yield Ok(c); }
                        return;
                    }
                    Step::Fail(e) => { yield Err(e); return; }
                }
            }
            yield Err(ProviderError::new(FailureKind::Protocol, "the stream ended without message_stop"));
        }))
    }
}

/// What one upstream event gives: chunks to pass on, the last chunks, or the failure that
/// ends the stream.
pub enum Step {
    Chunks(Vec<ChatChunk>),
    End(Vec<ChatChunk>),
    Fail(ProviderError),
}

/// Anthropic's event stream as canonical chunks, one event at a time (no I/O: the
/// `sse_stream` fuzz target drives it).
pub struct AnthropicEvents {
    id: String,
    created: u64,
    model: String,
    input: u32,
    output: u32,
    finish: Option<String>,
    /// The content-block index of each tool call so far (calls are numbered among calls).
    call_blocks: Vec<u64>,
}

impl AnthropicEvents {
    pub fn new(model: &str) -> Self {
        Self {
            id: completion_id(),
            created: now_secs(),
            model: model.to_string(),
            input: 0,
            output: 0,
            finish: None,
            call_blocks: Vec::new(),
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<&str>) -> ChatChunk {
        ChatChunk::new(&self.id, self.created, &self.model).delta(delta, None, finish)
    }

    /// Translates one event's data.
    pub fn event(&mut self, data: &str) -> Step {
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                return Step::Fail(ProviderError::new(
                    FailureKind::Protocol,
                    format!("bad event JSON: {e}"),
                ))
            }
        };
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.input = v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0) as u32;
                Step::Chunks(vec![self.chunk(Delta::role("assistant"), None)])
            }
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                let b = &v["content_block"];
                self.call_blocks.push(v["index"].as_u64().unwrap_or(0));
                let d = ToolCallDelta {
                    index: self.call_blocks.len() as u32 - 1,
                    id: b["id"].as_str().map(str::to_string),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: b["name"].as_str().map(str::to_string),
                        arguments: Some(String::new()),
                    }),
                };
                Step::Chunks(vec![self.chunk(Delta::calls(vec![d]), None)])
            }
            "content_block_delta" => {
                if let Some(t) = v["delta"]["text"].as_str() {
                    return Step::Chunks(vec![self.chunk(Delta::content(t), None)]);
                }
                let Some(j) = v["delta"]["partial_json"].as_str() else {
                    return Step::Chunks(Vec::new());
                };
                let block = v["index"].as_u64().unwrap_or(0);
                match self.call_blocks.iter().position(|b| *b == block) {
                    Some(i) => {
                        let d = ToolCallDelta {
                            index: i as u32,
                            function: Some(FunctionCallDelta {
                                name: None,
                                arguments: Some(j.to_string()),
                            }),
                            ..Default::default()
                        };
                        Step::Chunks(vec![self.chunk(Delta::calls(vec![d]), None)])
                    }
                    None => Step::Chunks(Vec::new()),
                }
            }
            "message_delta" => {
                self.finish = finish_reason(v["delta"]["stop_reason"].as_str());
                self.output = v["usage"]["output_tokens"]
                    .as_u64()
                    .unwrap_or(self.output as u64) as u32;
                Step::Chunks(Vec::new())
            }
            "message_stop" => {
                let last = self.chunk(
                    Delta::default(),
                    Some(self.finish.as_deref().unwrap_or("stop")),
                );
                let mut usage = ChatChunk::new(&self.id, self.created, &self.model);
                usage.usage = Some(Usage::new(self.input, self.output));
                Step::End(vec![last, usage])
            }
            "error" => {
                let kind = match v["error"]["type"].as_str() {
                    Some("overloaded_error") | Some("api_error") => FailureKind::ServerError,
                    Some("rate_limit_error") => FailureKind::RateLimited,
                    _ => FailureKind::Protocol,
                };
                let msg = v["error"]["message"].as_str().unwrap_or("stream error");
                Step::Fail(ProviderError::new(kind, msg.to_string()))
            }
            _ => Step::Chunks(Vec::new()),
        }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::{AnthropicEvents, Step};

    fn texts(step: Step) -> Vec<String> {
        match step {
            Step::Chunks(c) | Step::End(c) => c
                .iter()
                .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
                .collect(),
            Step::Fail(e) => vec![format!("error: {}", e.message)],
        }
    }

    #[test]
    fn events_become_chunks_with_usage_at_the_end() {
        let mut d = AnthropicEvents::new("claude");
        assert!(
            matches!(d.event(r#"{"type":"message_start","message":{"usage":{"input_tokens":7}}}"#), Step::Chunks(c) if c.len() == 1)
        );
        assert_eq!(texts(d.event(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#)), ["Hi"]);
        // A delta for a block that is no tool call, and an unknown event: nothing.
        assert!(
            matches!(d.event(r#"{"type":"content_block_delta","index":5,"delta":{"partial_json":"{"}}"#), Step::Chunks(c) if c.is_empty())
        );
        assert!(matches!(d.event(r#"{"type":"ping"}"#), Step::Chunks(c) if c.is_empty()));
        d.event(r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":3}}"#);
        match d.event(r#"{"type":"message_stop"}"#) {
            Step::End(c) => {
                assert_eq!(c[0].choices[0].finish_reason.as_deref(), Some("length"));
                let u = c[1].usage.expect("usage");
                assert_eq!((u.prompt_tokens, u.completion_tokens), (7, 3));
            }
            _ => panic!("message_stop ends the stream"),
        }
        assert!(matches!(d.event("not json"), Step::Fail(_)));
    }
}
