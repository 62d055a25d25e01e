//! `slmgate guard eval`: detection and false-positive rates of the injection guard on a
//! labelled set, heuristics alone and with the embedding classifier, over a threshold sweep.
//! The classifier trains on the bundled `data/guard/labelled.jsonl`: measure it on
//! `data/guard/heldout.jsonl`, which it never sees.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use slmgate_core::govern::guard::Guard;
use slmgate_engine::SentenceEmbedder;

#[derive(Subcommand)]
pub enum GuardCmd {
    /// Detection rate (attacks flagged) and false-positive rate (benign flagged).
    Eval {
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, default_value = "data/guard/labelled.jsonl")]
        data: PathBuf,
    },
}

struct Row {
    text: String,
    attack: bool,
}

fn parse(line: &str) -> anyhow::Result<Row> {
    let v: serde_json::Value = serde_json::from_str(line)?;
    Ok(Row {
        text: v["text"].as_str().context("`text` missing")?.to_string(),
        attack: v["attack"].as_bool().context("`attack` missing")?,
    })
}

pub fn run(cmd: GuardCmd) -> anyhow::Result<()> {
    let GuardCmd::Eval { config, data } = cmd;
    let cfg = crate::load(config.as_ref())?;
    let text =
        std::fs::read_to_string(&data).with_context(|| format!("reading {}", data.display()))?;
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse)
        .collect::<anyhow::Result<_>>()
        .with_context(|| format!("parsing {}", data.display()))?;
    let attacks = rows.iter().filter(|r| r.attack).count();
    println!(
        "{} texts: {attacks} attacks, {} benign",
        rows.len(),
        rows.len() - attacks
    );
    let heuristic = Guard::heuristic();
    let mut variants: Vec<(&str, Guard, Option<SentenceEmbedder>)> =
        vec![("heuristics", heuristic, None)];
    if let Some(e) = &cfg.embeddings {
        let emb = SentenceEmbedder::load(Path::new(&e.path))?;
        let g = Guard::with_embedder(&emb, None).map_err(anyhow::Error::msg)?;
        variants.push(("heuristics+classifier", g, Some(emb)));
    }
    println!(
        "{:<22} {:>9} {:>10} {:>8}",
        "guard", "threshold", "detection", "false+"
    );
    for (name, g, emb) in &variants {
        let scores: Vec<(f32, bool)> = rows
            .iter()
            .map(|r| (g.score(&r.text, emb.as_ref()).score, r.attack))
            .collect();
        for t in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8] {
            let tp = scores.iter().filter(|(s, a)| *a && *s >= t).count();
            let fp = scores.iter().filter(|(s, a)| !*a && *s >= t).count();
            let marker = if (t - cfg.guard.threshold).abs() < 1e-6 {
                " <- configured"
            } else {
                ""
            };
            println!(
                "{name:<22} {t:>9.1} {:>9.1}% {:>7.1}%{marker}",
                100.0 * tp as f64 / attacks.max(1) as f64,
                100.0 * fp as f64 / (rows.len() - attacks).max(1) as f64
            );
        }
    }
    Ok(())
}
