//! `POST /v1/completions`: the legacy prompt-completion API, for the tools that still use it.
//! The prompt runs through the same exchange (governance, routing, cost); a local model gets
//! it raw, without its chat template.

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
use crate::exchange::{Endpoint, Exchange, GatewayError, Inbound, Outcome};
use crate::govern::Principal;
use crate::state::AppState;
use crate::wire::completions::{chunk, completion_id, from_chat, CompletionRequest};
use crate::wire::openai::ChatRequest;

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(creq): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    let inbound = Inbound {
        request_id: rid.0,
        endpoint: Endpoint::Completions,
        who,
        header_tags: header_tags(&headers),
        cache_off: cache_off(&headers),
    };
    let req = match creq.to_chat() {
        Ok(r) => r,
        Err(e) => {
            let ex = Exchange::open(
                &st,
                inbound,
                ChatRequest::new(creq.model.clone(), Vec::new()),
            );
            return Err(ex.reject(GatewayError::Invalid(e)).await.into());
        }
    };
    let include_usage = req.include_usage();
    let (id, model) = (completion_id(), creq.model.clone());
    match Exchange::open(&st, inbound, req).run().await? {
        Outcome::Answer(a) => {
            let mut resp = Json(from_chat(&a.response, &id, &model)).into_response();
            served_headers(&mut resp, &a.meta, Some(&a.cost));
            Ok(resp)
        }
        Outcome::Stream(mut s) => {
            let meta = s.meta.clone();
            let body = async_stream::stream! {
                let mut offset = 0usize;
                while let Some(item) = s.next().await {
                    match item {
                        Ok(c) => {
                            if c.choices.is_empty() && (c.usage.is_none() || !include_usage) {
                                continue;
                            }
                            if c.choices.iter().all(|ch| ch.delta.content.is_none() && ch.finish_reason.is_none() && ch.logprobs.is_none()) && c.usage.is_none() {
                                continue; // the role chunk: nothing in the legacy shape
                            }
                            yield Ok(sse_data(&chunk(&c, &id, &model, &mut offset)));
                        }
                        Err(e) => {
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
