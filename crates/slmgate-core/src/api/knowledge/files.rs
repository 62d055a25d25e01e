//! `/v1/files`: uploads (multipart `file` and `purpose`), their list, metadata, content, and
//! deletion. An upload is kept as sent; it is read as a document when added to a vector
//! store.

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

use super::objects;
use super::{blocking, Access};
use crate::api::error::ApiError;
use crate::govern::Principal;
use crate::know::store::now_s;
use crate::know::Upload;
use crate::state::AppState;

const PURPOSES: [&str; 5] = ["assistants", "user_data", "batch", "fine-tune", "vision"];

pub async fn create(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let access = Access::of(&who)?;
    let max = st.config.knowledge.max_file_bytes;
    let (mut file, mut purpose) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| {
        let status = e.status();
        ApiError::new(
            status,
            "invalid_multipart",
            format!("unreadable upload: {}", e.body_text()),
        )
    })? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("upload").to_string();
                let bytes = field.bytes().await.map_err(|e| {
                    ApiError::new(
                        e.status(),
                        "invalid_multipart",
                        format!("unreadable file part: {}", e.body_text()),
                    )
                })?;
                file = Some((name, bytes));
            }
            Some("purpose") => {
                purpose =
                    Some(field.text().await.map_err(|e| {
                        ApiError::new(e.status(), "invalid_multipart", e.body_text())
                    })?)
            }
            _ => {}
        }
    }
    let Some((filename, bytes)) = file else {
        return Err(ApiError::invalid_param(
            "file",
            "the upload has no `file` part",
        ));
    };
    let purpose = purpose.unwrap_or_else(|| "assistants".into());
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::invalid_param(
            "purpose",
            format!(
                "unknown purpose `{purpose}`; use one of {}",
                PURPOSES.join(", ")
            ),
        ));
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid_param(
            "file",
            format!("`{filename}` is empty"),
        ));
    }
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            format!(
                "`{filename}` is {} bytes; the limit is {max} ([knowledge] max_file_bytes)",
                bytes.len()
            ),
        ));
    }
    let u = Upload {
        id: format!("file-{}", uuid::Uuid::new_v4().simple()),
        owner: access.owner.clone(),
        filename,
        bytes: bytes.len(),
        purpose,
        created_s: now_s(),
    };
    let (kn, rec) = (st.knowledge.clone(), u.clone());
    blocking(move || kn.store().put_upload(&rec, &bytes)).await?;
    tracing::info!(file_id = %u.id, bytes = u.bytes, "file uploaded");
    Ok((StatusCode::OK, Json(objects::file(&u))))
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let kn = st.knowledge.clone();
    let all = blocking(move || kn.store().uploads(access.filter())).await?;
    Ok(Json(objects::list(all.iter().map(objects::file).collect())))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No such file: `{id}`."),
    )
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let (kn, i) = (st.knowledge.clone(), id.clone());
    match blocking(move || kn.store().upload(&i, access.filter())).await? {
        Some((u, _)) => Ok(Json(objects::file(&u))),
        None => Err(not_found(&id)),
    }
}

pub async fn content(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let access = Access::of(&who)?;
    let (kn, i) = (st.knowledge.clone(), id.clone());
    match blocking(move || kn.store().upload(&i, access.filter())).await? {
        Some((_, bytes)) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
        }
        None => Err(not_found(&id)),
    }
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let (kn, i) = (st.knowledge.clone(), id.clone());
    if blocking(move || kn.store().delete_upload(&i, access.filter())).await? {
        Ok(Json(objects::deleted(&id, "file")))
    } else {
        Err(not_found(&id))
    }
}
