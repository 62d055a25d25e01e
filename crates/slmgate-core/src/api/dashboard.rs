//! `/dashboard`: the savings dashboard, served from assets embedded in the binary (Chart.js
//! included: it works air-gapped), behind the admin key.
//!
//! `GET /dashboard` (the page, or the sign-in form), `POST /dashboard/login` (admin key →
//! an HttpOnly session cookie), `POST /dashboard/logout`, `GET /dashboard/api/summary?since=24h`
//! (the cost ledger as JSON) and `GET /dashboard/api/shadow?since=7d` (the shadow report)
//! with the cookie or `Authorization: Bearer ADMIN_KEY`, `GET /dashboard/assets/{file}`. Without an admin key configured, the dashboard is open
//! only when the server listens on loopback (the `make run` default).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use super::error::ApiError;
use crate::govern::db;
use crate::observe::ledger;
use crate::state::AppState;

const INDEX: &str = include_str!("../observe/dashboard/index.html");
const LOGIN: &str = include_str!("../observe/dashboard/login.html");
const APP_JS: &str = include_str!("../observe/dashboard/app.js");
const STYLE: &str = include_str!("../observe/dashboard/style.css");
const CHART_JS: &str = include_str!("../observe/dashboard/vendor/chart.umd.min.js");

const COOKIE: &str = "slmgate_dashboard";
const SESSION_SECS: i64 = 12 * 3600;
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/login", post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/api/summary", get(summary))
        .route("/dashboard/api/shadow", get(shadow))
        .route("/dashboard/assets/{file}", get(asset))
}

enum Access {
    Allowed,
    /// Needs the admin key.
    SignIn,
    /// No admin key configured and not on loopback.
    Disabled,
}

fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn access(st: &AppState, h: &HeaderMap) -> Access {
    let g = &st.governance;
    if st.config.auth.admin_key.is_none() {
        let loopback = st
            .config
            .server
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        return if loopback {
            Access::Allowed
        } else {
            Access::Disabled
        };
    }
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|k| g.is_admin(k.trim()))
        || cookie(h, COOKIE).is_some_and(|t| g.dashboard_session_ok(t))
    {
        Access::Allowed
    } else {
        Access::SignIn
    }
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "admin_disabled",
        "The dashboard needs an admin key when the server listens beyond loopback: set [auth] admin_key.",
    )
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, Html(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

async fn page(State(st): State<Arc<AppState>>, h: HeaderMap) -> Response {
    match access(&st, &h) {
        Access::Allowed => html(StatusCode::OK, INDEX.to_string()),
        Access::SignIn => html(StatusCode::UNAUTHORIZED, LOGIN.replace("<!--ERROR-->", "")),
        Access::Disabled => disabled().into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
}

async fn login(State(st): State<Arc<AppState>>, Form(f): Form<LoginForm>) -> Response {
    let g = &st.governance;
    if st.config.auth.admin_key.is_none() {
        return Redirect::to("/dashboard").into_response();
    }
    if !g.is_admin(f.key.trim()) {
        // Slows down guessing; the key itself is ≥ 16 characters.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tracing::warn!("dashboard sign-in with a wrong admin key");
        let msg = "<p class=\"error\">That is not the admin key.</p>";
        return html(StatusCode::UNAUTHORIZED, LOGIN.replace("<!--ERROR-->", msg));
    }
    let exp = db::now_ms() / 1000 + SESSION_SECS;
    let Some(token) = g.dashboard_token(exp) else {
        return disabled().into_response();
    };
    let mut r = Redirect::to("/dashboard").into_response();
    let c = format!(
        "{COOKIE}={token}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{}",
        secure(&st)
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(st): State<Arc<AppState>>) -> Response {
    let mut r = Redirect::to("/dashboard").into_response();
    let c = format!(
        "{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(&st)
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `[server] secure_cookie`: the cookie travels over HTTPS only.
fn secure(st: &AppState) -> &'static str {
    if st.config.server.secure_cookie {
        "; Secure"
    } else {
        ""
    }
}

#[derive(Deserialize)]
struct SummaryQuery {
    since: Option<String>,
}

/// Bucket width for a range: 5 minutes up to 2 hours, hourly up to 2 days, 6-hourly up to
/// 8 days, daily beyond.
fn bucket_for(range_ms: i64) -> i64 {
    const H: i64 = 3_600_000;
    match range_ms {
        r if r <= 2 * H => 5 * 60_000,
        r if r <= 48 * H => H,
        r if r <= 8 * 24 * H => 6 * H,
        _ => 24 * H,
    }
}

async fn summary(
    State(st): State<Arc<AppState>>,
    h: HeaderMap,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, ApiError> {
    signed_in(&st, &h)?;
    let now = db::now_ms();
    let since = since_param(q.since.as_deref(), "24h", now)?;
    let baseline = st.config.cost.baseline.clone();
    let pg = st.governance.pg.clone();
    from_store(&st, "the ledger", move |conn| {
        let rows = match &pg {
            Some(p) => ledger::load_pg(p, since).map_err(|e| e.to_string()),
            None => ledger::load(conn, since).map_err(|e| e.to_string()),
        }
        .map_err(crate::govern::GovernError::Store)?;
        Ok(ledger::summary(
            &rows,
            since,
            now,
            bucket_for(now - since),
            baseline,
        ))
    })
    .await
}

/// `GET /dashboard/api/shadow?since=7d`: the shadow report (per route and shadow model, and
/// per day) for the dashboard's shadow panel.
async fn shadow(
    State(st): State<Arc<AppState>>,
    h: HeaderMap,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, ApiError> {
    signed_in(&st, &h)?;
    let since = since_param(q.since.as_deref(), "7d", db::now_ms())?;
    let pg = st.governance.pg.clone();
    from_store(&st, "shadow answers", move |conn| {
        let rows = match &pg {
            Some(pg) => crate::learn::store_pg::load(pg, since, None)
                .map_err(|e| crate::govern::GovernError::Store(e.to_string()))?,
            None => crate::learn::store::load(conn, since, None)?,
        };
        Ok(crate::learn::report::report(
            &rows,
            since,
            &crate::learn::report::DEFAULT_THRESHOLDS,
        ))
    })
    .await
}

/// The dashboard API answers only a signed-in admin (or loopback without an admin key).
fn signed_in(st: &AppState, h: &HeaderMap) -> Result<(), ApiError> {
    match access(st, h) {
        Access::Allowed => Ok(()),
        Access::SignIn => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_key",
            "The dashboard API needs the admin key (sign in at /dashboard).",
        )),
        Access::Disabled => Err(disabled()),
    }
}

/// `since` as milliseconds since the epoch (`all`: the last year).
fn since_param(v: Option<&str>, default: &str, now: i64) -> Result<i64, ApiError> {
    let since = ledger::parse_since(v.unwrap_or(default), now)
        .map_err(|m| ApiError::invalid_param("since", m))?;
    Ok(if since == 0 {
        now - 365 * 86_400_000
    } else {
        since
    })
}

/// Runs `read` on a connection of its own on the blocking pool; its value as JSON.
async fn from_store<T: serde::Serialize + Send + 'static>(
    st: &AppState,
    what: &'static str,
    read: impl FnOnce(&rusqlite::Connection) -> Result<T, crate::govern::GovernError> + Send + 'static,
) -> Result<Response, ApiError> {
    let path = st.governance.path.clone();
    let out = tokio::task::spawn_blocking(move || read(&db::open(&path)?)).await;
    match out {
        Ok(Ok(v)) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "dashboard: reading {what} failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_error",
                "Reading the audit store failed.",
            ))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            "The dashboard's store task failed.",
        )),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "chart.js" => (CHART_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => {
            return ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such asset.")
                .into_response()
        }
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_range() {
        assert_eq!(bucket_for(3_600_000), 300_000);
        assert_eq!(bucket_for(86_400_000), 3_600_000);
        assert_eq!(bucket_for(7 * 86_400_000), 6 * 3_600_000);
        assert_eq!(bucket_for(30 * 86_400_000), 86_400_000);
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; slmgate_dashboard=123.abc; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("123.abc"));
        assert_eq!(cookie(&h, "nope"), None);
    }
}
