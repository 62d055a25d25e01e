//! OpenAI-compatible upstreams (OpenAI, vLLM, llama-server, Ollama, Together, Groq, another
//! slmgate …): the canonical shape goes through unchanged apart from the model name.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::HeaderMap;

use super::error::{FailureKind, ProviderError};
use super::http::{encode, RemoteHttp};
use super::ChatStream;
use crate::wire::openai::{ChatChunk, ChatRequest, ChatResponse, StreamOptions};

pub struct OpenAiProvider {
    pub(crate) http: RemoteHttp,
    auth: HeaderMap,
    chat: reqwest::Url,
}

impl OpenAiProvider {
    pub fn new(http: RemoteHttp) -> Result<Self, String> {
        let auth = http.key_header("authorization", "Bearer ");
        let chat = http.endpoint("chat/completions")?;
        Ok(Self { http, auth, chat })
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        let mut up = req.clone();
        up.model = self.http.cfg.model.clone();
        up.stream = stream.then_some(true);
        up.stream_options = stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Default::default(),
        });
        encode(&up)
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let out: ChatResponse = self
            .http
            .call(&self.chat, &self.auth, self.body(req, false)?)
            .await?;
        if out.choices.is_empty() {
            return Err(ProviderError::new(
                FailureKind::Protocol,
                "the response has no choices",
            ));
        }
        Ok(out)
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let mut events = self
            .http
            .call_stream(&self.chat, &self.auth, self.body(req, true)?)
            .await?;
        Ok(Box::pin(async_stream::stream! {
            let mut done = false;
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => { yield Err(e); return; }
                };
                if ev.data.trim() == "[DONE]" {
                    done = true;
                    break;
                }
                match serde_json::from_str::<ChatChunk>(&ev.data) {
                    Ok(chunk) => yield Ok(chunk),
                    Err(_) => {
                        yield Err(not_a_chunk(&ev.data));
                        return;
                    }
                }
            }
            if !done {
                yield Err(ProviderError::new(FailureKind::Protocol, "the stream ended without [DONE]"));
            }
        }))
    }
}

/// An event that is not a chat chunk: the upstream's error, or a protocol fault quoting (at
/// most 200 bytes of) what came instead.
pub fn not_a_chunk(data: &str) -> ProviderError {
    let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    let kind = if v.get("error").is_some() {
        FailureKind::ServerError
    } else {
        FailureKind::Protocol
    };
    if let Some(m) = v["error"]["message"].as_str() {
        return ProviderError::new(kind, m.to_string());
    }
    // Cut on a character boundary: a byte index can fall inside one (and slicing there panics).
    let mut end = data.len().min(200);
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    ProviderError::new(kind, format!("unexpected stream event: {}", &data[..end]))
}

#[cfg(test)]
mod stream_tests {
    #[test]
    fn a_long_non_json_event_is_quoted_without_splitting_a_character() {
        // 199 ASCII bytes, then a 2-byte character across byte 200: slicing at 200 panicked.
        let data = format!("{}é and more", "x".repeat(199));
        let e = super::not_a_chunk(&data);
        assert_eq!(e.kind, super::FailureKind::Protocol);
        assert!(e.message.ends_with(&"x".repeat(10)), "{}", e.message);
        let e = super::not_a_chunk(r#"{"error": {"message": "overloaded"}}"#);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (super::FailureKind::ServerError, "overloaded")
        );
    }
}
