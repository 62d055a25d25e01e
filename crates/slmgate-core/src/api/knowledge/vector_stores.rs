//! `/v1/vector_stores`: collections, the files in them, and search.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::objects;
use super::{blocking, with_embedder, Access};
use crate::api::error::ApiError;
use crate::api::extract::JsonBody;
use crate::govern::Principal;
use crate::know::{Collection, Filter, KnowError, NewFile};
use crate::ml::{embed_one, Representation};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct CreateStore {
    name: Option<String>,
    #[serde(default)]
    file_ids: Vec<String>,
    metadata: Option<Value>,
    /// Accepted for compatibility; slmgate chunks by `[knowledge] chunk_words`.
    #[allow(dead_code)]
    chunking_strategy: Option<Value>,
    #[allow(dead_code)]
    expires_after: Option<Value>,
    #[allow(dead_code)]
    description: Option<String>,
}

fn store_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No such vector store: `{id}`."),
    )
}

/// The caller's collection of that id (404 for another owner's).
async fn collection(st: &Arc<AppState>, access: &Access, id: &str) -> Result<Collection, ApiError> {
    let (kn, i, f) = (st.knowledge.clone(), id.to_string(), access.filter.clone());
    match blocking(move || kn.store().collection(&i, f.as_deref())).await? {
        Some(c) if c.id == id => Ok(c),
        _ => Err(store_not_found(id)),
    }
}

async fn describe(st: &Arc<AppState>, c: Collection) -> Result<Value, ApiError> {
    let kn = st.knowledge.clone();
    let id = c.id.clone();
    let files = blocking(move || kn.store().files(&id)).await?;
    Ok(objects::vector_store(&c, &files))
}

/// Indexes an uploaded file into a collection; its vector store file object.
async fn add_file(
    st: &Arc<AppState>,
    access: &Access,
    c: &Collection,
    file_id: &str,
    attributes: Value,
) -> Result<Value, ApiError> {
    if !attributes.is_object() {
        return Err(ApiError::invalid_param(
            "attributes",
            "attributes must be an object",
        ));
    }
    let (kn, id, owner) = (
        st.knowledge.clone(),
        file_id.to_string(),
        access.filter.clone(),
    );
    let Some((upload, bytes)) = blocking(move || kn.store().upload(&id, owner.as_deref())).await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No such file: `{file_id}` (upload it with POST /v1/files first)."),
        )
        .param("file_id"));
    };
    let (kn, coll) = (st.knowledge.clone(), c.clone());
    let ((_, file), _, _) = with_embedder(st, move |m| {
        kn.ingest(
            m,
            &coll,
            NewFile {
                file_id: upload.id.clone(),
                filename: upload.filename.clone(),
                bytes: &bytes,
                attributes,
            },
            &mut |_, _| {},
        )
    })
    .await?;
    tracing::info!(collection = %c.id, file_id = %file.file_id, chunks = file.chunks, "file indexed");
    let cfg = &st.config.knowledge;
    Ok(objects::vector_store_file(
        c,
        &file,
        cfg.chunk_words,
        cfg.overlap_words,
    ))
}

pub async fn create(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody<CreateStore>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        return Err(ApiError::invalid_param(
            "metadata",
            "metadata must be an object",
        ));
    }
    let name = body.name.unwrap_or_default();
    if name.len() > 256 {
        return Err(ApiError::invalid_param(
            "name",
            "name is longer than 256 bytes",
        ));
    }
    let (kn, owner) = (st.knowledge.clone(), access.owner.clone());
    let ((), embedding, dims) = with_embedder(&st, |_| Ok(())).await?;
    let c = blocking(move || kn.create(&name, &owner, &embedding, dims, metadata)).await?;
    tracing::info!(collection = %c.id, owner = %c.owner, "vector store created");
    for f in &body.file_ids {
        if let Err(e) = add_file(&st, &access, &c, f, json!({})).await {
            // All or nothing: a store whose files did not all go in is not left behind.
            let (kn, c2) = (st.knowledge.clone(), c.clone());
            let _ = blocking(move || kn.delete_collection(&c2)).await;
            return Err(e);
        }
    }
    describe(&st, c).await.map(Json)
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let kn = st.knowledge.clone();
    let all = blocking(move || kn.store().collections(access.filter())).await?;
    let mut data = Vec::with_capacity(all.len());
    for c in all {
        data.push(describe(&st, c).await?);
    }
    Ok(Json(objects::list(data)))
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    describe(&st, c).await.map(Json)
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    let kn = st.knowledge.clone();
    blocking(move || kn.delete_collection(&c)).await?;
    tracing::info!(collection = %id, "vector store deleted");
    Ok(Json(objects::deleted(&id, "vector_store.deleted")))
}

#[derive(Debug, Deserialize)]
pub struct AddFile {
    file_id: String,
    attributes: Option<Value>,
    #[allow(dead_code)]
    chunking_strategy: Option<Value>,
}

pub async fn create_file(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddFile>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    let attrs = body.attributes.unwrap_or_else(|| json!({}));
    add_file(&st, &access, &c, &body.file_id, attrs)
        .await
        .map(Json)
}

pub async fn list_files(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    let (kn, cid) = (st.knowledge.clone(), c.id.clone());
    let files = blocking(move || kn.store().files(&cid)).await?;
    let cfg = &st.config.knowledge;
    Ok(Json(objects::list(
        files
            .iter()
            .map(|f| objects::vector_store_file(&c, f, cfg.chunk_words, cfg.overlap_words))
            .collect(),
    )))
}

fn file_not_found(id: &str, file: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Vector store `{id}` has no file `{file}`."),
    )
}

pub async fn get_file(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    let (kn, cid, fid) = (st.knowledge.clone(), c.id.clone(), file_id.clone());
    let cfg = &st.config.knowledge;
    match blocking(move || kn.store().file(&cid, &fid)).await? {
        Some(f) => Ok(Json(objects::vector_store_file(
            &c,
            &f,
            cfg.chunk_words,
            cfg.overlap_words,
        ))),
        None => Err(file_not_found(&id, &file_id)),
    }
}

pub async fn delete_file(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    let (kn, fid) = (st.knowledge.clone(), file_id.clone());
    if blocking(move || kn.remove_file(&c, &fid)).await? {
        Ok(Json(objects::deleted(
            &file_id,
            "vector_store.file.deleted",
        )))
    } else {
        Err(file_not_found(&id, &file_id))
    }
}

#[derive(Debug, Deserialize)]
pub struct Search {
    query: Value,
    max_num_results: Option<usize>,
    filters: Option<Value>,
    ranking_options: Option<RankingOptions>,
    #[allow(dead_code)]
    rewrite_query: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct RankingOptions {
    score_threshold: Option<f32>,
    #[allow(dead_code)]
    ranker: Option<String>,
}

pub async fn search(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Search>,
) -> Result<Json<Value>, ApiError> {
    let access = Access::of(&who)?;
    let c = collection(&st, &access, &id).await?;
    let query = match &body.query {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => {
            return Err(ApiError::invalid_param(
                "query",
                "query must be a string or an array of strings",
            ))
        }
    };
    if query.trim().is_empty() {
        return Err(ApiError::invalid_param("query", "query is empty"));
    }
    let k = body.max_num_results.unwrap_or(10);
    if !(1..=50).contains(&k) {
        return Err(ApiError::invalid_param(
            "max_num_results",
            "max_num_results must be between 1 and 50",
        ));
    }
    let filter = match &body.filters {
        Some(v) => Some(Filter::parse(v).map_err(|e| match e {
            KnowError::Invalid(m) => ApiError::invalid_param("filters", m),
            e => ApiError::from(e),
        })?),
        None => None,
    };
    let threshold = body
        .ranking_options
        .and_then(|r| r.score_threshold)
        .unwrap_or(0.0);
    let (kn, q, floor) = (
        st.knowledge.clone(),
        query.clone(),
        st.config.knowledge.min_similarity,
    );
    let (hits, _, _) = with_embedder(&st, move |m| {
        let v = embed_one(m, Representation::Contextual, &q)
            .map_err(|e| KnowError::Embed(e.to_string()))?;
        kn.search(&c, &q, &v, k, filter.as_ref(), floor)
    })
    .await?;
    let data: Vec<Value> = hits
        .iter()
        .filter(|h| h.score >= threshold)
        .map(objects::search_result)
        .collect();
    Ok(Json(json!({
        "object": "vector_store.search_results.page",
        "search_query": [query],
        "data": data,
        "has_more": false,
        "next_page": null,
    })))
}
