//! Shared response plumbing: the `x-slmgate-*` headers and SSE bodies.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use futures::Stream;

use crate::exchange::ServedMeta;
use crate::govern::cost::RequestCost;

/// `x-slmgate-cache: off` (or `no-store`, `bypass`): the request skips the response cache.
pub fn cache_off(headers: &HeaderMap) -> bool {
    headers
        .get("x-slmgate-cache")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "off" | "no-store" | "bypass" | "no"
            )
        })
}

/// The `x-slmgate-tags` header values, for the exchange's request facts.
pub fn header_tags(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-slmgate-tags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// How the request was served: `x-slmgate-model`, `-provider`, `-attempts`,
/// `-fallback-from`, `-tier`, `-route-reason`, `-escalations`, `-confidence`, `-citations`
/// (the chunk ids retrieval put into the prompt, comma-separated), `-rollout` (the A/B arm:
/// `candidate` or `control`); and for a plain
/// answer what it cost and what the baseline would have (a stream's cost is known only at its
/// end: it is in the audit log and the metrics).
pub fn served_headers(resp: &mut Response, m: &ServedMeta, cost: Option<&RequestCost>) {
    static NAMES: [HeaderName; 10] = [
        HeaderName::from_static("x-slmgate-model"),
        HeaderName::from_static("x-slmgate-provider"),
        HeaderName::from_static("x-slmgate-attempts"),
        HeaderName::from_static("x-slmgate-fallback-from"),
        HeaderName::from_static("x-slmgate-tier"),
        HeaderName::from_static("x-slmgate-route-reason"),
        HeaderName::from_static("x-slmgate-escalations"),
        HeaderName::from_static("x-slmgate-confidence"),
        HeaderName::from_static("x-slmgate-cost-usd"),
        HeaderName::from_static("x-slmgate-baseline-cost-usd"),
    ];
    let [model, provider, attempts, fallback, tier, reason, escalations, confidence, usd, baseline] =
        &NAMES;
    let h = resp.headers_mut();
    h.reserve(10);
    let mut put = |name: &HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name.clone(), v);
        }
    };
    put(model, &m.deployment);
    put(tier, &m.tier);
    put(reason, &m.reason);
    if let Some(f) = &m.fallback_from {
        put(fallback, f);
    }
    if let Some(c) = m.confidence {
        put(confidence, &format!("{c:.4}"));
    }
    if let Some(c) = cost {
        put(usd, &format!("{:.9}", c.actual));
        if let Some(b) = c.baseline {
            put(baseline, &format!("{b:.9}"));
        }
    }
    if let Some(c) = m.cache {
        h.insert(
            HeaderName::from_static("x-slmgate-cache"),
            HeaderValue::from_static(c),
        );
    }
    if let Some(a) = m.rollout {
        h.insert(
            HeaderName::from_static("x-slmgate-rollout"),
            HeaderValue::from_static(a),
        );
    }
    if !m.citations.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&m.citations.join(",")) {
            h.insert(HeaderName::from_static("x-slmgate-citations"), v);
        }
    }
    h.insert(provider.clone(), HeaderValue::from_static(m.provider));
    h.insert(attempts.clone(), HeaderValue::from(m.attempts));
    h.insert(escalations.clone(), HeaderValue::from(m.escalations));
}

pub fn sse(stream: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static) -> Response {
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

pub fn sse_data(json: &impl serde::Serialize) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut buf, json);
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

pub fn sse_event(name: &str, json: &impl serde::Serialize) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut buf, json);
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}
