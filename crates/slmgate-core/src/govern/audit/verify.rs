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

pub(super) struct Row {
    pub seq: i64,
    pub id: String,
    pub ts_ms: i64,
    pub key_id: Option<String>,
    pub entry: String,
    pub content_hash: String,
    pub prev_hash: String,
    pub hash: String,
    pub content: Option<String>,
}

/// The rows verification reads, in `seq` order, with their content.
pub(super) const VERIFY_ROWS: &str =
    "SELECT a.seq, a.id, a.ts_ms, a.key_id, a.entry, a.content_hash, a.prev_hash, a.hash, c.content
     FROM audit a LEFT JOIN audit_content c ON c.seq = a.seq ORDER BY a.seq";

/// Recomputes every hash and link; reports deleted, edited, reordered and truncated entries.
pub fn verify(conn: &Connection) -> Result<Verification, GovernError> {
    let mut stmt = conn.prepare(VERIFY_ROWS)?;
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
    let mut walk = Walk::default();
    for row in rows {
        walk.push(row?);
    }
    let head = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE one = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(walk.end(head))
}

/// A walk along the chain, one row at a time (any store).
pub(super) struct Walk {
    v: Verification,
    expected: i64,
    prev: String,
    last: Option<(i64, String)>,
}

impl Default for Walk {
    fn default() -> Self {
        Self {
            v: Verification::default(),
            expected: 1,
            prev: GENESIS.to_string(),
            last: None,
        }
    }
}

impl Walk {
    pub(super) fn push(&mut self, r: Row) {
        let Walk {
            v,
            expected,
            prev,
            last,
        } = self;
        let expected = &mut *expected;
        v.entries += 1;
        if r.seq != *expected {
            v.problems.push(if r.seq > *expected {
                format!("entries {expected}..{} are missing (deleted)", r.seq - 1)
            } else {
                format!("entry {} is out of order", r.seq)
            });
        }
        if r.prev_hash != *prev {
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
        *prev = r.hash.clone();
        *expected = r.seq + 1;
        *last = Some((r.seq, r.hash));
    }

    /// The verification, given the head the store records.
    pub(super) fn end(self, head: Option<(i64, String)>) -> Verification {
        let Walk { mut v, last, .. } = self;
        v.head = head;
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
        v
    }
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
    let mut stmt = conn.prepare(EXPORT_ROWS)?;
    let mut rows = stmt.query([since_ms])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let line = export_line(
            r.get(0)?,
            r.get(1)?,
            &r.get::<_, String>(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            if with_content { r.get(6)? } else { None },
        );
        writeln!(out, "{line}").map_err(|e| GovernError::Store(e.to_string()))?;
        n += 1;
    }
    Ok(n)
}

/// The rows export reads (from `$1`/`?1` ms on).
pub(super) const EXPORT_ROWS: &str =
    "SELECT a.seq, a.ts_ms, a.entry, a.content_hash, a.prev_hash, a.hash, c.content
     FROM audit a LEFT JOIN audit_content c ON c.seq = a.seq WHERE a.ts_ms >= ?1 ORDER BY a.seq";

/// One exported JSON line.
pub(super) fn export_line(
    seq: i64,
    ts_ms: i64,
    entry: &str,
    content_hash: String,
    prev_hash: String,
    hash: String,
    content: Option<String>,
) -> serde_json::Value {
    serde_json::json!({
        "seq": seq,
        "time": db::rfc3339(ts_ms),
        "entry": serde_json::from_str::<serde_json::Value>(entry).unwrap_or(serde_json::Value::Null),
        "content": content.and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok()),
        "content_hash": content_hash,
        "prev_hash": prev_hash,
        "hash": hash,
    })
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
    append(conn, &[erasure(subject, n)])?;
    Ok(n)
}

/// The `erasure` entry that records a `forget` (the subject hashed: it must not
/// re-identify).
pub(super) fn erasure(subject: &str, n: usize) -> Record {
    Record {
        entry: Entry {
            kind: "erasure",
            id: uuid::Uuid::new_v4().to_string(),
            ts_ms: db::now_ms(),
            endpoint: "cli",
            user: Some(format!("sha256:{}", sha256_hex(subject.as_bytes()))),
            model: String::new(),
            status: 200,
            error: Some(format!("erased content of {n} entries")),
            ..Default::default()
        },
        content: None,
        review: None,
        commit: None,
    }
}
