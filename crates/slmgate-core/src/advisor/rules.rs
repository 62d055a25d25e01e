//! The decision rules, in order; the first that matches fires.

use serde::Serialize;

use super::costs::{monthly_costs, Costs};
use super::{Assumptions, Domain, Privacy, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    SlmOnly,
    HybridEscalation,
    RagSlm,
    DomainStack,
    CloudLlmOnly,
}

impl Pattern {
    pub fn title(self) -> &'static str {
        match self {
            Pattern::SlmOnly => "SLM-only (on-prem)",
            Pattern::HybridEscalation => "hybrid escalation (SLM first, LLM for what it cannot do)",
            Pattern::RagSlm => "RAG + SLM (retrieval over your documents, answered on-prem)",
            Pattern::DomainStack => "domain stack (domain-tuned SLMs, LLM escalation)",
            Pattern::CloudLlmOnly => "cloud LLM only",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub pattern: Pattern,
    /// The rule that fired: its id and why.
    pub rule: &'static str,
    pub why: String,
    pub costs: Costs,
}

/// A pattern that keeps every request on-prem, by domain.
fn local_pattern(d: Domain) -> Pattern {
    match d {
        Domain::Documents => Pattern::RagSlm,
        Domain::Specialised => Pattern::DomainStack,
        Domain::General => Pattern::SlmOnly,
    }
}

pub fn recommend(w: &Workload, a: &Assumptions) -> Recommendation {
    let costs = monthly_costs(w, a);
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    let (pattern, rule, why) = if w.privacy == Privacy::Restricted {
        (
            local_pattern(w.domain),
            "R1 restricted-data",
            "the data must not leave your machines, so no request may go to a cloud LLM"
                .to_string(),
        )
    } else if let Some(t) = w.latency_target_ms.filter(|t| *t < a.llm_latency_ms) {
        (
            local_pattern(w.domain),
            "R2 latency",
            format!(
                "the {t:.0} ms target is below the LLM's {:.0} ms, so answers must come from the local model",
                a.llm_latency_ms
            ),
        )
    } else if w.domain == Domain::Documents {
        (
            Pattern::RagSlm,
            "R3 grounded-answers",
            "answers come from your documents: retrieval gives a small model the facts a large one would lack".to_string(),
        )
    } else if costs.hybrid >= costs.llm_only {
        (
            Pattern::CloudLlmOnly,
            "R4 hybrid-does-not-pay",
            format!(
                "hybrid ${:.2}/month ≥ LLM-only ${:.2}/month: with {} of requests escalated the SLM machines cost more than they save",
                costs.hybrid,
                costs.llm_only,
                pct(costs.escalated_share)
            ),
        )
    } else if w.domain == Domain::Specialised {
        (
            Pattern::DomainStack,
            "R5 specialised-domain",
            "a narrow domain: domain-tuned SLMs answer it better than a general one; the LLM takes the rest".to_string(),
        )
    } else {
        (
            Pattern::HybridEscalation,
            "R6 routine-majority",
            format!(
                "{} of requests are routine; hybrid ${:.2}/month < LLM-only ${:.2}/month",
                pct(w.routine_share),
                costs.hybrid,
                costs.llm_only
            ),
        )
    };
    Recommendation {
        pattern,
        rule,
        why,
        costs,
    }
}
