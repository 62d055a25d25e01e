//! What the knowledge layer keeps, behind one trait so a shared backend (Postgres with
//! pgvector) can stand in for the embedded SQLite one: collections, the files in them with
//! their chunks and vectors, and uploaded files (`/v1/files`).

use serde_json::Value;

use super::KnowError;

/// A collection (an OpenAI vector store).
#[derive(Debug, Clone)]
pub struct Collection {
    /// `vs_...`.
    pub id: String,
    pub name: String,
    /// Who may see it: a team (`team:NAME`), a key without a team (`key:ID`), `admin`.
    pub owner: String,
    pub created_s: i64,
    /// The embedding model its vectors come from, and their length.
    pub embedding: String,
    pub dims: usize,
    pub metadata: Value,
    /// Bumped by every change of its files (caches of its vectors compare it).
    pub generation: i64,
}

/// A file of a collection.
#[derive(Debug, Clone)]
pub struct DocFile {
    /// The `/v1/files` id, or `path:/abs/path` for files ingested from disk.
    pub file_id: String,
    pub filename: String,
    pub sha256: String,
    pub bytes: usize,
    pub chunks: usize,
    /// Attributes the search `filters` test (an object of strings, numbers, booleans).
    pub attributes: Value,
    pub created_s: i64,
}

/// One chunk as stored.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub id: String,
    pub file_id: String,
    pub index: usize,
    pub heading: String,
    pub text: String,
    pub vector: Vec<f32>,
}

/// An uploaded file (`/v1/files`).
#[derive(Debug, Clone)]
pub struct Upload {
    /// `file-...`.
    pub id: String,
    pub owner: String,
    pub filename: String,
    pub bytes: usize,
    pub purpose: String,
    pub created_s: i64,
}

pub trait KnowledgeStore: Send + Sync {
    fn create_collection(&self, c: &Collection) -> Result<(), KnowError>;
    /// By id, or by name; `owner` `None` looks across owners (the config's routes, admin).
    fn collection(
        &self,
        id_or_name: &str,
        owner: Option<&str>,
    ) -> Result<Option<Collection>, KnowError>;
    fn collections(&self, owner: Option<&str>) -> Result<Vec<Collection>, KnowError>;
    /// Deletes it with its files and chunks.
    fn delete_collection(&self, id: &str) -> Result<bool, KnowError>;
    /// Adds a file, or replaces the file of that id and all its chunks, atomically.
    fn put_file(
        &self,
        collection: &str,
        f: &DocFile,
        chunks: &[StoredChunk],
    ) -> Result<(), KnowError>;
    fn delete_file(&self, collection: &str, file_id: &str) -> Result<bool, KnowError>;
    fn file(&self, collection: &str, file_id: &str) -> Result<Option<DocFile>, KnowError>;
    fn files(&self, collection: &str) -> Result<Vec<DocFile>, KnowError>;
    /// Every chunk of a collection, vectors included.
    fn chunks(&self, collection: &str) -> Result<Vec<StoredChunk>, KnowError>;
    fn generation(&self, collection: &str) -> Result<i64, KnowError>;

    fn put_upload(&self, u: &Upload, content: &[u8]) -> Result<(), KnowError>;
    /// An upload of `owner` (`None`: any owner) with its content.
    fn upload(&self, id: &str, owner: Option<&str>)
        -> Result<Option<(Upload, Vec<u8>)>, KnowError>;
    fn uploads(&self, owner: Option<&str>) -> Result<Vec<Upload>, KnowError>;
    fn delete_upload(&self, id: &str, owner: Option<&str>) -> Result<bool, KnowError>;
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
