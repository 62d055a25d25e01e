//! `slmgate router train | eval | calibrate`: the learned router's command line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use slmgate_core::ml::data::{self, Example};
use slmgate_core::ml::eval::{cross_validate, folds, score_examples, train_router, Report};
use slmgate_core::ml::metrics::{curve, threshold_for_share};
use slmgate_core::ml::train::TrainOptions;
use slmgate_core::ml::{embed_all, Learner, Representation, RouterModel};
use slmgate_engine::SentenceEmbedder;

#[derive(Subcommand)]
pub enum RouterCmd {
    /// Train a router on labelled outcomes and write it to a file `serve` loads.
    Train {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        out: PathBuf,
        /// ridge (regression of the strong model's gain) | logistic | mlp
        #[arg(long, default_value = "ridge")]
        learner: String,
        /// bag (sum of token vectors) | static (their mean, unit length) | contextual (MiniLM
        /// sentence embedding: milliseconds)
        #[arg(long, default_value = "bag")]
        representation: String,
        /// Initial threshold: the score that sends this share of the training prompts to
        /// the strong model (refine later with `router calibrate` on held-out data).
        #[arg(long, default_value_t = 0.5)]
        target_strong_share: f64,
    },
    /// k-fold cross-validation: APGR and CPT beside random and oracle routing.
    Eval {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Keep prompts sharing this tag's value in one fold (default: group by prompt text).
        #[arg(long)]
        group_by: Option<String>,
        /// ridge | logistic | mlp | all
        #[arg(long, default_value = "all")]
        learner: String,
        /// bag | static | contextual | all (contextual embeds every prompt with MiniLM: slower)
        #[arg(long, default_value = "bag")]
        representation: String,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Write the PGR curve as SVG.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write every prompt's out-of-fold score as JSONL.
        #[arg(long)]
        scores_out: Option<PathBuf>,
    },
    /// Retrain a route's router on production outcomes (review verdicts, shadow agreement,
    /// cascade decisions) and swap its file (the gateway reloads it) only when the new router's
    /// APGR on held-out production rows beats the current one's. Audited either way.
    Retrain(crate::retrain::Args),
    /// Publish a route's router to the shared Postgres store: every replica serves it within
    /// 2 s, no shared volume needed. Audited.
    Publish(crate::router_publish::Args),
    /// Set a router's threshold for a target strong-model share or quality on given data.
    Calibrate {
        #[arg(long)]
        router: PathBuf,
        /// Prompts to calibrate on (held-out data or recent traffic, labelled-outcome JSONL).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, conflicts_with_all = ["target_quality", "tier_shares"])]
        target_strong_share: Option<f64>,
        /// Share of the weak-to-strong quality gap to recover (PGR), e.g. 0.95.
        #[arg(long, conflicts_with = "tier_shares")]
        target_quality: Option<f64>,
        /// N-tier starts: the share of requests that should start at each later tier,
        /// `mid=0.3,frontier=0.1`; prints the route's `router.starts` (the file is unchanged).
        #[arg(long)]
        tier_shares: Option<String>,
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct DataArgs {
    /// Labelled outcomes: {"prompt", "tags", "outcomes": {model: 0..1}} per line.
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    weak: String,
    #[arg(long)]
    strong: String,
    /// Config whose [embeddings] model embeds the prompts (default: the embedded config).
    #[arg(long, short, env = "SLMGATE_CONFIG")]
    config: Option<PathBuf>,
}

pub(crate) fn embedder(config: Option<&PathBuf>) -> anyhow::Result<(SentenceEmbedder, String)> {
    let cfg = crate::load(config)?;
    let e = cfg
        .embeddings
        .context("the config has no [embeddings] model; the router needs one")?;
    let m = SentenceEmbedder::load(Path::new(&e.path))?;
    Ok((m, e.name))
}

pub(crate) fn embed(
    e: &SentenceEmbedder,
    repr: Representation,
    examples: &[Example],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let prompts: Vec<String> = examples.iter().map(|x| x.row.prompt.clone()).collect();
    let bar = indicatif::ProgressBar::new(prompts.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("embedding {bar:40} {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let out = embed_all(e, repr, &prompts, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    Ok(out)
}

fn load_data(d: &DataArgs) -> anyhow::Result<Vec<Example>> {
    let (examples, skipped) = data::load(&d.data, &d.weak, &d.strong)?;
    eprintln!(
        "{} examples ({} skipped: no outcome for both models)",
        examples.len(),
        skipped
    );
    Ok(examples)
}

fn learners(s: &str) -> anyhow::Result<Vec<Learner>> {
    Ok(match s {
        "all" => vec![Learner::Ridge, Learner::Logistic, Learner::Mlp],
        other => vec![Learner::parse(other)?],
    })
}

pub fn run(cmd: RouterCmd) -> anyhow::Result<()> {
    match cmd {
        RouterCmd::Train {
            data,
            out,
            learner,
            representation,
            target_strong_share,
        } => {
            let examples = load_data(&data)?;
            let (e, name) = embedder(data.config.as_ref())?;
            let repr = Representation::parse(&representation)?;
            let emb = embed(&e, repr, &examples)?;
            let ex: Vec<&Example> = examples.iter().collect();
            let em: Vec<&Vec<f32>> = emb.iter().collect();
            let mut m = train_router(&ex, &em, &TrainOptions::new(Learner::parse(&learner)?))?;
            m.weak = data.weak.clone();
            m.strong = data.strong.clone();
            m.embedding = name;
            m.representation = repr;
            let scores = score_examples(&m, &ex, &em);
            m.threshold = threshold_for_share(&scores, target_strong_share) as f32;
            m.threshold_note = format!(
                "{:.0}% strong share on the training data",
                target_strong_share * 100.0
            );
            m.save(&out)?;
            println!(
                "router written to {} ({} examples, learner {}, l2 {}, {} tag features, threshold {:.4})",
                out.display(), m.trained_examples, m.learner.as_str(), m.l2, m.tag_features.len(), m.threshold
            );
            Ok(())
        }
        RouterCmd::Eval {
            data,
            folds: k,
            group_by,
            learner,
            representation,
            seed,
            svg,
            scores_out,
        } => {
            if k < 2 {
                bail!("--folds must be at least 2");
            }
            let examples = load_data(&data)?;
            let (e, _) = embedder(data.config.as_ref())?;
            let fold_of = folds(&examples, k, group_by.as_deref(), seed);
            let reprs = match representation.as_str() {
                "all" => vec![
                    Representation::Bag,
                    Representation::Static,
                    Representation::Contextual,
                ],
                one => vec![Representation::parse(one)?],
            };
            let mut best: Option<(Report, Vec<f64>)> = None;
            for repr in reprs {
                let emb = embed(&e, repr, &examples)?;
                for l in learners(&learner)? {
                    let t = std::time::Instant::now();
                    let mut opts = TrainOptions::new(l);
                    opts.seed = seed;
                    let scores = cross_validate(&examples, &emb, &fold_of, k, &opts)?;
                    let name = format!("{}/{}", repr.as_str(), l.as_str());
                    let report = Report::new(&name, &examples, &scores)
                        .with_baselines(&examples, &fold_of, k);
                    println!(
                        "== {name} ({k}-fold, {:.1} s)\n{}",
                        t.elapsed().as_secs_f64(),
                        report.text()
                    );
                    if best
                        .as_ref()
                        .is_none_or(|(b, _)| report.router.apgr() > b.router.apgr())
                    {
                        best = Some((report, scores));
                    }
                }
            }
            let Some((report, scores)) = best else {
                bail!("no learner ran")
            };
            if let Some(p) = svg {
                std::fs::write(&p, report.svg())
                    .with_context(|| format!("writing {}", p.display()))?;
                println!("plot ({}) written to {}", report.name, p.display());
            }
            if let Some(p) = scores_out {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
                for ((x, s), fold) in examples.iter().zip(&scores).zip(&fold_of) {
                    let line = serde_json::json!({
                        "id": x.row.id, "fold": fold, "score": s,
                        "weak": x.weak, "strong": x.strong, "learner": report.name,
                    });
                    writeln!(f, "{line}")?;
                }
                println!("out-of-fold scores written to {}", p.display());
            }
            Ok(())
        }
        RouterCmd::Retrain(args) => crate::retrain::run(args),
        RouterCmd::Publish(args) => crate::router_publish::run(args),
        RouterCmd::Calibrate {
            router,
            data,
            target_strong_share,
            target_quality,
            tier_shares,
            config,
        } => {
            let mut m = RouterModel::load(&router)?;
            let (examples, _) = data::load(&data, &m.weak, &m.strong)?;
            let (e, _) = embedder(config.as_ref())?;
            let emb = embed(&e, m.representation, &examples)?;
            let ex: Vec<&Example> = examples.iter().collect();
            let em: Vec<&Vec<f32>> = emb.iter().collect();
            let scores = score_examples(&m, &ex, &em);
            if let Some(spec) = tier_shares {
                return print_starts(&spec, &scores);
            }
            let (threshold, note) = match (target_strong_share, target_quality) {
                (Some(s), None) => (
                    threshold_for_share(&scores, s),
                    format!("{:.0}% strong share on {}", s * 100.0, data.display()),
                ),
                (None, Some(q)) => {
                    let weak: Vec<f64> = examples.iter().map(|x| x.weak).collect();
                    let strong: Vec<f64> = examples.iter().map(|x| x.strong).collect();
                    let c = curve(&scores, &weak, &strong);
                    let share = c.cpt(q).with_context(|| {
                        format!(
                            "no threshold recovers {:.0}% of the quality gap on this data",
                            q * 100.0
                        )
                    })?;
                    (
                        threshold_for_share(&scores, share),
                        format!(
                            "PGR {q} (strong share {:.1}%) on {}",
                            share * 100.0,
                            data.display()
                        ),
                    )
                }
                _ => bail!("give one of --target-strong-share or --target-quality"),
            };
            m.threshold = threshold as f32;
            m.threshold_note = note.clone();
            m.save(&router)?;
            let share =
                scores.iter().filter(|s| **s >= threshold).count() as f64 / scores.len() as f64;
            println!(
                "threshold {threshold:.4} ({note}); {:.1}% of these prompts go to {}",
                share * 100.0,
                m.strong
            );
            Ok(())
        }
    }
}

/// `mid=0.3,frontier=0.1` (tiers in the route's order, weakest first) → the scores from which
/// that share of these prompts starts at each tier, printed as the route's `router.starts`.
fn print_starts(spec: &str, scores: &[f64]) -> anyhow::Result<()> {
    let mut tiers: Vec<(String, f64)> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (tier, share) = part
            .split_once('=')
            .with_context(|| format!("{part:?}: expected TIER=SHARE"))?;
        let share: f64 = share
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| (0.0..=1.0).contains(s))
            .with_context(|| format!("{part:?}: the share must be between 0 and 1"))?;
        tiers.push((tier.trim().to_string(), share));
    }
    let total: f64 = tiers.iter().map(|t| t.1).sum();
    if tiers.is_empty() || total > 1.0 + 1e-9 {
        bail!("give each later tier a share, together at most 1");
    }
    // The strongest tier takes the top of the scores, the next one the band below it, ...
    let mut above = 0.0;
    let mut starts = Vec::new();
    for (tier, share) in tiers.iter().rev() {
        above += share;
        starts.push((tier.clone(), threshold_for_share(scores, above)));
    }
    starts.reverse();
    let toml: Vec<String> = starts
        .iter()
        .map(|(t, s)| format!("{t} = {s:.4}"))
        .collect();
    println!("starts = {{ {} }}", toml.join(", "));
    for (tier, share) in &tiers {
        println!("  {tier}: {:.1}% of these prompts", share * 100.0);
    }
    println!("  first tier: {:.1}%", (1.0 - total).max(0.0) * 100.0);
    Ok(())
}
