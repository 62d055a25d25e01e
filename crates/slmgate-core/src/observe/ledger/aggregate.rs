//! Groups of ledger rows: volume, cost against the baseline, escalation, latency, quality.

use std::collections::BTreeMap;

use serde::Serialize;

use super::load::Row;

/// What `report --by` groups on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The deployment that answered.
    Model,
    /// The public name requested (route, alias or model).
    Route,
    /// The API key (`anonymous` without one).
    Key,
    /// The plan tier that answered.
    Tier,
    Team,
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "model" => By::Model,
            "route" => By::Route,
            "key" => By::Key,
            "tier" => By::Tier,
            "team" => By::Team,
            _ => return Err(format!("{s:?}: expected model, route, key, tier or team")),
        })
    }
}

impl By {
    fn of(self, r: &Row) -> String {
        match self {
            By::Model => r.deployment().to_string(),
            By::Route => r.model.clone(),
            By::Key => r.key_id.clone().unwrap_or_else(|| "anonymous".into()),
            By::Tier => r.tier().to_string(),
            By::Team => r.team.clone().unwrap_or_else(|| "-".into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Group {
    pub name: String,
    /// Every accepted request, answered or not.
    pub requests: u64,
    pub answered: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// What the baseline model would have cost (`None` when no entry has a baseline).
    pub baseline_usd: Option<f64>,
    pub savings_usd: Option<f64>,
    /// Savings as a share of the baseline, in percent.
    pub savings_pct: Option<f64>,
    pub escalated: u64,
    /// Escalated answers / answers.
    pub escalation_rate: f64,
    /// Latency of answered requests, ms (nearest rank).
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub reviewed: u64,
    /// Reviewed answers judged `good` or `needless_escalation` (the answer was right).
    pub good: u64,
    /// good / reviewed.
    pub quality: Option<f64>,
}

/// The group of `rows`, named `name`.
pub fn fold<'a>(name: &str, rows: impl IntoIterator<Item = &'a Row>) -> Group {
    let mut g = Group {
        name: name.to_string(),
        ..Default::default()
    };
    let mut lat = Vec::new();
    let mut baseline = None::<f64>;
    for r in rows {
        g.requests += 1;
        if !r.answered() {
            g.errors += 1;
        } else {
            g.answered += 1;
            lat.push(r.latency_ms);
            if r.escalated() {
                g.escalated += 1;
            }
        }
        g.prompt_tokens += r.prompt_tokens as u64;
        g.completion_tokens += r.completion_tokens as u64;
        g.cost_usd += r.cost_usd;
        if let Some(b) = r.baseline_cost_usd {
            *baseline.get_or_insert(0.0) += b;
        }
        if let Some(v) = &r.verdict {
            g.reviewed += 1;
            if v == "good" || v == "needless_escalation" {
                g.good += 1;
            }
        }
    }
    g.baseline_usd = baseline;
    g.savings_usd = baseline.map(|b| b - g.cost_usd);
    g.savings_pct = baseline
        .filter(|b| *b > 0.0)
        .map(|b| (b - g.cost_usd) / b * 100.0);
    if g.answered > 0 {
        g.escalation_rate = g.escalated as f64 / g.answered as f64;
    }
    lat.sort_unstable();
    g.p50_ms = percentile(&lat, 0.50);
    g.p95_ms = percentile(&lat, 0.95);
    g.p99_ms = percentile(&lat, 0.99);
    g.quality = (g.reviewed > 0).then(|| g.good as f64 / g.reviewed as f64);
    g
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Rows grouped `by`, dearest first (then by name).
pub fn group(rows: &[Row], by: By) -> Vec<Group> {
    let mut groups: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(by.of(r)).or_default().push(r);
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|(name, rows)| fold(&name, rows))
        .collect();
    out.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then_with(|| b.requests.cmp(&a.requests))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// One time bucket of the spend chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    pub t_ms: i64,
    pub requests: u64,
    pub escalated: u64,
    pub cost_usd: f64,
    pub baseline_usd: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket_ms: i64,
    pub baseline: Option<String>,
    pub totals: Group,
    pub series: Vec<Bucket>,
    /// Answers per tier.
    pub tiers: Vec<Count>,
    /// Escalations by cause (`low_confidence`, `error`).
    pub escalation_causes: Vec<Count>,
    pub models: Vec<Group>,
    pub routes: Vec<Group>,
    pub keys: Vec<Group>,
}

/// The dashboard's view of `rows` between `since_ms` and `until_ms`, in buckets of
/// `bucket_ms`.
pub fn summary(
    rows: &[Row],
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
    baseline: Option<String>,
) -> Summary {
    let bucket_ms = bucket_ms.max(1);
    let start = since_ms - since_ms.rem_euclid(bucket_ms);
    let mut series: BTreeMap<i64, Bucket> = BTreeMap::new();
    let mut t = start;
    while t <= until_ms && series.len() < 2000 {
        series.insert(
            t,
            Bucket {
                t_ms: t,
                requests: 0,
                escalated: 0,
                cost_usd: 0.0,
                baseline_usd: 0.0,
            },
        );
        t += bucket_ms;
    }
    let mut tiers: BTreeMap<String, u64> = BTreeMap::new();
    let mut causes: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        let t = r.ts_ms - r.ts_ms.rem_euclid(bucket_ms);
        if let Some(b) = series.get_mut(&t) {
            b.requests += 1;
            b.escalated += (r.answered() && r.escalated()) as u64;
            b.cost_usd += r.cost_usd;
            b.baseline_usd += r.baseline_cost_usd.unwrap_or(0.0);
        }
        if r.answered() {
            *tiers.entry(r.tier().to_string()).or_default() += 1;
        }
        for e in &r.escalations {
            *causes.entry(e.cause.clone()).or_default() += 1;
        }
    }
    let counts = |m: BTreeMap<String, u64>| {
        let mut v: Vec<Count> = m
            .into_iter()
            .map(|(name, count)| Count { name, count })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        v
    };
    let top = |by| {
        let mut g = group(rows, by);
        g.truncate(10);
        g
    };
    Summary {
        since_ms,
        until_ms,
        bucket_ms,
        baseline,
        totals: fold("all", rows),
        series: series.into_values().collect(),
        tiers: counts(tiers),
        escalation_causes: counts(causes),
        models: group(rows, By::Model),
        routes: top(By::Route),
        keys: top(By::Key),
    }
}
