//! From an HTTP request to a routing [`Plan`]: request facts (tags, prompt size), the learned
//! router's verdict, the plan, its metrics, and its headers on the response.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::ApiError;
use crate::route::{plan, Plan, PlanError, RequestFacts, Served};
use crate::state::AppState;
use crate::wire::openai::ChatRequest;

/// Tags from the OpenAI `metadata` object, then `x-slmgate-tags: k=v, k=v` (header wins).
pub fn request_facts(req: &ChatRequest, headers: &HeaderMap) -> RequestFacts {
    let mut facts = RequestFacts {
        prompt_tokens: estimate_tokens(req),
        max_tokens: req.max_output_tokens(),
        ..Default::default()
    };
    if let Some(Value::Object(m)) = req.extra.get("metadata") {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            facts.tags.insert(k.clone(), v);
        }
    }
    for h in headers.get_all("x-slmgate-tags") {
        let Ok(text) = h.to_str() else { continue };
        for pair in text.split(',') {
            if let Some((k, v)) = pair.split_once('=') {
                facts
                    .tags
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    facts
}

/// Characters / 4: a tokenizer-free estimate, good enough for policy thresholds and cost caps.
fn estimate_tokens(req: &ChatRequest) -> u32 {
    let chars: usize = req
        .messages
        .iter()
        .filter_map(|m| m.content.as_ref().and_then(|c| c.as_text()))
        .map(|t| t.chars().count())
        .sum();
    (chars / 4) as u32 + 1
}

/// The text the learned router scores: the last user message.
pub fn router_text(req: &ChatRequest) -> Option<String> {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_ref().and_then(|c| c.as_text()))
}

/// Decides the plan for a request and counts the decision.
pub async fn decide(
    st: &AppState,
    req: &ChatRequest,
    facts: RequestFacts,
) -> Result<Plan, ApiError> {
    let verdict = st.router_verdict(&req.model, req, &facts).await;
    let domain = st.domain_verdict(&req.model, req).await;
    let p = plan(&st.config, &req.model, &facts, verdict, domain).map_err(plan_error)?;
    st.metrics
        .route_decisions
        .with_label_values(&[
            &p.route,
            &p.tiers[0].name,
            p.rule.as_deref().unwrap_or("none"),
        ])
        .inc();
    if let Some(v) = p.router {
        st.metrics
            .router_score
            .with_label_values(&[&p.route])
            .observe(v.score as f64);
    }
    tracing::debug!(route = %p.route, first_tier = %p.tiers[0].name, reason = %p.reason_header(), "plan");
    Ok(p)
}

pub fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::UnknownRoute(m) => ApiError::model_not_found(&m),
        PlanError::Denied { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "route_denied", e.to_string())
        }
        PlanError::NothingAllowed { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "no_allowed_model", e.to_string())
        }
    }
}

/// `x-slmgate-tier`, `x-slmgate-route-reason` (plan reasons, then escalations),
/// `x-slmgate-escalations`, `x-slmgate-confidence`; counts the serving tier.
pub fn set_route_headers(st: &AppState, resp: &mut Response, plan: &Plan, served: &Served) {
    st.metrics
        .served_tier
        .with_label_values(&[&plan.route, &served.tier])
        .inc();
    let mut reason = plan.reason_header();
    for e in &served.escalations {
        reason.push_str("; ");
        reason.push_str(&e.describe());
    }
    tracing::info!(
        route = %plan.route,
        tier = %served.tier,
        deployment = %served.deployment.name,
        rule = plan.rule.as_deref().unwrap_or("-"),
        router_score = plan.router.map(|v| v.score),
        domain = plan.domain.as_ref().map(|d| d.domain.as_str()).unwrap_or("-"),
        escalations = served.escalations.len(),
        confidence = served.confidence,
        reason = %reason,
        "routed"
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&served.tier) {
        h.insert("x-slmgate-tier", v);
    }
    if let Ok(v) = HeaderValue::from_str(&reason) {
        h.insert("x-slmgate-route-reason", v);
    }
    h.insert(
        "x-slmgate-escalations",
        HeaderValue::from(served.escalations.len() as u64),
    );
    if let Some(c) = served.confidence {
        if let Ok(v) = HeaderValue::from_str(&format!("{c:.4}")) {
            h.insert("x-slmgate-confidence", v);
        }
    }
}
