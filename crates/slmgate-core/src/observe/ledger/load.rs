//! Reads request entries (and their review verdicts) from the audit store.

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Deserialize;

/// The audit store could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the audit log: {0}")]
pub struct LedgerError(#[from] rusqlite::Error);

/// What the ledger needs of one audit entry.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Row {
    pub id: String,
    pub ts_ms: i64,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    /// The requested public name (route, alias or model).
    pub model: String,
    #[serde(default)]
    pub endpoint: String,
    pub status: u16,
    #[serde(default)]
    pub served: Option<Served>,
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default)]
    pub baseline_cost_usd: Option<f64>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub plan: Option<Plan>,
    /// The human verdict, when the answer was reviewed.
    #[serde(skip)]
    pub verdict: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Served {
    pub tier: String,
    pub deployment: String,
    #[serde(default)]
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Escalation {
    pub from_tier: String,
    pub to_tier: String,
    pub cause: String,
    #[serde(default)]
    pub deployment: Option<String>,
    #[serde(default)]
    pub confidence: Option<f32>,
    #[serde(default)]
    pub judged_tokens: usize,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Plan {
    #[serde(default)]
    pub tiers: Vec<String>,
    /// The learned router's score, when the route has one.
    #[serde(default)]
    pub router_score: Option<f32>,
}

impl Row {
    pub fn answered(&self) -> bool {
        self.status == 200 && self.served.is_some()
    }

    pub fn escalated(&self) -> bool {
        !self.escalations.is_empty()
    }

    /// The deployment that answered (`-` for requests no model answered).
    pub fn deployment(&self) -> &str {
        self.served.as_ref().map_or("-", |s| s.deployment.as_str())
    }

    pub fn tier(&self) -> &str {
        self.served.as_ref().map_or("-", |s| s.tier.as_str())
    }

    /// The first tier's cascade decision: (confidence, escalated, first-tier deployment).
    pub fn first_decision(&self) -> Option<(f32, bool, String)> {
        match self.escalations.first() {
            Some(e) if e.cause == "low_confidence" => {
                Some((e.confidence?, true, e.deployment.clone()?))
            }
            Some(_) => None,
            None => {
                let s = self.served.as_ref()?;
                Some((s.confidence?, false, s.deployment.clone()))
            }
        }
    }
}

/// Chat and messages requests since `since_ms` (embeddings and erasure records are not in the
/// ledger), oldest first, with review verdicts joined in.
pub fn load(conn: &Connection, since_ms: i64) -> Result<Vec<Row>, LedgerError> {
    let mut stmt = conn.prepare(
        "SELECT entry FROM audit WHERE ts_ms >= ?1
           AND json_extract(entry, '$.kind') = 'request'
           AND json_extract(entry, '$.endpoint') IN ('chat', 'messages')
         ORDER BY seq",
    )?;
    let mut rows: Vec<Row> = stmt
        .query_map([since_ms], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok())
        .filter_map(|s| serde_json::from_str(&s).ok())
        .collect();
    let mut verdicts: HashMap<String, String> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT request_id, verdict FROM reviews WHERE verdict IS NOT NULL AND ts_ms >= ?1",
    )?;
    for r in stmt.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (id, v) = r?;
        verdicts.insert(id, v);
    }
    for row in &mut rows {
        row.verdict = verdicts.remove(&row.id);
    }
    Ok(rows)
}

/// [`load`] from the shared Postgres store.
pub fn load_pg(pg: &crate::db::Pg, since_ms: i64) -> Result<Vec<Row>, crate::db::PgError> {
    let mut c = pg.get()?;
    let mut rows: Vec<Row> = c
        .query(
            "SELECT entry FROM audit WHERE ts_ms >= $1
               AND (entry::jsonb->>'kind') = 'request'
               AND (entry::jsonb->>'endpoint') IN ('chat', 'messages')
             ORDER BY seq",
            &[&since_ms],
        )?
        .iter()
        .filter_map(|r| serde_json::from_str(r.get::<_, &str>(0)).ok())
        .collect();
    let mut verdicts: HashMap<String, String> = c
        .query(
            "SELECT request_id, verdict FROM reviews WHERE verdict IS NOT NULL AND ts_ms >= $1",
            &[&since_ms],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for row in &mut rows {
        row.verdict = verdicts.remove(&row.id);
    }
    Ok(rows)
}

/// `7d`, `24h`, `90m`, `all` → the cut-off in ms since the epoch, from `now_ms`.
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, String> {
    if s == "all" {
        return Ok(0);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 7d, 24h, 90m or all"))?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        _ => return Err(format!("{s:?}: the unit must be d, h or m")),
    };
    Ok(now_ms - n * ms)
}
