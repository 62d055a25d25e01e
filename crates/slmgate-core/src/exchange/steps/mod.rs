//! The steps every exchange runs before a model is called, in order. A step may refuse the
//! request (an error ends the exchange), add what it learned to the request's facts for the
//! steps and the routing after it (the key, PII types, on-premises only), or change what the
//! models will see (redaction). Adding a step is a file here and a line in [`STEPS`].

mod budget;
mod cache;
mod guard;
mod key_models;
mod limits;
mod pii;
mod plan;
mod redact;
mod retrieve;

pub use key_models::check_model_allowed;
pub use limits::refused;

use super::{Exchange, GatewayError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// May this API key use the requested model?
    KeyModels,
    /// The key's requests and tokens per minute.
    Limits,
    /// PII: record the types; block, or keep the request on premises, per policy.
    Pii,
    /// Prompt-injection guard: flag, block, or keep on premises.
    Guard,
    /// The response cache: a hit ends admission (the exchange replays it).
    Cache,
    /// RAG: the route's collection searched, passages put before the question.
    Retrieve,
    /// The routing plan (rules, residency, domain, learned router, cascade).
    Plan,
    /// Placeholders for PII before any off-premises model sees the request.
    Redact,
    /// Reserve the plan's worst-case cost against the key's budget.
    Budget,
}

/// In order. Later steps rely on what earlier ones found: the cache answers only what
/// governance admitted; the plan needs the key's residency, the PII/guard verdicts and the
/// retrieved prompt; redaction needs the plan; the budget needs both. A cache hit skips
/// the steps after it.
pub(super) const STEPS: [Step; 9] = [
    Step::KeyModels,
    Step::Limits,
    Step::Pii,
    Step::Guard,
    Step::Cache,
    Step::Retrieve,
    Step::Plan,
    Step::Redact,
    Step::Budget,
];

impl Step {
    pub(super) async fn run(self, ex: &mut Exchange) -> Result<(), GatewayError> {
        match self {
            Step::KeyModels => key_models::run(ex),
            Step::Limits => limits::run(ex).await,
            Step::Pii => pii::run(ex),
            Step::Guard => guard::run(ex),
            Step::Cache => cache::run(ex).await,
            Step::Retrieve => retrieve::run(ex).await,
            Step::Plan => plan::run(ex).await,
            Step::Redact => redact::run(ex),
            Step::Budget => budget::run(ex).await,
        }
    }
}
