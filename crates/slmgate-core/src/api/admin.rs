//! The admin API (admin key only): virtual keys and the human-review queue.
//!
//! `POST /admin/keys`, `GET /admin/keys`, `DELETE /admin/keys/{id}`,
//! `GET /admin/reviews[?all=true&limit=N]`, `POST /admin/reviews/{id}`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::JsonBody;
use crate::govern::keys::{Budget, KeySpec};
use crate::govern::review::{self, Verdict};
use crate::govern::GovernError;
use crate::state::AppState;

fn store_error(e: GovernError) -> ApiError {
    tracing::error!(error = %e, "admin store operation failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store_error",
        "The governance store failed; see the server log.",
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GovernError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "admin task failed",
            )
        })?
        .map_err(store_error)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: Option<String>,
    team: Option<String>,
    /// `"50/day"`, `"10/month"`, `"5"` (total).
    budget: Option<String>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    models: Option<Vec<String>>,
    residency: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
}

pub async fn create_key(
    State(st): State<Arc<AppState>>,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let budget = match body.budget.as_deref() {
        Some(b) => Some(
            b.parse::<Budget>()
                .map_err(|m| ApiError::invalid_param("budget", m))?,
        ),
        None => None,
    };
    for (field, v) in [("rpm", body.rpm), ("tpm", body.tpm)] {
        if v == Some(0) {
            return Err(ApiError::invalid_param(
                field,
                format!("{field} must be at least 1"),
            ));
        }
    }
    if let Some(models) = &body.models {
        if let Some(m) = models.iter().find(|m| !st.config.is_public_name(m)) {
            return Err(ApiError::invalid_param(
                "models",
                format!("unknown model `{m}`"),
            ));
        }
    }
    let spec = KeySpec {
        name: body.name,
        team: body.team,
        budget,
        rpm: body.rpm,
        tpm: body.tpm,
        models: body.models,
        residency: body.residency,
        scopes: body.scopes,
    };
    if let Some(bad) = spec
        .scopes
        .iter()
        .flatten()
        .find(|s| !crate::govern::keys::SCOPES.contains(&s.as_str()))
    {
        return Err(ApiError::invalid_param(
            "scopes",
            format!(
                "unknown scope `{bad}`; known: {}",
                crate::govern::keys::SCOPES.join(", ")
            ),
        ));
    }
    let s = st.clone();
    let (rec, plain) = blocking(move || s.governance.keys.create(spec)).await?;
    tracing::info!(key_id = %rec.id, team = rec.spec.team.as_deref().unwrap_or("-"), "API key created");
    let mut v = serde_json::to_value(&rec).unwrap_or_default();
    v["key"] = json!(plain);
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list_keys(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let keys = blocking(move || st.governance.keys.list()).await?;
    Ok(Json(json!({ "object": "list", "data": keys })))
}

pub async fn revoke_key(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let i = id.clone();
    let found = blocking(move || st.governance.keys.revoke(&i)).await?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("No key `{id}`."),
        ));
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(Json(json!({ "id": id, "revoked": true })))
}

#[derive(Debug, Deserialize)]
pub struct ReviewQuery {
    #[serde(default)]
    all: bool,
    limit: Option<u32>,
}

pub async fn list_reviews(
    State(st): State<Arc<AppState>>,
    Query(q): Query<ReviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).min(10_000);
    let items = blocking(move || match &st.governance.pg {
        Some(pg) => review::list_pg(pg, !q.all, limit),
        None => st
            .governance
            .with_admin_db(|c| review::list(c, !q.all, limit)),
    })
    .await?;
    Ok(Json(json!({ "object": "list", "data": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictBody {
    verdict: Verdict,
    note: Option<String>,
}

pub async fn review(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VerdictBody>,
) -> Result<Json<Value>, ApiError> {
    let i = id.clone();
    let found = blocking(move || match &st.governance.pg {
        Some(pg) => review::set_verdict_pg(pg, &i, body.verdict, body.note.as_deref()),
        None => st
            .governance
            .with_admin_db(|c| review::set_verdict(c, &i, body.verdict, body.note.as_deref())),
    })
    .await?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "review_not_found",
            format!("No review `{id}`."),
        ));
    }
    Ok(Json(json!({ "id": id, "verdict": body.verdict })))
}
