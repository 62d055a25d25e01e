//! The knowledge service: collections over a [`KnowledgeStore`], each with its BM25 index
//! and an in-memory snapshot of its vectors (reloaded when the collection's generation
//! moves, so a `slmgate rag ingest` run beside a serving gateway shows up at the next
//! search). Ingest: extract → chunk → embed in batches → store → index. Search: dense and
//! BM25 rankings, reciprocal-rank fusion, a similarity floor, attribute filters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use slmgate_engine::SentenceEmbedder;

use super::bm25::Bm25;
use super::chunk::chunk;
use super::extract::{extract, Limits};
use super::filter::Filter;
use super::fusion::rrf;
use super::store::{now_s, Collection, DocFile, KnowledgeStore, StoredChunk};
use super::vectors::{normalise, Vectors};
use super::KnowError;
use crate::config::KnowledgeConfig;

/// Chunks embedded per batch.
const EMBED_BATCH: usize = 16;

/// One retrieved chunk.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub chunk_id: String,
    pub file_id: String,
    pub filename: String,
    pub heading: String,
    pub text: String,
    /// Fused (RRF) score over its best possible (first in both rankings): 0..1.
    pub score: f32,
    /// Cosine similarity of the chunk to the query.
    pub similarity: f32,
    pub attributes: Value,
}

/// Which rankings a search fuses: both (what routes and the Vector Stores API use), or
/// one alone (the baselines of `slmgate rag eval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// BM25 and dense, fused by RRF, then the similarity floor.
    Hybrid,
    /// BM25 alone (no floor: it needs no embedding).
    Lexical,
    /// Dense alone, then the similarity floor.
    Dense,
}

/// A document to ingest.
pub struct NewFile<'a> {
    pub file_id: String,
    pub filename: String,
    pub bytes: &'a [u8],
    pub attributes: Value,
}

/// What ingesting a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Added,
    Replaced,
    /// Same content as stored: nothing re-embedded.
    Unchanged,
}

struct Snapshot {
    generation: i64,
    chunks: Vec<StoredChunk>,
    files: HashMap<String, DocFile>,
    index_of: HashMap<String, usize>,
    vectors: Vectors,
}

struct Opened {
    bm25: Bm25,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// One ingest or delete at a time per collection.
    writing: Mutex<()>,
    /// The collection generation the BM25 index reflects (a shared store: another replica
    /// may have changed the collection since).
    indexed: Mutex<i64>,
}

pub struct Knowledge {
    store: Arc<dyn KnowledgeStore>,
    dir: PathBuf,
    cfg: KnowledgeConfig,
    opened: Mutex<HashMap<String, Arc<Opened>>>,
    /// The store is shared with other replicas (each has its own BM25 index on disk).
    shared: bool,
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

impl Knowledge {
    pub fn new(store: Arc<dyn KnowledgeStore>, dir: PathBuf, cfg: KnowledgeConfig) -> Self {
        Self {
            store,
            dir,
            cfg,
            opened: Mutex::new(HashMap::new()),
            shared: false,
        }
    }

    /// Collections in the shared Postgres store; the BM25 indexes in `[knowledge] dir`
    /// (default `rag/` beside the `[storage] path` file), this replica's own.
    pub fn open_pg(
        pg: crate::db::Pg,
        storage_path: &Path,
        cfg: &KnowledgeConfig,
    ) -> Result<Self, KnowError> {
        let mut k = Self::new(
            Arc::new(super::pg::PgKnowledge::new(pg)),
            index_dir(storage_path, cfg),
            cfg.clone(),
        );
        k.shared = true;
        Ok(k)
    }

    /// The embedded default: tables in the `[storage]` SQLite file, indexes in
    /// `[knowledge] dir` (default `rag/` beside that file).
    pub fn open_sqlite(storage_path: &Path, cfg: &KnowledgeConfig) -> Result<Self, KnowError> {
        let store = super::sqlite::SqliteKnowledge::open(storage_path)?;
        Ok(Self::new(
            Arc::new(store),
            index_dir(storage_path, cfg),
            cfg.clone(),
        ))
    }

    pub fn store(&self) -> &dyn KnowledgeStore {
        self.store.as_ref()
    }

    pub fn config(&self) -> &KnowledgeConfig {
        &self.cfg
    }

    pub fn create(
        &self,
        name: &str,
        owner: &str,
        embedding: &str,
        dims: usize,
        metadata: Value,
    ) -> Result<Collection, KnowError> {
        let c = Collection {
            id: format!("vs_{}", uuid::Uuid::new_v4().simple()),
            name: name.to_string(),
            owner: owner.to_string(),
            created_s: now_s(),
            embedding: embedding.to_string(),
            dims,
            metadata,
            generation: 0,
        };
        self.store.create_collection(&c)?;
        Ok(c)
    }

    /// The collection of that id or name visible to `owner` (`None`: any owner).
    pub fn resolve(&self, id_or_name: &str, owner: Option<&str>) -> Result<Collection, KnowError> {
        self.store
            .collection(id_or_name, owner)?
            .ok_or_else(|| KnowError::NotFound(format!("no collection `{id_or_name}`")))
    }

    pub fn delete_collection(&self, c: &Collection) -> Result<bool, KnowError> {
        let removed = self.store.delete_collection(&c.id)?;
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        let _ = std::fs::remove_dir_all(self.dir.join(&c.id));
        Ok(removed)
    }

    fn opened(&self, c: &Collection) -> Result<Arc<Opened>, KnowError> {
        let mut map = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = map.get(&c.id) {
            return Ok(o.clone());
        }
        let o = Arc::new(Opened {
            bm25: Bm25::open(&self.dir.join(&c.id))?,
            snapshot: RwLock::new(None),
            writing: Mutex::new(()),
            indexed: Mutex::new(-1),
        });
        map.insert(c.id.clone(), o.clone());
        Ok(o)
    }

    /// The collection as of its current generation (its BM25 index rebuilt from the store
    /// if the two disagree).
    fn snapshot(&self, c: &Collection) -> Result<(Arc<Opened>, Arc<Snapshot>), KnowError> {
        let o = self.opened(c)?;
        let generation = self.store.generation(&c.id)?;
        if let Some(s) = o
            .snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if s.generation == generation {
                return Ok((o.clone(), s.clone()));
            }
        }
        let chunks = self.store.chunks(&c.id)?;
        let files = self
            .store
            .files(&c.id)?
            .into_iter()
            .map(|f| (f.file_id.clone(), f))
            .collect();
        let mut indexed = o.indexed.lock().unwrap_or_else(|p| p.into_inner());
        if o.bm25.doc_count() != chunks.len() as u64 {
            tracing::warn!(collection = %c.id, indexed = o.bm25.doc_count(), stored = chunks.len(), "full-text index out of step with the store: rebuilding it");
            o.bm25.rebuild(&chunks)?;
        } else if self.shared && *indexed != generation {
            // Another replica changed the collection: this replica's index follows.
            o.bm25.rebuild(&chunks)?;
        }
        *indexed = generation;
        drop(indexed);
        let mut vectors = Vectors::new(c.dims);
        let mut index_of = HashMap::with_capacity(chunks.len());
        for (i, ch) in chunks.iter().enumerate() {
            vectors.push(&ch.vector);
            index_of.insert(ch.id.clone(), i);
        }
        let s = Arc::new(Snapshot {
            generation,
            chunks,
            files,
            index_of,
            vectors,
        });
        *o.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
        Ok((o, s))
    }

    /// Adds a document, or replaces the stored one of the same id if its content changed.
    /// `progress(done, total)` is told as chunks are embedded.
    pub fn ingest(
        &self,
        embedder: &SentenceEmbedder,
        c: &Collection,
        f: NewFile<'_>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Ingested, DocFile), KnowError> {
        let o = self.opened(c)?;
        let _one = o.writing.lock().unwrap_or_else(|p| p.into_inner());
        let sha = sha256_hex(f.bytes);
        let old = self.store.file(&c.id, &f.file_id)?;
        if let Some(old) = &old {
            if old.sha256 == sha && old.attributes == f.attributes {
                return Ok((Ingested::Unchanged, old.clone()));
            }
        }
        let limits = Limits {
            max_file_bytes: self.cfg.max_file_bytes,
            max_line_bytes: self.cfg.max_line_bytes,
        };
        let text = extract(&f.filename, f.bytes, limits)?;
        let pieces = chunk(&text, self.cfg.chunk_words, self.cfg.overlap_words);
        let total = pieces.len();
        let mut chunks = Vec::with_capacity(total);
        for batch in pieces.chunks(EMBED_BATCH) {
            let texts: Vec<String> = batch.iter().map(|p| p.indexed_text()).collect();
            let (vecs, _) = embedder
                .embed_truncated(&texts)
                .map_err(|e| KnowError::Embed(e.to_string()))?;
            for (p, v) in batch.iter().zip(vecs) {
                if v.len() != c.dims {
                    return Err(KnowError::Embed(format!(
                        "the embedding model gives {} dimensions; collection `{}` holds {}",
                        v.len(),
                        c.name,
                        c.dims
                    )));
                }
                let id = sha256_hex(
                    format!("{}\n{}\n{}\n{}", c.id, f.file_id, p.index, p.text).as_bytes(),
                );
                chunks.push(StoredChunk {
                    id: format!("chunk_{}", &id[..24]),
                    file_id: f.file_id.clone(),
                    index: p.index,
                    heading: p.heading.clone(),
                    text: p.text.clone(),
                    vector: v,
                });
            }
            progress(chunks.len(), total);
        }
        let file = DocFile {
            file_id: f.file_id.clone(),
            filename: f.filename,
            sha256: sha,
            bytes: f.bytes.len(),
            chunks: chunks.len(),
            attributes: f.attributes,
            created_s: old.as_ref().map(|o| o.created_s).unwrap_or_else(now_s),
        };
        self.store.put_file(&c.id, &file, &chunks)?;
        o.bm25.replace_file(&file.file_id, &chunks)?;
        self.indexed_now(&o, c);
        let what = if old.is_some() {
            Ingested::Replaced
        } else {
            Ingested::Added
        };
        Ok((what, file))
    }

    /// Removes a file and its chunks.
    pub fn remove_file(&self, c: &Collection, file_id: &str) -> Result<bool, KnowError> {
        let o = self.opened(c)?;
        let _one = o.writing.lock().unwrap_or_else(|p| p.into_inner());
        let removed = self.store.delete_file(&c.id, file_id)?;
        o.bm25.replace_file(file_id, &[])?;
        self.indexed_now(&o, c);
        Ok(removed)
    }

    /// After this replica's own write the index matches the store's new generation (unless
    /// another replica wrote in between: then the next search rebuilds it).
    fn indexed_now(&self, o: &Opened, c: &Collection) {
        let mut indexed = o.indexed.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(g) = self.store.generation(&c.id) {
            if *indexed == g - 1 {
                *indexed = g;
            }
        }
    }

    /// The `k` best chunks for a query (its text for BM25, its embedding for the dense
    /// ranking), fused by RRF; chunks below `floor` cosine similarity and files the filter
    /// rejects are left out.
    pub fn search(
        &self,
        c: &Collection,
        query: &str,
        query_vector: &[f32],
        k: usize,
        filter: Option<&Filter>,
        floor: f32,
    ) -> Result<Vec<Hit>, KnowError> {
        self.search_ranked(c, query, query_vector, k, filter, floor, Ranking::Hybrid)
    }

    /// [`Knowledge::search`] with a choice of rankings.
    #[allow(clippy::too_many_arguments)]
    pub fn search_ranked(
        &self,
        c: &Collection,
        query: &str,
        query_vector: &[f32],
        k: usize,
        filter: Option<&Filter>,
        floor: f32,
        ranking: Ranking,
    ) -> Result<Vec<Hit>, KnowError> {
        let (o, s) = self.snapshot(c)?;
        if s.chunks.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        if query_vector.len() != c.dims {
            return Err(KnowError::Embed(format!(
                "the query embedding has {} dimensions; collection `{}` holds {}",
                query_vector.len(),
                c.name,
                c.dims
            )));
        }
        let mut q = query_vector.to_vec();
        normalise(&mut q);
        let allowed = |i: usize| -> bool {
            filter.is_none_or(|f| {
                s.files
                    .get(&s.chunks[i].file_id)
                    .is_some_and(|file| f.holds(&file.attributes))
            })
        };
        let depth = (k * 10).max(50);
        let mut rankings: Vec<Vec<usize>> = Vec::with_capacity(2);
        if ranking != Ranking::Lexical {
            rankings.push(
                s.vectors
                    .nearest(&q, depth, allowed)
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect(),
            );
        }
        if ranking != Ranking::Dense {
            rankings.push(
                o.bm25
                    .search(query, depth * 2)?
                    .into_iter()
                    .filter_map(|(id, _)| s.index_of.get(&id).copied())
                    .filter(|i| allowed(*i))
                    .take(depth)
                    .collect(),
            );
        }
        let floor = if ranking == Ranking::Lexical {
            f32::NEG_INFINITY
        } else {
            floor
        };
        let fused = rrf(&rankings, self.cfg.rrf_k);
        // 1.0 is first in every ranking.
        let best = rankings.len() as f32 / (self.cfg.rrf_k + 1.0);
        let mut hits = Vec::with_capacity(k);
        for (i, score) in fused {
            let score = score / best;
            let similarity = s.vectors.similarity(i, &q);
            if similarity < floor {
                continue;
            }
            let ch = &s.chunks[i];
            let file = s.files.get(&ch.file_id);
            hits.push(Hit {
                chunk_id: ch.id.clone(),
                file_id: ch.file_id.clone(),
                filename: file.map(|f| f.filename.clone()).unwrap_or_default(),
                heading: ch.heading.clone(),
                text: ch.text.clone(),
                score,
                similarity,
                attributes: file.map(|f| f.attributes.clone()).unwrap_or(Value::Null),
            });
            if hits.len() == k {
                break;
            }
        }
        Ok(hits)
    }
}

/// Where a collection's BM25 index lives: `[knowledge] dir`, or `rag/` beside the SQLite file.
fn index_dir(storage_path: &Path, cfg: &KnowledgeConfig) -> PathBuf {
    match &cfg.dir {
        Some(d) => PathBuf::from(d),
        None => storage_path
            .parent()
            .map(|p| p.join("rag"))
            .unwrap_or_else(|| PathBuf::from("rag")),
    }
}
