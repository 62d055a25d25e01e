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
use super::respond::{header_tags, served_headers, sse, sse_event};
use crate::exchange::{Endpoint, Exchange, GatewayError, Inbound, Outcome};
use crate::govern::Principal;
use crate::state::AppState;
use crate::wire::anthropic::{events, stop_reason, MessagesRequest, MessagesResponse};

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
    };
    let ex = Exchange::open(&st, inbound, req);
    let outcome = match areq.validate_roles() {
        // Opened first, so a refused request is audited like any other.
        Err(e) => Err(ex.reject(GatewayError::Invalid(e))),
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
                yield Ok(sse_event("message_start", &events::message_start(&id, &route, 0)));
                yield Ok(sse_event("content_block_start", &events::block_start()));
                let (mut finish, mut output) = (None, 0);
                while let Some(item) = s.next().await {
                    match item {
                        Ok(chunk) => {
                            if let Some(u) = chunk.usage {
                                output = u.completion_tokens;
                            }
                            for c in &chunk.choices {
                                if let Some(t) = c.delta.content.as_deref().filter(|t| !t.is_empty()) {
                                    yield Ok(sse_event("content_block_delta", &events::text_delta(t)));
                                }
                                if c.finish_reason.is_some() {
                                    finish = c.finish_reason.clone();
                                }
                            }
                        }
                        Err(e) => {
                            let err = ApiError::from(e).anthropic();
                            yield Ok(sse_event("error", &err.body()));
                            return;
                        }
                    }
                }
                yield Ok(sse_event("content_block_stop", &events::block_stop()));
                let reason = stop_reason(finish.as_deref()).or(Some("end_turn".into()));
                yield Ok(sse_event("message_delta", &events::message_delta(reason, output)));
                yield Ok(sse_event("message_stop", &events::message_stop()));
            };
            let mut resp = sse(body);
            served_headers(&mut resp, &meta, None);
            Ok(resp)
        }
    }
}
