//! One request's exchange with the gateway, the same for every API. A wire adapter in `api/`
//! turns its request into the canonical [`ChatRequest`] and an [`Inbound`], calls
//! [`Exchange::run`], and renders the [`Outcome`] — or the [`GatewayError`] — on its wire.
//!
//! A request's path, top to bottom (this file):
//!
//! ```text
//! Exchange::open     the audit ticket opens: every accepted request gets exactly one entry;
//!                    an A/B rollout picks the arm (a candidate arm is served as the
//!                    candidate route from here on)
//! Exchange::run
//!   admit            validate (what every deployment would reject), then steps::STEPS:
//!                    key's models → rate limits → PII → guard → cache (a hit is
//!                    replayed, cached.rs) → retrieval (RAG) → plan → redaction → budget
//!   execute          shadow mode samples the request (shadowing.rs); the plan, tier by
//!                    tier (route::Gateway): fallback chains, cascade; a `rag` route's
//!                    ungrounded answer escalates (grounding.rs)
//!   complete|stream  restore redacted PII in the answer (chunk by chunk for a stream)
//! Exchange::finish   charge the budget, the cost ledger, the metrics, the audit entry: once;
//!   (sync)           the rollout's health counts the outcome; a shadowed answer goes to the
//!                    shadow queue (shadow_worker.rs, off the path); the answer (a stream's
//!                    end) waits for the entry's group commit
//! Drop               a client that leaves mid-answer is finished as 499 (the drop guard)
//! ```

mod cached;
mod error;
mod grounding;
mod outcome;
mod restore;
pub mod shadow_worker;
mod shadowing;
mod steps;
mod ticket;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};

pub use error::{ErrorReply, GatewayError, Refused};
pub use outcome::{Answer, AnswerStream, Outcome, ServedMeta};
pub use steps::{check_model_allowed, refused};
pub use ticket::Ticket;

use crate::govern::audit::CommitWait;

use crate::config::{GuardAction, PiiPolicy};
use crate::govern::cost::{self, RequestCost};
use crate::govern::limits::Reservation;
use crate::govern::pii::{PiiReport, Redactions};
use crate::govern::Principal;
use crate::observe::metrics::Ledger;
use crate::providers::ChatStream;
use crate::route::{Failure, Gateway, Plan, RequestFacts, Served};
use crate::state::AppState;
use crate::wire::openai::{ChatChunk, ChatRequest, Usage};
use cached::{CacheState, StreamCapture};
use restore::{restore_response, StreamRestore};

/// Which API a request came in on (the audit entry's `endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/completions`.
    Completions,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Messages => "messages",
            Endpoint::Responses => "responses",
            Endpoint::Completions => "completions",
        }
    }
}

/// What the wire adapter knows of a request besides its body.
pub struct Inbound {
    /// `x-request-id` (the client's, or a new one).
    pub request_id: String,
    pub endpoint: Endpoint,
    pub who: Principal,
    /// Raw `x-slmgate-tags` header values (`k=v, k=v`).
    pub header_tags: Vec<String>,
    /// `x-slmgate-cache: off`: neither look up nor store this request.
    pub cache_off: bool,
}

/// One request in flight: what governance decided and reserved, the plan, and the audit
/// ticket, closed exactly once by [`Exchange::finish`] or, if the client leaves, by `Drop`.
pub struct Exchange {
    st: Arc<AppState>,
    request_id: String,
    who: Principal,
    start: Instant,
    /// What the models see: the client's request, or its redacted copy.
    req: ChatRequest,
    facts: RequestFacts,
    /// The requested route's PII policy and guard action (defaults filled in).
    pii_policy: PiiPolicy,
    guard_action: GuardAction,
    pii: PiiReport,
    plan: Option<Plan>,
    /// Placeholders to restore in the answer, when the request was redacted.
    redactions: Option<Redactions>,
    reservation: Option<Reservation>,
    /// Estimated prompt + completion tokens (rate limits; corrected after the answer).
    est_tokens: u32,
    ticket: Ticket,
    /// Resolves once the audit entry is on disk (sync durability).
    commit: CommitWait,
    /// Models were called.
    executed: bool,
    /// The deployment committed to answer (the metrics' label once set).
    deployment: Option<String>,
    first_token: Option<Instant>,
    usage: Option<Usage>,
    /// Passages retrieval put into the prompt (the answer's citations), their text, and the
    /// question they were retrieved for (the groundedness check).
    citations: Vec<crate::know::Citation>,
    passages: String,
    question: String,
    /// What the response cache found.
    cache: CacheState,
    /// Shadow mode sampled this request: its shadow models get it once it is answered.
    shadow: Option<crate::learn::shadow::Pick>,
    /// The A/B rollout arm (a candidate-arm request's `req.model` is the candidate).
    rollout: Option<crate::learn::rollout::Assignment>,
    finished: bool,
}

impl Exchange {
    /// Opens the exchange (and its audit ticket) for an accepted request.
    pub fn open(st: &Arc<AppState>, inbound: Inbound, mut req: ChatRequest) -> Self {
        let facts = RequestFacts::of(&req, &inbound.header_tags);
        let (ticket, commit) = Ticket::new(
            st,
            &inbound.request_id,
            inbound.endpoint.as_str(),
            &inbound.who,
            &req,
            &facts.tags,
        );
        // An A/B rollout's candidate arm is served as the candidate route from here on.
        let rollout = st.rollouts.assign(
            &req.model,
            inbound.who.key().map(|k| k.id.as_str()),
            subject(&req, &facts.tags),
        );
        if let Some(a) = &rollout {
            ticket.rollout(a);
            if a.arm == crate::learn::rollout::Arm::Candidate {
                req.model = a.candidate.clone();
            }
        }
        let (pii_policy, guard_action) = st.table.policy(&req.model);
        Self {
            st: st.clone(),
            request_id: inbound.request_id.clone(),
            cache: if inbound.cache_off {
                CacheState::Bypass
            } else {
                CacheState::Off
            },
            who: inbound.who,
            start: Instant::now(),
            req,
            facts,
            pii_policy,
            guard_action,
            pii: PiiReport::default(),
            plan: None,
            redactions: None,
            reservation: None,
            est_tokens: 0,
            ticket,
            commit,
            executed: false,
            deployment: None,
            first_token: None,
            usage: None,
            citations: Vec::new(),
            passages: String::new(),
            question: String::new(),
            shadow: None,
            rollout,
            finished: false,
        }
    }

    /// Admits the request, runs its plan, and returns the answer: whole, or as a stream that
    /// finishes the exchange when it ends. An error has finished the exchange already.
    /// Under sync durability nothing is returned (and a stream does not end) before the
    /// audit entry is committed; an answer whose entry cannot be written is withheld (503).
    pub async fn run(mut self) -> Result<Outcome, GatewayError> {
        let commit = std::mem::take(&mut self.commit);
        let out = match self.admit().await {
            Err(e) => Err(self.refuse(e)),
            Ok(()) => self.execute().await,
        };
        match out {
            Ok(Outcome::Stream(s)) => Ok(Outcome::Stream(s.then_commit(commit))),
            Ok(answer) => match commit.committed().await {
                true => Ok(answer),
                false => Err(GatewayError::AuditUnavailable),
            },
            Err(e) => {
                // A refusal is told once its entry is written, or could not be.
                commit.committed().await;
                Err(e)
            }
        }
    }

    /// The name the client asked for (a rollout's candidate arm is served as another route).
    pub(super) fn requested(&self) -> &str {
        self.rollout
            .as_ref()
            .map(|a| a.route.as_str())
            .unwrap_or(&self.req.model)
    }

    /// Refuses the request before it runs (a check of its own wire failed); audited like
    /// any other refusal.
    pub async fn reject(mut self, e: GatewayError) -> GatewayError {
        let commit = std::mem::take(&mut self.commit);
        let e = self.refuse(e);
        commit.committed().await;
        e
    }

    /// Validation, then every governance and routing step in order.
    async fn admit(&mut self) -> Result<(), GatewayError> {
        self.req.validate()?;
        if !self.st.is_ready() {
            return Err(GatewayError::NotReady);
        }
        if self.st.governance.audit.is_failing() {
            return Err(GatewayError::AuditUnavailable);
        }
        for step in steps::STEPS {
            step.run(self).await?;
            if matches!(self.cache, CacheState::Hit(_)) {
                break;
            }
        }
        Ok(())
    }

    async fn execute(mut self) -> Result<Outcome, GatewayError> {
        match std::mem::take(&mut self.cache) {
            CacheState::Hit(found) => return self.replay(found),
            other => self.cache = other,
        }
        let st = self.st.clone();
        let (Some(loaded), Some(plan)) = (st.loaded(), self.plan.take()) else {
            return Err(self.refuse(GatewayError::NotReady));
        };
        // From now on a request the client abandons is charged its whole reservation (its
        // real usage is unknown).
        if let Some(r) = self.reservation.as_mut() {
            r.answering();
        }
        self.executed = true;
        self.shadow = self.pick_shadow();
        if self.req.is_stream() {
            self.stream(&loaded.gateway, plan).await
        } else {
            self.complete(&loaded.gateway, plan).await
        }
    }

    async fn complete(mut self, gw: &Gateway, plan: Plan) -> Result<Outcome, GatewayError> {
        let (mut response, mut served) = match gw.complete(&plan, &self.req).await {
            Ok(x) => x,
            Err(f) => return Err(self.failed(f)),
        };
        if let Some((r, s)) = self.ground(gw, &plan, &response, &served).await {
            (response, served) = (r, s);
        }
        // The shadow compares what the models saw, before placeholders are restored.
        let shadowed = self
            .shadow
            .is_some()
            .then(|| crate::learn::shadow::answer_text(&response));
        restore_response(&mut response, self.redactions.as_ref(), &self.ticket);
        if !self.citations.is_empty() {
            if let Ok(v) = serde_json::to_value(&self.citations) {
                response.extra.insert("citations".into(), v);
            }
        }
        self.usage = response.usage;
        self.remember(&response);
        let meta = self.served(&plan, &served);
        let cost = self.settle(&served);
        self.finish(200, None);
        if let Some(text) = shadowed {
            self.offer_shadow(&served, cost.actual, text);
        }
        self.record_overhead(&plan, &served);
        Ok(Outcome::Answer(Answer {
            response,
            meta,
            cost,
        }))
    }

    async fn stream(mut self, gw: &Gateway, plan: Plan) -> Result<Outcome, GatewayError> {
        let (chunks, served) = match gw.stream(&plan, &self.req).await {
            Ok(x) => x,
            Err(f) => return Err(self.failed(f)),
        };
        let meta = self.served(&plan, &served);
        self.record_overhead(&plan, &served);
        let restore = StreamRestore::new(self.redactions.take());
        let chunks = self.relay(chunks, served, restore);
        Ok(Outcome::Stream(AnswerStream::new(meta, Box::pin(chunks))))
    }

    /// The committed stream as the client gets it: placeholders restored, usage and time to
    /// first token noted, and the exchange finished at its end (or at a mid-stream failure,
    /// reported as one last error item).
    fn relay(
        self,
        mut chunks: ChatStream,
        served: Served,
        mut restore: StreamRestore,
    ) -> impl Stream<Item = Result<ChatChunk, GatewayError>> + Send {
        let mut ex = self;
        let mut capture = matches!(ex.cache, CacheState::Miss(..)).then(StreamCapture::default);
        // The answer as the models gave it, for a shadowed request.
        let mut shadowed = ex.shadow.is_some().then(String::new);
        async_stream::stream! {
            while let Some(item) = chunks.next().await {
                match item {
                    Ok(mut chunk) => {
                        if let Some(t) = shadowed.as_mut() {
                            t.extend(chunk.choices.iter().filter_map(|c| c.delta.content.as_deref()));
                        }
                        restore.chunk(&mut chunk, &ex.ticket);
                        if let Some(c) = capture.as_mut() {
                            c.chunk(&chunk);
                        }
                        if let Some(u) = chunk.usage {
                            ex.usage = Some(u);
                        }
                        if chunk.is_substantive() {
                            ex.first_token();
                        }
                        yield Ok(chunk);
                    }
                    Err(error) => {
                        // Committed already: the client gets one error event, no clean end.
                        tracing::warn!(deployment = %served.deployment.name, error = %error, "stream failed after it started");
                        ex.settle(&served);
                        let e = GatewayError::Provider { deployment: served.deployment.name.clone(), error };
                        yield Err(ex.refuse(e));
                        return;
                    }
                }
            }
            if let Some(tail) = restore.tail(&ex.ticket) {
                if let Some(c) = capture.as_mut() {
                    c.chunk(&tail);
                }
                yield Ok(tail);
            }
            if let Some(r) = capture.and_then(StreamCapture::response) {
                ex.remember(&r);
            }
            let cost = ex.settle(&served);
            ex.finish(200, None);
            if let Some(text) = shadowed {
                ex.offer_shadow(&served, cost.actual, text);
            }
        }
    }

    /// No deployment answered: the attempts go to the audit entry, nothing is charged.
    fn failed(&mut self, f: Failure) -> GatewayError {
        self.ticket.attempts(&f.attempts);
        self.deployment = Some(
            f.attempts
                .last()
                .map(|a| a.deployment.clone())
                .unwrap_or_else(|| "none".into()),
        );
        if let Some(r) = self.reservation.take() {
            r.reconcile(0.0, 0);
        }
        self.refuse(GatewayError::from(f.error))
    }

    /// Finishes the exchange with an error's status and code; returns the error.
    fn refuse(&mut self, e: GatewayError) -> GatewayError {
        let r = e.reply();
        self.finish(r.status, Some(r.code));
        e
    }

    /// A deployment committed to answer: the audit entry, the served-tier count, the log
    /// line, and what the response headers say.
    fn served(&mut self, plan: &Plan, served: &Served) -> ServedMeta {
        self.ticket.served(served);
        self.deployment = Some(served.deployment.name.clone());
        self.st
            .metrics
            .served_tier
            .with_label_values(&[plan.route.as_str(), &served.tier])
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
        let mut meta = ServedMeta::new(served, reason);
        meta.rollout = self.rollout.as_ref().map(|a| a.arm.as_str());
        meta.citations = self.citations.iter().map(|c| c.chunk_id.clone()).collect();
        meta.cache = self.cache.header();
        meta
    }

    /// Charges the real cost to the key's budget and the tokens to its tpm, and adds the
    /// request to the cost ledger (metrics and audit entry); returns what it cost.
    fn settle(&mut self, served: &Served) -> RequestCost {
        let u = self.usage.unwrap_or_default();
        let c = cost::request_cost(
            &self.st.table,
            served.deployment.id,
            &served.escalations,
            &u,
        );
        let tokens = u.prompt_tokens + u.completion_tokens;
        match self.reservation.take() {
            Some(r) if !r.is_shared() => r.reconcile(c.actual, tokens),
            held => {
                if let Some(r) = held {
                    r.reconcile(c.actual, tokens);
                }
                if let Some(k) = self.who.key() {
                    self.st.governance.settle_tokens(k, self.est_tokens, tokens);
                }
            }
        }
        self.ticket.usage(&u, c);
        let key = self.who.key().map(|k| k.id.as_str()).unwrap_or("anonymous");
        self.st.metrics.ledger(
            &Ledger {
                route: &self.req.model,
                model: &served.deployment.name,
                tier: &served.tier,
                key,
            },
            c.actual,
            c.baseline,
            &u,
        );
        c
    }

    fn first_token(&mut self) {
        if self.first_token.is_none() {
            let now = Instant::now();
            self.first_token = Some(now);
            if let Some(d) = &self.deployment {
                self.st
                    .metrics
                    .ttft
                    .with_label_values(&[d])
                    .observe((now - self.start).as_secs_f64());
            }
        }
    }

    /// The gateway's own time on a request: until its answer (or its stream's first chunk)
    /// was ready, minus the time spent waiting on models.
    fn record_overhead(&self, plan: &Plan, served: &Served) {
        let own = self.start.elapsed().saturating_sub(served.upstream);
        self.st
            .metrics
            .overhead
            .with_label_values(&[&plan.route])
            .observe(own.as_secs_f64());
    }

    /// Closes the exchange once: the audit entry's status, and the request's metrics when a
    /// model was called.
    fn finish(&mut self, status: u16, code: Option<&str>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.ticket.close(status, code);
        if let Some(a) = &self.rollout {
            if let Some(s) = self.st.rollouts.record(a, status >= 500) {
                rollout_changed(&self.st, s);
            }
        }
        let Some(deployment) = self.deployment.as_deref() else {
            return;
        };
        let m = &self.st.metrics;
        let route = self.req.model.as_str();
        m.requests
            .with_label_values(&[route, deployment, status_label(status)])
            .inc();
        m.latency
            .with_label_values(&[route, deployment])
            .observe(self.start.elapsed().as_secs_f64());
        if let Some(u) = self.usage {
            m.tokens
                .with_label_values(&[deployment, "prompt"])
                .inc_by(u.prompt_tokens as u64);
            m.tokens
                .with_label_values(&[deployment, "completion"])
                .inc_by(u.completion_tokens as u64);
        }
    }
}

impl Drop for Exchange {
    /// The client left before the exchange finished (a dropped handler or stream): the
    /// reservation is charged in full if a model had started answering (the real usage is
    /// unknown), nothing if not; the audit entry says 499.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(d) = &self.deployment {
            self.st.metrics.cancelled.with_label_values(&[d]).inc();
        }
        if let Some(r) = self.reservation.take() {
            r.abandon();
        }
        self.finish(499, Some("client_closed_request"));
    }
}

/// The request's data subject: its `user`, or the `user_id` tag (the audit entry's `user`,
/// a rollout's sticky identity, a shadow row's `user_id`).
fn subject<'a>(
    req: &'a ChatRequest,
    tags: &'a std::collections::BTreeMap<String, String>,
) -> Option<&'a str> {
    req.extra
        .get("user")
        .and_then(|v| v.as_str())
        .or_else(|| tags.get("user_id").map(String::as_str))
}

/// The gateway rolled a candidate back: stored and audited off the request's thread.
fn rollout_changed(st: &Arc<AppState>, s: crate::learn::rollout::RolloutState) {
    let st = st.clone();
    let store = move || st.with_rollout_store(|db| st.rolled_back(db, &s));
    match tokio::runtime::Handle::try_current() {
        Ok(h) => drop(h.spawn_blocking(store)),
        Err(_) => store(),
    }
}

fn status_label(s: u16) -> &'static str {
    match s {
        200 => "200",
        400 => "400",
        404 => "404",
        413 => "413",
        429 => "429",
        499 => "499",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ if s < 500 => "4xx",
        _ => "5xx",
    }
}
