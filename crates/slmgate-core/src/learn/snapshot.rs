//! The learning loop's offline commands (`distill export`, `router retrain`) join the audit
//! log, its stored content, reviews and shadow rows with SQL written for the SQLite store. On
//! Postgres they read a snapshot: the window they asked for (`ts_ms >= since`) copied, row by
//! row, into a scratch SQLite file that is removed when the snapshot is dropped. One
//! implementation of each analysis then serves both backends, and a long window costs disk,
//! not memory.

use std::ops::Deref;
use std::path::PathBuf;

use postgres::fallible_iterator::FallibleIterator;
use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use crate::db::{blocking, Pg};
use crate::govern::GovernError;

/// A scratch SQLite copy of the shared store's learning data since a time.
pub struct Snapshot {
    conn: Option<Connection>,
    path: PathBuf,
}

impl Deref for Snapshot {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("the connection lives until drop")
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        drop(self.conn.take());
        for ext in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(ext);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// (table, its columns): what the analyses read, in the column order both schemas share.
const TABLES: &[(&str, &str)] = &[
    (
        "audit",
        "seq, id, ts_ms, key_id, entry, content_hash, prev_hash, hash",
    ),
    ("audit_content", "seq, ts_ms, key_id, user_id, content"),
    (
        "reviews",
        "id, request_id, ts_ms, key_id, user_id, route, tier, model, escalated_from, tags, \
         prompt, answer, verdict, note, reviewed_ms, arm",
    ),
    (
        "shadow_answers",
        "id, ts_ms, request_id, route, key_id, user_id, sample, primary_model, primary_ms, \
         primary_cost_usd, shadow_model, shadow_ms, shadow_cost_usd, error, exact, normalised, \
         similarity, json_fields, agreement, prompt, primary_answer, shadow_answer",
    ),
];

/// Copies every row with `ts_ms >= since_ms` of the tables the learning analyses read.
pub fn from_pg(pg: &Pg, since_ms: i64) -> Result<Snapshot, GovernError> {
    let path = std::env::temp_dir().join(format!("slmgate-snapshot-{}.db", uuid::Uuid::new_v4()));
    let mut snap = Snapshot {
        conn: Some(crate::govern::db::open(&path)?),
        path,
    };
    let conn = snap.conn.as_mut().expect("just opened");
    let store = |e: postgres::Error| GovernError::Store(format!("postgres: {e}"));
    blocking(|| -> Result<(), GovernError> {
        let mut client = pg.get().map_err(|e| GovernError::Store(e.to_string()))?;
        let tx = conn.transaction()?;
        for (table, columns) in TABLES {
            let n = columns.split(',').count();
            let marks = (1..=n)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut insert =
                tx.prepare(&format!("INSERT INTO {table} ({columns}) VALUES ({marks})"))?;
            let mut rows = client
                .query_raw(
                    format!("SELECT {columns} FROM {table} WHERE ts_ms >= $1").as_str(),
                    [since_ms],
                )
                .map_err(store)?;
            while let Some(row) = rows.next().map_err(store)? {
                let values = (0..n).map(|i| cell(&row, i)).collect::<Vec<Sql>>();
                insert.execute(rusqlite::params_from_iter(values))?;
            }
        }
        tx.commit()?;
        Ok(())
    })?;
    Ok(snap)
}

/// A Postgres cell as the SQLite value the same column holds there.
fn cell(row: &postgres::Row, i: usize) -> Sql {
    use postgres::types::Type;
    let t = row.columns()[i].type_().clone();
    let v: Option<Sql> = if t == Type::INT8 {
        row.get::<_, Option<i64>>(i).map(Sql::Integer)
    } else if t == Type::INT4 {
        row.get::<_, Option<i32>>(i).map(|v| Sql::Integer(v.into()))
    } else if t == Type::FLOAT8 {
        row.get::<_, Option<f64>>(i).map(Sql::Real)
    } else if t == Type::FLOAT4 {
        row.get::<_, Option<f32>>(i).map(|v| Sql::Real(v.into()))
    } else if t == Type::BOOL {
        row.get::<_, Option<bool>>(i)
            .map(|v| Sql::Integer(v.into()))
    } else {
        row.get::<_, Option<String>>(i).map(Sql::Text)
    };
    v.unwrap_or(Sql::Null)
}
