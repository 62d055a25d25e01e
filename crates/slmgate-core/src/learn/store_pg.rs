//! The `shadow_answers` table in the shared Postgres store (migration 7): every replica's
//! shadow answers in one place, so one `shadow report` (and the dashboard's panel) covers
//! the whole deployment. The same rows as `learn::store` writes to SQLite.

use super::store::{ShadowRow, Side};
use crate::db::{blocking, Pg, PgError};

const COLUMNS: &str = "ts_ms, request_id, route, key_id, user_id, sample,
    primary_model, primary_ms, primary_cost_usd, shadow_model, shadow_ms, shadow_cost_usd,
    error, exact, normalised, similarity, json_fields, agreement,
    prompt, primary_answer, shadow_answer";

pub fn insert(pg: &Pg, r: &ShadowRow) -> Result<(), PgError> {
    let sql = format!(
        "INSERT INTO shadow_answers ({COLUMNS}) VALUES
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    );
    let (pm, sm) = (r.primary.latency_ms as i64, r.shadow.latency_ms as i64);
    blocking(|| {
        pg.get()?.execute(
            sql.as_str(),
            &[
                &r.ts_ms,
                &r.request_id,
                &r.route,
                &r.key_id,
                &r.user_id,
                &r.sample,
                &r.primary.model,
                &pm,
                &r.primary.cost_usd,
                &r.shadow.model,
                &sm,
                &r.shadow.cost_usd,
                &r.error,
                &r.exact,
                &r.normalised,
                &r.similarity,
                &r.json_fields,
                &r.agreement,
                &r.prompt,
                &r.primary_answer,
                &r.shadow_answer,
            ],
        )?;
        Ok(())
    })
}

/// Rows since `since_ms`, oldest first, of one route or all.
pub fn load(pg: &Pg, since_ms: i64, route: Option<&str>) -> Result<Vec<ShadowRow>, PgError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM shadow_answers
         WHERE ts_ms >= $1 AND ($2::TEXT IS NULL OR route = $2) ORDER BY ts_ms, id"
    );
    blocking(|| {
        let rows = pg.get()?.query(sql.as_str(), &[&since_ms, &route])?;
        Ok(rows
            .iter()
            .map(|r| ShadowRow {
                ts_ms: r.get(0),
                request_id: r.get(1),
                route: r.get(2),
                key_id: r.get(3),
                user_id: r.get(4),
                sample: r.get(5),
                primary: Side {
                    model: r.get(6),
                    latency_ms: r.get::<_, i64>(7).max(0) as u64,
                    cost_usd: r.get(8),
                },
                shadow: Side {
                    model: r.get(9),
                    latency_ms: r.get::<_, i64>(10).max(0) as u64,
                    cost_usd: r.get(11),
                },
                error: r.get(12),
                exact: r.get(13),
                normalised: r.get(14),
                similarity: r.get(15),
                json_fields: r.get(16),
                agreement: r.get(17),
                prompt: r.get(18),
                primary_answer: r.get(19),
                shadow_answer: r.get(20),
            })
            .collect())
    })
}
