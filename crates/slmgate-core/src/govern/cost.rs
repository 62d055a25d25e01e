//! Cost arithmetic from the price catalog: a request's worst case before it runs (what a
//! budget reserves), its real cost after (what a budget is charged), and the counterfactual
//! cost had the configured baseline model answered it alone (what savings are measured
//! against).

use crate::route::{DeploymentId, Escalation, Plan, RouteTable, DEFAULT_MAX_TOKENS_FOR_COST};
use crate::wire::openai::{ChatRequest, Content, Usage};

/// An upper bound on the prompt tokens any tokenizer reports for `req`: byte-level BPE
/// never makes more tokens than bytes; chat templates add a few per message. Content parts
/// count as their JSON (an image URL and all).
pub fn prompt_token_bound(req: &ChatRequest) -> u64 {
    let bytes: usize = req
        .messages
        .iter()
        .map(|m| match &m.content {
            None => 0,
            Some(Content::Text(t)) => t.len() + 2,
            Some(c) => serde_json::to_string(c).map(|s| s.len()).unwrap_or(0),
        })
        .sum();
    bytes as u64 + 8 * req.messages.len() as u64 + 32
}

/// The most the plan can cost: every tier may be called (escalation), each at its dearest
/// model, with the full prompt bound and all of `max_tokens`.
pub fn worst_case(
    table: &RouteTable,
    plan: &Plan,
    prompt_bound: u64,
    max_tokens: Option<u32>,
) -> f64 {
    let out = max_tokens.unwrap_or(DEFAULT_MAX_TOKENS_FOR_COST) as u64;
    plan.tiers
        .iter()
        .map(|t| {
            t.models
                .iter()
                .map(|m| table.deployment(*m).price.cost(prompt_bound, 0, out))
                .fold(0.0, f64::max)
        })
        .sum()
}

/// What one answered request cost, and what the baseline would have.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestCost {
    pub actual: f64,
    /// `None` without a configured `[cost] baseline`.
    pub baseline: Option<f64>,
}

impl RequestCost {
    /// Baseline minus actual (negative when escalation made the request dearer).
    pub fn savings(&self) -> Option<f64> {
        self.baseline.map(|b| b - self.actual)
    }
}

/// The request's cost: the answering call at its price (cached prompt tokens at the cached
/// price), plus every tier left for low confidence (its prompt and the tokens it was judged
/// on). Calls that failed are not charged (providers bill no usage for them).
pub fn request_cost(
    table: &RouteTable,
    deployment: DeploymentId,
    escalations: &[Escalation],
    usage: &Usage,
) -> RequestCost {
    let prompt = usage.prompt_tokens as u64;
    let mut actual = table.deployment(deployment).price.cost(
        prompt,
        usage.cached_tokens() as u64,
        usage.completion_tokens as u64,
    );
    for e in escalations {
        if let Some(id) = e.deployment.as_deref().and_then(|d| table.id(d)) {
            actual += table
                .deployment(id)
                .price
                .cost(prompt, 0, e.judged_tokens as u64);
        }
    }
    RequestCost {
        actual,
        baseline: baseline_cost(table, usage),
    }
}

/// Had the baseline model answered alone: the same prompt and completion token counts at its
/// prices (token counts of the serving model's tokenizer, see docs/config.md#cost).
pub fn baseline_cost(table: &RouteTable, usage: &Usage) -> Option<f64> {
    let p = table.baseline?;
    Some(p.cost(
        usage.prompt_tokens as u64,
        0,
        usage.completion_tokens as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn table(cfg: &Config) -> RouteTable {
        RouteTable::compile(cfg)
    }

    fn id(t: &RouteTable, name: &str) -> DeploymentId {
        t.id(name).unwrap()
    }

    fn cfg() -> Config {
        let toml = r#"
            [models.slm]
            type = "remote"
            wire = "openai"
            base_url = "http://127.0.0.1:9"
            model = "slm"
            input_cost_per_mtok = 0.1
            output_cost_per_mtok = 0.2
            residency = "on_prem"
            [models.mid]
            type = "remote"
            wire = "openai"
            base_url = "http://127.0.0.1:9"
            model = "mid"
            input_cost_per_mtok = 1.0
            output_cost_per_mtok = 4.0
            [models.big]
            type = "remote"
            wire = "openai"
            base_url = "http://127.0.0.1:9"
            model = "big"
            input_cost_per_mtok = 3.0
            output_cost_per_mtok = 15.0
            cached_input_cost_per_mtok = 0.3
            [cost]
            baseline = "frontier"
            [cost.prices.frontier]
            input_per_mtok = 2.5
            output_per_mtok = 10.0
        "#;
        Config::from_toml(toml, "test").unwrap()
    }

    fn usage(p: u32, c: u32) -> Usage {
        Usage::new(p, c)
    }

    fn esc(d: &str, judged: usize) -> Escalation {
        Escalation {
            from_tier: "a".into(),
            to_tier: "b".into(),
            cause: "low_confidence",
            deployment: Some(d.into()),
            confidence: Some(-1.0),
            judged_tokens: judged,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn answered_locally() {
        // 1000 × 0.1 + 500 × 0.2 = 200 µ$; baseline 1000 × 2.5 + 500 × 10 = 7500 µ$.
        let t = table(&cfg());
        let c = request_cost(&t, id(&t, "slm"), &[], &usage(1000, 500));
        assert!(close(c.actual, 0.0002), "{c:?}");
        assert!(close(c.baseline.unwrap(), 0.0075), "{c:?}");
        assert!(close(c.savings().unwrap(), 0.0073), "{c:?}");
    }

    #[test]
    fn escalated_twice_pays_every_judged_prefix() {
        // slm judged 16 tokens, mid judged 8, big answered 1000 + 300:
        // slm 1000×0.1 + 16×0.2 = 103.2 µ$; mid 1000×1 + 8×4 = 1032 µ$;
        // big 1000×3 + 300×15 = 7500 µ$; total 8635.2 µ$. Baseline 1000×2.5 + 300×10 = 5500 µ$.
        let t = table(&cfg());
        let c = request_cost(
            &t,
            id(&t, "big"),
            &[esc("slm", 16), esc("mid", 8)],
            &usage(1000, 300),
        );
        assert!(close(c.actual, 0.0086352), "{c:?}");
        assert!(close(c.savings().unwrap(), 0.0055 - 0.0086352), "{c:?}");
    }

    #[test]
    fn escalation_after_an_error_charges_nothing_for_the_failed_tier() {
        let e = Escalation {
            deployment: None,
            cause: "error",
            confidence: None,
            ..esc("slm", 0)
        };
        let t = table(&cfg());
        let c = request_cost(&t, id(&t, "mid"), &[e], &usage(100, 100));
        // 100 × 1 + 100 × 4 = 500 µ$.
        assert!(close(c.actual, 0.0005), "{c:?}");
    }

    #[test]
    fn cached_prompt_tokens_are_cheaper() {
        let mut u = usage(1000, 0);
        u.prompt_tokens_details =
            Some(crate::wire::openai::PromptTokensDetails { cached_tokens: 800 });
        // 200 × 3 + 800 × 0.3 = 840 µ$.
        let t = table(&cfg());
        let c = request_cost(&t, id(&t, "big"), &[], &u);
        assert!(close(c.actual, 0.00084), "{c:?}");
    }

    #[test]
    fn no_baseline_means_no_savings() {
        let mut cfg = cfg();
        cfg.cost.baseline = None;
        let t = table(&cfg);
        let c = request_cost(&t, id(&t, "slm"), &[], &usage(10, 10));
        assert_eq!(c.baseline, None);
        assert_eq!(c.savings(), None);
    }
}
