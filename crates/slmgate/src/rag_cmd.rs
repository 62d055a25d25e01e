//! `slmgate rag`: fill, inspect and query RAG collections from the command line (the same
//! store and indexes `serve` uses; a running gateway sees the changes at its next search).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use slmgate_core::know::{Ingested, Knowledge, NewFile};
use slmgate_core::ml::{embed_one, Representation};
use slmgate_engine::SentenceEmbedder;

#[derive(Subcommand)]
pub enum RagCmd {
    /// Ingest files and folders (text, Markdown, HTML, PDF) into a collection. A changed
    /// file replaces its chunks; a file ingested before from under a given folder that is
    /// gone now is removed.
    Ingest {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        collection: String,
        /// Files or folders (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List collections, or one collection's files.
    List {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        collection: Option<String>,
    },
    /// Search a collection as a route would (BM25 + dense, fused, floored).
    Search {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        collection: String,
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        query: String,
    },
    /// Retrieval quality on labelled questions (JSON lines of `question`, `file`, `answer`:
    /// a chunk of that file holding that text is relevant): recall@1/3/5/10 and MRR@10 of
    /// the hybrid search, BM25 alone and dense alone.
    Eval {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        collection: String,
        #[arg(long)]
        data: PathBuf,
    },
    /// Precision and recall of the groundedness check on labelled answers (JSON lines of
    /// `question`, `passages`, `answer`, `grounded`), at a range of thresholds.
    Grounding {
        #[arg(long)]
        data: PathBuf,
    },
    /// Delete a collection, or one file of it.
    Delete {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        collection: String,
        /// The file's id (`path:/abs/path` for ingested files, `file-...` for uploads).
        #[arg(long)]
        file: Option<String>,
    },
}

#[derive(Args)]
pub struct At {
    /// Config file (default: the embedded slmgate.toml); its [storage] and [knowledge].
    #[arg(long, short, env = "SLMGATE_CONFIG")]
    config: Option<PathBuf>,
}

const EXTENSIONS: [&str; 8] = ["txt", "md", "markdown", "html", "htm", "pdf", "rst", "text"];

fn open(at: &At) -> anyhow::Result<(Knowledge, slmgate_core::config::Config)> {
    let cfg = crate::load(at.config.as_ref())?;
    let path = Path::new(&cfg.storage.path);
    let k = match (cfg.storage.backend, cfg.storage.url.as_deref()) {
        (slmgate_core::config::StorageBackend::Postgres, Some(url)) => Knowledge::open_pg(
            slmgate_core::db::Pg::connect(url, 2, cfg.storage.ca_file.as_deref())
                .context("connecting to [storage] url")?,
            path,
            &cfg.knowledge,
        )?,
        _ => Knowledge::open_sqlite(path, &cfg.knowledge)?,
    };
    Ok((k, cfg))
}

fn embedder(cfg: &slmgate_core::config::Config) -> anyhow::Result<(SentenceEmbedder, String)> {
    let e = cfg
        .embeddings
        .as_ref()
        .context("the config has no [embeddings] model; collections need one")?;
    Ok((SentenceEmbedder::load(Path::new(&e.path))?, e.name.clone()))
}

/// Every document file under the paths, canonical.
fn documents(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<PathBuf> = Vec::new();
    for p in paths {
        stack.push(
            p.canonicalize()
                .with_context(|| format!("cannot read {}", p.display()))?,
        );
    }
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in
                std::fs::read_dir(&p).with_context(|| format!("cannot list {}", p.display()))?
            {
                stack.push(e?.path());
            }
        } else if paths
            .iter()
            .any(|g| g.canonicalize().ok().as_ref() == Some(&p))
            || p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.insert(p);
        }
    }
    Ok(out.into_iter().collect())
}

pub fn run(cmd: RagCmd) -> anyhow::Result<()> {
    match cmd {
        RagCmd::Ingest {
            at,
            collection,
            paths,
        } => ingest(&at, &collection, &paths),
        RagCmd::List { at, collection } => {
            let (k, _) = open(&at)?;
            match collection {
                None => {
                    for c in k.store().collections(None)? {
                        let files = k.store().files(&c.id)?;
                        let chunks: usize = files.iter().map(|f| f.chunks).sum();
                        println!(
                            "{}  {:<24} owner {:<16} {} files, {} chunks",
                            c.id,
                            c.name,
                            c.owner,
                            files.len(),
                            chunks
                        );
                    }
                }
                Some(name) => {
                    let c = k.resolve(&name, None)?;
                    for f in k.store().files(&c.id)? {
                        println!(
                            "{}  {} chunks  {} bytes  {}",
                            f.file_id, f.chunks, f.bytes, f.filename
                        );
                    }
                }
            }
            Ok(())
        }
        RagCmd::Search {
            at,
            collection,
            top_k,
            query,
        } => {
            let (k, cfg) = open(&at)?;
            let c = k.resolve(&collection, None)?;
            let (emb, _) = embedder(&cfg)?;
            let v = embed_one(&emb, Representation::Contextual, &query)?;
            for (i, h) in k
                .search(&c, &query, &v, top_k, None, cfg.knowledge.min_similarity)?
                .iter()
                .enumerate()
            {
                println!(
                    "{}. {}  score {:.3}  similarity {:.3}  {} > {}\n   {}",
                    i + 1,
                    h.chunk_id,
                    h.score,
                    h.similarity,
                    h.filename,
                    h.heading,
                    h.text.chars().take(200).collect::<String>()
                );
            }
            Ok(())
        }
        RagCmd::Eval {
            at,
            collection,
            data,
        } => eval(&at, &collection, &data),
        RagCmd::Grounding { data } => {
            use slmgate_core::know::grounding::{evaluate, Labelled};
            let rows: Vec<Labelled> = jsonl(&data)?;
            let ungrounded = rows.iter().filter(|r| !r.grounded).count();
            println!(
                "{} answers, {ungrounded} labelled ungrounded\n\nthreshold  flagged  precision  recall",
                rows.len()
            );
            for t in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] {
                let d = evaluate(&rows, t);
                println!(
                    "{:>9.1}  {:>7}  {:>9.3}  {:>6.3}",
                    t, d.flagged, d.precision, d.recall
                );
            }
            Ok(())
        }
        RagCmd::Delete {
            at,
            collection,
            file,
        } => {
            let (k, _) = open(&at)?;
            let c = k.resolve(&collection, None)?;
            match file {
                Some(f) => {
                    anyhow::ensure!(
                        k.remove_file(&c, &f)?,
                        "collection {collection} has no file {f}"
                    );
                    println!("removed {f} from {collection}");
                }
                None => {
                    k.delete_collection(&c)?;
                    println!("deleted collection {collection} ({})", c.id);
                }
            }
            Ok(())
        }
    }
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<T>(l)
                .with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

fn eval(at: &At, collection: &str, data: &Path) -> anyhow::Result<()> {
    use slmgate_core::know::eval::{first_relevant, score, Question};
    use slmgate_core::know::Ranking;
    let (k, cfg) = open(at)?;
    let c = k.resolve(collection, None)?;
    let (emb, _) = embedder(&cfg)?;
    let questions: Vec<Question> = jsonl(data)?;
    // A label no chunk of the collection satisfies is a labelling (or extraction) error:
    // it is reported and left out rather than counted as a retrieval miss.
    let chunks = k.store().chunks(&c.id)?;
    let files: std::collections::HashMap<String, String> = k
        .store()
        .files(&c.id)?
        .into_iter()
        .map(|f| (f.file_id, f.filename))
        .collect();
    let answerable: Vec<&Question> = questions
        .iter()
        .filter(|q| {
            let ok = chunks.iter().any(|ch| {
                files
                    .get(&ch.file_id)
                    .is_some_and(|f| q.relevant(f, &ch.text))
            });
            if !ok {
                eprintln!("no chunk of {} holds {:?}: left out", q.file, q.answer);
            }
            ok
        })
        .collect();
    let vectors = answerable
        .iter()
        .map(|q| embed_one(&emb, Representation::Contextual, &q.question))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "{} questions ({} left out), collection {} ({} chunks), similarity floor {}\n",
        answerable.len(),
        questions.len() - answerable.len(),
        c.name,
        chunks.len(),
        cfg.knowledge.min_similarity
    );
    println!("| ranking | recall@1 | recall@3 | recall@5 | recall@10 | MRR@10 | search p50 ms |");
    println!("|---|---|---|---|---|---|---|");
    for (name, ranking) in [
        ("hybrid (RRF)", Ranking::Hybrid),
        ("BM25 only", Ranking::Lexical),
        ("dense only", Ranking::Dense),
    ] {
        let mut ranks = Vec::with_capacity(answerable.len());
        let mut ms = Vec::with_capacity(answerable.len());
        for (q, v) in answerable.iter().zip(&vectors) {
            let t = std::time::Instant::now();
            let hits = k.search_ranked(
                &c,
                &q.question,
                v,
                10,
                None,
                cfg.knowledge.min_similarity,
                ranking,
            )?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            ranks.push(first_relevant(
                q,
                hits.iter().map(|h| (h.filename.as_str(), h.text.as_str())),
            ));
        }
        ms.sort_by(|a, b| a.total_cmp(b));
        let s = score(&ranks);
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
            s.recall_at_1,
            s.recall_at_3,
            s.recall_at_5,
            s.recall_at_10,
            s.mrr_at_10,
            ms.get(ms.len() / 2).copied().unwrap_or(0.0)
        );
    }
    Ok(())
}

fn ingest(at: &At, collection: &str, paths: &[PathBuf]) -> anyhow::Result<()> {
    let (k, cfg) = open(at)?;
    let (emb, emb_name) = embedder(&cfg)?;
    let c = match k.resolve(collection, None) {
        Ok(c) => c,
        Err(_) => k.create(
            collection,
            "admin",
            &emb_name,
            emb.dimensions(),
            serde_json::json!({}),
        )?,
    };
    let docs = documents(paths)?;
    let bar = indicatif::ProgressBar::new(docs.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut added, mut replaced, mut unchanged, mut failed) = (0, 0, 0, 0);
    let started = std::time::Instant::now();
    let mut embedded = 0usize;
    for d in &docs {
        let bytes = std::fs::read(d).with_context(|| format!("cannot read {}", d.display()))?;
        let name = d.display().to_string();
        let short = d
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let r = k.ingest(
            &emb,
            &c,
            NewFile {
                file_id: format!("path:{name}"),
                filename: name.clone(),
                bytes: &bytes,
                attributes: serde_json::json!({}),
            },
            &mut |done, total| bar.set_message(format!("{short}: {done}/{total} chunks")),
        );
        match r {
            Ok((Ingested::Added, f)) => {
                added += 1;
                embedded += f.chunks;
            }
            Ok((Ingested::Replaced, f)) => {
                replaced += 1;
                embedded += f.chunks;
            }
            Ok((Ingested::Unchanged, _)) => unchanged += 1,
            Err(e) => {
                failed += 1;
                bar.println(format!("skipped {name}: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    // Files ingested before from under a given folder that are gone now.
    let present: BTreeSet<String> = docs
        .iter()
        .map(|d| format!("path:{}", d.display()))
        .collect();
    let roots: Vec<String> = paths
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .map(|p| format!("path:{}", p.display()))
        .collect();
    let mut removed = 0;
    for f in k.store().files(&c.id)? {
        let under = roots
            .iter()
            .any(|r| f.file_id == *r || f.file_id.starts_with(&format!("{r}/")));
        if under && !present.contains(&f.file_id) {
            k.remove_file(&c, &f.file_id)?;
            removed += 1;
        }
    }
    let files = k.store().files(&c.id)?;
    let chunks: usize = files.iter().map(|f| f.chunks).sum();
    println!(
        "collection {} ({}): {added} added, {replaced} replaced, {unchanged} unchanged, {removed} removed, {failed} failed; {} files, {chunks} chunks; {embedded} chunks embedded in {secs:.1} s ({:.1} chunks/s)",
        c.name,
        c.id,
        files.len(),
        embedded as f64 / secs.max(1e-9)
    );
    anyhow::ensure!(
        failed == 0 || added + replaced + unchanged > 0,
        "no file could be ingested"
    );
    Ok(())
}
