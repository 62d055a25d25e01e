//! The HTTP side of remote deployments: a pooled client per deployment, POST with retries
//! (jittered exponential backoff, `Retry-After` honoured), status classification, and SSE
//! reading under first-byte, idle and total deadlines.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::time::{timeout_at, Instant};

use super::error::{FailureKind, ProviderError};
use super::sse::{EventTooLarge, SseDecoder, SseEvent, MAX_EVENT_BYTES};
use crate::config::RemoteModelConfig;

pub struct RemoteHttp {
    client: reqwest::Client,
    pub cfg: RemoteModelConfig,
    extra_headers: HeaderMap,
}

impl RemoteHttp {
    pub fn new(cfg: RemoteModelConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            // LLM APIs answer where they are asked; following a redirect would send the
            // prompt (and maybe the key) to another host, and costs a URL parse per call.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("slmgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut extra_headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                extra_headers.insert(k, v);
            }
        }
        Ok(Self {
            client,
            cfg,
            extra_headers,
        })
    }

    /// Headers carrying the API key: `name: {prefix}{key}`, marked sensitive so it is never
    /// printed. Empty when no key is configured.
    pub fn key_header(&self, name: &'static str, prefix: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(key) = self.cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
            if let Ok(mut v) = HeaderValue::from_str(&format!("{prefix}{key}")) {
                v.set_sensitive(true);
                h.insert(name, v);
            }
        }
        h
    }

    /// `path` under the base URL, parsed once (when the deployment is built).
    pub fn endpoint(&self, path: &str) -> Result<reqwest::Url, String> {
        let url = format!(
            "{}/{}",
            self.cfg.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        reqwest::Url::parse(&url).map_err(|e| format!("{url:?} is not a URL: {e}"))
    }

    /// The request's overall deadline.
    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.cfg.total_timeout_ms)
    }

    /// POSTs `body`, retrying connect errors, timeouts, 429 and 5xx. Returns a 2xx response
    /// whose headers arrived within the first-byte timeout.
    pub async fn post(
        &self,
        url: &reqwest::Url,
        auth: &HeaderMap,
        body: Bytes,
        deadline: Instant,
    ) -> Result<reqwest::Response, ProviderError> {
        let first_byte = Duration::from_millis(self.cfg.first_byte_timeout_ms);
        let mut attempt = 0u32;
        loop {
            let send = self
                .client
                .post(url.clone())
                .headers(self.extra_headers.clone())
                .headers(auth.clone())
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            let until = (Instant::now() + first_byte).min(deadline);
            let result = match timeout_at(until, send).await {
                Err(_) => Err(ProviderError::new(
                    FailureKind::Timeout,
                    format!("no response headers within {} ms", first_byte.as_millis()),
                )),
                Ok(Err(e)) => Err(transport_error(&e)),
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(resp),
                Ok(Ok(resp)) => Err(status_error(resp, deadline).await),
            };
            let err = match result {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            if !err.retryable() || attempt >= self.cfg.max_retries {
                return Err(err);
            }
            let delay = match err.retry_after {
                Some(d) if d > Duration::from_millis(self.cfg.max_retry_after_ms) => {
                    return Err(err)
                }
                Some(d) => d,
                None => {
                    let cap = self
                        .cfg
                        .backoff_ms
                        .saturating_mul(1u64 << attempt.min(10))
                        .max(1);
                    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
                }
            };
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            tracing::debug!(
                attempt,
                kind = err.kind.as_str(),
                delay_ms = delay.as_millis() as u64,
                "retrying upstream"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// POSTs and reads the JSON answer, all under the total timeout.
    pub async fn call<T: DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        auth: &HeaderMap,
        body: Bytes,
    ) -> Result<T, ProviderError> {
        let deadline = self.deadline();
        let resp = self.post(url, auth, body, deadline).await?;
        self.read_json(resp, deadline).await
    }

    /// POSTs and returns the answer's SSE events, all under the total timeout.
    pub async fn call_stream(
        &self,
        url: &reqwest::Url,
        auth: &HeaderMap,
        body: Bytes,
    ) -> Result<
        std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, ProviderError>> + Send>>,
        ProviderError,
    > {
        let deadline = self.deadline();
        let resp = self.post(url, auth, body, deadline).await?;
        Ok(Box::pin(self.events(resp, deadline)))
    }

    /// Reads a JSON body before the deadline.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        deadline: Instant,
    ) -> Result<T, ProviderError> {
        let bytes = match timeout_at(deadline, resp.bytes()).await {
            Err(_) => {
                return Err(ProviderError::new(
                    FailureKind::Timeout,
                    "response body not received before the total timeout",
                ))
            }
            Ok(Err(e)) => {
                return Err(ProviderError::new(
                    FailureKind::Protocol,
                    format!("response body broke off: {e}"),
                ))
            }
            Ok(Ok(b)) => b,
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::new(
                FailureKind::Protocol,
                format!("response is not the expected JSON: {e}"),
            )
        })
    }

    /// The response body as SSE events. The first event must arrive within the first-byte
    /// timeout, later ones within it of each other, and all before `deadline`. A body that
    /// ends inside an event yields a `Protocol` error.
    pub fn events(
        &self,
        resp: reqwest::Response,
        deadline: Instant,
    ) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static {
        let idle = Duration::from_millis(self.cfg.first_byte_timeout_ms);
        async_stream::stream! {
            let mut body = resp.bytes_stream();
            let mut dec = SseDecoder::default();
            // Reset by events, not by bytes: an upstream trickling one byte at a time
            // (slow-loris) still misses it.
            let mut event_due = Instant::now() + idle;
            loop {
                let until = event_due.min(deadline);
                match timeout_at(until, body.next()).await {
                    Err(_) => {
                        yield Err(ProviderError::new(FailureKind::Timeout, "the stream stalled past its timeout"));
                        return;
                    }
                    Ok(None) => {
                        if !dec.pending().iter().all(|b| b.is_ascii_whitespace()) {
                            yield Err(ProviderError::new(FailureKind::Protocol, "the stream ended inside an event"));
                        }
                        return;
                    }
                    Ok(Some(Err(e))) => {
                        yield Err(ProviderError::new(FailureKind::Protocol, format!("the stream broke off: {e}")));
                        return;
                    }
                    Ok(Some(Ok(chunk))) => match dec.push(&chunk) {
                        Ok(events) => {
                            if !events.is_empty() {
                                event_due = Instant::now() + idle;
                            }
                            for ev in events {
                                yield Ok(ev);
                            }
                        }
                        Err(EventTooLarge) => {
                            yield Err(ProviderError::new(
                                FailureKind::Protocol,
                                format!("an event of the stream is over {} MiB", MAX_EVENT_BYTES >> 20),
                            ));
                            return;
                        }
                    },
                }
            }
        }
    }
}

/// Serializes an upstream request body.
pub fn encode<T: serde::Serialize>(body: &T) -> Result<Bytes, ProviderError> {
    serde_json::to_vec(body).map(Bytes::from).map_err(|e| {
        ProviderError::new(
            FailureKind::Internal,
            format!("cannot encode the request: {e}"),
        )
    })
}

fn transport_error(e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else {
        FailureKind::Connect
    };
    // reqwest's Display includes the URL, never headers: safe to log.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ProviderError::new(kind, msg)
}

/// Classifies a non-2xx upstream response.
async fn status_error(resp: reqwest::Response, deadline: Instant) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = timeout_at(
        deadline.min(Instant::now() + Duration::from_secs(5)),
        resp.bytes(),
    )
    .await
    .ok()
    .and_then(|r| r.ok())
    .unwrap_or_default();
    let upstream_msg = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or(v["message"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let kind = match status {
        429 => FailureKind::RateLimited,
        500..=599 => FailureKind::ServerError,
        // A redirect is not followed: the base URL (or the key) is wrong.
        300..=399 | 401 | 403 | 404 => FailureKind::Unauthorized,
        _ => FailureKind::BadRequest,
    };
    let mut err = ProviderError::new(kind, format!("upstream answered {status}: {upstream_msg}"));
    err.status = Some(status);
    err.retry_after = retry_after;
    if kind == FailureKind::BadRequest {
        let mut rejected = ProviderError::rejected(
            "upstream_rejected_request",
            None,
            format!("The upstream model rejected the request: {upstream_msg}"),
        );
        err.rejection = rejected.rejection.take();
    }
    err
}

/// `Retry-After` in seconds (or `retry-after-ms`), capped at one hour.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Some(Duration::from_millis(ms.clamp(0.0, 3_600_000.0) as u64));
    }
    h.get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_millis((s.clamp(0.0, 3600.0) * 1000.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retry_after() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
