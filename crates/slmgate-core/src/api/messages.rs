//! `POST /v1/messages`: the Anthropic Messages API, served by the same models and routes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::audit::Ticket;
use super::chat::validate;
use super::error::ApiError;
use super::extract::JsonBody;
use super::govern::admit;
use super::middleware::RequestId;
use super::respond::{
    record_overhead, set_cost_headers, set_served_headers, sse, sse_event, Record,
};
use super::restore::restore_stream;
use super::routing::{request_facts, set_route_headers};
use crate::govern::Principal;
use crate::route::RequestFacts;
use crate::state::AppState;
use crate::wire::anthropic::{events, stop_reason, MessagesRequest, MessagesResponse};
use crate::wire::openai::ChatRequest;

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Result<JsonBody<MessagesRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let start = Instant::now();
    let JsonBody(areq) = body.map_err(ApiError::anthropic)?;
    let req = areq.to_openai();
    let facts = request_facts(&req, &headers);
    let ticket = Ticket::new(&st, &rid.0, "messages", &who, &req, &facts.tags);
    let out = serve(&st, &who, &ticket, facts, &areq, req, start).await;
    if let Err(e) = &out {
        ticket.finish(e.status.as_u16(), Some(e.code));
    }
    out.map_err(ApiError::anthropic)
}

async fn serve(
    st: &Arc<AppState>,
    who: &Principal,
    ticket: &Ticket,
    facts: RequestFacts,
    areq: &MessagesRequest,
    req: ChatRequest,
    start: Instant,
) -> Result<Response, ApiError> {
    for (i, m) in areq.messages.iter().enumerate() {
        if m.role != "user" && m.role != "assistant" {
            return Err(ApiError::invalid_param(
                &format!("messages[{i}].role"),
                "role must be `user` or `assistant`",
            ));
        }
    }
    validate(&req)?;
    let gw = st.gateway()?;
    let mut adm = admit(st, who, ticket, req, facts).await?;
    let route = adm.req.model.clone();
    let fail = |(e, a): (ApiError, Vec<crate::route::Attempt>)| {
        ticket.attempts(&a);
        Record::failed(&st.metrics, &route, &a, start, e)
    };
    if !adm.req.is_stream() {
        adm.answering();
        let out = gw.complete(&adm.plan, &adm.req).await;
        let (mut resp, served) = out.map_err(fail).inspect_err(|_| adm.nothing_answered())?;
        Record::completed(
            &st.metrics,
            &route,
            &served.deployment.name,
            start,
            resp.usage,
        );
        let cost = adm.close_completion(st, ticket, &served, &mut resp);
        let mut out = Json(MessagesResponse::from_openai(&resp, &route)).into_response();
        set_served_headers(&mut out, &served);
        set_cost_headers(&mut out, &cost);
        set_route_headers(st, &mut out, &adm.plan, &served);
        record_overhead(&st.metrics, &route, start, &served);
        return Ok(out);
    }

    adm.answering();
    let out = gw.stream(&adm.plan, &adm.req).await;
    let (chunks, served) = out.map_err(fail).inspect_err(|_| adm.nothing_answered())?;
    ticket.served(&served);
    let mut chunks = restore_stream(chunks, adm.redactions.take(), ticket.clone());
    let deployment = served.deployment.name.clone();
    let mut rec = Record::new(st.metrics.clone(), &route, &deployment, start);
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let model = route.clone();
    let plan = adm.plan.clone();
    let (st2, ticket, s) = (st.clone(), ticket.clone(), served.clone());
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
                    adm.close_stream(&st2, &ticket, &s, rec.usage);
                    ticket.finish(err.status.as_u16(), Some(err.code));
                    yield Ok(sse_event("error", &err.body()));
                    return;
                }
            }
        }
        yield Ok(sse_event("content_block_stop", &events::block_stop()));
        let out = rec.usage.map(|u| u.completion_tokens).unwrap_or(0);
        yield Ok(sse_event("message_delta", &events::message_delta(stop_reason(finish.as_deref()).or(Some("end_turn".into())), out)));
        rec.finish(200);
        adm.close_stream(&st2, &ticket, &s, rec.usage);
        ticket.finish(200, None);
        yield Ok(sse_event("message_stop", &events::message_stop()));
    };
    let mut resp = sse(body);
    set_served_headers(&mut resp, &served);
    set_route_headers(st, &mut resp, &plan, &served);
    record_overhead(&st.metrics, &route, start, &served);
    Ok(resp)
}
