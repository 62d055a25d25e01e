//! The audit log in the shared Postgres store, written by every replica.
//!
//! **One chain, serialised.** Every replica's writer appends its batch in one transaction
//! that first locks the chain's head row (`SELECT … FOR UPDATE`): batches from different
//! replicas take turns, each linking to the head the previous one left. The log is one
//! total order that `slmgate audit verify` checks exactly as it checks a SQLite file; a
//! replica killed mid-batch leaves no trace (its transaction never commits), and an entry
//! its client was answered for is, under `durability = "sync"`, committed before the
//! answer. The cost is that replicas' commits queue on one row lock: one lock hold per
//! batch (group commit), measured in docs/benchmarks.md.

use std::io::Write;

use postgres::Client;

use super::chain::entry_hash;
use super::entry::Record;
use super::store::Serialized;
use super::verify::{erasure, export_line, Row, Verification, Walk, EXPORT_ROWS, VERIFY_ROWS};
use crate::db::Pg;
use crate::govern::GovernError;

fn pg(e: impl std::fmt::Display) -> GovernError {
    GovernError::Store(e.to_string())
}

/// `?N` placeholders (the SQLite text shared with verify/export) as Postgres' `$N`.
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// Appends `records` in order after the chain's head; returns the last sequence number.
pub fn append(client: &mut Client, records: &[Record]) -> Result<i64, GovernError> {
    let mut tx = client.transaction().map_err(pg)?;
    let head = tx
        .query_one(
            "SELECT seq, hash FROM audit_head WHERE one = 1 FOR UPDATE",
            &[],
        )
        .map_err(pg)?;
    let (mut seq, mut prev): (i64, String) = (head.get(0), head.get(1));
    let insert = tx
        .prepare(
            "INSERT INTO audit (seq, id, ts_ms, key_id, entry, content_hash, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .map_err(pg)?;
    let insert_content = tx
        .prepare(
            "INSERT INTO audit_content (seq, ts_ms, key_id, user_id, content) VALUES ($1, $2, $3, $4, $5)",
        )
        .map_err(pg)?;
    let insert_review = tx
        .prepare(
            "INSERT INTO reviews (id, request_id, ts_ms, key_id, user_id, route, tier, model,
             escalated_from, tags, prompt, answer, arm) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
        )
        .map_err(pg)?;
    for rec in records {
        seq += 1;
        let e = &rec.entry;
        let s = Serialized::of(rec)?;
        let hash = entry_hash(&prev, seq, &s.entry, &s.content_hash);
        tx.execute(
            &insert,
            &[
                &seq,
                &e.id,
                &e.ts_ms,
                &e.key_id,
                &s.entry,
                &s.content_hash,
                &prev,
                &hash,
            ],
        )
        .map_err(pg)?;
        if let Some(c) = &s.content {
            tx.execute(&insert_content, &[&seq, &e.ts_ms, &e.key_id, &e.user, c])
                .map_err(pg)?;
        }
        if let Some(r) = &rec.review {
            tx.execute(
                &insert_review,
                &[
                    &r.id,
                    &e.id,
                    &e.ts_ms,
                    &e.key_id,
                    &e.user,
                    &r.route,
                    &r.tier,
                    &r.model,
                    &r.escalated_from,
                    &r.tags,
                    &r.prompt,
                    &r.answer,
                    &r.arm,
                ],
            )
            .map_err(pg)?;
        }
        prev = hash;
    }
    tx.execute(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE one = 1",
        &[&seq, &prev],
    )
    .map_err(pg)?;
    tx.commit().map_err(pg)?;
    Ok(seq)
}

/// Erases stored content older than `days` (entries and the chain stay).
pub fn prune_content(client: &mut Client, days: u32, now_ms: i64) -> Result<u64, GovernError> {
    if days == 0 {
        return Ok(0);
    }
    let cutoff = now_ms - days as i64 * 86_400_000;
    let n = client
        .execute("DELETE FROM audit_content WHERE ts_ms < $1", &[&cutoff])
        .map_err(pg)?;
    client
        .execute(
            "UPDATE reviews SET prompt = '[expired]', answer = '[expired]' WHERE ts_ms < $1 AND prompt != '[expired]'",
            &[&cutoff],
        )
        .map_err(pg)?;
    Ok(n)
}

/// Spend per key since `since_ms` (for budgets after a restart).
pub fn spend_since(p: &Pg, key_id: &str, since_ms: i64) -> Result<f64, GovernError> {
    let r = p
        .get()
        .map_err(pg)?
        .query_one(
            "SELECT COALESCE(SUM((entry::jsonb->>'cost_usd')::float8), 0)::float8 FROM audit
             WHERE key_id = $1 AND ts_ms >= $2",
            &[&key_id, &since_ms],
        )
        .map_err(pg)?;
    Ok(r.get(0))
}

/// Recomputes every hash and link of the shared log.
pub fn verify(p: &Pg) -> Result<Verification, GovernError> {
    let mut c = p.get().map_err(pg)?;
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg)?;
    // One snapshot: the rows and the head agree even while replicas append.
    let head = tx
        .query_opt("SELECT seq, hash FROM audit_head WHERE one = 1", &[])
        .map_err(pg)?
        .map(|r| (r.get(0), r.get(1)));
    let portal = tx.bind(VERIFY_ROWS, &[]).map_err(pg)?;
    let mut walk = Walk::default();
    loop {
        let rows = tx.query_portal(&portal, 10_000).map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            walk.push(Row {
                seq: r.get(0),
                id: r.get(1),
                ts_ms: r.get(2),
                key_id: r.get(3),
                entry: r.get(4),
                content_hash: r.get(5),
                prev_hash: r.get(6),
                hash: r.get(7),
                content: r.get(8),
            });
        }
    }
    tx.commit().map_err(pg)?;
    Ok(walk.end(head))
}

/// Writes the shared log as JSON lines (as `audit::export` does).
pub fn export(
    p: &Pg,
    with_content: bool,
    since_ms: i64,
    out: &mut dyn Write,
) -> Result<u64, GovernError> {
    let mut c = p.get().map_err(pg)?;
    let mut tx = c.transaction().map_err(pg)?;
    let portal = tx.bind(&dollars(EXPORT_ROWS), &[&since_ms]).map_err(pg)?;
    let mut n = 0;
    loop {
        let rows = tx.query_portal(&portal, 10_000).map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let content: Option<String> = r.get(6);
            let line = export_line(
                r.get(0),
                r.get(1),
                r.get::<_, &str>(2),
                r.get(3),
                r.get(4),
                r.get(5),
                if with_content { content } else { None },
            );
            writeln!(out, "{line}").map_err(|e| GovernError::Store(e.to_string()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Erases a data subject's stored content (audit, reviews) and appends an `erasure` entry.
pub fn forget(p: &Pg, subject: &str) -> Result<usize, GovernError> {
    let mut c = p.get().map_err(pg)?;
    let n = c
        .execute(
            "DELETE FROM audit_content WHERE key_id = $1 OR user_id = $1",
            &[&subject],
        )
        .map_err(pg)? as usize;
    c.execute(
        "UPDATE reviews SET prompt = '[erased]', answer = '[erased]' WHERE key_id = $1 OR user_id = $1",
        &[&subject],
    )
    .map_err(pg)?;
    append(&mut c, &[erasure(subject, n)])?;
    Ok(n)
}
