//! Who is calling: the `/v1/*` middleware resolves the presented key to a [`Principal`]
//! (401 when auth is on and the key is missing, unknown or revoked); `/admin/*` needs the
//! admin key. Everything else governance does happens in the exchange.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::govern::Principal;
use crate::state::AppState;

/// The presented key: `Authorization: Bearer KEY` (OpenAI) or `x-api-key: KEY` (Anthropic).
fn presented_key(h: &HeaderMap) -> Option<&str> {
    if let Some(v) = h.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let k = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v);
        return Some(k.trim()).filter(|k| !k.is_empty());
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn unauthorized(code: &'static str, msg: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, code, msg).into_response()
}

/// `/v1/*`: resolves the caller; with auth on, no valid key means 401. A valid key is honoured
/// (limits, budget, residency) even with auth off.
pub async fn authenticate(
    State(st): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let g = &st.governance;
    let who = match presented_key(req.headers()) {
        Some(k) if g.is_admin(k) => Principal::Admin,
        Some(k) => match g.keys.lookup(k) {
            Some(rec) if rec.revoked.is_some() => {
                return unauthorized("revoked_api_key", "This API key has been revoked.")
            }
            Some(rec) => Principal::Key(rec),
            None if g.auth_enabled => {
                return unauthorized("invalid_api_key", "Incorrect API key provided.")
            }
            None => Principal::Anonymous,
        },
        None if g.auth_enabled => return unauthorized(
            "missing_api_key",
            "You didn't provide an API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`.",
        ),
        None => Principal::Anonymous,
    };
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// `/admin/*`: the admin key only.
pub async fn require_admin(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match presented_key(req.headers()) {
        Some(k) if st.governance.is_admin(k) => next.run(req).await,
        _ if st.config.auth.admin_key.is_none() => ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "The admin API is disabled: set [auth] admin_key (e.g. \"${SLMGATE_ADMIN_KEY}\").",
        )
        .into_response(),
        _ => unauthorized("invalid_admin_key", "This endpoint needs the admin key."),
    }
}
