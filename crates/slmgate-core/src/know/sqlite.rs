//! The embedded knowledge store: tables in the `[storage]` SQLite file (its own connection).
//! Vectors are little-endian `f32` blobs; the full-text index is tantivy's, on disk beside it.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use super::store::{Collection, DocFile, KnowledgeStore, StoredChunk, Upload};
use super::KnowError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kn_collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    embedding TEXT NOT NULL,
    dims INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS kn_collections_name ON kn_collections (name);
CREATE TABLE IF NOT EXISTS kn_files (
    collection TEXT NOT NULL,
    file_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    PRIMARY KEY (collection, file_id)
);
CREATE TABLE IF NOT EXISTS kn_chunks (
    id TEXT NOT NULL,
    collection TEXT NOT NULL,
    file_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS kn_chunks_file ON kn_chunks (collection, file_id);
CREATE TABLE IF NOT EXISTS kn_uploads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    content BLOB NOT NULL
);
";

pub struct SqliteKnowledge {
    db: Mutex<Connection>,
}

fn db(e: rusqlite::Error) -> KnowError {
    KnowError::Store(e.to_string())
}

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_of(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn json_of(s: String) -> Value {
    serde_json::from_str(&s).unwrap_or(Value::Null)
}

const COLLECTION: &str = "id, name, owner, created_s, embedding, dims, metadata, generation";

fn collection_row(r: &Row) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: r.get(0)?,
        name: r.get(1)?,
        owner: r.get(2)?,
        created_s: r.get(3)?,
        embedding: r.get(4)?,
        dims: r.get::<_, i64>(5)? as usize,
        metadata: json_of(r.get(6)?),
        generation: r.get(7)?,
    })
}

const FILE: &str = "file_id, filename, sha256, bytes, chunks, attributes, created_s";

fn file_row(r: &Row) -> rusqlite::Result<DocFile> {
    Ok(DocFile {
        file_id: r.get(0)?,
        filename: r.get(1)?,
        sha256: r.get(2)?,
        bytes: r.get::<_, i64>(3)? as usize,
        chunks: r.get::<_, i64>(4)? as usize,
        attributes: json_of(r.get(5)?),
        created_s: r.get(6)?,
    })
}

const UPLOAD: &str = "id, owner, filename, bytes, purpose, created_s";

fn upload_row(r: &Row) -> rusqlite::Result<Upload> {
    Ok(Upload {
        id: r.get(0)?,
        owner: r.get(1)?,
        filename: r.get(2)?,
        bytes: r.get::<_, i64>(3)? as usize,
        purpose: r.get(4)?,
        created_s: r.get(5)?,
    })
}

impl SqliteKnowledge {
    pub fn open(path: &Path) -> Result<Self, KnowError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| KnowError::Store(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(Self {
            db: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KnowledgeStore for SqliteKnowledge {
    fn create_collection(&self, c: &Collection) -> Result<(), KnowError> {
        self.conn()
            .execute(
                "INSERT INTO kn_collections (id, name, owner, created_s, embedding, dims, metadata, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![c.id, c.name, c.owner, c.created_s, c.embedding, c.dims as i64, c.metadata.to_string()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn collection(
        &self,
        id_or_name: &str,
        owner: Option<&str>,
    ) -> Result<Option<Collection>, KnowError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {COLLECTION} FROM kn_collections WHERE (id = ?1 OR name = ?1)
                 AND (?2 IS NULL OR owner = ?2)
                 ORDER BY id = ?1 DESC, owner = 'admin' DESC, created_s"
            ))
            .map_err(db)?;
        st.query_row(params![id_or_name, owner], collection_row)
            .optional()
            .map_err(db)
    }

    fn collections(&self, owner: Option<&str>) -> Result<Vec<Collection>, KnowError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {COLLECTION} FROM kn_collections WHERE ?1 IS NULL OR owner = ?1
                 ORDER BY created_s DESC, id"
            ))
            .map_err(db)?;
        let rows = st.query_map(params![owner], collection_row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn delete_collection(&self, id: &str) -> Result<bool, KnowError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        tx.execute("DELETE FROM kn_chunks WHERE collection = ?1", [id])
            .map_err(db)?;
        tx.execute("DELETE FROM kn_files WHERE collection = ?1", [id])
            .map_err(db)?;
        let n = tx
            .execute("DELETE FROM kn_collections WHERE id = ?1", [id])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n > 0)
    }

    fn put_file(
        &self,
        collection: &str,
        f: &DocFile,
        chunks: &[StoredChunk],
    ) -> Result<(), KnowError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM kn_chunks WHERE collection = ?1 AND file_id = ?2",
            params![collection, f.file_id],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT OR REPLACE INTO kn_files (collection, file_id, filename, sha256, bytes, chunks, attributes, created_s)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![collection, f.file_id, f.filename, f.sha256, f.bytes as i64, f.chunks as i64, f.attributes.to_string(), f.created_s],
        )
        .map_err(db)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT OR REPLACE INTO kn_chunks (id, collection, file_id, idx, heading, text, vector)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db)?;
            for c in chunks {
                ins.execute(params![
                    c.id,
                    collection,
                    c.file_id,
                    c.index as i64,
                    c.heading,
                    c.text,
                    vector_bytes(&c.vector)
                ])
                .map_err(db)?;
            }
        }
        tx.execute(
            "UPDATE kn_collections SET generation = generation + 1 WHERE id = ?1",
            [collection],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn delete_file(&self, collection: &str, file_id: &str) -> Result<bool, KnowError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM kn_chunks WHERE collection = ?1 AND file_id = ?2",
            params![collection, file_id],
        )
        .map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM kn_files WHERE collection = ?1 AND file_id = ?2",
                params![collection, file_id],
            )
            .map_err(db)?;
        tx.execute(
            "UPDATE kn_collections SET generation = generation + 1 WHERE id = ?1",
            [collection],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n > 0)
    }

    fn file(&self, collection: &str, file_id: &str) -> Result<Option<DocFile>, KnowError> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {FILE} FROM kn_files WHERE collection = ?1 AND file_id = ?2"),
            params![collection, file_id],
            file_row,
        )
        .optional()
        .map_err(db)
    }

    fn files(&self, collection: &str) -> Result<Vec<DocFile>, KnowError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {FILE} FROM kn_files WHERE collection = ?1 ORDER BY created_s DESC, file_id"
            ))
            .map_err(db)?;
        let rows = st.query_map([collection], file_row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn chunks(&self, collection: &str) -> Result<Vec<StoredChunk>, KnowError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, file_id, idx, heading, text, vector FROM kn_chunks
                 WHERE collection = ?1 ORDER BY file_id, idx",
            )
            .map_err(db)?;
        let rows = st
            .query_map([collection], |r| {
                Ok(StoredChunk {
                    id: r.get(0)?,
                    file_id: r.get(1)?,
                    index: r.get::<_, i64>(2)? as usize,
                    heading: r.get(3)?,
                    text: r.get(4)?,
                    vector: vector_of(&r.get::<_, Vec<u8>>(5)?),
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn generation(&self, collection: &str) -> Result<i64, KnowError> {
        self.conn()
            .query_row(
                "SELECT generation FROM kn_collections WHERE id = ?1",
                [collection],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
            .map(|g| g.unwrap_or(-1))
    }

    fn put_upload(&self, u: &Upload, content: &[u8]) -> Result<(), KnowError> {
        self.conn()
            .execute(
                "INSERT INTO kn_uploads (id, owner, filename, bytes, purpose, created_s, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    u.id,
                    u.owner,
                    u.filename,
                    u.bytes as i64,
                    u.purpose,
                    u.created_s,
                    content
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn upload(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(Upload, Vec<u8>)>, KnowError> {
        let conn = self.conn();
        conn.query_row(
            &format!(
                "SELECT {UPLOAD}, content FROM kn_uploads WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)"
            ),
            params![id, owner],
            |r| Ok((upload_row(r)?, r.get::<_, Vec<u8>>(6)?)),
        )
        .optional()
        .map_err(db)
    }

    fn uploads(&self, owner: Option<&str>) -> Result<Vec<Upload>, KnowError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {UPLOAD} FROM kn_uploads WHERE ?1 IS NULL OR owner = ?1 ORDER BY created_s DESC, id"
            ))
            .map_err(db)?;
        let rows = st.query_map(params![owner], upload_row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn delete_upload(&self, id: &str, owner: Option<&str>) -> Result<bool, KnowError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM kn_uploads WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
                params![id, owner],
            )
            .map_err(db)?;
        Ok(n > 0)
    }
}
