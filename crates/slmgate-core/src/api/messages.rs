//! `POST /v1/messages`: the Anthropic Messages API. The request is translated to the
//! canonical shape, run through the same exchange as chat completions, and the answer
//! translated back (JSON, or Anthropic's SSE events).

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::error::ApiError;
use super::extract::JsonBody;
use super::middleware::RequestId;
use super::respond::{cache_off, header_tags, served_headers, sse, sse_event};
use crate::exchange::{Endpoint, Exchange, GatewayError, Inbound, Outcome};
use crate::govern::Principal;
use crate::state::AppState;
use crate::wire::anthropic::{MessagesRequest, MessagesResponse, StreamWriter};

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Result<JsonBody<MessagesRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(areq) = body.map_err(ApiError::anthropic)?;
    let req = areq.to_openai();
    let route = req.model.clone();
    let inbound = Inbound {
        request_id: rid.0,
        endpoint: Endpoint::Messages,
        who,
        header_tags: header_tags(&headers),
        cache_off: cache_off(&headers),
    };
    let ex = Exchange::open(&st, inbound, req);
    let outcome = match areq.validate_roles() {
        // Opened first, so a refused request is audited like any other.
        Err(e) => Err(ex.reject(GatewayError::Invalid(e)).await),
        Ok(()) => ex.run().await,
    };
    match outcome.map_err(|e| ApiError::from(e).anthropic())? {
        Outcome::Answer(a) => {
            let mut resp = Json(MessagesResponse::from_openai(&a.response, &route)).into_response();
            served_headers(&mut resp, &a.meta, Some(&a.cost));
            Ok(resp)
        }
        Outcome::Stream(mut s) => {
            let meta = s.meta.clone();
            let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            let body = async_stream::stream! {
                let (name, start) = StreamWriter::start(&id, &route);
                yield Ok(sse_event(name, &start));
                let mut w = StreamWriter::new();
                while let Some(item) = s.next().await {
                    match item {
                        Ok(chunk) => {
                            for (name, ev) in w.chunk(&chunk) {
                                yield Ok(sse_event(name, &ev));
                            }
                        }
                        Err(e) => {
                            let err = ApiError::from(e).anthropic();
                            yield Ok(sse_event("error", &err.body()));
                            return;
                        }
                    }
                }
                for (name, ev) in w.end() {
                    yield Ok(sse_event(name, &ev));
                }
            };
            let mut resp = sse(body);
            served_headers(&mut resp, &meta, None);
            Ok(resp)
        }
    }
}
