//! The HTTP API: OpenAI-compatible `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`;
//! Anthropic-compatible `/v1/messages`; the Files and Vector Stores APIs (`knowledge/`); `/health`, `/ready`, `/metrics`; the admin API and
//! the `/dashboard`. The chat endpoints are thin wire adapters over the exchange
//! (`crate::exchange`): translate the request, run it, render the outcome.

pub mod admin;
pub mod admin_adapters;
pub mod auth;
pub mod chat;
pub mod completions;
pub mod dashboard;
pub mod embeddings;
pub mod error;
pub mod extract;
pub mod knowledge;
pub mod messages;
pub mod middleware;
pub mod models;
pub mod ops;
pub mod respond;
pub mod responses;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::state::AppState;
use error::ApiError;

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.server.max_body_bytes;
    let v1 = Router::new()
        .route("/v1/chat/completions", post(chat::handler))
        .route("/v1/completions", post(completions::handler))
        .route("/v1/messages", post(messages::handler))
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/embeddings", post(embeddings::handler))
        .route(
            "/v1/files",
            post(knowledge::files::create)
                .get(knowledge::files::list)
                // An upload may be as large as a document may be.
                .layer(DefaultBodyLimit::max(
                    state.config.knowledge.max_file_bytes.max(limit) + (64 << 10),
                )),
        )
        .route(
            "/v1/files/{id}",
            get(knowledge::files::get).delete(knowledge::files::delete),
        )
        .route("/v1/files/{id}/content", get(knowledge::files::content))
        .route(
            "/v1/vector_stores",
            post(knowledge::vector_stores::create).get(knowledge::vector_stores::list),
        )
        .route(
            "/v1/vector_stores/{id}",
            get(knowledge::vector_stores::get).delete(knowledge::vector_stores::delete),
        )
        .route(
            "/v1/vector_stores/{id}/files",
            post(knowledge::vector_stores::create_file).get(knowledge::vector_stores::list_files),
        )
        .route(
            "/v1/vector_stores/{id}/files/{file_id}",
            get(knowledge::vector_stores::get_file).delete(knowledge::vector_stores::delete_file),
        )
        .route(
            "/v1/vector_stores/{id}/search",
            post(knowledge::vector_stores::search),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::get))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let admin = Router::new()
        .route("/admin/keys", post(admin::create_key).get(admin::list_keys))
        .route("/admin/keys/{id}", delete(admin::revoke_key))
        .route("/admin/reviews", get(admin::list_reviews))
        .route("/admin/reviews/{id}", post(admin::review))
        .route("/admin/adapters", get(admin_adapters::list))
        .route("/admin/adapters/{deployment}", put(admin_adapters::load))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .merge(v1)
        .merge(admin)
        .merge(dashboard::routes())
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "No such endpoint.",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This endpoint does not accept that HTTP method.",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        // A client trickling its body holds a request open only this long (408).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(state.config.server.body_read_timeout_secs),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .with_state(state)
}
