//! The OpenAI Files and Vector Stores APIs over the knowledge layer (`crate::know`), so
//! `client.files.create(...)` and `client.vector_stores...` work unchanged.
//!
//! Who sees what: the admin key sees every collection and file; a key needs the
//! `vector_stores` scope and sees only its team's (or, without a team, its own); with auth
//! off there is one tenant, which sees every collection (the CLI's included). Another
//! owner's collection answers 404, as if it did not exist. Files are indexed when they are added, so a vector store file is
//! `completed` (or refused with a 4xx) by the time the call returns.

pub mod files;
pub mod objects;
pub mod vector_stores;

use std::sync::Arc;

use axum::http::StatusCode;
use slmgate_engine::SentenceEmbedder;

use super::error::ApiError;
use crate::govern::Principal;
use crate::know::KnowError;
use crate::state::AppState;

/// Whose collections a caller works with.
pub struct Access {
    /// New collections and files belong to this owner.
    pub owner: String,
    /// Lookups are limited to this owner (`None`: the admin sees all).
    pub filter: Option<String>,
}

impl Access {
    pub fn of(who: &Principal) -> Result<Self, ApiError> {
        Ok(match who {
            Principal::Admin => Access {
                owner: "admin".into(),
                filter: None,
            },
            // Auth off: one tenant, which also sees what the CLI ingested.
            Principal::Anonymous => Access {
                owner: "anonymous".into(),
                filter: None,
            },
            Principal::Key(k) => {
                if !k.has_scope("vector_stores") {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "missing_scope",
                        "This API key lacks the `vector_stores` scope (create the key with scopes = [\"vector_stores\"]).",
                    ));
                }
                let owner = match &k.spec.team {
                    Some(t) => format!("team:{t}"),
                    None => format!("key:{}", k.id),
                };
                Access {
                    filter: Some(owner.clone()),
                    owner,
                }
            }
        })
    }

    pub fn filter(&self) -> Option<&str> {
        self.filter.as_deref()
    }
}

impl From<KnowError> for ApiError {
    fn from(e: KnowError) -> Self {
        let code = match &e {
            KnowError::Document(_) => "invalid_file",
            KnowError::TooLarge(_) => "file_too_large",
            KnowError::Invalid(_) => "invalid_request",
            KnowError::NotFound(_) => "not_found",
            KnowError::Busy(_) => "conflict",
            KnowError::Embed(_) => "embeddings_unavailable",
            KnowError::Store(_) | KnowError::Index(_) => "internal_error",
        };
        if e.status() >= 500 {
            tracing::error!(error = %e, "knowledge store failed");
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, code, e.to_string())
    }
}

/// Runs blocking knowledge work (the store, the index) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KnowError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "knowledge task failed",
            )
        })?
        .map_err(ApiError::from)
}

/// Runs work that embeds, within the embedding model's concurrency bound; 503 when no
/// `[embeddings]` model is configured or it is still loading.
pub async fn with_embedder<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&SentenceEmbedder) -> Result<T, KnowError> + Send + 'static,
) -> Result<(T, String, usize), ApiError> {
    if !st.is_ready() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "Models are still loading; retry shortly.",
        )
        .with_retry_after(2));
    }
    let Some(e) = st.loaded().and_then(|l| l.classifiers.embedder.as_ref()) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "embeddings_unavailable",
            "Vector stores need an embedding model: configure [embeddings] path.",
        ));
    };
    let _permit = e.permits.acquire().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "The server is stopping.",
        )
    })?;
    let model = e.model.clone();
    let (name, dims) = (e.name.clone(), model.dimensions());
    let v = blocking(move || f(&model)).await?;
    Ok((v, name, dims))
}
