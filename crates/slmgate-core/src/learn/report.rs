//! `slmgate shadow report` and the dashboard's shadow panel: per route and shadow model (and
//! per day), how often the shadow agreed, what each side cost and how fast it was, and what
//! letting the shadow take over would have saved at given agreement thresholds.

use std::collections::BTreeMap;

use serde::Serialize;

use super::store::ShadowRow;
use crate::govern::db;

/// Agreement thresholds reported when none are asked for.
pub const DEFAULT_THRESHOLDS: [f32; 3] = [0.8, 0.9, 0.95];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub route: String,
    pub shadow_model: String,
    /// `YYYY-MM-DD` (UTC), or absent for the whole period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Shadow answers compared (failed ones not included).
    pub compared: usize,
    pub errors: usize,
    /// The route's requests these rows stand for (each row counts 1 / its sample share).
    pub est_requests: f64,
    pub agreement_mean: f64,
    pub exact_share: f64,
    pub normalised_share: f64,
    pub similarity_mean: Option<f64>,
    pub primary_p50_ms: u64,
    pub primary_p95_ms: u64,
    pub shadow_p50_ms: u64,
    pub shadow_p95_ms: u64,
    /// Summed over the compared rows.
    pub primary_cost_usd: f64,
    pub shadow_cost_usd: f64,
    pub projections: Vec<Projection>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Projection {
    pub threshold: f32,
    /// Share of compared answers whose agreement is at least the threshold.
    pub agree_share: f64,
    /// Had the shadow answered every request of the route: primary cost minus shadow cost,
    /// scaled from the sample to the whole traffic of the period.
    pub takeover_savings_usd: f64,
    /// The same, counting only the requests on which the shadow agreed this well.
    pub agreeing_savings_usd: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub since: String,
    pub thresholds: Vec<f32>,
    /// The whole period, per route and shadow model.
    pub totals: Vec<Group>,
    /// Per route, shadow model and day.
    pub days: Vec<Group>,
}

/// Builds the report over `rows` (any order).
pub fn report(rows: &[ShadowRow], since_ms: i64, thresholds: &[f32]) -> Report {
    let mut totals: BTreeMap<(String, String), Vec<&ShadowRow>> = BTreeMap::new();
    let mut days: BTreeMap<(String, String, String), Vec<&ShadowRow>> = BTreeMap::new();
    for r in rows {
        let k = (r.route.clone(), r.shadow.model.clone());
        totals.entry(k.clone()).or_default().push(r);
        days.entry((k.0, k.1, day(r.ts_ms))).or_default().push(r);
    }
    Report {
        since: db::rfc3339(since_ms),
        thresholds: thresholds.to_vec(),
        totals: totals
            .into_iter()
            .map(|((route, m), rs)| group(route, m, None, &rs, thresholds))
            .collect(),
        days: days
            .into_iter()
            .map(|((route, m, d), rs)| group(route, m, Some(d), &rs, thresholds))
            .collect(),
    }
}

fn day(ts_ms: i64) -> String {
    db::rfc3339(ts_ms).chars().take(10).collect()
}

fn group(
    route: String,
    shadow_model: String,
    day: Option<String>,
    rows: &[&ShadowRow],
    thresholds: &[f32],
) -> Group {
    let ok: Vec<&ShadowRow> = rows
        .iter()
        .copied()
        .filter(|r| r.error.is_none() && r.agreement.is_some())
        .collect();
    let n = ok.len();
    let mean = |f: &dyn Fn(&ShadowRow) -> f64| {
        if n == 0 {
            0.0
        } else {
            ok.iter().map(|r| f(r)).sum::<f64>() / n as f64
        }
    };
    let sims: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.similarity.map(f64::from))
        .collect();
    let weight = |r: &ShadowRow| if r.sample > 0.0 { 1.0 / r.sample } else { 0.0 };
    let saving = |r: &ShadowRow| (r.primary.cost_usd - r.shadow.cost_usd) * weight(r);
    let takeover: f64 = ok.iter().map(|r| saving(r)).sum();
    let projections = thresholds
        .iter()
        .map(|&t| {
            let agreeing: Vec<&&ShadowRow> = ok
                .iter()
                .filter(|r| r.agreement.unwrap_or(0.0) >= t)
                .collect();
            Projection {
                threshold: t,
                agree_share: if n == 0 {
                    0.0
                } else {
                    agreeing.len() as f64 / n as f64
                },
                takeover_savings_usd: takeover,
                agreeing_savings_usd: agreeing.iter().map(|r| saving(r)).sum(),
            }
        })
        .collect();
    let lat = |f: &dyn Fn(&ShadowRow) -> u64| {
        let mut v: Vec<u64> = ok.iter().map(|r| f(r)).collect();
        v.sort_unstable();
        (percentile(&v, 0.50), percentile(&v, 0.95))
    };
    let (p50, p95) = lat(&|r| r.primary.latency_ms);
    let (s50, s95) = lat(&|r| r.shadow.latency_ms);
    Group {
        route,
        shadow_model,
        day,
        compared: n,
        errors: rows.len() - n,
        est_requests: rows.iter().map(|r| weight(r)).sum(),
        agreement_mean: mean(&|r| r.agreement.unwrap_or(0.0) as f64),
        exact_share: mean(&|r| r.exact.unwrap_or(false) as u8 as f64),
        normalised_share: mean(&|r| r.normalised.unwrap_or(false) as u8 as f64),
        similarity_mean: (!sims.is_empty()).then(|| sims.iter().sum::<f64>() / sims.len() as f64),
        primary_p50_ms: p50,
        primary_p95_ms: p95,
        shadow_p50_ms: s50,
        shadow_p95_ms: s95,
        primary_cost_usd: ok.iter().map(|r| r.primary.cost_usd).sum(),
        shadow_cost_usd: ok.iter().map(|r| r.shadow.cost_usd).sum(),
        projections,
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The report as text: one block per route and shadow model, then the days.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "shadow answers since {}", r.since);
    if r.totals.is_empty() {
        let _ = writeln!(
            out,
            "(none: no route has shadowed a request in this period)"
        );
        return out;
    }
    for g in &r.totals {
        let _ = writeln!(
            out,
            "\nroute {} · shadow {}: {} compared, {} failed (≈{:.0} requests)",
            g.route, g.shadow_model, g.compared, g.errors, g.est_requests
        );
        let sim = g
            .similarity_mean
            .map(|s| format!("{s:.3}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "  agreement mean {:.3} · exact {:.1}% · normalised {:.1}% · similarity mean {sim}",
            g.agreement_mean,
            g.exact_share * 100.0,
            g.normalised_share * 100.0
        );
        let _ = writeln!(
            out,
            "  latency p50/p95: route {}/{} ms, shadow {}/{} ms",
            g.primary_p50_ms, g.primary_p95_ms, g.shadow_p50_ms, g.shadow_p95_ms
        );
        let _ = writeln!(
            out,
            "  cost of the compared answers: route ${:.6}, shadow ${:.6}",
            g.primary_cost_usd, g.shadow_cost_usd
        );
        for p in &g.projections {
            let _ = writeln!(
                out,
                "  agreement >= {:.2}: {:.1}% of answers; shadow takes over: saves ${:.6} (on the agreeing ones: ${:.6})",
                p.threshold,
                p.agree_share * 100.0,
                p.takeover_savings_usd,
                p.agreeing_savings_usd
            );
        }
    }
    let _ = writeln!(
        out,
        "\nday         route                shadow               compared  agreement"
    );
    for g in &r.days {
        let _ = writeln!(
            out,
            "{:<11} {:<20} {:<20} {:>8}  {:>9.3}",
            g.day.as_deref().unwrap_or("-"),
            g.route,
            g.shadow_model,
            g.compared,
            g.agreement_mean
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::store::Side;
    use super::*;

    fn row(
        day_ms: i64,
        agreement: Option<f32>,
        pc: f64,
        sc: f64,
        error: Option<&str>,
    ) -> ShadowRow {
        ShadowRow {
            ts_ms: day_ms,
            request_id: "r".into(),
            route: "auto".into(),
            key_id: None,
            user_id: None,
            sample: 0.5,
            primary: Side {
                model: "big".into(),
                latency_ms: 100,
                cost_usd: pc,
            },
            shadow: Side {
                model: "small".into(),
                latency_ms: 10,
                cost_usd: sc,
            },
            error: error.map(str::to_string),
            exact: agreement.map(|a| a == 1.0),
            normalised: agreement.map(|a| a == 1.0),
            similarity: agreement,
            json_fields: None,
            agreement,
            prompt: None,
            primary_answer: None,
            shadow_answer: None,
        }
    }

    #[test]
    fn agreement_shares_and_projected_savings() {
        let d1 = 1_700_000_000_000;
        let d2 = d1 + 86_400_000;
        let rows = vec![
            row(d1, Some(1.0), 0.010, 0.0, None),
            row(d1, Some(0.85), 0.010, 0.0, None),
            row(d2, Some(0.5), 0.020, 0.001, None),
            row(d2, None, 0.020, 0.0, Some("timeout")),
        ];
        let r = report(&rows, 0, &[0.8, 0.9]);
        assert_eq!(r.totals.len(), 1);
        let g = &r.totals[0];
        assert_eq!((g.compared, g.errors), (3, 1));
        assert_eq!(g.est_requests, 8.0, "4 rows at sample 0.5");
        assert!((g.agreement_mean - (1.0 + 0.85 + 0.5) / 3.0).abs() < 1e-6);
        assert!((g.exact_share - 1.0 / 3.0).abs() < 1e-9);
        // Savings scale by 1/sample: (0.01 + 0.01 + 0.019) * 2.
        let p8 = &g.projections[0];
        assert!((p8.agree_share - 2.0 / 3.0).abs() < 1e-9);
        assert!((p8.takeover_savings_usd - 0.078).abs() < 1e-9);
        assert!((p8.agreeing_savings_usd - 0.04).abs() < 1e-9);
        let p9 = &g.projections[1];
        assert!((p9.agree_share - 1.0 / 3.0).abs() < 1e-9);
        assert!((p9.agreeing_savings_usd - 0.02).abs() < 1e-9);
        assert_eq!(r.days.len(), 2);
        assert_eq!(r.days[0].compared, 2);
        assert_eq!(r.days[1].errors, 1);
        assert_eq!((g.primary_p50_ms, g.shadow_p95_ms), (100, 10));
        assert!(render(&r).contains("agreement >= 0.90: 33.3% of answers"));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[5], 0.95), 5);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.95), 95);
    }
}
