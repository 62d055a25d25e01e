//! `slmgate plan`: which deployment pattern fits a workload, and what each costs a month.
//! Prices come from the config's catalog (`[cost]`) and its local model's hardware cost;
//! flags override every assumption, and every assumption is printed.

use std::path::PathBuf;

use clap::Args;
use slmgate_core::advisor::{self, Assumptions, Domain, Privacy, Workload};
use slmgate_core::config::{Config, ModelConfig};

#[derive(Args)]
pub struct PlanArgs {
    /// Config whose price catalog and local model are used (default: the embedded config).
    #[arg(long, short, env = "SLMGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Tokens per month, input and output: `100M`, `750k`, `2B`.
    #[arg(long, value_parser = advisor::parse_tokens)]
    monthly_tokens: f64,
    /// Input:output token ratio.
    #[arg(long, default_value = "3:1", value_parser = advisor::parse_ratio)]
    io_ratio: f64,
    /// Share of requests that are routine (0–1): classification, extraction, FAQ, routing.
    #[arg(long)]
    routine: f64,
    /// general, specialised or documents.
    #[arg(long, default_value = "general")]
    domain: Domain,
    /// p50 answer time the application needs, ms.
    #[arg(long)]
    latency_ms: Option<f64>,
    /// public, internal or restricted (the data must not leave your machines).
    #[arg(long, default_value = "internal")]
    privacy: Privacy,
    /// The LLM to compare with: a `[models.*]` or `[cost.prices.*]` name (default: `[cost] baseline`).
    #[arg(long)]
    llm: Option<String>,
    #[arg(long)]
    llm_latency_ms: Option<f64>,
    /// One SLM machine's cost (default: the config's local model `hardware_cost_per_hour`).
    #[arg(long)]
    hardware_cost_per_hour: Option<f64>,
    #[arg(long)]
    prompt_tokens_per_sec: Option<f64>,
    #[arg(long)]
    completion_tokens_per_sec: Option<f64>,
    /// Peak load over average load.
    #[arg(long)]
    peak_factor: Option<f64>,
    /// Share of routine requests the cascade still escalates.
    #[arg(long)]
    routine_escalation: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn assumptions_without_config(a: &PlanArgs) -> anyhow::Result<Assumptions> {
    anyhow::ensure!(
        a.llm.is_none(),
        "--llm needs a config whose price catalog names it (--config)"
    );
    overrides(Assumptions::default(), a)
}

/// The assumptions: defaults, then the config's catalog and local model, then the flags.
fn assumptions(cfg: &Config, a: &PlanArgs) -> anyhow::Result<Assumptions> {
    let mut s = Assumptions::default();
    let llm = a.llm.clone().or_else(|| cfg.cost.baseline.clone());
    if let Some(name) = llm {
        let p = cfg.price_of(&name).ok_or_else(|| {
            anyhow::anyhow!("--llm {name:?}: no price for it in [models.*] or [cost.prices.*]")
        })?;
        s.llm_name = name;
        s.llm_input_per_mtok = p.input;
        s.llm_output_per_mtok = p.output;
    }
    let local = cfg.models.values().find_map(|m| match m {
        ModelConfig::Local(l) if l.hardware_cost_per_hour.is_some() => Some(l),
        _ => None,
    });
    if let Some(l) = local {
        s.node_cost_per_hour = l.hardware_cost_per_hour.unwrap_or(s.node_cost_per_hour);
        s.node_prompt_tps = l.prompt_tokens_per_sec.unwrap_or(s.node_prompt_tps);
        s.node_completion_tps = l.completion_tokens_per_sec.unwrap_or(s.node_completion_tps);
    }
    overrides(s, a)
}

/// The flags over `s`, checked.
fn overrides(mut s: Assumptions, a: &PlanArgs) -> anyhow::Result<Assumptions> {
    let set = |v: Option<f64>, dst: &mut f64| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(a.llm_latency_ms, &mut s.llm_latency_ms);
    set(a.hardware_cost_per_hour, &mut s.node_cost_per_hour);
    set(a.prompt_tokens_per_sec, &mut s.node_prompt_tps);
    set(a.completion_tokens_per_sec, &mut s.node_completion_tps);
    set(a.peak_factor, &mut s.peak_factor);
    set(a.routine_escalation, &mut s.routine_escalation);
    anyhow::ensure!(
        s.node_prompt_tps > 0.0 && s.node_completion_tps > 0.0,
        "throughputs must be > 0 tokens/s"
    );
    anyhow::ensure!(s.peak_factor >= 1.0, "--peak-factor must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&s.routine_escalation),
        "--routine-escalation must be between 0 and 1"
    );
    Ok(s)
}

pub fn run(a: PlanArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.routine),
        "--routine must be a share between 0 and 1 (e.g. 0.85)"
    );
    // `plan` needs prices, not models: when the embedded config cannot load (its model files
    // are not fetched yet), the built-in assumptions are the same numbers.
    let s = match crate::load(a.config.as_ref()) {
        Ok(cfg) => assumptions(&cfg, &a)?,
        Err(e) if a.config.is_none() => {
            eprintln!("note: using built-in prices ({e:#})");
            assumptions_without_config(&a)?
        }
        Err(e) => return Err(e),
    };
    let w = Workload {
        monthly_tokens: a.monthly_tokens,
        input_share: a.io_ratio,
        routine_share: a.routine,
        domain: a.domain,
        latency_target_ms: a.latency_ms,
        privacy: a.privacy,
    };
    let r = advisor::recommend(&w, &s);
    print!("{}", advisor::render(&w, &s, &r, a.json));
    Ok(())
}
