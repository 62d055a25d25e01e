//! The admin API for LoRA adapters (admin key only): what each adapter deployment has
//! loaded, and loading a new file into one while serving.
//!
//! `GET /admin/adapters`; `PUT /admin/adapters/{deployment}` with `{"path": "...", "scale":
//! 1.0}` (both optional: no path reloads the adapter's current file).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::JsonBody;
use crate::route::adapters::AdapterError;
use crate::state::AppState;

pub async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let data = st
        .loaded()
        .map(|l| l.gateway.adapters())
        .unwrap_or_default();
    Ok(Json(json!({ "object": "list", "data": data })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBody {
    path: Option<String>,
    scale: Option<f32>,
}

pub async fn load(
    State(st): State<Arc<AppState>>,
    Path(deployment): Path<String>,
    JsonBody(body): JsonBody<LoadBody>,
) -> Result<Json<Value>, ApiError> {
    if let Some(s) = body.scale {
        if !(s.is_finite() && (-16.0..=16.0).contains(&s)) {
            return Err(ApiError::invalid_param(
                "scale",
                "must be between -16 and 16",
            ));
        }
    }
    if !st.is_ready() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "The models are still loading.",
        ));
    }
    let path = body.path.map(|p| crate::config::expand_home_path(&p));
    match st
        .load_adapter(&deployment, path, body.scale, "admin")
        .await
    {
        Ok(s) => Ok(Json(serde_json::to_value(s).unwrap_or_default())),
        Err(e @ AdapterError::NotAnAdapter(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "adapter_not_found",
            e.to_string(),
        )),
        Err(e @ AdapterError::Load(_)) => Err(ApiError::invalid_param("path", e.to_string())),
    }
}
