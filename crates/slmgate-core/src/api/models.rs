//! `GET /v1/models`: every public name — aliases, routes, models, the embedding model.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::state::AppState;

fn entries(st: &AppState) -> Vec<Value> {
    let created = 1_700_000_000u64;
    let mut out = Vec::new();
    for (alias, chain) in &st.config.aliases {
        out.push(
            json!({"id": alias, "object": "model", "created": created, "owned_by": "slmgate",
                        "slmgate": {"kind": "alias", "deployments": chain}}),
        );
    }
    for (route, r) in &st.config.routes {
        let tiers: Vec<&str> = r.tiers.iter().map(|t| t.name.as_str()).collect();
        out.push(
            json!({"id": route, "object": "model", "created": created, "owned_by": "slmgate",
                        "slmgate": {"kind": "route", "tiers": tiers}}),
        );
    }
    for (name, m) in &st.config.models {
        let kind = match m {
            crate::config::ModelConfig::Local(_) => "local".to_string(),
            crate::config::ModelConfig::Remote(r) => r.wire.as_str().to_string(),
        };
        out.push(
            json!({"id": name, "object": "model", "created": created, "owned_by": "slmgate",
                        "slmgate": {"kind": kind}}),
        );
    }
    if let Some(e) = &st.config.embeddings {
        out.push(
            json!({"id": e.name, "object": "model", "created": created, "owned_by": "slmgate",
                        "slmgate": {"kind": "embedding"}}),
        );
    }
    out
}

pub async fn list(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": entries(&st)}))
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    entries(&st)
        .into_iter()
        .find(|e| e["id"] == id.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::model_not_found(&id))
}
