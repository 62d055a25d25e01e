//! The knowledge store in the shared Postgres database (`[storage] backend = "postgres"`):
//! the same tables as the SQLite store, chunk vectors in a pgvector column. Every replica
//! reads the same collections; each keeps its own BM25 index on local disk and rebuilds it
//! when another replica changed the collection (its generation moved).

use pgvector::Vector;
use postgres::Row;
use serde_json::Value;

use super::store::{Collection, DocFile, KnowledgeStore, StoredChunk, Upload};
use super::KnowError;
use crate::db::Pg;

pub struct PgKnowledge {
    pg: Pg,
}

fn db(e: impl std::fmt::Display) -> KnowError {
    KnowError::Store(e.to_string())
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

const COLLECTION: &str = "id, name, owner, created_s, embedding, dims, metadata, generation";

fn collection_row(r: &Row) -> Collection {
    Collection {
        id: r.get(0),
        name: r.get(1),
        owner: r.get(2),
        created_s: r.get(3),
        embedding: r.get(4),
        dims: r.get::<_, i64>(5) as usize,
        metadata: json_of(r.get(6)),
        generation: r.get(7),
    }
}

const FILE: &str = "file_id, filename, sha256, bytes, chunks, attributes, created_s";

fn file_row(r: &Row) -> DocFile {
    DocFile {
        file_id: r.get(0),
        filename: r.get(1),
        sha256: r.get(2),
        bytes: r.get::<_, i64>(3) as usize,
        chunks: r.get::<_, i64>(4) as usize,
        attributes: json_of(r.get(5)),
        created_s: r.get(6),
    }
}

const UPLOAD: &str = "id, owner, filename, bytes, purpose, created_s";

fn upload_row(r: &Row) -> Upload {
    Upload {
        id: r.get(0),
        owner: r.get(1),
        filename: r.get(2),
        bytes: r.get::<_, i64>(3) as usize,
        purpose: r.get(4),
        created_s: r.get(5),
    }
}

impl PgKnowledge {
    pub fn new(pg: Pg) -> Self {
        Self { pg }
    }

    /// Runs `f` on a pooled connection, off any async worker ([`crate::db::blocking`]).
    fn with<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, KnowError>,
    ) -> Result<T, KnowError> {
        crate::db::blocking(|| {
            let mut c = self.pg.get().map_err(db)?;
            f(&mut c)
        })
    }
}

impl KnowledgeStore for PgKnowledge {
    fn create_collection(&self, c: &Collection) -> Result<(), KnowError> {
        self.with(|client| {
            client
                .execute(
                    "INSERT INTO kn_collections (id, name, owner, created_s, embedding, dims, metadata, generation)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
                    &[&c.id, &c.name, &c.owner, &c.created_s, &c.embedding, &(c.dims as i64), &c.metadata.to_string()],
                )
                .map_err(db)?;
            Ok(())
        })
    }

    fn collection(
        &self,
        id_or_name: &str,
        owner: Option<&str>,
    ) -> Result<Option<Collection>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLLECTION} FROM kn_collections WHERE (id = $1 OR name = $1)
                         AND ($2::TEXT IS NULL OR owner = $2)
                         ORDER BY id = $1 DESC, owner = 'admin' DESC, created_s LIMIT 1"
                    ),
                    &[&id_or_name, &owner],
                )
                .map_err(db)?;
            Ok(rows.first().map(collection_row))
        })
    }

    fn collections(&self, owner: Option<&str>) -> Result<Vec<Collection>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLLECTION} FROM kn_collections WHERE $1::TEXT IS NULL OR owner = $1
                         ORDER BY created_s DESC, id"
                    ),
                    &[&owner],
                )
                .map_err(db)?;
            Ok(rows.iter().map(collection_row).collect())
        })
    }

    fn delete_collection(&self, id: &str) -> Result<bool, KnowError> {
        self.with(|c| {
            let c = &mut *c;
            let mut tx = c.transaction().map_err(db)?;
            tx.execute("DELETE FROM kn_chunks WHERE collection = $1", &[&id])
                .map_err(db)?;
            tx.execute("DELETE FROM kn_files WHERE collection = $1", &[&id])
                .map_err(db)?;
            let n = tx
                .execute("DELETE FROM kn_collections WHERE id = $1", &[&id])
                .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(n > 0)
        })
    }

    fn put_file(
        &self,
        collection: &str,
        f: &DocFile,
        chunks: &[StoredChunk],
    ) -> Result<(), KnowError> {
        self.with(|c| {
            let c = &mut *c;
            let mut tx = c.transaction().map_err(db)?;
            tx.execute(
                "DELETE FROM kn_chunks WHERE collection = $1 AND file_id = $2",
                &[&collection, &f.file_id],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO kn_files (collection, file_id, filename, sha256, bytes, chunks, attributes, created_s)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (collection, file_id) DO UPDATE SET filename = excluded.filename,
                   sha256 = excluded.sha256, bytes = excluded.bytes, chunks = excluded.chunks,
                   attributes = excluded.attributes, created_s = excluded.created_s",
                &[
                    &collection,
                    &f.file_id,
                    &f.filename,
                    &f.sha256,
                    &(f.bytes as i64),
                    &(f.chunks as i64),
                    &f.attributes.to_string(),
                    &f.created_s,
                ],
            )
            .map_err(db)?;
            let ins = tx
                .prepare(
                    "INSERT INTO kn_chunks (id, collection, file_id, idx, heading, text, vector)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (collection, id) DO UPDATE SET file_id = excluded.file_id,
                       idx = excluded.idx, heading = excluded.heading, text = excluded.text,
                       vector = excluded.vector",
                )
                .map_err(db)?;
            for ch in chunks {
                tx.execute(
                    &ins,
                    &[
                        &ch.id,
                        &collection,
                        &ch.file_id,
                        &(ch.index as i64),
                        &ch.heading,
                        &ch.text,
                        &Vector::from(ch.vector.clone()),
                    ],
                )
                .map_err(db)?;
            }
            tx.execute(
                "UPDATE kn_collections SET generation = generation + 1 WHERE id = $1",
                &[&collection],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
    }

    fn delete_file(&self, collection: &str, file_id: &str) -> Result<bool, KnowError> {
        self.with(|c| {
            let c = &mut *c;
            let mut tx = c.transaction().map_err(db)?;
            tx.execute(
                "DELETE FROM kn_chunks WHERE collection = $1 AND file_id = $2",
                &[&collection, &file_id],
            )
            .map_err(db)?;
            let n = tx
                .execute(
                    "DELETE FROM kn_files WHERE collection = $1 AND file_id = $2",
                    &[&collection, &file_id],
                )
                .map_err(db)?;
            tx.execute(
                "UPDATE kn_collections SET generation = generation + 1 WHERE id = $1",
                &[&collection],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(n > 0)
        })
    }

    fn file(&self, collection: &str, file_id: &str) -> Result<Option<DocFile>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!("SELECT {FILE} FROM kn_files WHERE collection = $1 AND file_id = $2"),
                    &[&collection, &file_id],
                )
                .map_err(db)?;
            Ok(rows.first().map(file_row))
        })
    }

    fn files(&self, collection: &str) -> Result<Vec<DocFile>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {FILE} FROM kn_files WHERE collection = $1 ORDER BY created_s DESC, file_id"
                    ),
                    &[&collection],
                )
                .map_err(db)?;
            Ok(rows.iter().map(file_row).collect())
        })
    }

    fn chunks(&self, collection: &str) -> Result<Vec<StoredChunk>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    "SELECT id, file_id, idx, heading, text, vector FROM kn_chunks
                     WHERE collection = $1 ORDER BY file_id, idx",
                    &[&collection],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| StoredChunk {
                    id: r.get(0),
                    file_id: r.get(1),
                    index: r.get::<_, i64>(2) as usize,
                    heading: r.get(3),
                    text: r.get(4),
                    vector: r.get::<_, Vector>(5).to_vec(),
                })
                .collect())
        })
    }

    fn generation(&self, collection: &str) -> Result<i64, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    "SELECT generation FROM kn_collections WHERE id = $1",
                    &[&collection],
                )
                .map_err(db)?;
            Ok(rows.first().map(|r| r.get(0)).unwrap_or(-1))
        })
    }

    fn put_upload(&self, u: &Upload, content: &[u8]) -> Result<(), KnowError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO kn_uploads (id, owner, filename, bytes, purpose, created_s, content)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &u.id,
                    &u.owner,
                    &u.filename,
                    &(u.bytes as i64),
                    &u.purpose,
                    &u.created_s,
                    &content,
                ],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn upload(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(Upload, Vec<u8>)>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {UPLOAD}, content FROM kn_uploads WHERE id = $1 AND ($2::TEXT IS NULL OR owner = $2)"
                    ),
                    &[&id, &owner],
                )
                .map_err(db)?;
            Ok(rows.first().map(|r| (upload_row(r), r.get::<_, Vec<u8>>(6))))
        })
    }

    fn uploads(&self, owner: Option<&str>) -> Result<Vec<Upload>, KnowError> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {UPLOAD} FROM kn_uploads WHERE $1::TEXT IS NULL OR owner = $1 ORDER BY created_s DESC, id"
                    ),
                    &[&owner],
                )
                .map_err(db)?;
            Ok(rows.iter().map(upload_row).collect())
        })
    }

    fn delete_upload(&self, id: &str, owner: Option<&str>) -> Result<bool, KnowError> {
        self.with(|c| {
            let n = c
                .execute(
                    "DELETE FROM kn_uploads WHERE id = $1 AND ($2::TEXT IS NULL OR owner = $2)",
                    &[&id, &owner],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
    }
}
