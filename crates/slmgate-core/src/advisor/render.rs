//! `slmgate plan` output: the recommendation, the cost comparison and every assumption.

use std::fmt::Write;

use super::rules::Recommendation;
use super::{Assumptions, Workload};

fn usd(v: f64) -> String {
    format!("${v:.2}")
}

fn tokens(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}B", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else {
        format!("{:.0}k", v / 1e3)
    }
}

/// Text, or JSON when `json`.
pub fn render(w: &Workload, a: &Assumptions, r: &Recommendation, json: bool) -> String {
    if json {
        let v = serde_json::json!({ "workload": w, "assumptions": a, "recommendation": r });
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let c = &r.costs;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "workload: {} tokens/month, {:.0} % input, {:.0} % routine, domain {:?}, privacy {:?}, latency target {}",
        tokens(w.monthly_tokens),
        w.input_share * 100.0,
        w.routine_share * 100.0,
        w.domain,
        w.privacy,
        w.latency_target_ms
            .map_or("none".to_string(), |t| format!("{t:.0} ms"))
    );
    let _ = writeln!(o, "recommended: {}", r.pattern.title());
    let _ = writeln!(o, "rule: {}: {}", r.rule, r.why);
    let _ = writeln!(o, "monthly cost:");
    let saving = |v: f64| {
        if c.llm_only > 0.0 {
            format!(
                "{:+.1} % vs LLM-only",
                (v - c.llm_only) / c.llm_only * 100.0
            )
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        o,
        "  {:<34}{:>12}",
        format!("LLM-only ({})", a.llm_name),
        usd(c.llm_only)
    );
    let _ = writeln!(
        o,
        "  {:<34}{:>12}  {}",
        format!("hybrid ({} SLM machine(s))", c.hybrid_nodes),
        usd(c.hybrid),
        saving(c.hybrid)
    );
    let _ = writeln!(
        o,
        "  {:<34}{:>12}  {}",
        format!("on-prem SLM only ({} machine(s))", c.slm_nodes),
        usd(c.slm_only),
        saving(c.slm_only)
    );
    match c.break_even_tokens {
        Some(t) => {
            let _ = writeln!(
                o,
                "break-even: hybrid costs less than LLM-only above {} tokens/month",
                tokens(t)
            );
        }
        None => {
            let _ = writeln!(o, "break-even: none (the hybrid escalates everything)");
        }
    }
    let _ = writeln!(o, "assumptions:");
    let lines = [
        format!(
            "LLM {}: ${:.2} / ${:.2} per million input / output tokens → ${:.3} per million at this mix",
            a.llm_name, a.llm_input_per_mtok, a.llm_output_per_mtok, c.llm_blended_per_mtok
        ),
        format!(
            "SLM machine: ${:.2}/hour, {:.0} prompt tok/s and {:.0} completion tok/s measured → {:.1} tok/s at this mix",
            a.node_cost_per_hour, a.node_prompt_tps, a.node_completion_tps, c.node_tps
        ),
        format!(
            "{:.0} hours/month; machines sized for peak load = {:.1} × average",
            a.hours_per_month, a.peak_factor
        ),
        format!(
            "hybrid escalates every complex request ({:.0} %) and {:.0} % of routine ones (cascade false alarms) → {:.1} % of tokens go to the LLM",
            (1.0 - w.routine_share) * 100.0,
            a.routine_escalation * 100.0,
            c.escalated_share * 100.0
        ),
        "the SLM reads the prompt of every escalated request (the cascade judges its first tokens)".into(),
        "on-prem SLM only answers the complex requests too (quality on those is not priced)".into(),
        format!("LLM answers take {:.0} ms at p50", a.llm_latency_ms),
        "token counts are the same for every model (tokenizers differ by ±20 %)".into(),
    ];
    for l in lines {
        let _ = writeln!(o, "  - {l}");
    }
    o
}
