//! Stored responses, in the same SQLite file as keys and the audit log (its own table and
//! connection), or in the shared Postgres database with `[storage] backend = "postgres"`, so
//! that a `previous_response_id` stored through one replica continues through any other.
//! A response belongs to the key that created it (`anonymous` with auth off): another key
//! cannot read, continue or delete it.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::wire::openai::Message;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("response store: {0}")]
    Db(String),
}

impl From<crate::db::PgError> for StoreError {
    fn from(e: crate::db::PgError) -> Self {
        StoreError::Db(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// A response as stored: the object the client got, and the conversation up to and
/// including it (what a continuation starts from; instructions are not part of it).
pub struct Stored {
    pub response: Value,
    pub conversation: Vec<Message>,
}

pub enum ResponseStore {
    Sqlite(Mutex<Connection>),
    /// The `responses` table of the shared database (migration 6).
    Pg(crate::db::Pg),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    response TEXT NOT NULL,
    conversation TEXT NOT NULL
);
";

impl ResponseStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(e.to_string()))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self::Sqlite(Mutex::new(conn)))
    }

    /// The store every replica shares (its table is made by the Postgres migrations).
    pub fn pg(pg: crate::db::Pg) -> Self {
        Self::Pg(pg)
    }

    pub fn put(
        &self,
        owner: &str,
        response: &Value,
        conversation: &[Message],
    ) -> Result<(), StoreError> {
        let id = response["id"].as_str().unwrap_or_default();
        let conv =
            serde_json::to_string(conversation).map_err(|e| StoreError::Db(e.to_string()))?;
        let (now, response) = (crate::db::now_ms(), response.to_string());
        match self {
            Self::Sqlite(db) => {
                lock(db).execute(
                    "INSERT OR REPLACE INTO responses (id, owner, created_ms, response, conversation) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, owner, now, response, conv],
                )?;
            }
            Self::Pg(pg) => {
                crate::db::blocking(|| -> Result<(), crate::db::PgError> {
                    pg.get()?.execute(
                        "INSERT INTO responses (id, owner, created_ms, response, conversation)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner,
                             created_ms = EXCLUDED.created_ms, response = EXCLUDED.response,
                             conversation = EXCLUDED.conversation",
                        &[&id, &owner, &now, &response, &conv],
                    )?;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// The response if it exists and belongs to `owner`.
    pub fn get(&self, owner: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        let row: Option<(String, String)> = match self {
            Self::Sqlite(db) => lock(db)
                .query_row(
                    "SELECT response, conversation FROM responses WHERE id = ?1 AND owner = ?2",
                    params![id, owner],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
            Self::Pg(pg) => crate::db::blocking(|| -> Result<_, crate::db::PgError> {
                Ok(pg
                    .get()?
                    .query_opt(
                        "SELECT response, conversation FROM responses WHERE id = $1 AND owner = $2",
                        &[&id, &owner],
                    )?
                    .map(|r| (r.get(0), r.get(1))))
            })?,
        };
        let Some((resp, conv)) = row else {
            return Ok(None);
        };
        Ok(Some(Stored {
            response: serde_json::from_str(&resp).map_err(|e| StoreError::Db(e.to_string()))?,
            conversation: serde_json::from_str(&conv).map_err(|e| StoreError::Db(e.to_string()))?,
        }))
    }

    /// Deletes the response; false if there was none of `owner`'s.
    pub fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let n = match self {
            Self::Sqlite(db) => lock(db).execute(
                "DELETE FROM responses WHERE id = ?1 AND owner = ?2",
                params![id, owner],
            )? as u64,
            Self::Pg(pg) => crate::db::blocking(|| -> Result<u64, crate::db::PgError> {
                Ok(pg.get()?.execute(
                    "DELETE FROM responses WHERE id = $1 AND owner = $2",
                    &[&id, &owner],
                )?)
            })?,
        };
        Ok(n > 0)
    }
}

fn lock(db: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    db.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owners_see_only_their_own() {
        let dir = std::env::temp_dir().join(format!("slmgate-rs-{}", uuid::Uuid::new_v4()));
        let s = ResponseStore::open(&dir.join("x.db")).unwrap();
        let r = json!({"id": "resp_1", "output": []});
        s.put("k1", &r, &[Message::text("user", "hi")]).unwrap();
        let got = s.get("k1", "resp_1").unwrap().unwrap();
        assert_eq!(got.response, r);
        assert_eq!(got.conversation.len(), 1);
        assert!(s.get("k2", "resp_1").unwrap().is_none());
        assert!(!s.delete("k2", "resp_1").unwrap());
        assert!(s.delete("k1", "resp_1").unwrap());
        assert!(s.get("k1", "resp_1").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
