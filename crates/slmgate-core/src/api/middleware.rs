//! Per-request context: the request id (client's `x-request-id` or a new one), a tracing
//! span for logs and one for traces, the in-flight gauge, and error counting by code.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::error::ErrorCode;
use crate::observe::traces;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn request_context(
    State(st): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_id(s))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let trace = traces::server_span(req.method(), req.uri().path(), req.headers());
    trace.record("slmgate.request_id", id.as_str());
    st.metrics.in_flight.inc();
    let mut resp = next
        .run(req)
        .instrument(span)
        .instrument(trace.clone())
        .await;
    st.metrics.in_flight.dec();
    trace.record("http.response.status_code", resp.status().as_u16());
    if resp.status().is_server_error() {
        trace.record("otel.status_code", "ERROR");
    }
    if let Some(ErrorCode(code)) = resp.extensions().get::<ErrorCode>() {
        st.metrics.errors.with_label_values(&[code]).inc();
        if let Some(kind) = crate::observe::metrics::rejection_kind(code) {
            st.metrics.rejections.with_label_values(&[kind]).inc();
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
