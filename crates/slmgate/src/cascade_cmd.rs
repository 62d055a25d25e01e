//! `slmgate cascade eval`: how well a post-generation cascade would route labelled data, with
//! a local model judging the weak model's recorded responses (teacher-forced logprobs).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use slmgate_core::config::Config;
use slmgate_core::ml::data;
use slmgate_core::ml::eval::Report;
use slmgate_core::route::verifier::{auroc, verifier_confidence, SIGNALS};
use slmgate_engine::ChatMessage;

#[derive(Subcommand)]
pub enum CascadeCmd {
    /// Which of the local model's own confidence signals separates its right answers from its
    /// wrong ones: generate answers to reference-labelled questions, AUROC per signal and window.
    Signals {
        /// `{"prompt", "reference"}` per line (e.g. data/cascade/qa.jsonl).
        #[arg(long)]
        data: PathBuf,
        /// The local `[models.*]` entry that answers (default: the first local one).
        #[arg(long)]
        model: Option<String>,
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 24)]
        max_tokens: u32,
    },
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
        /// Out-of-fold router scores (`router eval --scores-out`): also report each signal
        /// combined with the router's prior (both standardised, equal weights).
        #[arg(long)]
        router_scores: Option<PathBuf>,
        /// Reuse confidences from an earlier `--scores-out` instead of scoring again.
        #[arg(long, conflicts_with = "scores_out")]
        from_scores: Option<PathBuf>,
    },
    /// Calibrate a route's router + confidence combination (`cascade.combine`) on its logged
    /// traffic: no labels; prints the TOML to paste into the route's `cascade`.
    Calibrate {
        #[command(flatten)]
        store: crate::govern_cmd::Store,
        /// The route (its requests must have a router score and a judged first tier).
        #[arg(long)]
        route: String,
        /// How far back: `7d`, `24h`, `90m` or `all`.
        #[arg(long, default_value = "7d")]
        since: String,
        /// The share of judged requests the combination should escalate (0..1).
        #[arg(long)]
        escalate: f64,
        #[arg(long, default_value_t = 1.0)]
        router_weight: f32,
        #[arg(long, default_value_t = 1.0)]
        confidence_weight: f32,
    },
}

pub fn run(cmd: CascadeCmd) -> anyhow::Result<()> {
    if let CascadeCmd::Signals {
        data,
        model,
        config,
        max_tokens,
    } = cmd
    {
        return crate::cascade_signals::run(&data, model.as_deref(), config.as_ref(), max_tokens);
    }
    if let CascadeCmd::Calibrate {
        store,
        route,
        since,
        escalate,
        router_weight,
        confidence_weight,
    } = cmd
    {
        return calibrate(
            &store,
            &route,
            &since,
            escalate,
            router_weight,
            confidence_weight,
        );
    }
    let CascadeCmd::Eval {
        data: path,
        weak,
        strong,
        verifier,
        config,
        first_tokens,
        limit,
        scores_out,
        router_scores,
        from_scores,
    } = cmd
    else {
        unreachable!("handled above")
    };
    let (mut examples, _) = data::load(&path, &weak, &strong)?;
    examples.retain(|e| e.row.responses.contains_key(&weak));
    if let Some(n) = limit {
        examples.truncate(n);
    }
    if examples.len() < 2 {
        bail!("fewer than 2 examples carry a response from `{weak}`");
    }
    // Per example: the confidence under each signal of SIGNALS, and the answer's token count.
    let (confs, tokens) = match &from_scores {
        Some(p) => load_confidences(p, &examples)?,
        None => {
            let cfg = crate::load(config.as_ref())?;
            score(&cfg, verifier.as_deref(), &examples, &weak, first_tokens)?
        }
    };
    let good: Vec<bool> = examples.iter().map(|e| e.weak >= 0.5).collect();
    let prior = match &router_scores {
        Some(p) => Some(router_prior(p, &examples)?),
        None => None,
    };
    if let Some(p) = &prior {
        let r = Report::new("router", &examples, p);
        println!("router prior alone: APGR {:.4}\n", r.router.apgr());
    }
    println!(
        "{:<14} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "signal", "AUROC", "APGR", "CPT(50%)", "CPT(80%)", "CPT(95%)"
    );
    let line = |name: &str, auc: String, scores: &[f64]| {
        let r = Report::new(name, &examples, scores);
        let cpt = |x: f64| {
            r.router
                .cpt(x)
                .map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or("n/a".into())
        };
        println!(
            "{:<14} {:>7} {:>7.4} {:>9} {:>9} {:>9}",
            name,
            auc,
            r.router.apgr(),
            cpt(0.5),
            cpt(0.8),
            cpt(0.95)
        );
    };
    for (k, signal) in SIGNALS.iter().enumerate() {
        let conf: Vec<f32> = confs.iter().map(|c| c[k]).collect();
        // Low confidence in the weak answer → send to the strong model.
        let route: Vec<f64> = conf.iter().map(|c| -(*c as f64)).collect();
        let auc = auroc(&conf, &good)
            .map(|a| format!("{a:.4}"))
            .unwrap_or_default();
        line(signal.as_str(), auc, &route);
        if let Some(prior) = &prior {
            let combined: Vec<f64> = standardise(prior)
                .iter()
                .zip(standardise(&route))
                .map(|(a, b)| a + b)
                .collect();
            line(" +router", String::new(), &combined);
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
        for ((c, e), n) in confs.iter().zip(&examples).zip(&tokens) {
            let mut row = serde_json::Map::new();
            for (k, signal) in SIGNALS.iter().enumerate() {
                row.insert(signal.as_str().into(), serde_json::json!(c[k]));
            }
            row.insert("id".into(), serde_json::json!(e.row.id));
            row.insert("weak".into(), serde_json::json!(e.weak));
            row.insert("strong".into(), serde_json::json!(e.strong));
            row.insert("tokens".into(), serde_json::json!(n));
            row.insert("first_tokens".into(), serde_json::json!(first_tokens));
            writeln!(f, "{}", serde_json::Value::Object(row))?;
        }
        println!("confidences written to {}", p.display());
    }
    Ok(())
}

type Confidences = (Vec<Vec<f32>>, Vec<usize>);

/// Scores every weak answer with the local verifier (teacher forcing).
fn score(
    cfg: &Config,
    verifier: Option<&str>,
    examples: &[data::Example],
    weak: &str,
    first_tokens: usize,
) -> anyhow::Result<Confidences> {
    let (name, provider) = crate::local_model(cfg, verifier)?;
    eprintln!(
        "{} examples with `{weak}` responses; verifier: {name}",
        examples.len()
    );
    let items: Vec<(Vec<ChatMessage>, String)> = examples
        .iter()
        .map(|e| {
            (
                vec![ChatMessage::new("user", e.row.prompt.clone())],
                e.row.responses[weak].clone(),
            )
        })
        .collect();
    let bar = indicatif::ProgressBar::new(items.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("scoring {bar:40} {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t = std::time::Instant::now();
    let scored = provider.engine.score_answers(
        &items,
        provider.engine.settings().context.max(1024),
        |n| bar.set_position(n as u64),
    )?;
    bar.finish_and_clear();
    let tokens: Vec<usize> = scored.iter().map(Vec::len).collect();
    println!(
        "scored {} answers ({} tokens) with {name} in {:.1} s; judging {}\n",
        scored.len(),
        tokens.iter().sum::<usize>(),
        t.elapsed().as_secs_f64(),
        if first_tokens == 0 {
            "whole answers".to_string()
        } else {
            format!("the first {first_tokens} tokens")
        }
    );
    let confs = scored
        .iter()
        .map(|s| {
            SIGNALS
                .iter()
                .map(|sig| verifier_confidence(*sig, s, first_tokens).unwrap_or(f32::NEG_INFINITY))
                .collect()
        })
        .collect();
    Ok((confs, tokens))
}

/// Confidences from an earlier `--scores-out`, in the order of `examples`.
fn load_confidences(path: &PathBuf, examples: &[data::Example]) -> anyhow::Result<Confidences> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_id = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(id) = v["id"].as_str() {
            by_id.insert(id.to_string(), v);
        }
    }
    let mut confs = Vec::new();
    let mut tokens = Vec::new();
    for e in examples {
        let id = e.row.id.as_deref().unwrap_or_default();
        let v = by_id
            .get(id)
            .with_context(|| format!("no scores for example {id:?}"))?;
        confs.push(
            SIGNALS
                .iter()
                .map(|s| v[s.as_str()].as_f64().unwrap_or(f64::NEG_INFINITY) as f32)
                .collect(),
        );
        tokens.push(v["tokens"].as_u64().unwrap_or(0) as usize);
    }
    println!("confidences read from {}\n", path.display());
    Ok((confs, tokens))
}

/// Router scores by example id, in the order of `examples`.
fn router_prior(path: &PathBuf, examples: &[data::Example]) -> anyhow::Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_id = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let (Some(id), Some(s)) = (v["id"].as_str(), v["score"].as_f64()) {
            by_id.insert(id.to_string(), s);
        }
    }
    examples
        .iter()
        .map(|e| {
            let id = e.row.id.as_deref().unwrap_or_default();
            by_id
                .get(id)
                .copied()
                .with_context(|| format!("no router score for example {id:?}"))
        })
        .collect()
}

/// Zero mean, unit variance (uses no labels).
fn standardise(x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-12);
    x.iter().map(|v| (v - m) / sd).collect()
}

fn calibrate(
    store: &crate::govern_cmd::Store,
    route: &str,
    since: &str,
    escalate: f64,
    router_weight: f32,
    confidence_weight: f32,
) -> anyhow::Result<()> {
    use slmgate_core::observe::ledger;
    if !(0.0..=1.0).contains(&escalate) {
        bail!("--escalate is a share between 0 and 1");
    }
    if confidence_weight <= 0.0 || router_weight < 0.0 {
        bail!("--confidence-weight must be above 0 and --router-weight at least 0");
    }
    let cut = ledger::parse_since(since, slmgate_core::govern::db::now_ms())
        .map_err(anyhow::Error::msg)?;
    let rows = match store.pg()? {
        Some(pg) => ledger::load_pg(&pg, cut)?,
        None => ledger::load(&store.open()?, cut)?,
    };
    let c = ledger::calibrate_combine(&rows, route, router_weight, confidence_weight, escalate)
        .with_context(|| {
            format!("no requests of route {route:?} since {since} carry both a router score and a judged confidence (or one never varied): the route needs a router and a cascade, and traffic")
        })?;
    let m = &c.combine;
    println!(
        "{} judged requests of {route}; the cascade escalated {:.1}% of them as configured.",
        c.judged,
        c.escalated_share * 100.0
    );
    println!(
        "combine = {{ router_weight = {}, confidence_weight = {}, router_mean = {:.6}, router_std = {:.6}, confidence_mean = {:.6}, confidence_std = {:.6}, threshold = {:.6} }}",
        m.router_weight, m.confidence_weight, m.router_mean, m.router_std, m.confidence_mean, m.confidence_std, m.threshold
    );
    println!(
        "(escalates {:.1}% of these requests; add it to [routes.{route}] cascade)",
        escalate * 100.0
    );
    Ok(())
}
