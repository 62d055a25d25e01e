//! RAG retrieval latency without the query embedding: exact cosine over every vector, BM25
//! (tantivy), and the whole fused search, on synthetic collections of 1k, 10k and 100k
//! chunks of 384-dimensional vectors (MiniLM's size) and 60-word texts.
//!
//!   cargo bench -p slmgate-core --bench knowledge
//!
//! 200 searches per size after warm-up; p50 and p99.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use slmgate_core::config::KnowledgeConfig;
use slmgate_core::know::sqlite::SqliteKnowledge;
use slmgate_core::know::store::StoredChunk;
use slmgate_core::know::vectors::Vectors;
use slmgate_core::know::{DocFile, Knowledge, KnowledgeStore};

const DIMS: usize = 384;
const WORDS: [&str; 24] = [
    "install",
    "package",
    "user",
    "group",
    "daemon",
    "server",
    "network",
    "config",
    "file",
    "cache",
    "disk",
    "log",
    "mail",
    "print",
    "kernel",
    "module",
    "boot",
    "shell",
    "backup",
    "proxy",
    "database",
    "socket",
    "policy",
    "permission",
];

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn vector(rng: &mut StdRng) -> Vec<f32> {
    (0..DIMS).map(|_| rng.random::<f32>() - 0.5).collect()
}

fn main() {
    let mut rng = StdRng::seed_from_u64(7);
    println!("| chunks | exact cosine p50 / p99 | BM25 p50 / p99 | fused search p50 / p99 |");
    println!("|---|---|---|---|");
    for n in [1_000usize, 10_000, 100_000] {
        let dir = std::env::temp_dir().join(format!("slmgate-bench-kn-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(SqliteKnowledge::open(&dir.join("kn.db")).unwrap());
        let k = Knowledge::new(store.clone(), dir.join("rag"), KnowledgeConfig::default());
        let c = k
            .create("bench", "admin", "minilm", DIMS, serde_json::json!({}))
            .unwrap();
        let per_file = 1000;
        for f in 0..n / per_file {
            let file_id = format!("file-{f}");
            let chunks: Vec<StoredChunk> = (0..per_file)
                .map(|i| StoredChunk {
                    id: format!("chunk_{f}_{i}"),
                    file_id: file_id.clone(),
                    index: i,
                    heading: String::new(),
                    text: (0..60)
                        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                        .collect::<Vec<_>>()
                        .join(" "),
                    vector: vector(&mut rng),
                })
                .collect();
            let doc = DocFile {
                file_id: file_id.clone(),
                filename: file_id.clone(),
                sha256: String::new(),
                bytes: 0,
                chunks: chunks.len(),
                attributes: serde_json::json!({}),
                created_s: 0,
            };
            store.put_file(&c.id, &doc, &chunks).unwrap();
        }
        let queries: Vec<Vec<f32>> = (0..220).map(|_| vector(&mut rng)).collect();
        // The first search loads the snapshot and builds the BM25 index from the store.
        k.search(&c, "cache disk", &queries[0], 4, None, -1.0)
            .unwrap();
        let mut vectors = Vectors::new(DIMS);
        for ch in store.chunks(&c.id).unwrap() {
            vectors.push(&ch.vector);
        }
        let bm25 = slmgate_core::know::bm25::Bm25::open(&dir.join("rag").join(&c.id)).unwrap();
        let (mut dense, mut lexical, mut fused) = (Vec::new(), Vec::new(), Vec::new());
        for (i, q) in queries.iter().enumerate() {
            let text = format!(
                "{} {}",
                WORDS[i % WORDS.len()],
                WORDS[(i * 7) % WORDS.len()]
            );
            let t = Instant::now();
            std::hint::black_box(vectors.nearest(q, 50, |_| true));
            let d = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            std::hint::black_box(bm25.search(&text, 100).unwrap());
            let l = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            std::hint::black_box(k.search(&c, &text, q, 4, None, -1.0).unwrap());
            let f = t.elapsed().as_secs_f64() * 1e3;
            if i >= 20 {
                dense.push(d);
                lexical.push(l);
                fused.push(f);
            }
        }
        println!(
            "| {n} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
            pct(&mut dense, 0.5),
            pct(&mut dense, 0.99),
            pct(&mut lexical, 0.5),
            pct(&mut lexical, 0.99),
            pct(&mut fused, 0.5),
            pct(&mut fused, 0.99)
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
