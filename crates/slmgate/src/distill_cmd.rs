//! `slmgate distill export`: a teacher's answers from the audit log (and shadow rows) as
//! chat-format fine-tuning data, filtered, deduplicated and split into train and eval.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use slmgate_core::govern::db;
use slmgate_core::learn::distill::{self, Format};
use slmgate_core::observe::ledger;

use crate::govern_cmd::Store;

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// OpenAI fine-tuning JSONL (`messages`), also TRL's and Axolotl's chat format.
    Openai,
    /// TRL's conversational prompt–completion format (`prompt`, `completion`).
    Trl,
}

#[derive(Subcommand)]
pub enum DistillCmd {
    /// Write the teacher's answers as SFT data: OUT (train) and OUT with `.eval` (eval).
    Export {
        #[command(flatten)]
        store: Store,
        /// Only requests to this route (or model) name.
        #[arg(long)]
        route: Option<String>,
        /// The deployment whose answers are the training targets.
        #[arg(long)]
        teacher: String,
        /// How far back: `30d`, `24h`, `90m` or `all`.
        #[arg(long, default_value = "30d")]
        since: String,
        /// The train file (the eval file is written beside it: sft.jsonl → sft.eval.jsonl).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "openai")]
        format: FormatArg,
        /// Share of the distinct conversations kept for eval.
        #[arg(long, default_value_t = 0.1)]
        eval_share: f64,
    },
}

pub fn run(cmd: DistillCmd) -> anyhow::Result<()> {
    let DistillCmd::Export {
        store,
        route,
        teacher,
        since,
        out,
        format,
        eval_share,
    } = cmd;
    if !(0.0..1.0).contains(&eval_share) {
        anyhow::bail!("--eval-share must be at least 0 and below 1, got {eval_share}");
    }
    let since_ms = ledger::parse_since(&since, db::now_ms()).map_err(anyhow::Error::msg)?;
    let conn = store.learning_data(since_ms)?;
    let q = distill::Query {
        route: route.as_deref(),
        teacher: &teacher,
        since_ms,
    };
    let e = distill::export(&conn, &q, eval_share)?;
    let format = match format {
        FormatArg::Openai => Format::OpenAi,
        FormatArg::Trl => Format::PromptCompletion,
    };
    let eval_path = eval_path(&out);
    write(&out, &e.train, format)?;
    write(&eval_path, &e.eval, format)?;
    let c = &e.counts;
    println!(
        "{} answers of {teacher} found; left out: {} with PII, {} flagged by the guard, {} judged bad, {} not plain text chats, {} duplicates",
        c.found, c.pii, c.guard, c.bad_verdict, c.unsupported, c.duplicate
    );
    println!(
        "wrote {} train examples to {} and {} eval examples to {}",
        c.train,
        out.display(),
        c.eval,
        eval_path.display()
    );
    if c.found == 0 {
        eprintln!("note: answers are exported from stored content: set [audit] content = \"redacted\" or \"full\", or shadow the route with the teacher");
    }
    Ok(())
}

/// `sft.jsonl` → `sft.eval.jsonl`.
fn eval_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("sft");
    let ext = out.extension().and_then(|s| s.to_str()).unwrap_or("jsonl");
    out.with_file_name(format!("{stem}.eval.{ext}"))
}

fn write(path: &Path, rows: &[distill::Example], format: Format) -> anyhow::Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for ex in rows {
        serde_json::to_writer(&mut w, &distill::line(ex, format))?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}
