//! Monthly cost of each pattern for a workload.

use serde::Serialize;

use super::{Assumptions, Workload};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Costs {
    /// USD per million tokens at the workload's input/output mix.
    pub llm_blended_per_mtok: f64,
    /// Tokens per second one SLM machine sustains at this mix.
    pub node_tps: f64,
    pub llm_only: f64,
    /// Share of requests the hybrid sends to the LLM.
    pub escalated_share: f64,
    pub hybrid_nodes: u32,
    pub hybrid: f64,
    pub slm_nodes: u32,
    pub slm_only: f64,
    /// Monthly tokens above which the hybrid costs less than LLM-only (`None`: never).
    pub break_even_tokens: Option<f64>,
}

fn nodes(tokens: f64, tps: f64, a: &Assumptions) -> u32 {
    let avg = tokens / (a.hours_per_month * 3600.0);
    ((avg * a.peak_factor / tps).ceil() as u32).max(1)
}

pub fn monthly_costs(w: &Workload, a: &Assumptions) -> Costs {
    let blended =
        w.input_share * a.llm_input_per_mtok + (1.0 - w.input_share) * a.llm_output_per_mtok;
    // Seconds per token at this mix: prompt tokens at the prefill rate, completion at decode.
    let node_tps =
        1.0 / (w.input_share / a.node_prompt_tps + (1.0 - w.input_share) / a.node_completion_tps);
    let node_month = a.node_cost_per_hour * a.hours_per_month;
    let llm_only = w.monthly_tokens / 1e6 * blended;
    let escalated = (1.0 - w.routine_share) + w.routine_share * a.routine_escalation;
    // The SLM answers what stays local and reads the prompt of what it escalates.
    let slm_tokens = w.monthly_tokens * ((1.0 - escalated) + escalated * w.input_share);
    let hybrid_nodes = nodes(slm_tokens, node_tps, a);
    let hybrid = hybrid_nodes as f64 * node_month + escalated * llm_only;
    let slm_nodes = nodes(w.monthly_tokens, node_tps, a);
    let per_token_saving = blended / 1e6 * (1.0 - escalated);
    let break_even_tokens =
        (per_token_saving > 0.0).then(|| hybrid_nodes as f64 * node_month / per_token_saving);
    Costs {
        llm_blended_per_mtok: blended,
        node_tps,
        llm_only,
        escalated_share: escalated,
        hybrid_nodes,
        hybrid,
        slm_nodes,
        slm_only: slm_nodes as f64 * node_month,
        break_even_tokens,
    }
}
