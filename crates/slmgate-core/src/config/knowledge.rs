//! `[knowledge]`: the RAG collections (where they live, how documents are chunked, how
//! retrieval fuses and filters), and a route's `rag = { ... }` option.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeConfig {
    /// Folder of the full-text indexes (default: `rag/` beside the `[storage] path` file;
    /// chunks and vectors live in that SQLite file).
    pub dir: Option<String>,
    /// Words per chunk at most (whole sentences; MiniLM embeds 256 tokens, about 190 English
    /// words; small models answer best from short passages).
    #[serde(default = "defaults::chunk_words")]
    pub chunk_words: usize,
    /// Words (whole sentences) repeated from the end of one chunk at the start of the next.
    #[serde(default = "defaults::overlap_words")]
    pub overlap_words: usize,
    /// Largest document accepted (413 above).
    #[serde(default = "defaults::max_file_bytes")]
    pub max_file_bytes: usize,
    /// Longest line of extracted text accepted (400 above): a multi-megabyte line is not
    /// prose, and chunking it would give one unreadable chunk per window.
    #[serde(default = "defaults::max_line_bytes")]
    pub max_line_bytes: usize,
    /// Reciprocal-rank fusion constant: score = sum over rankings of 1 / (k + rank).
    #[serde(default = "defaults::rrf_k")]
    pub rrf_k: f32,
    /// Chunks whose embedding's cosine similarity to the query is below this are never
    /// returned, whatever their BM25 rank (routes may set their own).
    #[serde(default = "defaults::min_similarity")]
    pub min_similarity: f32,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            dir: None,
            chunk_words: defaults::chunk_words(),
            overlap_words: defaults::overlap_words(),
            max_file_bytes: defaults::max_file_bytes(),
            max_line_bytes: defaults::max_line_bytes(),
            rrf_k: defaults::rrf_k(),
            min_similarity: defaults::min_similarity(),
        }
    }
}

/// A route's `rag = { collection = "docs", top_k = 4, max_context_tokens = 1024 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RagRouteConfig {
    /// The collection's name (or `vs_...` id).
    pub collection: String,
    /// Chunks retrieved at most.
    #[serde(default = "defaults::top_k")]
    pub top_k: usize,
    /// Estimated tokens (characters / 4) of retrieved text put in the prompt at most.
    #[serde(default = "defaults::max_context_tokens")]
    pub max_context_tokens: usize,
    /// This route's similarity floor (default: `[knowledge] min_similarity`).
    pub min_similarity: Option<f32>,
    /// A whole answer whose groundedness in its passages (the share of its new content
    /// words they contain, 0..1) is below this escalates to the next tier; unset: not
    /// checked. Streams are not checked.
    pub min_grounding: Option<f32>,
}

mod defaults {
    pub fn chunk_words() -> usize {
        80
    }
    pub fn overlap_words() -> usize {
        20
    }
    pub fn max_file_bytes() -> usize {
        20 << 20
    }
    pub fn max_line_bytes() -> usize {
        1 << 20
    }
    pub fn rrf_k() -> f32 {
        60.0
    }
    pub fn min_similarity() -> f32 {
        0.25
    }
    pub fn top_k() -> usize {
        4
    }
    pub fn max_context_tokens() -> usize {
        1024
    }
}
