//! Gemini `generateContent` upstreams, translated to and from the canonical shape.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::HeaderMap;

use super::error::{FailureKind, ProviderError};
use super::http::{encode, RemoteHttp};
use super::ChatStream;
use crate::wire::gemini::{finish_reason, GenerateRequest, GenerateResponse};
use crate::wire::openai::{
    completion_id, now_secs, ChatChunk, ChatRequest, ChatResponse, Delta, Usage,
};
use crate::wire::tools::ToolCallDelta;

pub struct GeminiProvider {
    pub(crate) http: RemoteHttp,
    auth: HeaderMap,
    generate: reqwest::Url,
    stream_generate: reqwest::Url,
}

impl GeminiProvider {
    pub fn new(http: RemoteHttp) -> Result<Self, String> {
        let auth = http.key_header("x-goog-api-key", "");
        let base = http.cfg.base_url.trim_end_matches('/');
        let prefix = if base.ends_with("/v1beta") || base.ends_with("/v1") {
            ""
        } else {
            "v1beta/"
        };
        let model = &http.cfg.model;
        let generate = http.endpoint(&format!("{prefix}models/{model}:generateContent"))?;
        let stream_generate = http.endpoint(&format!(
            "{prefix}models/{model}:streamGenerateContent?alt=sse"
        ))?;
        Ok(Self {
            http,
            auth,
            generate,
            stream_generate,
        })
    }

    fn body(&self, req: &ChatRequest) -> Result<Bytes, ProviderError> {
        encode(&GenerateRequest::from_openai(req))
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let out: GenerateResponse = self
            .http
            .call(&self.generate, &self.auth, self.body(req)?)
            .await?;
        if out.candidates.is_empty() {
            return Err(ProviderError::new(
                FailureKind::Protocol,
                "the response has no candidates",
            ));
        }
        Ok(out.to_openai(&completion_id(), &self.http.cfg.model))
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let mut events = self
            .http
            .call_stream(&self.stream_generate, &self.auth, self.body(req)?)
            .await?;
        let model = self.http.cfg.model.clone();
        Ok(Box::pin(async_stream::stream! {
            let id = completion_id();
            let created = now_secs();
            let mut started = false;
            let mut finish: Option<String> = None;
            let mut usage = Usage::default();
            let mut n_calls = 0u32;
            while let Some(ev) = events.next().await {
                let ev = match ev { Ok(ev) => ev, Err(e) => { yield Err(e); return; } };
                let part: GenerateResponse = match serde_json::from_str(&ev.data) {
                    Ok(p) => p,
                    Err(e) => { yield Err(ProviderError::new(FailureKind::Protocol, format!("bad event JSON: {e}"))); return; }
                };
                if !started {
                    started = true;
                    yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::role("assistant"), None, None));
                }
                let text = part.text();
                if !text.is_empty() {
                    yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::content(text), None, None));
                }
                // Gemini sends each function call whole, in one part.
                let calls: Vec<ToolCallDelta> = part.calls().iter().map(|c| { let d = ToolCallDelta::whole(n_calls, c); n_calls += 1; d }).collect();
                if !calls.is_empty() {
                    yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::calls(calls), None, None));
                }
                if let Some(u) = part.usage_metadata {
                    usage = Usage::new(u.prompt_token_count, u.candidates_token_count);
                }
                if let Some(f) = finish_reason(part.candidates.first().and_then(|c| c.finish_reason.as_deref())) {
                    finish = Some(f);
                }
            }
            if n_calls > 0 && finish.as_deref() == Some("stop") {
                finish = Some("tool_calls".into());
            }
            match finish {
                Some(f) => {
                    yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::default(), None, Some(&f)));
                    let mut u = ChatChunk::new(&id, created, &model);
                    u.usage = Some(usage);
                    yield Ok(u);
                }
                None => yield Err(ProviderError::new(FailureKind::Protocol, "the stream ended without a finish reason")),
            }
        }))
    }
}
