//! `slmgate keys | audit | review`: governance from the command line, on the same SQLite
//! file the server uses (`[storage] path`); safe while the server runs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use slmgate_core::govern::keys::{Budget, KeySpec};
use slmgate_core::govern::{audit, db, review};

#[derive(Args)]
pub struct Store {
    /// Config file whose `[storage] path` holds the data (default: the embedded config).
    #[arg(long, short, env = "SLMGATE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The SQLite file itself (overrides the config).
    #[arg(long)]
    db: Option<PathBuf>,
}

impl Store {
    pub(crate) fn open(&self) -> anyhow::Result<rusqlite::Connection> {
        let path = match &self.db {
            Some(p) => p.clone(),
            None => PathBuf::from(crate::load(self.config.as_ref())?.storage.path),
        };
        db::open(&path).with_context(|| format!("opening {}", path.display()))
    }

    /// The shared Postgres store when the config uses one (and no `--db` file was given).
    pub(crate) fn pg(&self) -> anyhow::Result<Option<slmgate_core::db::Pg>> {
        if self.db.is_some() {
            return Ok(None);
        }
        let cfg = crate::load(self.config.as_ref())?;
        match (cfg.storage.backend, &cfg.storage.url) {
            (slmgate_core::config::StorageBackend::Postgres, Some(url)) => Ok(Some(
                slmgate_core::db::Pg::connect(url, 2, cfg.storage.ca_file.as_deref())
                    .context("connecting to [storage] url")?,
            )),
            _ => Ok(None),
        }
    }

    /// What the learning loop's analyses read (audit log and content, reviews, shadow rows)
    /// since `since_ms`: the SQLite file itself, or a snapshot of the shared Postgres store.
    pub(crate) fn learning_data(&self, since_ms: i64) -> anyhow::Result<LearningData> {
        Ok(match self.pg()? {
            Some(pg) => LearningData::Snapshot(
                slmgate_core::learn::snapshot::from_pg(&pg, since_ms)
                    .context("copying the learning data out of Postgres")?,
            ),
            None => LearningData::File(self.open()?),
        })
    }

    /// The keys, in whichever store the config names.
    fn keys(&self) -> anyhow::Result<slmgate_core::govern::key_cache::KeyCache> {
        Ok(match self.pg()? {
            Some(pg) => slmgate_core::govern::key_cache::KeyCache::open_pg(pg)?,
            None => {
                let path = match &self.db {
                    Some(p) => p.clone(),
                    None => PathBuf::from(crate::load(self.config.as_ref())?.storage.path),
                };
                slmgate_core::govern::key_cache::KeyCache::open(&path)?
            }
        })
    }
}

/// The learning data's SQL view: the SQLite store, or a snapshot of Postgres.
pub(crate) enum LearningData {
    File(rusqlite::Connection),
    Snapshot(slmgate_core::learn::snapshot::Snapshot),
}

impl std::ops::Deref for LearningData {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        match self {
            LearningData::File(c) => c,
            LearningData::Snapshot(s) => s,
        }
    }
}

/// What a new key may do (the CLI's form of [`KeySpec`]).
#[derive(Args)]
pub struct KeyArgs {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    team: Option<String>,
    /// USD per period: `50/day`, `200/month`, `10/week`, `5` (total).
    #[arg(long = "budget-usd")]
    budget: Option<Budget>,
    /// Requests per minute.
    #[arg(long)]
    rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    tpm: Option<u32>,
    /// Model or route names the key may use, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    /// Residency labels the key's data may go to, comma-separated (default: anywhere).
    #[arg(long, value_delimiter = ',')]
    residency: Option<Vec<String>>,
    /// Scopes beyond calling models, comma-separated: `vector_stores`.
    #[arg(long, value_delimiter = ',')]
    scopes: Option<Vec<String>>,
}

impl From<KeyArgs> for KeySpec {
    fn from(a: KeyArgs) -> Self {
        KeySpec {
            name: a.name,
            team: a.team,
            budget: a.budget,
            rpm: a.rpm,
            tpm: a.tpm,
            models: a.models,
            residency: a.residency,
            scopes: a.scopes,
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create a virtual key; its plaintext is printed once.
    Create {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        spec: KeyArgs,
    },
    /// List keys (never their plaintext).
    List {
        #[command(flatten)]
        store: Store,
    },
    /// Revoke a key by id; the server refuses it within 2 seconds.
    Revoke {
        #[command(flatten)]
        store: Store,
        id: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Recompute the hash chain; exit 1 and say where if any entry was edited, deleted,
    /// reordered or the log truncated.
    Verify {
        #[command(flatten)]
        store: Store,
    },
    /// Write the log as JSON lines.
    Export {
        #[command(flatten)]
        store: Store,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Include stored content (per `[audit] content`).
        #[arg(long)]
        with_content: bool,
        /// Only entries newer than this many days.
        #[arg(long)]
        since_days: Option<u32>,
    },
    /// Erase the stored content of a data subject (an API key id or a request `user`); the
    /// chain still verifies.
    Forget {
        #[command(flatten)]
        store: Store,
        #[arg(long)]
        subject: String,
    },
}

#[derive(Subcommand)]
pub enum ReviewCmd {
    /// Write reviewed answers as labelled outcomes for `slmgate router train`.
    Export {
        #[command(flatten)]
        store: Store,
        /// The weak (cheap) tier's name.
        #[arg(long)]
        weak: String,
        /// The strong tier's name.
        #[arg(long)]
        strong: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum PiiCmd {
    /// Precision and recall of the PII detector on a labelled corpus.
    Eval {
        #[arg(long, default_value = "data/pii/corpus.jsonl")]
        data: PathBuf,
        /// Print this many misses and false alarms.
        #[arg(long, default_value_t = 10)]
        show_errors: usize,
    },
}

pub fn pii(cmd: PiiCmd) -> anyhow::Result<()> {
    use slmgate_core::govern::pii::{eval, PiiScanner};
    let PiiCmd::Eval { data, show_errors } = cmd;
    let text =
        std::fs::read_to_string(&data).with_context(|| format!("reading {}", data.display()))?;
    let rows: Vec<eval::LabelledText> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", data.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    let e = eval::evaluate(&rows, &PiiScanner::new(None));
    println!(
        "{:<8} {:>5} {:>5} {:>5} {:>9} {:>7}",
        "type", "tp", "fp", "fn", "precision", "recall"
    );
    for (t, c) in e.by_type.iter().chain([(&"all".to_string(), &e.total)]) {
        println!(
            "{t:<8} {:>5} {:>5} {:>5} {:>9.3} {:>7.3}",
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall()
        );
    }
    println!(
        "{} texts; {} of {} hard negatives flagged",
        rows.len(),
        e.flagged_negatives,
        e.negatives
    );
    for (text, what) in e.errors.iter().take(show_errors) {
        let short: String = text.chars().take(90).collect();
        println!("  {what}  in  {short:?}");
    }
    Ok(())
}

fn output(out: &Option<PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    })
}

pub fn keys(cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Create { store, spec } => {
            let (rec, plain) = store.keys()?.create(spec.into())?;
            eprintln!(
                "created {} (team {}); the key is shown once:",
                rec.id,
                rec.spec.team.as_deref().unwrap_or("-")
            );
            println!("{plain}");
        }
        KeysCmd::List { store } => {
            for k in store.keys()?.list()? {
                println!("{}", serde_json::to_string(&k)?);
            }
        }
        KeysCmd::Revoke { store, id } => {
            if !store.keys()?.revoke(&id)? {
                anyhow::bail!("no key `{id}`");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

pub fn audit(cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Verify { store } => {
            let v = match store.pg()? {
                Some(pg) => audit::pg::verify(&pg)?,
                None => audit::verify(&store.open()?)?,
            };
            let (seq, hash) = v.head.clone().unwrap_or((0, audit::chain::GENESIS.into()));
            if v.ok() {
                println!(
                    "audit log ok: {} entries, chain intact ({} with erased content); head {seq} {hash}",
                    v.entries, v.erased
                );
                Ok(())
            } else {
                for p in &v.problems {
                    println!("BROKEN: {p}");
                }
                anyhow::bail!(
                    "audit log does not verify: {} problems in {} entries",
                    v.problems.len(),
                    v.entries
                )
            }
        }
        AuditCmd::Export {
            store,
            out,
            with_content,
            since_days,
        } => {
            let since = since_days
                .map(|d| db::now_ms() - d as i64 * 86_400_000)
                .unwrap_or(0);
            let mut w = output(&out)?;
            let n = match store.pg()? {
                Some(pg) => audit::pg::export(&pg, with_content, since, &mut w)?,
                None => audit::export(&store.open()?, with_content, since, &mut w)?,
            };
            w.flush()?;
            eprintln!("exported {n} entries");
            Ok(())
        }
        AuditCmd::Forget { store, subject } => {
            let n = match store.pg()? {
                Some(pg) => audit::pg::forget(&pg, &subject)?,
                None => audit::forget(&mut store.open()?, &subject)?,
            };
            println!("erased the content of {n} entries; the erasure is itself logged");
            Ok(())
        }
    }
}

pub fn review(cmd: ReviewCmd) -> anyhow::Result<()> {
    let ReviewCmd::Export {
        store,
        weak,
        strong,
        out,
    } = cmd;
    let mut w = output(&out)?;
    let (n, skipped) = match store.pg()? {
        Some(pg) => review::export_pg(&pg, &weak, &strong, &mut w)?,
        None => review::export(&store.open()?, &weak, &strong, &mut w)?,
    };
    w.flush()?;
    eprintln!(
        "exported {n} labelled outcomes ({skipped} verdicts say nothing about {weak} vs {strong})"
    );
    Ok(())
}
