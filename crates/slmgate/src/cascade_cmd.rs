//! `slmgate cascade eval`: how well a post-generation cascade would route labelled data, with
//! a local model judging the weak model's recorded responses (teacher-forced logprobs).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use slmgate_core::config::{Config, ModelConfig};
use slmgate_core::providers::local::LocalProvider;
use slmgate_core::route::router::data;
use slmgate_core::route::router::eval::Report;
use slmgate_core::route::verifier::{auroc, verifier_confidence, SIGNALS};
use slmgate_engine::ChatMessage;

#[derive(Subcommand)]
pub enum CascadeCmd {
    /// APGR/CPT and AUROC per confidence signal on data with the weak model's responses.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        weak: String,
        #[arg(long)]
        strong: String,
        /// The local `[models.*]` entry that scores the answers (default: the first local one).
        #[arg(long)]
        verifier: Option<String>,
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Judge only the first N answer tokens (0: the whole answer).
        #[arg(long, default_value_t = 0)]
        first_tokens: usize,
        /// Use only the first N examples.
        #[arg(long)]
        limit: Option<usize>,
        /// Write every example's confidences as JSONL.
        #[arg(long)]
        scores_out: Option<PathBuf>,
    },
}

pub fn run(cmd: CascadeCmd) -> anyhow::Result<()> {
    let CascadeCmd::Eval {
        data: path,
        weak,
        strong,
        verifier,
        config,
        first_tokens,
        limit,
        scores_out,
    } = cmd;
    let cfg = match &config {
        Some(p) => Config::from_file(p)?,
        None => Config::embedded_default()?,
    };
    let (name, local) = cfg
        .models
        .iter()
        .filter_map(|(n, m)| match m {
            ModelConfig::Local(l) => Some((n.clone(), l.clone())),
            _ => None,
        })
        .find(|(n, _)| verifier.as_ref().is_none_or(|v| v == n))
        .with_context(|| {
            format!(
                "no local model {} in the config",
                verifier.as_deref().unwrap_or("(any)")
            )
        })?;
    let (mut examples, _) = data::load(&path, &weak, &strong)?;
    examples.retain(|e| e.row.responses.contains_key(&weak));
    if let Some(n) = limit {
        examples.truncate(n);
    }
    if examples.len() < 2 {
        bail!("fewer than 2 examples carry a response from `{weak}`");
    }
    eprintln!(
        "{} examples with `{weak}` responses; verifier: {name}",
        examples.len()
    );
    let provider = LocalProvider::load(&name, &local).map_err(anyhow::Error::msg)?;
    let items: Vec<(Vec<ChatMessage>, String)> = examples
        .iter()
        .map(|e| {
            (
                vec![ChatMessage::new("user", e.row.prompt.clone())],
                e.row.responses[&weak].clone(),
            )
        })
        .collect();
    let bar = indicatif::ProgressBar::new(items.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("scoring {bar:40} {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t = std::time::Instant::now();
    let scored = provider
        .engine
        .score_answers(&items, local.context.max(1024), |n| {
            bar.set_position(n as u64)
        })?;
    bar.finish_and_clear();
    let tokens: usize = scored.iter().map(Vec::len).sum();
    println!(
        "scored {} answers ({tokens} tokens) with {name} in {:.1} s; judging {}\n",
        scored.len(),
        t.elapsed().as_secs_f64(),
        if first_tokens == 0 {
            "whole answers".to_string()
        } else {
            format!("the first {first_tokens} tokens")
        }
    );
    let good: Vec<bool> = examples.iter().map(|e| e.weak >= 0.5).collect();
    let mut rows = vec![serde_json::Map::new(); examples.len()];
    println!(
        "{:<14} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "signal", "AUROC", "APGR", "CPT(50%)", "CPT(80%)", "CPT(95%)"
    );
    for signal in SIGNALS {
        let conf: Vec<f32> = scored
            .iter()
            .map(|s| verifier_confidence(signal, s, first_tokens).unwrap_or(f32::NEG_INFINITY))
            .collect();
        // Low confidence in the weak answer → send to the strong model.
        let route: Vec<f64> = conf.iter().map(|c| -(*c as f64)).collect();
        let r = Report::new(signal.as_str(), &examples, &route);
        let cpt = |x: f64| {
            r.router
                .cpt(x)
                .map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or("n/a".into())
        };
        println!(
            "{:<14} {:>7.4} {:>7.4} {:>9} {:>9} {:>9}",
            signal.as_str(),
            auroc(&conf, &good).unwrap_or(f64::NAN),
            r.router.apgr(),
            cpt(0.5),
            cpt(0.8),
            cpt(0.95)
        );
        for (row, c) in rows.iter_mut().zip(&conf) {
            row.insert(signal.as_str().into(), serde_json::json!(c));
        }
    }
    let oracle = Report::new("oracle", &examples, &vec![0.0; examples.len()])
        .oracle
        .apgr();
    println!(
        "{:<14} {:>7} {:>7.4}\n{:<14} {:>7} {:>7.4}",
        "oracle", "", oracle, "random", "", 0.5
    );
    if let Some(p) = scores_out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
        for ((row, e), s) in rows.iter_mut().zip(&examples).zip(&scored) {
            row.insert("id".into(), serde_json::json!(e.row.id));
            row.insert("weak".into(), serde_json::json!(e.weak));
            row.insert("strong".into(), serde_json::json!(e.strong));
            row.insert("tokens".into(), serde_json::json!(s.len()));
            writeln!(f, "{}", serde_json::Value::Object(row.clone()))?;
        }
        println!("confidences written to {}", p.display());
    }
    Ok(())
}
