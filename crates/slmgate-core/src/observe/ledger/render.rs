//! `slmgate report` output: an aligned table, JSON or CSV.

use std::fmt::Write;

use super::aggregate::Group;
use super::what_if::WhatIf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("{s:?}: expected table, json or csv")),
        }
    }
}

const HEADER: &[&str] = &[
    "name",
    "requests",
    "answered",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "baseline_usd",
    "savings_usd",
    "savings_pct",
    "escalation_pct",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "reviewed",
    "quality_pct",
];

fn usd(v: f64) -> String {
    format!("{v:.6}")
}

fn pct(v: f64) -> String {
    format!("{v:.1}")
}

fn cells(g: &Group) -> Vec<String> {
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
    vec![
        g.name.clone(),
        g.requests.to_string(),
        g.answered.to_string(),
        g.errors.to_string(),
        g.prompt_tokens.to_string(),
        g.completion_tokens.to_string(),
        usd(g.cost_usd),
        opt(g.baseline_usd, usd),
        opt(g.savings_usd, usd),
        opt(g.savings_pct, pct),
        pct(g.escalation_rate * 100.0),
        g.p50_ms.to_string(),
        g.p95_ms.to_string(),
        g.p99_ms.to_string(),
        g.reviewed.to_string(),
        opt(g.quality.map(|q| q * 100.0), pct),
    ]
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The groups, then a total row (table and CSV); JSON holds `groups` and `total`.
pub fn render(groups: &[Group], total: &Group, format: Format) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({ "groups": groups, "total": total });
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Csv => {
            let mut out = HEADER.join(",") + "\n";
            for g in groups.iter().chain([total]) {
                let row: Vec<String> = cells(g).iter().map(|c| csv_field(c)).collect();
                out += &(row.join(",") + "\n");
            }
            out
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = groups.iter().chain([total]).map(cells).collect();
            let mut width: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (w, c) in width.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let mut s = String::new();
                for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
                    if i == 0 {
                        let _ = write!(s, "{c:<w$}");
                    } else {
                        let _ = write!(s, "  {c:>w$}");
                    }
                }
                s.trim_end().to_string() + "\n"
            };
            let head: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
            let mut out = line(&head);
            for (i, r) in rows.iter().enumerate() {
                if i == rows.len() - 1 {
                    out += &(width
                        .iter()
                        .map(|w| "-".repeat(*w))
                        .collect::<Vec<_>>()
                        .join("  ")
                        + "\n");
                }
                out += &line(r);
            }
            out
        }
    }
}

/// The what-if comparison as text (JSON is the struct itself).
pub fn render_what_if(w: &WhatIf, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(w).unwrap_or_default() + "\n";
    }
    let opt = |v: Option<f64>| v.map(usd).unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(out, "what if cascade.threshold = {}", w.threshold);
    let _ = writeln!(
        out,
        "answers {}, judged by a cascade {}: {} would now escalate, {} would now stay, {} unpriced",
        w.answered, w.judged, w.now_escalated, w.now_kept, w.unpriced
    );
    let _ = writeln!(
        out,
        "{:<16}{:>12}{:>12}{:>14}{:>14}",
        "", "escalated", "rate_pct", "cost_usd", "savings_usd"
    );
    for (name, s) in [("logged", &w.before), ("what-if", &w.after)] {
        let _ = writeln!(
            out,
            "{:<16}{:>12}{:>12}{:>14}{:>14}",
            name,
            s.escalated,
            pct(s.escalation_rate * 100.0),
            usd(s.cost_usd),
            opt(s.savings_usd)
        );
    }
    out += "assumptions:\n";
    for a in &w.assumptions {
        let _ = writeln!(out, "  - {a}");
    }
    out
}
