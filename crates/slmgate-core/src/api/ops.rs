//! Operational endpoints: liveness, readiness, Prometheus.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// 200 once models are loaded and the audit log is writable; 503 while loading, or while
/// audit writes fail (a full disk: requests are refused then, so a load balancer should
/// send them elsewhere).
pub async fn ready(State(st): State<Arc<AppState>>) -> Response {
    if st.governance.audit.is_failing() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "audit_unavailable"})),
        )
            .into_response()
    } else if st.is_ready() {
        let mut body = json!({"status": "ready"});
        if let Some(s) = &st.governance.shared {
            // Still ready: keys without limits or budgets are served either way, and every
            // replica shares the one Redis. What budgeted keys get is in the body.
            let up = s.is_up();
            body["redis"] = json!(if up { "up" } else { "down" });
            if !up {
                let mode = |m: crate::config::FailMode| match m {
                    crate::config::FailMode::Open => "this replica's own",
                    crate::config::FailMode::Closed => "refused (503)",
                };
                body["budgets"] = json!(mode(s.config().budgets_when_redis_down));
                body["limits"] = json!(mode(s.config().limits_when_redis_down));
            }
        }
        Json(body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response()
    }
}

pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.render_metrics(),
    )
        .into_response()
}
