//! `POST /v1/chat/completions`: the OpenAI wire is the canonical one, so this adapter only
//! runs the exchange and renders its outcome (JSON, or SSE chunks ending in `[DONE]`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::error::ApiError;
use super::extract::JsonBody;
use super::middleware::RequestId;
use super::respond::{cache_off, header_tags, served_headers, sse, sse_data};
use crate::exchange::{Endpoint, Exchange, Inbound, Outcome};
use crate::govern::Principal;
use crate::state::AppState;
use crate::wire::openai::ChatRequest;

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    let include_usage = req.include_usage();
    let inbound = Inbound {
        request_id: rid.0,
        endpoint: Endpoint::Chat,
        who,
        header_tags: header_tags(&headers),
        cache_off: cache_off(&headers),
    };
    match Exchange::open(&st, inbound, req).run().await? {
        Outcome::Answer(a) => {
            let mut resp = Json(a.response).into_response();
            served_headers(&mut resp, &a.meta, Some(&a.cost));
            Ok(resp)
        }
        Outcome::Stream(mut s) => {
            let meta = s.meta.clone();
            let body = async_stream::stream! {
                while let Some(item) = s.next().await {
                    match item {
                        Ok(mut chunk) => {
                            if chunk.usage.is_some() && !include_usage {
                                if chunk.choices.is_empty() {
                                    continue;
                                }
                                chunk.usage = None;
                            }
                            yield Ok(sse_data(&chunk));
                        }
                        Err(e) => {
                            // Committed already: one error event, no [DONE], so SDKs raise.
                            yield Ok(sse_data(&ApiError::from(e).body()));
                            return;
                        }
                    }
                }
                yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
            };
            let mut resp = sse(body);
            served_headers(&mut resp, &meta, None);
            Ok(resp)
        }
    }
}
