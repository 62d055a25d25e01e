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
        let model = self.http.cfg.model.clone();
        Ok(Box::pin(async_stream::stream! {
            let id = completion_id();
            let created = now_secs();
            let (mut input, mut output) = (0u32, 0u32);
            let mut finish: Option<String> = None;
            let mut call_blocks: Vec<u64> = Vec::new();
            while let Some(ev) = events.next().await {
                let ev = match ev { Ok(ev) => ev, Err(e) => { yield Err(e); return; } };
                let v: Value = match serde_json::from_str(&ev.data) {
                    Ok(v) => v,
                    Err(e) => { yield Err(ProviderError::new(FailureKind::Protocol, format!("bad event JSON: {e}"))); return; }
                };
                match v["type"].as_str().unwrap_or_default() {
                    "message_start" => {
                        input = v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0) as u32;
                        yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::role("assistant"), None, None));
                    }
                    "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                        // Calls are numbered from 0 among the calls, not among the blocks.
                        let b = &v["content_block"];
                        call_blocks.push(v["index"].as_u64().unwrap_or(0));
                        let d = ToolCallDelta {
                            index: call_blocks.len() as u32 - 1,
                            id: b["id"].as_str().map(str::to_string),
                            kind: Some("function".into()),
                            function: Some(FunctionCallDelta { name: b["name"].as_str().map(str::to_string), arguments: Some(String::new()) }),
                        };
                        yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::calls(vec![d]), None, None));
                    }
                    "content_block_delta" => {
                        if let Some(t) = v["delta"]["text"].as_str() {
                            yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::content(t), None, None));
                        } else if let Some(j) = v["delta"]["partial_json"].as_str() {
                            let block = v["index"].as_u64().unwrap_or(0);
                            if let Some(i) = call_blocks.iter().position(|b| *b == block) {
                                let d = ToolCallDelta {
                                    index: i as u32,
                                    function: Some(FunctionCallDelta { name: None, arguments: Some(j.to_string()) }),
                                    ..Default::default()
                                };
                                yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::calls(vec![d]), None, None));
                            }
                        }
                    }
                    "message_delta" => {
                        finish = finish_reason(v["delta"]["stop_reason"].as_str());
                        output = v["usage"]["output_tokens"].as_u64().unwrap_or(output as u64) as u32;
                    }
                    "message_stop" => {
                        yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::default(), None, Some(finish.as_deref().unwrap_or("stop"))));
                        let mut usage = ChatChunk::new(&id, created, &model);
                        usage.usage = Some(Usage::new(input, output));
                        yield Ok(usage);
                        return;
                    }
                    "error" => {
                        let kind = match v["error"]["type"].as_str() {
                            Some("overloaded_error") | Some("api_error") => FailureKind::ServerError,
                            Some("rate_limit_error") => FailureKind::RateLimited,
                            _ => FailureKind::Protocol,
                        };
                        yield Err(ProviderError::new(kind, v["error"]["message"].as_str().unwrap_or("stream error").to_string()));
                        return;
                    }
                    _ => {}
                }
            }
            yield Err(ProviderError::new(FailureKind::Protocol, "the stream ended without message_stop"));
        }))
    }
}
