//! `POST /v1/messages`: the Anthropic Messages API, served by the same models and routes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::chat::validate;
use super::error::ApiError;
use super::extract::JsonBody;
use super::middleware::RequestId;
use super::respond::{set_served_headers, sse, sse_event, Record};
use super::routing::{decide, set_route_headers};
use crate::state::AppState;
use crate::wire::anthropic::{events, stop_reason, MessagesRequest, MessagesResponse};

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(_rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<JsonBody<MessagesRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let start = Instant::now();
    let JsonBody(areq) = body.map_err(ApiError::anthropic)?;
    for (i, m) in areq.messages.iter().enumerate() {
        if m.role != "user" && m.role != "assistant" {
            return Err(ApiError::invalid_param(
                &format!("messages[{i}].role"),
                "role must be `user` or `assistant`",
            )
            .anthropic());
        }
    }
    let req = areq.to_openai();
    validate(&req).map_err(ApiError::anthropic)?;
    let gw = st.gateway().map_err(ApiError::anthropic)?;
    let plan = decide(&st, &req, &headers)
        .await
        .map_err(ApiError::anthropic)?;
    let route = req.model.clone();
    let fail = |(e, a): (ApiError, Vec<crate::route::Attempt>)| {
        Record::failed(&st.metrics, &route, &a, start, e).anthropic()
    };
    if !req.is_stream() {
        let (resp, served) = gw.complete(&plan, &req).await.map_err(fail)?;
        Record::completed(
            &st.metrics,
            &route,
            &served.deployment.name,
            start,
            resp.usage,
        );
        let mut out = Json(MessagesResponse::from_openai(&resp, &route)).into_response();
        set_served_headers(&mut out, &served);
        set_route_headers(&st, &mut out, &plan, &served);
        return Ok(out);
    }

    let (mut chunks, served) = gw.stream(&plan, &req).await.map_err(fail)?;
    let deployment = served.deployment.name.clone();
    let mut rec = Record::new(st.metrics.clone(), &route, &deployment, start);
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let model = route.clone();
    let body = async_stream::stream! {
        yield Ok(sse_event("message_start", &events::message_start(&id, &model, 0)));
        yield Ok(sse_event("content_block_start", &events::block_start()));
        let mut finish = None;
        while let Some(item) = chunks.next().await {
            match item {
                Ok(chunk) => {
                    if let Some(u) = chunk.usage {
                        rec.usage = Some(u);
                    }
                    for c in &chunk.choices {
                        if let Some(t) = c.delta.content.as_deref().filter(|t| !t.is_empty()) {
                            rec.first_token();
                            yield Ok(sse_event("content_block_delta", &events::text_delta(t)));
                        }
                        if c.finish_reason.is_some() {
                            finish = c.finish_reason.clone();
                        }
                    }
                }
                Err(e) => {
                    let err = e.to_api_error(&deployment).anthropic();
                    rec.finish(err.status.as_u16());
                    yield Ok(sse_event("error", &err.body()));
                    return;
                }
            }
        }
        yield Ok(sse_event("content_block_stop", &events::block_stop()));
        let out = rec.usage.map(|u| u.completion_tokens).unwrap_or(0);
        yield Ok(sse_event("message_delta", &events::message_delta(stop_reason(finish.as_deref()).or(Some("end_turn".into())), out)));
        yield Ok(sse_event("message_stop", &events::message_stop()));
        rec.finish(200);
    };
    let mut resp = sse(body);
    set_served_headers(&mut resp, &served);
    set_route_headers(&st, &mut resp, &plan, &served);
    Ok(resp)
}
