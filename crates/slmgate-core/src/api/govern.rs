//! Governance on the request path, in order: who is calling (auth middleware), may this key
//! use this model, rate limits, PII policy, injection guard, the routing plan (constrained by
//! residency and force-local), redaction for off-premises tiers, and the budget reservation.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::Ticket;
use super::error::ApiError;
use super::routing::decide;
use crate::config::{GuardAction, PiiPolicy};
use crate::govern::cost::RequestCost;
use crate::govern::limits::{Refusal, Reservation};
use crate::govern::pii::Redactions;
use crate::govern::{cost, Principal};
use crate::observe::metrics::Ledger;
use crate::route::{Plan, RequestFacts};
use crate::state::AppState;
use crate::wire::openai::{ChatRequest, Usage};

/// The presented key: `Authorization: Bearer KEY` (OpenAI) or `x-api-key: KEY` (Anthropic).
fn presented_key(h: &HeaderMap) -> Option<&str> {
    if let Some(v) = h.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let k = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v);
        return Some(k.trim()).filter(|k| !k.is_empty());
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn unauthorized(code: &'static str, msg: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, code, msg).into_response()
}

/// `/v1/*`: resolves the caller; with auth on, no valid key means 401. A valid key is honoured
/// (limits, budget, residency) even with auth off.
pub async fn authenticate(
    State(st): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let g = &st.governance;
    let who = match presented_key(req.headers()) {
        Some(k) if g.is_admin(k) => Principal::Admin,
        Some(k) => match g.keys.lookup(k) {
            Some(rec) if rec.revoked.is_some() => {
                return unauthorized("revoked_api_key", "This API key has been revoked.")
            }
            Some(rec) => Principal::Key(rec),
            None if g.auth_enabled => {
                return unauthorized("invalid_api_key", "Incorrect API key provided.")
            }
            None => Principal::Anonymous,
        },
        None if g.auth_enabled => return unauthorized(
            "missing_api_key",
            "You didn't provide an API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`.",
        ),
        None => Principal::Anonymous,
    };
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// `/admin/*`: the admin key only.
pub async fn require_admin(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match presented_key(req.headers()) {
        Some(k) if st.governance.is_admin(k) => next.run(req).await,
        _ if st.config.auth.admin_key.is_none() => ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "The admin API is disabled: set [auth] admin_key (e.g. \"${SLMGATE_ADMIN_KEY}\").",
        )
        .into_response(),
        _ => unauthorized("invalid_admin_key", "This endpoint needs the admin key."),
    }
}

/// A request cleared to run.
pub struct Admission {
    /// What the models see: the client's request, or its redacted copy.
    pub req: ChatRequest,
    pub plan: Plan,
    /// Placeholders to restore in the answer, when the request was redacted.
    pub redactions: Option<Redactions>,
    pub reservation: Option<Reservation>,
    pub key_id: Option<String>,
    pub est_tokens: u32,
}

pub fn refused(r: Refusal) -> ApiError {
    let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, r.code, r.message);
    match r.retry_after_secs {
        Some(s) => e.with_retry_after(s),
        None => e,
    }
}

/// Records the guard's verdict; true when it is an attack.
fn record_guard(
    st: &AppState,
    ticket: &Ticket,
    v: &crate::govern::guard::GuardVerdict,
    threshold: f32,
    action: GuardAction,
) -> bool {
    let hit = v.score >= threshold;
    ticket.guard(v, if hit { action.as_str() } else { "pass" });
    if hit {
        st.metrics
            .guard_hits
            .with_label_values(&[action.as_str()])
            .inc();
    }
    hit
}

fn texts(req: &ChatRequest, roles: &[&str]) -> String {
    req.messages
        .iter()
        .filter(|m| roles.contains(&m.role.as_str()))
        .filter_map(|m| m.content.as_ref().and_then(|c| c.as_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn admit(
    st: &AppState,
    who: &Principal,
    ticket: &Ticket,
    mut req: ChatRequest,
    mut facts: RequestFacts,
) -> Result<Admission, ApiError> {
    let g = &st.governance;
    let key = who.key();
    if let Some(k) = key {
        if !k.may_use(&req.model) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "model_not_allowed",
                format!("This API key may not use model `{}`.", req.model),
            ));
        }
    }
    let est_tokens = facts.prompt_tokens + req.max_output_tokens().unwrap_or(0);
    if let Some(k) = key {
        g.limits.admit(k, est_tokens).map_err(refused)?;
        facts.key = Some(k.id.clone());
        facts.team = k.spec.team.clone();
        facts.residency = k.spec.residency.clone();
    }
    let route = st.config.routes.get(&req.model);

    // PII: types only ever leave this block.
    let policy = route.and_then(|r| r.pii).unwrap_or(st.config.pii.policy);
    let report = g.pii.scan(&req);
    ticket.pii(&report, (!report.is_empty()).then_some(policy.as_str()));
    if !report.is_empty() {
        for t in report.types.keys() {
            st.metrics
                .pii_findings
                .with_label_values(&[t, policy.as_str()])
                .inc();
        }
        facts.pii = report.names();
        match policy {
            PiiPolicy::Block => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "pii_blocked",
                    format!(
                    "The request contains personal data ({}) and this model's policy blocks it.",
                    report.names().join(", ")
                ),
                ))
            }
            PiiPolicy::ForceLocal => {
                facts.force_local = Some(format!("pii policy ({})", report.names().join(",")))
            }
            PiiPolicy::Redact | PiiPolicy::Allow => {}
        }
    }

    // Injection guard on what the user wrote. With `flag` only the rules run here; the
    // classifier runs beside the model call and its verdict lands in the audit entry.
    let action = route
        .and_then(|r| r.guard)
        .unwrap_or(st.config.guard.action);
    let threshold = st.config.guard.threshold;
    let guard = g.guard();
    let user_text = texts(&req, &["user"]);
    let emb = st.embedder().ok().flatten().map(|e| e.model.clone());
    match action {
        GuardAction::Off => {}
        GuardAction::Flag => {
            let rules = guard.score(&user_text, None);
            record_guard(st, ticket, &rules, threshold, action);
            if rules.score < threshold && guard.uses_embeddings() {
                let (t, m) = (ticket.clone(), st.metrics.clone());
                tokio::task::spawn_blocking(move || {
                    let v = guard.score(&user_text, emb.as_deref());
                    if v.score >= threshold {
                        m.guard_hits.with_label_values(&[action.as_str()]).inc();
                    }
                    t.guard(&v, if v.score >= threshold { "flag" } else { "pass" });
                });
            }
        }
        GuardAction::Block | GuardAction::ForceLocal => {
            let v = guard.score(&user_text, emb.as_deref());
            if record_guard(st, ticket, &v, threshold, action) {
                if action == GuardAction::Block {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "prompt_injection",
                        format!(
                            "The request looks like a prompt-injection attempt (score {:.2}).",
                            v.score
                        ),
                    ));
                }
                if facts.force_local.is_none() {
                    facts.force_local = Some(format!("guard (score {:.2})", v.score));
                }
            }
        }
    }

    let plan = decide(st, &req, facts).await?;
    ticket.plan(&plan);

    // Redact before any off-premises model can see the request.
    let mut redactions = None;
    let off_prem = plan
        .tiers
        .iter()
        .flat_map(|t| &t.models)
        .any(|m| st.config.models.get(m).is_some_and(|c| !c.on_prem()));
    if policy == PiiPolicy::Redact && !report.is_empty() && off_prem {
        let (redacted, r) = g.pii.redact(&req);
        req = redacted;
        redactions = Some(r);
    }

    let mut reservation = None;
    if let Some((k, budget)) = key.and_then(|k| k.spec.budget.map(|b| (k, b))) {
        if req.max_output_tokens().is_none() {
            // The reservation must bound what the call can cost.
            req.max_tokens = Some(crate::route::DEFAULT_MAX_TOKENS_FOR_COST);
        }
        let worst = cost::worst_case(
            &st.config,
            &plan,
            cost::prompt_token_bound(&req),
            req.max_output_tokens(),
        );
        let r = g
            .limits
            .reserve(k, budget, worst, est_tokens, |since| {
                g.keys.spend_since(&k.id, since).unwrap_or(0.0)
            })
            .map_err(refused)?;
        reservation = Some(r);
    }
    Ok(Admission {
        req,
        plan,
        redactions,
        reservation,
        key_id: key.map(|k| k.id.clone()),
        est_tokens,
    })
}

impl Admission {
    /// Models are about to be called: from now on a request the client abandons is charged
    /// its whole reservation (its real usage is unknown).
    pub fn answering(&mut self) {
        if let Some(r) = self.reservation.as_mut() {
            r.answering();
        }
    }

    /// No model answered (every deployment failed): nothing is charged.
    pub fn nothing_answered(&mut self) {
        if let Some(r) = self.reservation.take() {
            r.reconcile(0.0, 0);
        }
    }

    /// A plain answer: restores redacted PII, charges the key, completes the audit entry;
    /// returns what it cost.
    pub fn close_completion(
        &mut self,
        st: &AppState,
        ticket: &Ticket,
        served: &crate::route::Served,
        resp: &mut crate::wire::openai::ChatResponse,
    ) -> RequestCost {
        super::restore::restore_response(resp, self.redactions.as_ref(), ticket);
        ticket.served(served);
        let c = self.close_stream(st, ticket, served, resp.usage);
        ticket.finish(200, None);
        c
    }

    /// A finished (or failed) stream: charges its usage to the key, the ledger metrics and
    /// the audit entry.
    pub fn close_stream(
        &mut self,
        st: &AppState,
        ticket: &Ticket,
        served: &crate::route::Served,
        usage: Option<Usage>,
    ) -> RequestCost {
        let u = usage.unwrap_or_default();
        let c = self.settle(st, served, &u);
        ticket.usage(&u, c);
        st.metrics.ledger(
            &Ledger {
                route: &self.req.model,
                model: &served.deployment.name,
                tier: &served.tier,
                key: self.key_id.as_deref().unwrap_or("anonymous"),
            },
            &c,
            &u,
        );
        c
    }

    /// Charges the real cost to the key's budget and tokens to its tpm; returns the cost.
    pub fn settle(
        &mut self,
        st: &AppState,
        served: &crate::route::Served,
        u: &Usage,
    ) -> RequestCost {
        let c = cost::request_cost(&st.config, &served.deployment.name, &served.escalations, u);
        let tokens = u.prompt_tokens + u.completion_tokens;
        match self.reservation.take() {
            Some(r) => r.reconcile(c.actual, tokens),
            None => {
                if let Some(k) = &self.key_id {
                    st.governance
                        .limits
                        .settle_tokens(k, self.est_tokens, tokens);
                }
            }
        }
        c
    }
}
