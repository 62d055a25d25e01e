//! Shared response plumbing: the `x-slmgate-*` headers, SSE bodies, and the per-request
//! metrics record (finished, failed or abandoned).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures::Stream;

use super::error::ApiError;
use crate::govern::cost::RequestCost;
use crate::observe::metrics::Metrics;
use crate::route::Served;
use crate::wire::openai::Usage;

pub fn set_served_headers(resp: &mut Response, served: &Served) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&served.deployment.name) {
        h.insert("x-slmgate-model", v);
    }
    h.insert(
        "x-slmgate-provider",
        HeaderValue::from_static(served.deployment.provider.kind()),
    );
    h.insert(
        "x-slmgate-attempts",
        HeaderValue::from((served.attempts.len() + 1) as u64),
    );
    if let Some(first) = served.attempts.first() {
        if let Ok(v) = HeaderValue::from_str(&first.deployment) {
            h.insert("x-slmgate-fallback-from", v);
        }
    }
}

/// What a plain answer cost, and what the baseline would have (a stream's cost is known only
/// at its end: it is in the audit log and the metrics).
pub fn set_cost_headers(resp: &mut Response, c: &RequestCost) {
    let h = resp.headers_mut();
    let usd = |v: f64| HeaderValue::from_str(&format!("{v:.9}")).ok();
    if let Some(v) = usd(c.actual) {
        h.insert("x-slmgate-cost-usd", v);
    }
    if let Some(v) = c.baseline.and_then(usd) {
        h.insert("x-slmgate-baseline-cost-usd", v);
    }
}

/// The gateway's own time on a request: from the handler's start until the response leaves
/// it, minus the time spent waiting on models (for a stream: until its first chunk).
pub fn record_overhead(metrics: &Metrics, route: &str, start: Instant, served: &Served) {
    let own = start.elapsed().saturating_sub(served.upstream);
    metrics
        .overhead
        .with_label_values(&[route])
        .observe(own.as_secs_f64());
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

/// Records one request's metrics exactly once: on `finish`, or as abandoned when dropped
/// unfinished (the client went away mid-stream).
pub struct Record {
    metrics: Arc<Metrics>,
    route: String,
    deployment: String,
    start: Instant,
    first_token: Option<Instant>,
    pub usage: Option<Usage>,
    done: bool,
}

impl Record {
    pub fn new(metrics: Arc<Metrics>, route: &str, deployment: &str, start: Instant) -> Self {
        Self {
            metrics,
            route: route.into(),
            deployment: deployment.into(),
            start,
            first_token: None,
            usage: None,
            done: false,
        }
    }

    /// Records a request that no deployment answered; returns the error for the client.
    pub fn failed(
        metrics: &Arc<Metrics>,
        route: &str,
        attempts: &[crate::route::Attempt],
        start: Instant,
        err: ApiError,
    ) -> ApiError {
        let last = attempts
            .last()
            .map(|a| a.deployment.as_str())
            .unwrap_or("none");
        Record::new(metrics.clone(), route, last, start).finish(err.status.as_u16());
        err
    }

    /// Records a finished non-streaming request.
    pub fn completed(
        metrics: &Arc<Metrics>,
        route: &str,
        deployment: &str,
        start: Instant,
        usage: Option<Usage>,
    ) {
        let mut rec = Record::new(metrics.clone(), route, deployment, start);
        rec.usage = usage;
        rec.finish(200);
    }

    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            let now = Instant::now();
            self.first_token = Some(now);
            self.metrics
                .ttft
                .with_label_values(&[&self.deployment])
                .observe((now - self.start).as_secs_f64());
        }
    }

    pub fn finish(&mut self, status: u16) {
        if self.done {
            return;
        }
        self.done = true;
        let m = &self.metrics;
        m.requests
            .with_label_values(&[&self.route, &self.deployment, status_str(status)])
            .inc();
        m.latency
            .with_label_values(&[&self.route, &self.deployment])
            .observe(self.start.elapsed().as_secs_f64());
        if let Some(u) = self.usage {
            m.tokens
                .with_label_values(&[&self.deployment, "prompt"])
                .inc_by(u.prompt_tokens as u64);
            m.tokens
                .with_label_values(&[&self.deployment, "completion"])
                .inc_by(u.completion_tokens as u64);
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.done {
            self.metrics
                .cancelled
                .with_label_values(&[&self.deployment])
                .inc();
            self.finish(499);
        }
    }
}

fn status_str(s: u16) -> &'static str {
    match s {
        200 => "200",
        400 => "400",
        404 => "404",
        413 => "413",
        429 => "429",
        499 => "499",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ if s < 500 => "4xx",
        _ => "5xx",
    }
}
