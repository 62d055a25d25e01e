//! `slmgate audit verify | export | forget`: walking the chain, dumping it, erasing a data
//! subject's content without breaking it.

use std::io::Write;

use rusqlite::{params, Connection, OptionalExtension};

use super::chain::{entry_hash, sha256_hex, GENESIS};
use super::entry::{Entry, Record};
use super::store::append;
use crate::govern::{db, GovernError};

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct Verification {
    pub entries: i64,
    pub head: Option<(i64, String)>,
    /// Entries whose content was erased (forget or retention); not a failure.
    pub erased: i64,
    /// Every break found, with where it is.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Row {
    seq: i64,
    id: String,
    ts_ms: i64,
    key_id: Option<String>,
    entry: String,
    content_hash: String,
    prev_hash: String,
    hash: String,
    content: Option<String>,
}

/// Recomputes every hash and link; reports deleted, edited, reordered and truncated entries.
pub fn verify(conn: &Connection) -> Result<Verification, GovernError> {
    let mut v = Verification::default();
    let mut stmt = conn.prepare(
        "SELECT a.seq, a.id, a.ts_ms, a.key_id, a.entry, a.content_hash, a.prev_hash, a.hash, c.content
         FROM audit a LEFT JOIN audit_content c ON c.seq = a.seq ORDER BY a.seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Row {
            seq: r.get(0)?,
            id: r.get(1)?,
            ts_ms: r.get(2)?,
            key_id: r.get(3)?,
            entry: r.get(4)?,
            content_hash: r.get(5)?,
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
            content: r.get(8)?,
        })
    })?;
    let mut expected = 1i64;
    let mut prev = GENESIS.to_string();
    let mut last: Option<(i64, String)> = None;
    for row in rows {
        let r = row?;
        v.entries += 1;
        if r.seq != expected {
            v.problems.push(if r.seq > expected {
                format!("entries {expected}..{} are missing (deleted)", r.seq - 1)
            } else {
                format!("entry {} is out of order", r.seq)
            });
        }
        if r.prev_hash != prev {
            v.problems.push(format!(
                "entry {}: does not follow the entry before it (reordered, replaced or an entry before it deleted)",
                r.seq
            ));
        }
        if entry_hash(&r.prev_hash, r.seq, &r.entry, &r.content_hash) != r.hash {
            v.problems
                .push(format!("entry {}: edited (its hash does not match)", r.seq));
        } else if !columns_match(&r) {
            v.problems.push(format!(
                "entry {}: indexed columns edited (id, time or key differ from the hashed entry)",
                r.seq
            ));
        }
        match (&r.content, r.content_hash.is_empty()) {
            (Some(c), false) if sha256_hex(c.as_bytes()) != r.content_hash => v
                .problems
                .push(format!("entry {}: stored content edited", r.seq)),
            (Some(_), true) => v
                .problems
                .push(format!("entry {}: content added afterwards", r.seq)),
            (None, false) => v.erased += 1,
            _ => {}
        }
        prev = r.hash.clone();
        expected = r.seq + 1;
        last = Some((r.seq, r.hash));
    }
    v.head = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE one = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match (&v.head, &last) {
        (Some((hs, hh)), Some((ls, lh))) if hs != ls || hh != lh => v.problems.push(format!(
            "the log ends at entry {ls} but its head records entry {hs}: truncated or rewritten"
        )),
        (Some((hs, _)), None) if *hs > 0 => v.problems.push(format!(
            "the log is empty but its head records entry {hs}: truncated"
        )),
        (None, Some((ls, _))) => v
            .problems
            .push(format!("the head is missing (log ends at entry {ls})")),
        _ => {}
    }
    Ok(v)
}

fn columns_match(r: &Row) -> bool {
    let Ok(e) = serde_json::from_str::<serde_json::Value>(&r.entry) else {
        return false;
    };
    e["id"].as_str() == Some(r.id.as_str())
        && e["ts_ms"].as_i64() == Some(r.ts_ms)
        && e["key_id"].as_str() == r.key_id.as_deref()
}

/// Writes the log as JSON lines (`seq`, `time`, hashes, `entry`, and `content` if asked).
pub fn export(
    conn: &Connection,
    with_content: bool,
    since_ms: i64,
    out: &mut dyn Write,
) -> Result<u64, GovernError> {
    let mut stmt = conn.prepare(
        "SELECT a.seq, a.ts_ms, a.entry, a.content_hash, a.prev_hash, a.hash, c.content
         FROM audit a LEFT JOIN audit_content c ON c.seq = a.seq WHERE a.ts_ms >= ?1 ORDER BY a.seq",
    )?;
    let mut rows = stmt.query([since_ms])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let entry: String = r.get(2)?;
        let content: Option<String> = r.get(6)?;
        let line = serde_json::json!({
            "seq": r.get::<_, i64>(0)?,
            "time": db::rfc3339(r.get(1)?),
            "entry": serde_json::from_str::<serde_json::Value>(&entry).unwrap_or(serde_json::Value::Null),
            "content": if with_content { content.and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok()) } else { None },
            "content_hash": r.get::<_, String>(3)?,
            "prev_hash": r.get::<_, String>(4)?,
            "hash": r.get::<_, String>(5)?,
        });
        writeln!(out, "{line}").map_err(|e| GovernError::Store(e.to_string()))?;
        n += 1;
    }
    Ok(n)
}

/// Erases the stored content (audit, review queue, shadow answers) of a data subject — an API key id or
/// a request `user` — and appends an `erasure` entry; the chain still verifies.
pub fn forget(conn: &mut Connection, subject: &str) -> Result<usize, GovernError> {
    let n = conn.execute(
        "DELETE FROM audit_content WHERE key_id = ?1 OR user_id = ?1",
        params![subject],
    )?;
    conn.execute(
        "UPDATE reviews SET prompt = '[erased]', answer = '[erased]' WHERE key_id = ?1 OR user_id = ?1",
        params![subject],
    )?;
    conn.execute(
        "UPDATE shadow_answers SET prompt = NULL, primary_answer = NULL, shadow_answer = NULL WHERE key_id = ?1 OR user_id = ?1",
        params![subject],
    )?;
    let entry = Entry {
        kind: "erasure",
        id: uuid::Uuid::new_v4().to_string(),
        ts_ms: db::now_ms(),
        endpoint: "cli",
        // The subject's hash, not the subject: an erasure record must not re-identify.
        user: Some(format!("sha256:{}", sha256_hex(subject.as_bytes()))),
        model: String::new(),
        status: 200,
        error: Some(format!("erased content of {n} entries")),
        ..Default::default()
    };
    append(
        conn,
        &[Record {
            entry,
            content: None,
            review: None,
            commit: None,
        }],
    )?;
    Ok(n)
}
