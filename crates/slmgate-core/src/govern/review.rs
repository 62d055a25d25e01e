//! Human review: a sampled share of answers waits in a queue; reviewers give a verdict; the
//! verdicts are exported as labelled outcomes (the JSONL `slmgate router train` reads).

use std::io::Write;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{db, GovernError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Good,
    Bad,
    ShouldHaveEscalated,
    NeedlessEscalation,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::ShouldHaveEscalated => "should_have_escalated",
            Verdict::NeedlessEscalation => "needless_escalation",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub id: String,
    pub request_id: String,
    pub time: String,
    pub route: String,
    pub tier: String,
    pub model: String,
    pub escalated_from: Option<String>,
    pub tags: serde_json::Value,
    pub prompt: String,
    pub answer: String,
    pub verdict: Option<Verdict>,
    pub note: Option<String>,
}

/// Reviews, oldest first; `pending` keeps those without a verdict.
pub fn list(conn: &Connection, pending: bool, limit: u32) -> Result<Vec<Review>, GovernError> {
    let mut stmt = conn.prepare(
        "SELECT id, request_id, ts_ms, route, tier, model, escalated_from, tags, prompt, answer, verdict, note
         FROM reviews WHERE (?1 = 0 OR verdict IS NULL) ORDER BY ts_ms LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![pending as i32, limit], |r| {
        let tags: String = r.get(7)?;
        Ok(Review {
            id: r.get(0)?,
            request_id: r.get(1)?,
            time: db::rfc3339(r.get(2)?),
            route: r.get(3)?,
            tier: r.get(4)?,
            model: r.get(5)?,
            escalated_from: r.get(6)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            prompt: r.get(8)?,
            answer: r.get(9)?,
            verdict: r
                .get::<_, Option<String>>(10)?
                .and_then(|v| Verdict::parse(&v)),
            note: r.get(11)?,
        })
    })?;
    Ok(rows.filter_map(Result::ok).collect())
}

/// Records a verdict; false when there is no such review.
pub fn set_verdict(
    conn: &Connection,
    id: &str,
    verdict: Verdict,
    note: Option<&str>,
) -> Result<bool, GovernError> {
    Ok(conn.execute(
        "UPDATE reviews SET verdict = ?2, note = ?3, reviewed_ms = ?4 WHERE id = ?1",
        params![id, verdict.as_str(), note, db::now_ms()],
    )? > 0)
}

/// [`list`] from the shared Postgres store.
pub fn list_pg(pg: &crate::db::Pg, pending: bool, limit: u32) -> Result<Vec<Review>, GovernError> {
    let e = |e: crate::db::PgError| GovernError::Store(e.to_string());
    let rows = pg
        .get()
        .map_err(e)?
        .query(
            "SELECT id, request_id, ts_ms, route, tier, model, escalated_from, tags, prompt, answer, verdict, note
             FROM reviews WHERE (NOT $1 OR verdict IS NULL) ORDER BY ts_ms LIMIT $2",
            &[&pending, &i64::from(limit)],
        )
        .map_err(|x| e(x.into()))?;
    Ok(rows
        .iter()
        .map(|r| Review {
            id: r.get(0),
            request_id: r.get(1),
            time: db::rfc3339(r.get(2)),
            route: r.get(3),
            tier: r.get(4),
            model: r.get(5),
            escalated_from: r.get(6),
            tags: serde_json::from_str(r.get::<_, &str>(7)).unwrap_or_default(),
            prompt: r.get(8),
            answer: r.get(9),
            verdict: r
                .get::<_, Option<String>>(10)
                .and_then(|v| Verdict::parse(&v)),
            note: r.get(11),
        })
        .collect())
}

/// [`set_verdict`] in the shared Postgres store.
pub fn set_verdict_pg(
    pg: &crate::db::Pg,
    id: &str,
    verdict: Verdict,
    note: Option<&str>,
) -> Result<bool, GovernError> {
    let e = |e: crate::db::PgError| GovernError::Store(e.to_string());
    Ok(pg
        .get()
        .map_err(e)?
        .execute(
            "UPDATE reviews SET verdict = $2, note = $3, reviewed_ms = $4 WHERE id = $1",
            &[&id, &verdict.as_str(), &note, &db::now_ms()],
        )
        .map_err(|x| e(x.into()))?
        > 0)
}

/// What a verdict says about the weak and the strong tier, as outcome scores (1 good,
/// 0 bad), or None when it says nothing about which tier should have answered.
pub fn outcomes(verdict: Verdict, served_by_strong: bool, escalated: bool) -> Option<(f64, f64)> {
    match (verdict, served_by_strong) {
        // The weak tier's answer was fine: the weak tier suffices.
        (Verdict::Good, false) => Some((1.0, 1.0)),
        // The weak tier's answer was not fine: the strong tier was needed.
        (Verdict::Bad | Verdict::ShouldHaveEscalated, false) => Some((0.0, 1.0)),
        // The strong tier answered, but the weak one would have done.
        (Verdict::NeedlessEscalation, true) => Some((1.0, 1.0)),
        // The strong tier answered well after the weak tier was judged unsure.
        (Verdict::Good, true) if escalated => Some((0.0, 1.0)),
        _ => None,
    }
}

/// Writes reviewed answers as labelled outcomes: `{"prompt", "tags", "outcomes": {weak:
/// score, strong: score}, "source": "review"}`. Returns (written, skipped).
pub fn export(
    conn: &Connection,
    weak: &str,
    strong: &str,
    out: &mut dyn Write,
) -> Result<(u64, u64), GovernError> {
    export_reviews(list(conn, false, u32::MAX)?, weak, strong, out)
}

/// [`export`] from the shared Postgres store.
pub fn export_pg(
    pg: &crate::db::Pg,
    weak: &str,
    strong: &str,
    out: &mut dyn Write,
) -> Result<(u64, u64), GovernError> {
    export_reviews(list_pg(pg, false, u32::MAX)?, weak, strong, out)
}

fn export_reviews(
    reviews: Vec<Review>,
    weak: &str,
    strong: &str,
    out: &mut dyn Write,
) -> Result<(u64, u64), GovernError> {
    let mut written = 0;
    let mut skipped = 0;
    for r in reviews {
        let Some(v) = r.verdict else { continue };
        let by_strong = r.tier == strong;
        if !by_strong && r.tier != weak {
            skipped += 1;
            continue;
        }
        let Some((w, s)) = outcomes(v, by_strong, r.escalated_from.is_some()) else {
            skipped += 1;
            continue;
        };
        if r.prompt == "[erased]" || r.prompt == "[expired]" {
            skipped += 1;
            continue;
        }
        let line = serde_json::json!({
            "id": r.request_id,
            "prompt": r.prompt,
            "tags": r.tags,
            "outcomes": {weak: w, strong: s},
            "source": "review",
            "verdict": v.as_str(),
        });
        writeln!(out, "{line}").map_err(|e| GovernError::Store(e.to_string()))?;
        written += 1;
    }
    Ok((written, skipped))
}
