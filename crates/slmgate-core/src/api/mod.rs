//! The HTTP API: OpenAI-compatible `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`;
//! Anthropic-compatible `/v1/messages`; `/health`, `/ready`, `/metrics`; the admin API and
//! the `/dashboard`. The chat endpoints are thin wire adapters over the exchange
//! (`crate::exchange`): translate the request, run it, render the outcome.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod completions;
pub mod dashboard;
pub mod embeddings;
pub mod error;
pub mod extract;
pub mod messages;
pub mod middleware;
pub mod models;
pub mod ops;
pub mod respond;
pub mod responses;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
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
