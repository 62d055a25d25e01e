//! Cost arithmetic from the configured per-model prices: a request's worst case before it
//! runs (what a budget reserves) and its real cost after (what a budget is charged).

use crate::config::Config;
use crate::route::{Plan, Served, DEFAULT_MAX_TOKENS_FOR_COST};
use crate::wire::openai::ChatRequest;

/// An upper bound on the prompt tokens any tokenizer reports for `req`: byte-level BPE
/// never makes more tokens than bytes; chat templates add a few per message.
pub fn prompt_token_bound(req: &ChatRequest) -> u64 {
    let bytes: usize = req
        .messages
        .iter()
        .map(|m| {
            serde_json::to_string(&m.content)
                .map(|s| s.len())
                .unwrap_or(0)
        })
        .sum();
    bytes as u64 + 8 * req.messages.len() as u64 + 32
}

pub fn call_cost(cfg: &Config, deployment: &str, prompt: u64, completion: u64) -> f64 {
    cfg.models
        .get(deployment)
        .map(|m| {
            let (pi, po) = m.prices();
            (prompt as f64 * pi + completion as f64 * po) / 1e6
        })
        .unwrap_or(0.0)
}

/// The most the plan can cost: every tier may be called (escalation), each at its dearest
/// model, with the full prompt bound and all of `max_tokens`.
pub fn worst_case(cfg: &Config, plan: &Plan, prompt_bound: u64, max_tokens: Option<u32>) -> f64 {
    let out = max_tokens.unwrap_or(DEFAULT_MAX_TOKENS_FOR_COST) as u64;
    plan.tiers
        .iter()
        .map(|t| {
            t.models
                .iter()
                .map(|m| call_cost(cfg, m, prompt_bound, out))
                .fold(0.0, f64::max)
        })
        .sum()
}

/// What the request cost: the answering call, plus the partial answers of tiers it escalated
/// from for low confidence (their prompt and the tokens judged).
pub fn actual(cfg: &Config, served: &Served, prompt: u32, completion: u32) -> f64 {
    let mut cost = call_cost(
        cfg,
        &served.deployment.name,
        prompt as u64,
        completion as u64,
    );
    for e in &served.escalations {
        if let Some(d) = &e.deployment {
            cost += call_cost(cfg, d, prompt as u64, e.judged_tokens as u64);
        }
    }
    cost
}
