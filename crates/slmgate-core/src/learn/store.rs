//! The `shadow_answers` table (schema in `govern::db`): one row per shadow answer.

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::govern::GovernError;

/// One side of a shadowed request: who answered, how fast, at what cost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Side {
    pub model: String,
    pub latency_ms: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShadowRow {
    pub ts_ms: i64,
    pub request_id: String,
    pub route: String,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    /// The route's shadow share when the row was written (rows / sample ≈ the route's traffic).
    pub sample: f64,
    pub primary: Side,
    pub shadow: Side,
    /// The shadow failed (no agreement then).
    pub error: Option<String>,
    pub exact: Option<bool>,
    pub normalised: Option<bool>,
    pub similarity: Option<f32>,
    pub json_fields: Option<f32>,
    pub agreement: Option<f32>,
    /// Kept per `[audit] content` (masked under `redacted`, absent under `none`).
    pub prompt: Option<String>,
    pub primary_answer: Option<String>,
    pub shadow_answer: Option<String>,
}

pub fn insert(conn: &Connection, r: &ShadowRow) -> Result<(), GovernError> {
    conn.execute(
        "INSERT INTO shadow_answers (ts_ms, request_id, route, key_id, user_id, sample,
            primary_model, primary_ms, primary_cost_usd, shadow_model, shadow_ms, shadow_cost_usd,
            error, exact, normalised, similarity, json_fields, agreement,
            prompt, primary_answer, shadow_answer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        params![
            r.ts_ms,
            r.request_id,
            r.route,
            r.key_id,
            r.user_id,
            r.sample,
            r.primary.model,
            r.primary.latency_ms as i64,
            r.primary.cost_usd,
            r.shadow.model,
            r.shadow.latency_ms as i64,
            r.shadow.cost_usd,
            r.error,
            r.exact,
            r.normalised,
            r.similarity,
            r.json_fields,
            r.agreement,
            r.prompt,
            r.primary_answer,
            r.shadow_answer,
        ],
    )?;
    Ok(())
}

/// Rows since `since_ms`, oldest first, of one route or all.
pub fn load(
    conn: &Connection,
    since_ms: i64,
    route: Option<&str>,
) -> Result<Vec<ShadowRow>, GovernError> {
    let mut stmt = conn.prepare(
        "SELECT ts_ms, request_id, route, key_id, user_id, sample,
            primary_model, primary_ms, primary_cost_usd, shadow_model, shadow_ms, shadow_cost_usd,
            error, exact, normalised, similarity, json_fields, agreement,
            prompt, primary_answer, shadow_answer
         FROM shadow_answers WHERE ts_ms >= ?1 AND (?2 IS NULL OR route = ?2) ORDER BY ts_ms, id",
    )?;
    let rows = stmt.query_map(params![since_ms, route], |r| {
        Ok(ShadowRow {
            ts_ms: r.get(0)?,
            request_id: r.get(1)?,
            route: r.get(2)?,
            key_id: r.get(3)?,
            user_id: r.get(4)?,
            sample: r.get(5)?,
            primary: Side {
                model: r.get(6)?,
                latency_ms: r.get::<_, i64>(7)?.max(0) as u64,
                cost_usd: r.get(8)?,
            },
            shadow: Side {
                model: r.get(9)?,
                latency_ms: r.get::<_, i64>(10)?.max(0) as u64,
                cost_usd: r.get(11)?,
            },
            error: r.get(12)?,
            exact: r.get(13)?,
            normalised: r.get(14)?,
            similarity: r.get(15)?,
            json_fields: r.get(16)?,
            agreement: r.get(17)?,
            prompt: r.get(18)?,
            primary_answer: r.get(19)?,
            shadow_answer: r.get(20)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
