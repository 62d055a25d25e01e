//! `POST /v1/embeddings`: sentence embeddings from the local embedding model.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::JsonBody;
use super::middleware::RequestId;
use crate::exchange::{check_model_allowed, refused, GatewayError, Ticket};
use crate::govern::Principal;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Input,
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<usize>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

const MAX_INPUTS: usize = 2048;

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    JsonBody(req): JsonBody<EmbeddingsRequest>,
) -> Result<Json<Value>, ApiError> {
    let (ticket, commit) = Ticket::embeddings(&st, &rid.0, &who, &req.model, req.user.as_deref());
    let out = if st.governance.audit.is_failing() {
        Err(ApiError::from(GatewayError::AuditUnavailable))
    } else {
        serve(&st, &who, &ticket, req).await
    };
    match &out {
        Ok(_) => ticket.close(200, None),
        Err(e) => ticket.close(e.status.as_u16(), Some(e.code)),
    }
    drop(ticket);
    // Sync durability: nothing leaves before its entry is on disk.
    match (commit.committed().await, out) {
        (false, Ok(_)) => Err(ApiError::from(GatewayError::AuditUnavailable)),
        (_, out) => out,
    }
}

async fn serve(
    st: &AppState,
    who: &Principal,
    ticket: &Ticket,
    req: EmbeddingsRequest,
) -> Result<Json<Value>, ApiError> {
    check_model_allowed(who, &req.model)?;
    if let Some(k) = who.key() {
        let chars: usize = match &req.input {
            Input::One(s) => s.len(),
            Input::Many(v) => v.iter().map(String::len).sum(),
            _ => 0,
        };
        st.governance
            .limits
            .admit(k, (chars / 4) as u32 + 1)
            .map_err(refused)?;
    }
    let loaded = st.loaded().ok_or(GatewayError::NotReady)?;
    let emb = match &loaded.classifiers.embedder {
        Some(e) if e.name == req.model => e,
        _ => return Err(ApiError::model_not_found(&req.model)),
    };
    let inputs = match req.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
        Input::Tokens(_) | Input::TokenBatches(_) => {
            return Err(ApiError::invalid_param(
                "input",
                "token-id input is not supported; send text",
            ))
        }
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid_param(
            "input",
            format!("send between 1 and {MAX_INPUTS} inputs"),
        ));
    }
    if inputs.iter().any(|s| s.is_empty()) {
        return Err(ApiError::invalid_param(
            "input",
            "inputs must not be empty strings",
        ));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "encoding_format",
                format!("`{other}` is not one of float, base64"),
            ))
        }
    };
    let dims = emb.model.dimensions();
    if let Some(d) = req.dimensions {
        if d != dims {
            return Err(ApiError::invalid_param(
                "dimensions",
                format!("this model returns {dims} dimensions; it cannot return {d}"),
            ));
        }
    }
    let _permit = emb.permits.acquire().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "The server is shutting down.",
        )
    })?;
    let model = emb.model.clone();
    let (vectors, tokens) = tokio::task::spawn_blocking(move || {
        // Batches of 32 keep padding waste and peak memory bounded.
        let mut out = Vec::with_capacity(inputs.len());
        let mut tokens = 0;
        for chunk in inputs.chunks(32) {
            let (v, t) = model.embed(chunk)?;
            out.extend(v);
            tokens += t;
        }
        Ok::<_, slmgate_engine::EmbedError>((out, tokens))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "engine_error",
            format!("embedding task failed: {e}"),
        )
    })?
    .map_err(|e| match e {
        slmgate_engine::EmbedError::TooLong { .. } => {
            let mut err = ApiError::bad_request("context_length_exceeded", e.to_string());
            err.param = Some("input".into());
            err
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "engine_error",
            other.to_string(),
        ),
    })?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    ticket.usage(
        &crate::wire::openai::Usage::new(tokens as u32, 0),
        Default::default(),
    );
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": emb.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
