//! What one audit entry holds: who asked, how it was routed, what was tried and what it
//! cost, what PII was found and done — never the PII values, never the key.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::route::Escalation;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Entry {
    /// `request`; `guard` (a flag-mode classifier verdict that came after its request's
    /// entry was written); `erasure` (a GDPR erasure of a subject's content).
    pub kind: &'static str,
    /// The request id (`x-request-id`).
    pub id: String,
    pub ts_ms: i64,
    pub endpoint: &'static str,
    pub key_id: Option<String>,
    pub team: Option<String>,
    /// The data subject: the request's `user` (or `metadata.user_id`).
    pub user: Option<String>,
    /// The requested model or route name.
    pub model: String,
    pub stream: bool,
    pub status: u16,
    pub error: Option<String>,
    pub plan: Option<PlanSummary>,
    pub served: Option<ServedSummary>,
    pub attempts: Vec<AttemptSummary>,
    pub escalations: Vec<Escalation>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens the provider served from its cache (priced apart).
    #[serde(skip_serializing_if = "is_zero")]
    pub cached_tokens: u32,
    /// What every call made cost (escalations included).
    pub cost_usd: f64,
    /// Had the `[cost] baseline` model answered alone (absent without a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_cost_usd: Option<f64>,
    pub latency_ms: u64,
    pub pii: PiiSummary,
    pub guard: Option<GuardSummary>,
    pub reviewed: bool,
    /// What retrieval (RAG) put into the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalSummary>,
    /// Answered from the response cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSummary>,
    /// The A/B rollout arm this request was on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSummary>,
    /// The request's routing tags (`metadata`, `x-slmgate-tags`): what `router retrain`
    /// learns from besides the text.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutSummary {
    pub candidate: String,
    /// `candidate` or `control`.
    pub arm: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct CacheSummary {
    /// `exact` or `semantic`.
    pub kind: &'static str,
    pub similarity: Option<f32>,
    /// The request whose answer was replayed.
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrievalSummary {
    /// The collection's id.
    pub collection: String,
    pub chunks: Vec<RetrievedChunk>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrievedChunk {
    pub id: String,
    pub file_id: String,
    /// Fused (RRF) score.
    pub score: f32,
    /// Cosine similarity to the question.
    pub similarity: f32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub tiers: Vec<String>,
    pub rule: Option<String>,
    pub router_score: Option<f32>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServedSummary {
    pub tier: String,
    pub deployment: String,
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptSummary {
    pub deployment: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PiiSummary {
    /// Type → count.
    pub types: BTreeMap<&'static str, usize>,
    /// The policy applied: allow, redact, force_local, block.
    pub action: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuardSummary {
    pub score: f32,
    pub matched: Option<String>,
    pub action: &'static str,
}

/// Stored apart from the entry (erasable): the messages and the answer.
#[derive(Debug, Clone, Serialize)]
pub struct StoredContent {
    pub messages: serde_json::Value,
    pub answer: String,
}

/// A sampled answer for human review.
#[derive(Debug, Clone)]
pub struct ReviewItem {
    pub id: String,
    pub route: String,
    pub tier: String,
    pub model: String,
    pub escalated_from: Option<String>,
    pub tags: String,
    pub prompt: String,
    pub answer: String,
    /// `ROUTE:candidate` or `ROUTE:control` when the request was in an A/B rollout.
    pub arm: Option<String>,
}

/// What the writer persists for one request.
#[derive(Debug)]
pub struct Record {
    pub entry: Entry,
    pub content: Option<StoredContent>,
    pub review: Option<ReviewItem>,
    /// Under `durability = "sync"`: told once the entry is committed.
    pub commit: Option<super::commit::CommitNotice>,
}

impl Record {
    /// An operational change (a rollout, a router swap) as an entry of its own: `kind`, who
    /// made it (`endpoint`: `cli` or `gateway`), the route it changed, and what it did.
    pub fn event(
        kind: &'static str,
        actor: &'static str,
        route: &str,
        ts_ms: i64,
        detail: String,
    ) -> Self {
        Self {
            entry: Entry {
                kind,
                id: uuid::Uuid::new_v4().to_string(),
                ts_ms,
                endpoint: actor,
                model: route.to_string(),
                status: 200,
                error: Some(detail),
                ..Default::default()
            },
            content: None,
            review: None,
            commit: None,
        }
    }
}
