//! `report --what-if cascade.threshold=T`: replays the logged first-tier confidences under
//! another threshold and re-prices the requests whose escalation decision would change.

use std::collections::HashMap;

use serde::Serialize;

use super::load::Row;
use crate::config::Config;

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Side {
    pub escalated: u64,
    pub escalation_rate: f64,
    pub cost_usd: f64,
    pub savings_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WhatIf {
    pub threshold: f32,
    pub answered: u64,
    /// Answers whose first tier's confidence was logged (a cascade judged them).
    pub judged: u64,
    /// Of those, the ones the new threshold decides the other way.
    pub now_escalated: u64,
    pub now_kept: u64,
    /// Changed decisions that could not be re-priced (the next tier is unknown).
    pub unpriced: u64,
    pub before: Side,
    pub after: Side,
    pub assumptions: Vec<&'static str>,
}

const ASSUMPTIONS: &[&str] = &[
    "only the first tier's decision is replayed (a request escalates to the next tier of its route)",
    "an answer's length does not depend on the tier that gives it (completion tokens as logged)",
    "a newly escalated request pays the first tier for the route's cascade first_tokens (16 without a config) and the next tier's first model for the whole answer",
    "a confidence logged after an early stop is the value over the tokens judged, not over all first_tokens",
    "quality is not replayed: review verdicts say how good the answers were, not how good others would be",
];

pub fn what_if(rows: &[Row], threshold: f32, cfg: &Config) -> WhatIf {
    // Which deployment answered escalated requests of each route, as logged (used when the
    // config does not say what the next tier is).
    let mut seen_next: HashMap<&str, &str> = HashMap::new();
    for r in rows.iter().filter(|r| r.answered() && r.escalated()) {
        seen_next.entry(r.model.as_str()).or_insert(r.deployment());
    }
    let next_model = |r: &Row| -> Option<String> {
        let route = cfg.routes.get(&r.model);
        let from_cfg = route.and_then(|rc| {
            let i = rc.tiers.iter().position(|t| t.name == r.tier())?;
            rc.tiers.get(i + 1)?.models.first().cloned()
        });
        from_cfg.or_else(|| seen_next.get(r.model.as_str()).map(|s| s.to_string()))
    };
    let first_tokens = |r: &Row| -> u64 {
        cfg.routes
            .get(&r.model)
            .and_then(|rc| rc.cascade.as_ref())
            .map_or(16, |c| c.first_tokens as u64)
    };
    let price = |d: &str, p: u64, c: u64| cfg.price_of(d).map(|x| x.cost(p, 0, c));

    let mut w = WhatIf {
        threshold,
        answered: 0,
        judged: 0,
        now_escalated: 0,
        now_kept: 0,
        unpriced: 0,
        before: Side::default(),
        after: Side::default(),
        assumptions: ASSUMPTIONS.to_vec(),
    };
    let mut baseline = None::<f64>;
    for r in rows {
        w.before.cost_usd += r.cost_usd;
        if let Some(b) = r.baseline_cost_usd {
            *baseline.get_or_insert(0.0) += b;
        }
        if !r.answered() {
            w.after.cost_usd += r.cost_usd;
            continue;
        }
        w.answered += 1;
        let was = r.escalated();
        w.before.escalated += was as u64;
        let (p, c) = (r.prompt_tokens as u64, r.completion_tokens as u64);
        let mut cost = r.cost_usd;
        let mut now = was;
        if let Some((conf, escalated, first)) = r.first_decision() {
            w.judged += 1;
            let escalate = conf < threshold;
            if escalate && !escalated {
                let judged = first_tokens(r).min(c);
                match next_model(r).and_then(|n| price(&n, p, c)) {
                    Some(next) => {
                        w.now_escalated += 1;
                        now = true;
                        cost = price(&first, p, judged).unwrap_or(0.0) + next;
                    }
                    None => w.unpriced += 1,
                }
            } else if !escalate && escalated {
                match price(&first, p, c) {
                    Some(local) => {
                        w.now_kept += 1;
                        now = r.escalations.len() > 1;
                        cost = local;
                    }
                    None => w.unpriced += 1,
                }
            }
        }
        w.after.escalated += now as u64;
        w.after.cost_usd += cost;
    }
    for s in [&mut w.before, &mut w.after] {
        if w.answered > 0 {
            s.escalation_rate = s.escalated as f64 / w.answered as f64;
        }
        s.savings_usd = baseline.map(|b| b - s.cost_usd);
    }
    w
}
