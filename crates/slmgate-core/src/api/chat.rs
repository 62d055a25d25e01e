//! `POST /v1/chat/completions`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::audit::Ticket;
use super::error::ApiError;
use super::extract::JsonBody;
use super::govern::{admit, Admission};
use super::middleware::RequestId;
use super::respond::{
    record_overhead, set_cost_headers, set_served_headers, sse, sse_data, Record,
};
use super::restore::restore_stream;
use super::routing::{request_facts, set_route_headers};
use crate::govern::Principal;
use crate::route::RequestFacts;
use crate::route::{Gateway, Served};
use crate::state::AppState;
use crate::wire::openai::ChatRequest;

/// Checks what every deployment would reject, so the answer does not depend on which one
/// happens to serve the request.
pub fn validate(req: &ChatRequest) -> Result<(), ApiError> {
    if req.model.is_empty() {
        return Err(ApiError::invalid_param("model", "`model` is required"));
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    if let Some(n) = req.n {
        if n != 1 {
            return Err(ApiError::invalid_param(
                "n",
                format!("only n=1 is supported, got n={n}"),
            ));
        }
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid_param(
                "temperature",
                format!("temperature must be between 0 and 2, got {t}"),
            ));
        }
    }
    if let Some(p) = req.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(ApiError::invalid_param(
                "top_p",
                format!("top_p must be in (0, 1], got {p}"),
            ));
        }
    }
    if let Some(k) = req.top_k {
        if k < 0 {
            return Err(ApiError::invalid_param(
                "top_k",
                format!("top_k must be >= 0, got {k}"),
            ));
        }
    }
    for (name, v) in [
        ("frequency_penalty", req.frequency_penalty),
        ("presence_penalty", req.presence_penalty),
    ] {
        if let Some(v) = v {
            if !(-2.0..=2.0).contains(&v) {
                return Err(ApiError::invalid_param(
                    name,
                    format!("{name} must be between -2 and 2, got {v}"),
                ));
            }
        }
    }
    if req.max_output_tokens() == Some(0) {
        return Err(ApiError::invalid_param(
            "max_tokens",
            "max_tokens must be at least 1",
        ));
    }
    if let Some(k) = req.top_logprobs {
        if k > 20 {
            return Err(ApiError::invalid_param(
                "top_logprobs",
                format!("top_logprobs must be between 0 and 20, got {k}"),
            ));
        }
        if k > 0 && !req.logprobs.unwrap_or(false) {
            return Err(ApiError::invalid_param(
                "top_logprobs",
                "top_logprobs requires logprobs=true",
            ));
        }
    }
    let stops = req.stop_list();
    if stops.len() > 4 {
        return Err(ApiError::invalid_param("stop", "at most 4 stop sequences"));
    }
    if stops.iter().any(|s| s.is_empty()) {
        return Err(ApiError::invalid_param(
            "stop",
            "stop sequences must not be empty",
        ));
    }
    for (i, m) in req.messages.iter().enumerate() {
        if !matches!(
            m.role.as_str(),
            "system" | "developer" | "user" | "assistant" | "tool" | "function"
        ) {
            return Err(ApiError::invalid_param(
                &format!("messages[{i}].role"),
                format!("unknown role `{}`", m.role),
            ));
        }
    }
    Ok(())
}

pub async fn handler(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    let start = Instant::now();
    let facts = request_facts(&req, &headers);
    let ticket = Ticket::new(&st, &rid.0, "chat", &who, &req, &facts.tags);
    let out = serve(&st, &who, &ticket, facts, req, start).await;
    if let Err(e) = &out {
        ticket.finish(e.status.as_u16(), Some(e.code));
    }
    out
}

async fn serve(
    st: &Arc<AppState>,
    who: &Principal,
    ticket: &Ticket,
    facts: RequestFacts,
    req: ChatRequest,
    start: Instant,
) -> Result<Response, ApiError> {
    validate(&req)?;
    let gw = st.gateway()?;
    let adm = admit(st, who, ticket, req, facts).await?;
    tracing::debug!(model = %adm.req.model, stream = adm.req.is_stream(), "chat request");
    let plan = adm.plan.clone();
    let mut resp = if adm.req.is_stream() {
        stream(st.clone(), gw, adm, ticket.clone(), start).await?
    } else {
        complete(st, gw, adm, ticket, start).await?
    };
    let served = resp.extensions_mut().remove::<Served>();
    if let Some(served) = served {
        set_route_headers(st, &mut resp, &plan, &served);
        record_overhead(&st.metrics, &plan.route, start, &served);
    }
    Ok(resp)
}

async fn complete(
    st: &AppState,
    gw: &Gateway,
    mut adm: Admission,
    ticket: &Ticket,
    start: Instant,
) -> Result<Response, ApiError> {
    adm.answering();
    let out = gw.complete(&adm.plan, &adm.req).await;
    let (mut resp, served) = out
        .map_err(|(e, a)| {
            ticket.attempts(&a);
            Record::failed(&st.metrics, &adm.req.model, &a, start, e)
        })
        .inspect_err(|_| adm.nothing_answered())?;
    Record::completed(
        &st.metrics,
        &adm.req.model,
        &served.deployment.name,
        start,
        resp.usage,
    );
    let cost = adm.close_completion(st, ticket, &served, &mut resp);
    let mut out = Json(resp).into_response();
    set_served_headers(&mut out, &served);
    set_cost_headers(&mut out, &cost);
    out.extensions_mut().insert(served);
    Ok(out)
}

async fn stream(
    st: Arc<AppState>,
    gw: &Gateway,
    mut adm: Admission,
    ticket: Ticket,
    start: Instant,
) -> Result<Response, ApiError> {
    adm.answering();
    let out = gw.stream(&adm.plan, &adm.req).await;
    let (chunks, served) = out
        .map_err(|(e, a)| {
            ticket.attempts(&a);
            Record::failed(&st.metrics, &adm.req.model, &a, start, e)
        })
        .inspect_err(|_| adm.nothing_answered())?;
    ticket.served(&served);
    let mut chunks = restore_stream(chunks, adm.redactions.take(), ticket.clone());
    let include_usage = adm.req.include_usage();
    let deployment = served.deployment.name.clone();
    let mut rec = Record::new(st.metrics.clone(), &adm.req.model, &deployment, start);
    let s = served.clone();
    let body = async_stream::stream! {
        while let Some(item) = chunks.next().await {
            match item {
                Ok(mut chunk) => {
                    if let Some(u) = chunk.usage {
                        rec.usage = Some(u);
                        if !include_usage {
                            if chunk.choices.is_empty() {
                                continue;
                            }
                            chunk.usage = None;
                        }
                    }
                    if chunk.is_substantive() {
                        rec.first_token();
                    }
                    yield Ok(sse_data(&chunk));
                }
                Err(e) => {
                    // Committed already: one error event, no [DONE], so SDKs raise.
                    let err = e.to_api_error(&deployment);
                    tracing::warn!(deployment = %deployment, error = %e, "stream failed after it started");
                    rec.finish(err.status.as_u16());
                    adm.close_stream(&st, &ticket, &s, rec.usage);
                    ticket.finish(err.status.as_u16(), Some(err.code));
                    yield Ok(sse_data(&err.body()));
                    return;
                }
            }
        }
        rec.finish(200);
        adm.close_stream(&st, &ticket, &s, rec.usage);
        ticket.finish(200, None);
        yield Ok(axum::body::Bytes::from_static(b"data: [DONE]\n\n"));
    };
    let mut resp = sse(body);
    set_served_headers(&mut resp, &served);
    resp.extensions_mut().insert(served);
    Ok(resp)
}
