//! The knowledge layer: RAG collections (an OpenAI vector store each) and what retrieval
//! puts into a prompt.
//!
//! ```text
//! ingest   extract (text, Markdown, HTML, PDF) → chunk (headings kept, overlap)
//!          → embed (MiniLM, batches) → store (SQLite: chunks, vectors) → BM25 (tantivy)
//! search   dense (exact cosine) + BM25 → reciprocal-rank fusion (k = 60)
//!          → similarity floor → attribute filters
//! augment  the passages that fit the route's budget go before the question; they are the
//!          answer's citations
//! ```
//!
//! The store is a trait ([`KnowledgeStore`]); SQLite is the embedded default.

pub mod bm25;
pub mod cache;
pub mod cache_pg;
pub mod chunk;
pub mod context;
pub mod eval;
pub mod extract;
pub mod filter;
pub mod fusion;
pub mod grounding;
pub mod pg;
pub mod scope_index;
pub mod service;
pub mod sqlite;
pub mod store;
pub mod vectors;

pub use context::{augment, Citation};
pub use filter::Filter;
pub use service::{Hit, Ingested, Knowledge, NewFile, Ranking};
pub use store::{Collection, DocFile, KnowledgeStore, Upload};

#[derive(Debug, thiserror::Error)]
pub enum KnowError {
    /// The client's document cannot be used (400).
    #[error("{0}")]
    Document(String),
    /// Too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// A malformed request (400).
    #[error("{0}")]
    Invalid(String),
    /// No such collection or file (404).
    #[error("{0}")]
    NotFound(String),
    /// Another writer holds the index (409).
    #[error("{0}")]
    Busy(String),
    #[error("embedding failed: {0}")]
    Embed(String),
    #[error("knowledge store: {0}")]
    Store(String),
    #[error("full-text index: {0}")]
    Index(String),
}

impl KnowError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            KnowError::Document(_) | KnowError::Invalid(_) => 400,
            KnowError::TooLarge(_) => 413,
            KnowError::NotFound(_) => 404,
            KnowError::Busy(_) => 409,
            KnowError::Embed(_) => 503,
            KnowError::Store(_) | KnowError::Index(_) => 500,
        }
    }
}
