//! BM25 over a collection's chunks: one tantivy index per collection on disk (English
//! stemming and stop words). SQLite holds the chunks; this index is rebuilt from it whenever
//! the two disagree (a crash between the two writes, an index deleted by hand).

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::store::StoredChunk;
use super::KnowError;

/// Heap of the (short-lived) index writer: tantivy's minimum per thread is 15 MB.
const WRITER_HEAP: usize = 20_000_000;

pub struct Bm25 {
    index: Index,
    reader: IndexReader,
    chunk: Field,
    file: Field,
    text: Field,
    /// One writer at a time in this process (tantivy's lock file stops other processes).
    writing: Mutex<()>,
}

fn ix(e: tantivy::TantivyError) -> KnowError {
    KnowError::Index(e.to_string())
}

impl Bm25 {
    pub fn open(dir: &Path) -> Result<Self, KnowError> {
        std::fs::create_dir_all(dir).map_err(|e| KnowError::Index(e.to_string()))?;
        let mut sb = Schema::builder();
        let chunk = sb.add_text_field("chunk", STRING | STORED);
        let file = sb.add_text_field("file", STRING);
        let text = sb.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("en_stem")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        );
        let schema = sb.build();
        let d = MmapDirectory::open(dir).map_err(|e| KnowError::Index(e.to_string()))?;
        let index = Index::open_or_create(d, schema).map_err(ix)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(ix)?;
        Ok(Self {
            index,
            reader,
            chunk,
            file,
            text,
            writing: Mutex::new(()),
        })
    }

    fn write(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> tantivy::Result<()>,
    ) -> Result<(), KnowError> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut w: IndexWriter =
            self.index
                .writer_with_num_threads(1, WRITER_HEAP)
                .map_err(|e| match e {
                    tantivy::TantivyError::LockFailure(..) => KnowError::Busy(
                        "the collection's index is being written by another process".into(),
                    ),
                    e => ix(e),
                })?;
        f(&mut w).map_err(ix)?;
        w.commit().map_err(ix)?;
        w.wait_merging_threads().map_err(ix)?;
        self.reader.reload().map_err(ix)
    }

    /// Replaces a file's chunks (none: removes the file).
    pub fn replace_file(&self, file_id: &str, chunks: &[StoredChunk]) -> Result<(), KnowError> {
        self.write(|w| {
            w.delete_term(Term::from_field_text(self.file, file_id));
            for c in chunks {
                w.add_document(doc!(
                    self.chunk => c.id.as_str(),
                    self.file => file_id,
                    self.text => format!("{}\n{}", c.heading, c.text),
                ))?;
            }
            Ok(())
        })
    }

    /// Drops everything and indexes `chunks`.
    pub fn rebuild(&self, chunks: &[StoredChunk]) -> Result<(), KnowError> {
        self.write(|w| {
            w.delete_all_documents()?;
            for c in chunks {
                w.add_document(doc!(
                    self.chunk => c.id.as_str(),
                    self.file => c.file_id.as_str(),
                    self.text => format!("{}\n{}", c.heading, c.text),
                ))?;
            }
            Ok(())
        })
    }

    pub fn doc_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Chunk ids by BM25 score, best first (query syntax errors are read leniently).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(String, f32)>, KnowError> {
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.text]);
        let (q, _) = parser.parse_query_lenient(query);
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())
            .map_err(ix)?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let d: TantivyDocument = searcher.doc(addr).map_err(ix)?;
            if let Some(id) = d.get_first(self.chunk).and_then(|v| v.as_str()) {
                out.push((id.to_string(), score));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, file: &str, text: &str) -> StoredChunk {
        StoredChunk {
            id: id.into(),
            file_id: file.into(),
            index: 0,
            heading: String::new(),
            text: text.into(),
            vector: Vec::new(),
        }
    }

    #[test]
    fn stems_replaces_and_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("slmgate-bm25-{}", uuid::Uuid::new_v4()));
        {
            let b = Bm25::open(&dir).unwrap();
            b.replace_file(
                "f1",
                &[
                    c("a", "f1", "configuring the firewall"),
                    c("b", "f1", "bread recipes"),
                ],
            )
            .unwrap();
            b.replace_file("f2", &[c("x", "f2", "firewalls configured daily")])
                .unwrap();
            let hits = b.search("configure firewall", 10).unwrap();
            let ids: Vec<&str> = hits.iter().map(|(i, _)| i.as_str()).collect();
            assert_eq!(ids.len(), 2, "{hits:?}");
            assert!(ids.contains(&"a") && ids.contains(&"x"));
            b.replace_file("f1", &[c("c", "f1", "nothing relevant")])
                .unwrap();
            assert_eq!(b.doc_count(), 2);
            // Query syntax is not the user's problem.
            assert!(b.search("firewall AND (\"", 5).is_ok());
        }
        let b = Bm25::open(&dir).unwrap();
        assert_eq!(b.search("firewall", 5).unwrap()[0].0, "x");
        std::fs::remove_dir_all(&dir).ok();
    }
}
