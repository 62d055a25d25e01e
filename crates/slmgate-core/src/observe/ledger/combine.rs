//! `slmgate cascade calibrate`: the cascade's router + confidence combination calibrated on
//! a route's logged traffic. Every request the cascade judged logged its router score and its
//! first tier's confidence; their means and deviations standardise the two, and the threshold
//! is set so that the combined rule would have escalated the target share of them. No labels
//! are needed; the weights come from offline measurement (`cascade eval --router-scores`).

use serde::Serialize;

use super::load::Row;
use crate::config::CombineConfig;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    pub route: String,
    /// Requests with both a router score and a judged first-tier confidence.
    pub judged: usize,
    /// The share the cascade escalated as configured then.
    pub escalated_share: f64,
    /// The target share the combination was set to escalate.
    pub target_share: f64,
    pub combine: CombineConfig,
}

/// Fits the combination on `route`'s judged requests in `rows`; `None` with fewer than 2 or
/// when the router score or the confidence never varied.
pub fn calibrate(
    rows: &[Row],
    route: &str,
    router_weight: f32,
    confidence_weight: f32,
    target_share: f64,
) -> Option<Calibration> {
    let mut pairs = Vec::new();
    let mut escalated = 0usize;
    for r in rows.iter().filter(|r| r.model == route) {
        let Some(score) = r.plan.as_ref().and_then(|p| p.router_score) else {
            continue;
        };
        let Some((conf, esc, _)) = r.first_decision() else {
            continue;
        };
        if !conf.is_finite() {
            continue;
        }
        escalated += usize::from(esc);
        pairs.push((score as f64, conf as f64));
    }
    let combine = CombineConfig::fit(&pairs, router_weight, confidence_weight, target_share)?;
    Some(Calibration {
        route: route.to_string(),
        judged: pairs.len(),
        escalated_share: escalated as f64 / pairs.len() as f64,
        target_share,
        combine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ledger::load::{Escalation, Plan, Served};

    fn row(route: &str, score: f32, conf: f32, escalated: bool) -> Row {
        Row {
            model: route.into(),
            status: 200,
            plan: Some(Plan {
                tiers: vec!["local".into(), "cloud".into()],
                router_score: Some(score),
            }),
            served: Some(Served {
                tier: if escalated { "cloud" } else { "local" }.into(),
                deployment: "d".into(),
                confidence: (!escalated).then_some(conf),
            }),
            escalations: if escalated {
                vec![Escalation {
                    from_tier: "local".into(),
                    to_tier: "cloud".into(),
                    cause: "low_confidence".into(),
                    deployment: Some("slm".into()),
                    confidence: Some(conf),
                    judged_tokens: 16,
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_threshold_escalates_the_target_share_of_logged_requests() {
        let mut rows: Vec<Row> = (0..100)
            .map(|i| {
                let score = (i % 10) as f32 / 10.0;
                let conf = -((i * 7) % 13) as f32 / 10.0;
                row("auto", score, conf, conf < -0.6)
            })
            .collect();
        rows.push(row("other", 0.9, -3.0, true));
        let c = calibrate(&rows, "auto", 1.0, 1.0, 0.25).unwrap();
        assert_eq!(c.judged, 100);
        let over = rows[..100]
            .iter()
            .filter(|r| {
                let (conf, _, _) = r.first_decision().unwrap();
                let s = r.plan.as_ref().unwrap().router_score.unwrap();
                c.combine.score(s, conf) >= c.combine.threshold
            })
            .count();
        assert!((20..=30).contains(&over), "{over} of 100 would escalate");
        // Per request, the plan's confidence threshold is the same rule.
        let (s, conf) = (0.7f32, -0.35f32);
        let by_rule = c.combine.score(s, conf) >= c.combine.threshold;
        let by_threshold = conf < c.combine.confidence_threshold(s);
        assert_eq!(by_rule, by_threshold);
        assert!(calibrate(&rows, "missing", 1.0, 1.0, 0.25).is_none());
    }
}
