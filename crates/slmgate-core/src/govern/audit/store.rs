//! Appending to the chain in one transaction per batch. The head is read inside the
//! transaction (`BEGIN IMMEDIATE`), so a second writer (the CLI's `audit forget`, another
//! process) can never fork the chain.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::chain::{entry_hash, sha256_hex, GENESIS};
use super::entry::Record;
use crate::govern::GovernError;

/// A record as it is stored: its entry's and content's JSON text and the content's hash.
pub(super) struct Serialized {
    pub entry: String,
    pub content: Option<String>,
    pub content_hash: String,
}

impl Serialized {
    pub(super) fn of(rec: &Record) -> Result<Self, GovernError> {
        let entry = serde_json::to_string(&rec.entry)
            .map_err(|err| GovernError::Store(format!("audit entry: {err}")))?;
        let content = match &rec.content {
            Some(c) => Some(
                serde_json::to_string(c)
                    .map_err(|err| GovernError::Store(format!("audit content: {err}")))?,
            ),
            None => None,
        };
        let content_hash = content
            .as_deref()
            .map(|c| sha256_hex(c.as_bytes()))
            .unwrap_or_default();
        Ok(Self {
            entry,
            content,
            content_hash,
        })
    }
}

/// Appends `records` in order; returns the last sequence number written.
pub fn append(conn: &mut Connection, records: &[Record]) -> Result<i64, GovernError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (mut seq, mut prev): (i64, String) = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE one = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    for rec in records {
        seq += 1;
        let e = &rec.entry;
        let Serialized {
            entry: entry_json,
            content: content_json,
            content_hash,
        } = Serialized::of(rec)?;
        let hash = entry_hash(&prev, seq, &entry_json, &content_hash);
        tx.prepare_cached(
            "INSERT INTO audit (seq, id, ts_ms, key_id, entry, content_hash, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            seq,
            e.id,
            e.ts_ms,
            e.key_id,
            entry_json,
            content_hash,
            prev,
            hash
        ])?;
        if let Some(c) = content_json {
            tx.prepare_cached(
                "INSERT INTO audit_content (seq, ts_ms, key_id, user_id, content) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![seq, e.ts_ms, e.key_id, e.user, c])?;
        }
        if let Some(r) = &rec.review {
            tx.prepare_cached(
                "INSERT INTO reviews (id, request_id, ts_ms, key_id, user_id, route, tier, model,
                 escalated_from, tags, prompt, answer, arm) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
            )?
            .execute(params![
                r.id, e.id, e.ts_ms, e.key_id, e.user, r.route, r.tier, r.model,
                r.escalated_from, r.tags, r.prompt, r.answer, r.arm
            ])?;
        }
        prev = hash;
    }
    tx.prepare_cached(
        "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![seq, prev])?;
    tx.commit()?;
    Ok(seq)
}

/// Erases stored content older than `days` (entries and the chain stay).
pub fn prune_content(conn: &Connection, days: u32, now_ms: i64) -> Result<usize, GovernError> {
    if days == 0 {
        return Ok(0);
    }
    let cutoff = now_ms - days as i64 * 86_400_000;
    let n = conn.execute("DELETE FROM audit_content WHERE ts_ms < ?1", [cutoff])?;
    conn.execute(
        "UPDATE reviews SET prompt = '[expired]', answer = '[expired]' WHERE ts_ms < ?1 AND prompt != '[expired]'",
        [cutoff],
    )?;
    conn.execute(
        "UPDATE shadow_answers SET prompt = NULL, primary_answer = NULL, shadow_answer = NULL WHERE ts_ms < ?1 AND prompt IS NOT NULL",
        [cutoff],
    )?;
    Ok(n)
}

/// Spend per key since `since_ms` (for budgets after a restart).
pub fn spend_since(conn: &Connection, key_id: &str, since_ms: i64) -> Result<f64, GovernError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(json_extract(entry, '$.cost_usd')), 0.0) FROM audit WHERE key_id = ?1 AND ts_ms >= ?2",
        params![key_id, since_ms],
        |r| r.get(0),
    )?)
}
