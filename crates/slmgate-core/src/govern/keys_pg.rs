//! The keys table in the shared Postgres store: the same rows as the SQLite table, plus
//! `changed_ms` (set by every create and revoke) so replicas notice changes with one cheap
//! query on their refresh tick.

use std::collections::HashMap;

use postgres::Row;

use super::keys::{fresh, hash_key, join, split, Budget, KeyRecord, KeySpec, Period};
use super::{db, GovernError};
use crate::db::Pg;

const COLUMNS: &str = "id, prefix, name, team, budget_usd, budget_period, rpm, tpm, models, residency, created_ms, revoked_ms, hash, scopes";

fn pg(e: impl std::fmt::Display) -> GovernError {
    GovernError::Store(e.to_string())
}

fn row(r: &Row) -> (KeyRecord, String) {
    let budget = match (r.get::<_, Option<f64>>(4), r.get::<_, Option<String>>(5)) {
        (Some(usd), Some(p)) => Period::parse(&p).map(|period| Budget { usd, period }),
        _ => None,
    };
    let limit = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v as u32);
    (
        KeyRecord {
            id: r.get(0),
            prefix: r.get(1),
            spec: KeySpec {
                name: r.get(2),
                team: r.get(3),
                budget,
                rpm: limit(6),
                tpm: limit(7),
                models: split(r.get(8)),
                residency: split(r.get(9)),
                scopes: split(r.get(13)),
            },
            created: db::rfc3339(r.get(10)),
            revoked: r.get::<_, Option<i64>>(11).map(db::rfc3339),
        },
        r.get(12),
    )
}

/// Stores a new key; returns its record and the plaintext (shown once, never stored).
pub fn create(p: &Pg, spec: KeySpec) -> Result<(KeyRecord, String), GovernError> {
    let (plaintext, id, prefix) = fresh();
    let now = db::now_ms();
    p.get().map_err(pg)?.execute(
        "INSERT INTO keys (id, hash, prefix, name, team, budget_usd, budget_period, rpm, tpm, models, residency, created_ms, scopes, changed_ms)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$12)",
        &[
            &id,
            &hash_key(&plaintext),
            &prefix,
            &spec.name,
            &spec.team,
            &spec.budget.map(|b| b.usd),
            &spec.budget.map(|b| b.period.as_str()),
            &spec.rpm.map(i64::from),
            &spec.tpm.map(i64::from),
            &join(&spec.models),
            &join(&spec.residency),
            &now,
            &join(&spec.scopes),
        ],
    )
    .map_err(pg)?;
    let rec = KeyRecord {
        id,
        prefix,
        spec,
        created: db::rfc3339(now),
        revoked: None,
    };
    Ok((rec, plaintext))
}

pub fn list(p: &Pg) -> Result<Vec<KeyRecord>, GovernError> {
    let rows = p
        .get()
        .map_err(pg)?
        .query(
            &format!("SELECT {COLUMNS} FROM keys ORDER BY created_ms"),
            &[],
        )
        .map_err(pg)?;
    Ok(rows.iter().map(|r| row(r).0).collect())
}

/// Revokes a key; false when there is no such key.
pub fn revoke(p: &Pg, id: &str) -> Result<bool, GovernError> {
    let now = db::now_ms();
    Ok(p.get()
        .map_err(pg)?
        .execute(
            "UPDATE keys SET revoked_ms = COALESCE(revoked_ms, $2), changed_ms = $2 WHERE id = $1",
            &[&id, &now],
        )
        .map_err(pg)?
        > 0)
}

/// One key by the hash of its plaintext.
pub fn by_hash(p: &Pg, hash: &str) -> Result<Option<KeyRecord>, GovernError> {
    let rows = p
        .get()
        .map_err(pg)?
        .query(
            &format!("SELECT {COLUMNS} FROM keys WHERE hash = $1"),
            &[&hash],
        )
        .map_err(pg)?;
    Ok(rows.first().map(|r| row(r).0))
}

/// The keys table's version: its row count and latest change.
pub type Version = (i64, i64);

/// Every key by hash, and the table's version.
pub fn all(p: &Pg) -> Result<(HashMap<String, KeyRecord>, Version), GovernError> {
    let mut c = p.get().map_err(pg)?;
    let version = version_of(&mut c)?;
    let rows = c
        .query(&format!("SELECT {COLUMNS} FROM keys"), &[])
        .map_err(pg)?;
    let map = rows
        .iter()
        .map(|r| {
            let (k, h) = row(r);
            (h, k)
        })
        .collect();
    Ok((map, version))
}

/// The table's version: row count and latest change (a create or a revoke moves it).
pub fn version(p: &Pg) -> Result<(i64, i64), GovernError> {
    let mut c = p.get().map_err(pg)?;
    version_of(&mut c)
}

fn version_of(c: &mut postgres::Client) -> Result<(i64, i64), GovernError> {
    let r = c
        .query_one(
            "SELECT count(*)::BIGINT, COALESCE(max(changed_ms), 0)::BIGINT FROM keys",
            &[],
        )
        .map_err(pg)?;
    Ok((r.get(0), r.get(1)))
}
