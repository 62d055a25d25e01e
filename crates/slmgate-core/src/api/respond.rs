//! Shared response plumbing: the `x-slmgate-*` headers and SSE bodies.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use futures::Stream;

use crate::exchange::ServedMeta;
use crate::govern::cost::RequestCost;

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
/// `-fallback-from`, `-tier`, `-route-reason`, `-escalations`, `-confidence`; and for a plain
/// answer what it cost and what the baseline would have (a stream's cost is known only at its
/// end: it is in the audit log and the metrics).
pub fn served_headers(resp: &mut Response, m: &ServedMeta, cost: Option<&RequestCost>) {
    let h = resp.headers_mut();
    let mut put = |name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    put("x-slmgate-model", &m.deployment);
    put("x-slmgate-provider", m.provider);
    put("x-slmgate-attempts", &m.attempts.to_string());
    if let Some(f) = &m.fallback_from {
        put("x-slmgate-fallback-from", f);
    }
    put("x-slmgate-tier", &m.tier);
    put("x-slmgate-route-reason", &m.reason);
    put("x-slmgate-escalations", &m.escalations.to_string());
    if let Some(c) = m.confidence {
        put("x-slmgate-confidence", &format!("{c:.4}"));
    }
    if let Some(c) = cost {
        put("x-slmgate-cost-usd", &format!("{:.9}", c.actual));
        if let Some(b) = c.baseline {
            put("x-slmgate-baseline-cost-usd", &format!("{b:.9}"));
        }
    }
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
