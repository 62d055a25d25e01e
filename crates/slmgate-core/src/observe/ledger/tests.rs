//! Golden tests on fixed ledger rows: groups, the table/CSV/JSON renderings and the what-if
//! replay, with the numbers that matter also checked by hand.

use super::*;
use crate::config::Config;

/// Prices: local $1/$2 per Mtok, strong $10/$30, baseline $5/$15.
const CFG: &str = r#"
[models.local]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:9"
model = "l"
residency = "on_prem"
input_cost_per_mtok = 1
output_cost_per_mtok = 2
[models.strong]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:9"
model = "s"
input_cost_per_mtok = 10
output_cost_per_mtok = 30
[routes.auto]
tiers = [{ name = "local", models = ["local"] }, { name = "strong", models = ["strong"] }]
cascade = { threshold = -1.0, first_tokens = 10 }
[cost]
baseline = "frontier"
[cost.prices.frontier]
input_per_mtok = 5
output_per_mtok = 15
"#;

fn cfg() -> Config {
    Config::from_toml(CFG, "test").unwrap()
}

/// 1000 prompt / 100 completion tokens each. Local answer: 1000×1 + 100×2 = 1200 µ$.
/// Escalated: local judged 10 tokens 1000×1 + 10×2 = 1020 µ$, strong 1000×10 + 100×30 =
/// 13000 µ$, total 14020 µ$. Baseline: 1000×5 + 100×15 = 6500 µ$.
fn row(id: u32, key: Option<&str>, conf: f32, escalated: bool, latency: u64) -> Row {
    let esc = if escalated {
        format!(
            r#"[{{"from_tier":"local","to_tier":"strong","cause":"low_confidence","deployment":"local","confidence":{conf},"judged_tokens":10}}]"#
        )
    } else {
        "[]".into()
    };
    let (tier, dep, cost, sconf) = if escalated {
        ("strong", "strong", 0.01402, "null".to_string())
    } else {
        ("local", "local", 0.0012, conf.to_string())
    };
    let key = key.map_or("null".to_string(), |k| format!("\"{k}\""));
    serde_json::from_str(&format!(
        r#"{{"id":"r{id}","ts_ms":{ts},"key_id":{key},"model":"auto","endpoint":"chat","status":200,
        "served":{{"tier":"{tier}","deployment":"{dep}","confidence":{sconf}}},"escalations":{esc},
        "prompt_tokens":1000,"completion_tokens":100,"cost_usd":{cost},"baseline_cost_usd":0.0065,
        "latency_ms":{latency},"plan":{{"tiers":["local","strong"]}}}}"#,
        ts = 1_700_000_000_000i64 + id as i64 * 60_000,
    ))
    .unwrap()
}

/// 8 local answers (confidence −0.2 … −0.9), 2 escalated (−1.5, −2.0), one failed request.
fn rows() -> Vec<Row> {
    let mut v: Vec<Row> = (0..8)
        .map(|i| {
            let key = if i % 2 == 0 { Some("key_a") } else { None };
            row(i, key, -0.2 - 0.1 * i as f32, false, 100 + 10 * i as u64)
        })
        .collect();
    v.push(row(8, Some("key_a"), -1.5, true, 900));
    v.push(row(9, None, -2.0, true, 1100));
    let mut failed = row(10, None, 0.0, false, 50);
    failed.status = 502;
    failed.served = None;
    failed.cost_usd = 0.0;
    failed.baseline_cost_usd = None;
    v.push(failed);
    v[0].verdict = Some("good".into());
    v[1].verdict = Some("bad".into());
    v[8].verdict = Some("needless_escalation".into());
    v
}

fn golden(name: &str, got: &str) {
    crate::golden::check("src/observe/ledger/testdata", name, got);
}

#[test]
fn totals_match_the_hand_computation() {
    let t = fold("all", &rows());
    assert_eq!(
        (t.requests, t.answered, t.errors, t.escalated),
        (11, 10, 1, 2)
    );
    // 8 × 1200 + 2 × 14020 = 37640 µ$; baseline 10 × 6500 = 65000 µ$.
    assert!((t.cost_usd - 0.03764).abs() < 1e-12, "{t:?}");
    assert!((t.baseline_usd.unwrap() - 0.065).abs() < 1e-12);
    assert!((t.savings_pct.unwrap() - (0.065 - 0.03764) / 0.065 * 100.0).abs() < 1e-9);
    assert!((t.escalation_rate - 0.2).abs() < 1e-12);
    // Latencies 100..170 (8), 900, 1100: p50 = 5th of 10 = 140, p95 = p99 = 1100.
    assert_eq!((t.p50_ms, t.p95_ms, t.p99_ms), (140, 1100, 1100));
    // Reviewed: good, bad, needless_escalation → 2 of 3 right.
    assert_eq!((t.reviewed, t.good), (3, 2));
}

#[test]
fn report_by_key_golden() {
    let rows = rows();
    let groups = group(&rows, By::Key);
    // Both keys cost 4 × 1200 + 14020 µ$; the tie goes to more requests (anonymous has the
    // failed one).
    assert!((groups[0].cost_usd - 0.01882).abs() < 1e-12);
    assert_eq!(groups[0].name, "anonymous");
    let total = fold("total", &rows);
    golden("by_key.txt", &render(&groups, &total, Format::Table));
    golden("by_key.csv", &render(&groups, &total, Format::Csv));
    golden("by_key.json", &render(&groups, &total, Format::Json));
}

#[test]
fn report_by_model_golden() {
    let rows = rows();
    let groups = group(&rows, By::Model);
    golden(
        "by_model.txt",
        &render(&groups, &fold("total", &rows), Format::Table),
    );
}

#[test]
fn what_if_a_higher_threshold_escalates_more() {
    let w = what_if(&rows(), -0.55, &cfg());
    // Local answers with confidence −0.6 … −0.9 (4 of them) now escalate.
    assert_eq!((w.judged, w.now_escalated, w.now_kept), (10, 4, 0));
    assert_eq!((w.before.escalated, w.after.escalated), (2, 6));
    // Each moves from 1200 µ$ to 14020 µ$ (first_tokens = 10 from the config).
    let want = 0.03764 + 4.0 * (0.01402 - 0.0012);
    assert!((w.after.cost_usd - want).abs() < 1e-12, "{w:?}");
    golden("what_if.txt", &render_what_if(&w, Format::Table));
}

#[test]
fn what_if_a_lower_threshold_keeps_escalated_answers_local() {
    let w = what_if(&rows(), -1.8, &cfg());
    // −1.5 now stays local (priced as a local answer of the same length); −2.0 still escalates.
    assert_eq!((w.now_escalated, w.now_kept), (0, 1));
    assert!((w.after.cost_usd - (0.03764 - 0.01402 + 0.0012)).abs() < 1e-12);
    assert!((w.after.escalation_rate - 0.1).abs() < 1e-12);
}

#[test]
fn summary_buckets_cover_the_range() {
    let rows = rows();
    let since = rows[0].ts_ms;
    let s = summary(
        &rows,
        since,
        since + 11 * 60_000,
        3_600_000,
        Some("frontier".into()),
    );
    let total: u64 = s.series.iter().map(|b| b.requests).sum();
    assert_eq!(total, 11);
    let cost: f64 = s.series.iter().map(|b| b.cost_usd).sum();
    assert!((cost - s.totals.cost_usd).abs() < 1e-12);
    assert_eq!(s.tiers[0].name, "local");
    assert_eq!(s.tiers[0].count, 8);
    assert_eq!(s.escalation_causes[0].name, "low_confidence");
}

#[test]
fn since_parses_units() {
    assert_eq!(
        parse_since("7d", 1_000_000_000),
        Ok(1_000_000_000 - 7 * 86_400_000)
    );
    assert_eq!(parse_since("2h", 10_000_000), Ok(10_000_000 - 7_200_000));
    assert_eq!(parse_since("all", 5), Ok(0));
    assert!(parse_since("7w", 0).is_err());
    assert!(parse_since("", 0).is_err());
}
