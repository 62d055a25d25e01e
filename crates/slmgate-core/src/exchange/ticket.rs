//! The audit ticket of one request: filled in as the exchange goes (plan, attempts, usage,
//! cost, PII, guard). The exchange closes it with the final status, which submits the entry;
//! under `durability = "sync"` the [`CommitWait`] handed out with the ticket resolves once
//! the entry is on disk. A ticket dropped unclosed is submitted as 499. A flag-mode guard
//! classifier still scoring when its request closed records a hit as an entry of its own.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::AuditContent;
use crate::govern::audit::{
    AttemptSummary, CommitNotice, CommitWait, Entry, GuardSummary, PlanSummary, Record, ReviewItem,
    ServedSummary, StoredContent,
};
use crate::govern::cost::RequestCost;
use crate::govern::guard::GuardVerdict;
use crate::govern::pii::PiiReport;
use crate::govern::{db, Principal};
use crate::route::{Attempt, Plan, Served};
use crate::state::AppState;
use crate::wire::openai::{ChatRequest, Usage};

#[derive(Clone)]
pub struct Ticket(Arc<Mutex<Draft>>);

struct Draft {
    st: Arc<AppState>,
    entry: Entry,
    start: Instant,
    status: Option<u16>,
    /// The messages as the client sent them (stored per `[audit] content`).
    messages: Option<serde_json::Value>,
    answer: String,
    /// Sampled for human review (kept only if the request succeeds).
    review: bool,
    prompt: String,
    tags: String,
    /// Told when the entry is committed (sync durability).
    commit: Option<CommitNotice>,
    /// The entry was submitted.
    closed: bool,
    /// Who the request was, kept at close while the guard classifier still holds the ticket.
    late: Option<Identity>,
}

/// Who a closed ticket's request was (for a verdict that comes after it closed).
struct Identity {
    id: String,
    endpoint: &'static str,
    key_id: Option<String>,
    team: Option<String>,
    user: Option<String>,
    model: String,
}

impl Ticket {
    pub fn new(
        st: &Arc<AppState>,
        request_id: &str,
        endpoint: &'static str,
        who: &Principal,
        req: &ChatRequest,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> (Self, CommitWait) {
        let keep = st.config.audit.content != AuditContent::None;
        let review =
            st.config.review.sample > 0.0 && rand::random::<f64>() < st.config.review.sample;
        let user = super::subject(req, tags);
        let mut d = Draft::open(st, request_id, endpoint, who, &req.model, user);
        d.entry.stream = req.is_stream();
        d.entry.tags = tags.clone();
        if keep || review {
            d.messages = serde_json::to_value(&req.messages).ok();
        }
        if review {
            d.review = true;
            d.prompt = req.last_user_text().unwrap_or_default();
            d.tags = serde_json::to_string(tags).unwrap_or_else(|_| "{}".into());
        }
        Self::issue(st, d)
    }

    /// A `/v1/embeddings` request (no messages, no routing; content is never stored).
    pub fn embeddings(
        st: &Arc<AppState>,
        request_id: &str,
        who: &Principal,
        model: &str,
        user: Option<&str>,
    ) -> (Self, CommitWait) {
        let d = Draft::open(st, request_id, "embeddings", who, model, user);
        Self::issue(st, d)
    }

    /// The ticket of `d`, and what its request awaits before its answer leaves.
    fn issue(st: &AppState, mut d: Draft) -> (Self, CommitWait) {
        let (notice, wait) = st.governance.audit.waiter();
        d.commit = notice;
        (Self(Arc::new(Mutex::new(d))), wait)
    }

    fn with(&self, f: impl FnOnce(&mut Draft)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The A/B rollout arm the request is on.
    pub fn rollout(&self, a: &crate::learn::rollout::Assignment) {
        self.with(|d| {
            d.entry.rollout = Some(crate::govern::audit::RolloutSummary {
                candidate: a.candidate.clone(),
                arm: a.arm.as_str(),
            })
        });
    }

    pub fn plan(&self, p: &Plan) {
        self.with(|d| {
            d.entry.plan = Some(PlanSummary {
                tiers: p.tiers.iter().map(|t| t.name.to_string()).collect(),
                rule: p.rule.clone(),
                router_score: p.router.map(|v| v.score),
                reasons: p.reasons.clone(),
            })
        });
    }

    /// Answered from the cache: served by tier `cache`.
    pub fn cached(&self, c: crate::govern::audit::CacheSummary) {
        self.with(|d| {
            d.entry.served = Some(ServedSummary {
                tier: "cache".into(),
                deployment: "cache".into(),
                confidence: None,
            });
            d.entry.cache = Some(c);
        });
    }

    pub fn retrieval(&self, r: crate::govern::audit::RetrievalSummary) {
        self.with(|d| d.entry.retrieval = Some(r));
    }

    pub fn pii(&self, report: &PiiReport, action: Option<&'static str>) {
        self.with(|d| {
            d.entry.pii.types = report.types.clone();
            d.entry.pii.action = action;
        });
    }

    /// The guard's verdict. One that comes after the entry was written (the flag-mode
    /// classifier) is recorded as an entry of its own when it is a hit, dropped when not.
    pub fn guard(&self, v: &GuardVerdict, action: &'static str) {
        let summary = GuardSummary {
            score: v.score,
            matched: v.matched.clone(),
            action,
        };
        self.with(|d| match &d.late {
            _ if !d.closed => d.entry.guard = Some(summary),
            Some(c) if action != "pass" => {
                let entry = Entry {
                    kind: "guard",
                    id: c.id.clone(),
                    ts_ms: db::now_ms(),
                    endpoint: c.endpoint,
                    key_id: c.key_id.clone(),
                    team: c.team.clone(),
                    user: c.user.clone(),
                    model: c.model.clone(),
                    status: d.entry.status,
                    guard: Some(summary),
                    ..Default::default()
                };
                d.st.governance.audit.submit(Record {
                    entry,
                    content: None,
                    review: None,
                    commit: None,
                });
            }
            _ => {}
        });
    }

    pub fn attempts(&self, attempts: &[Attempt]) {
        self.with(|d| {
            d.entry.attempts.extend(attempts.iter().map(|a| {
                AttemptSummary {
                    deployment: a.deployment.clone(),
                    outcome: a
                        .error
                        .as_ref()
                        .map(|e| e.kind.as_str().to_string())
                        .unwrap_or_else(|| "ok".into()),
                }
            }))
        });
    }

    pub fn served(&self, s: &Served) {
        self.attempts(&s.attempts);
        self.with(|d| {
            d.entry.attempts.push(AttemptSummary {
                deployment: s.deployment.name.clone(),
                outcome: "ok".into(),
            });
            d.entry.served = Some(ServedSummary {
                tier: s.tier.to_string(),
                deployment: s.deployment.name.clone(),
                confidence: s.confidence,
            });
            d.entry.escalations = s.escalations.clone();
        });
    }

    pub fn usage(&self, u: &Usage, cost: RequestCost) {
        self.with(|d| {
            d.entry.prompt_tokens = u.prompt_tokens;
            d.entry.completion_tokens = u.completion_tokens;
            d.entry.cached_tokens = u.cached_tokens();
            d.entry.cost_usd = cost.actual;
            d.entry.baseline_cost_usd = cost.baseline;
        });
    }

    pub fn answer(&self, text: &str) {
        self.with(|d| {
            if d.messages.is_some() {
                d.answer.push_str(text)
            }
        });
    }

    /// Closes the ticket with the final status (and error code) and submits its entry:
    /// once, by the exchange.
    pub fn close(&self, status: u16, error: Option<&str>) {
        // Someone else holds the ticket (the guard classifier): keep who the request was.
        let shared = Arc::strong_count(&self.0) > 1;
        self.with(|d| {
            if d.closed {
                return;
            }
            d.status = Some(status);
            d.entry.error = error.map(String::from);
            d.submit(shared);
        });
    }
}

impl Draft {
    fn open(
        st: &Arc<AppState>,
        request_id: &str,
        endpoint: &'static str,
        who: &Principal,
        model: &str,
        user: Option<&str>,
    ) -> Self {
        let key = who.key();
        Draft {
            st: st.clone(),
            entry: Entry {
                kind: "request",
                id: request_id.to_string(),
                ts_ms: db::now_ms(),
                endpoint,
                key_id: key.map(|k| k.id.clone()),
                team: key.and_then(|k| k.spec.team.clone()),
                user: user.map(String::from),
                model: model.to_string(),
                ..Default::default()
            },
            start: Instant::now(),
            status: None,
            messages: None,
            answer: String::new(),
            review: false,
            prompt: String::new(),
            tags: "{}".into(),
            commit: None,
            closed: false,
            late: None,
        }
    }

    /// Builds the record and hands it to the audit writer; `keep_identity` keeps who the
    /// request was, for a verdict still to come.
    fn submit(&mut self, keep_identity: bool) {
        let e = &self.entry;
        self.closed = true;
        self.late = keep_identity.then(|| Identity {
            id: e.id.clone(),
            endpoint: e.endpoint,
            key_id: e.key_id.clone(),
            team: e.team.clone(),
            user: e.user.clone(),
            model: e.model.clone(),
        });
        let rec = self.record();
        self.st.governance.audit.submit(rec);
    }

    fn record(&mut self) -> Record {
        let mut entry = std::mem::take(&mut self.entry);
        entry.status = self.status.unwrap_or(499);
        if self.status.is_none() {
            entry.error = Some("client_closed_request".into());
        }
        entry.latency_ms = self.start.elapsed().as_millis() as u64;
        let g = &self.st.governance;
        let mode = self.st.config.audit.content;
        let mask = |t: &str| match mode {
            AuditContent::Full => t.to_string(),
            _ => g.pii.mask(t),
        };
        let review = (self.review && entry.status == 200).then(|| {
            let served = entry.served.clone();
            ReviewItem {
                id: format!("rev_{}", uuid::Uuid::new_v4().simple()),
                route: entry.model.clone(),
                tier: served.as_ref().map(|s| s.tier.clone()).unwrap_or_default(),
                model: served.map(|s| s.deployment).unwrap_or_default(),
                escalated_from: entry.escalations.first().map(|e| e.from_tier.clone()),
                tags: self.tags.clone(),
                prompt: mask(&self.prompt),
                answer: mask(&self.answer),
                arm: entry
                    .rollout
                    .as_ref()
                    .map(|r| format!("{}:{}", entry.model, r.arm)),
            }
        });
        entry.reviewed = review.is_some();
        let content = match (mode, self.messages.take()) {
            (AuditContent::None, _) | (_, None) => None,
            (AuditContent::Full, Some(m)) => Some(StoredContent {
                messages: m,
                answer: std::mem::take(&mut self.answer),
            }),
            (AuditContent::Redacted, Some(m)) => Some(StoredContent {
                messages: mask_json(m, &|t| g.pii.mask(t)),
                answer: g.pii.mask(&self.answer),
            }),
        };
        self.entry.status = entry.status;
        Record {
            entry,
            content,
            review,
            commit: self.commit.take(),
        }
    }
}

impl Drop for Draft {
    /// A ticket nobody closed (a handler that went away): its entry says 499.
    fn drop(&mut self) {
        if !self.closed {
            self.submit(false);
        }
    }
}

fn mask_json(v: serde_json::Value, mask: &dyn Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(mask(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| mask_json(x, mask)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, mask_json(x, mask)))
                .collect(),
        ),
        other => other,
    }
}
