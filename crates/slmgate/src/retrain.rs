//! `slmgate router retrain`: the closed loop. Production outcomes of a route
//! (`learn::feedback`) are split by request into train and held-out rows; a new router (the
//! current one's learner and representation) is trained on the current router's data plus the
//! production train rows, with the threshold that keeps the current strong share; both
//! routers are scored on the held-out rows, and the router file is replaced only when the
//! new one's APGR is higher. The gateway reloads the file within 2 s; the old one is kept
//! beside it (`.prev.json`). The decision is an audit entry (`router_retrain`).
//!
//! On the shared Postgres store the production rows come from every replica (a snapshot,
//! `learn::snapshot`), the current router is the route's published one if there is one, and a
//! better router is published (`router publish`'s table) rather than written to the file, so
//! every replica serves it within 2 s; the replaced one is still kept as `.prev.json`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use slmgate_core::govern::audit::{self, store as audit_store, Record};
use slmgate_core::govern::db;
use slmgate_core::learn::feedback::{self, FeedbackQuery};
use slmgate_core::ml::data::{self, Example};
use slmgate_core::ml::eval::{score_examples, train_router};
use slmgate_core::ml::metrics::{curve, threshold_for_share};
use slmgate_core::ml::train::TrainOptions;
use slmgate_core::ml::RouterModel;
use slmgate_core::observe::ledger;
use slmgate_core::route::published;

use crate::router_cmd::{embed, embedder};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: crate::govern_cmd::Store,
    /// The route whose `router = { path }` is retrained.
    #[arg(long)]
    route: String,
    /// How far back: `7d`, `24h`, `90m` or `all`.
    #[arg(long, default_value = "7d")]
    since: String,
    /// Labelled outcomes the current router was trained on (kept in the training set).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Share of the production rows held out to compare the routers on.
    #[arg(long, default_value_t = 0.3)]
    holdout: f64,
    /// Shadow agreement at or above this counts as the weak side answering well.
    #[arg(long, default_value_t = 0.9)]
    agree: f32,
    /// Swap only when held-out APGR improves by more than this.
    #[arg(long, default_value_t = 0.0)]
    min_gain: f64,
}

/// Held-out rows fewer than this, or without a single prompt where the strong tier did
/// better, say nothing about which router is better.
const MIN_HELD_OUT: usize = 10;

pub fn run(a: Args) -> anyhow::Result<()> {
    if !(0.05..=0.9).contains(&a.holdout) {
        bail!("--holdout must be between 0.05 and 0.9");
    }
    let cfg = crate::load(a.store.config.as_ref())?;
    let r = cfg
        .routes
        .get(&a.route)
        .with_context(|| format!("no route {:?} in the config", a.route))?;
    let rc = r
        .router
        .as_ref()
        .with_context(|| format!("route {:?} has no router = {{ path }}", a.route))?;
    let path = PathBuf::from(&rc.path);
    let weak_tier = r.tiers.first().context("the route has no tiers")?;
    let strong_name = rc
        .strong_tier
        .clone()
        .or_else(|| r.tiers.last().map(|t| t.name.clone()))
        .unwrap_or_default();
    let strong_tier = r
        .tiers
        .iter()
        .find(|t| t.name == strong_name)
        .with_context(|| format!("no strong tier {strong_name:?} in the route"))?;
    let pg = a.store.pg()?;
    let published_now = match &pg {
        Some(pg) => published::fetch(pg, &a.route)?,
        None => None,
    };
    let (current, current_text) = match &published_now {
        Some(p) => (
            RouterModel::parse(&p.body, &format!("published version {}", p.version))?,
            p.body.clone(),
        ),
        None => (
            RouterModel::load(&path)?,
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
    };
    let serving = match &published_now {
        Some(p) => format!(
            "route {}'s published router (version {})",
            a.route, p.version
        ),
        None => path.display().to_string(),
    };
    let since_ms = ledger::parse_since(&a.since, db::now_ms()).map_err(anyhow::Error::msg)?;
    let conn = a.store.learning_data(since_ms)?;
    let audit = |what: String| -> anyhow::Result<()> {
        let rec = Record::event("router_retrain", "cli", &a.route, db::now_ms(), what);
        match &pg {
            Some(pg) => {
                let mut conn = pg.get()?;
                audit::pg::append(&mut conn, &[rec])?;
            }
            None => {
                audit_store::append(&mut a.store.open()?, &[rec])?;
            }
        }
        Ok(())
    };
    let (prod, sources) = feedback::collect(
        &conn,
        &FeedbackQuery {
            route: &a.route,
            weak_tier: &weak_tier.name,
            strong_tier: &strong_tier.name,
            weak_models: &weak_tier.models,
            strong_models: &strong_tier.models,
            since_ms,
            agree: a.agree,
            weak_key: &current.weak,
            strong_key: &current.strong,
        },
    )?;
    println!(
        "{} production rows for route {} (review {}, shadow {}, cascade {})",
        prod.len(),
        a.route,
        sources.review,
        sources.shadow,
        sources.cascade
    );
    let (held, train_prod): (Vec<Example>, Vec<Example>) = prod
        .into_iter()
        .partition(|x| feedback::held_out(x.row.id.as_deref().unwrap_or_default(), a.holdout));
    let signal = held.iter().any(|x| x.strong != x.weak);
    if held.len() < MIN_HELD_OUT || !signal || train_prod.is_empty() {
        let why = format!(
            "kept {serving}: {} held-out rows ({} needed, with at least one where the tiers differ) and {} to train on",
            held.len(),
            MIN_HELD_OUT,
            train_prod.len()
        );
        audit(why.clone())?;
        println!("{why}");
        return Ok(());
    }
    let mut training = match &a.data {
        Some(p) => data::load(p, &current.weak, &current.strong)?.0,
        None => Vec::new(),
    };
    let base = training.len();
    training.extend(train_prod);
    let (e, name) = embedder(a.store.config.as_ref())?;
    let repr = current.representation;
    let train_emb = embed(&e, repr, &training)?;
    let held_emb = embed(&e, repr, &held)?;
    let tx: Vec<&Example> = training.iter().collect();
    let tem: Vec<&Vec<f32>> = train_emb.iter().collect();
    let hx: Vec<&Example> = held.iter().collect();
    let hem: Vec<&Vec<f32>> = held_emb.iter().collect();

    let mut next = train_router(&tx, &tem, &TrainOptions::new(current.learner))?;
    next.weak = current.weak.clone();
    next.strong = current.strong.clone();
    next.embedding = name;
    next.representation = repr;
    // The same strong share as the current router gives on this training data.
    let share = {
        let s = score_examples(&current, &tx, &tem);
        s.iter().filter(|v| **v >= current.threshold as f64).count() as f64 / s.len() as f64
    };
    next.threshold = threshold_for_share(&score_examples(&next, &tx, &tem), share) as f32;
    next.threshold_note = format!(
        "retrained on {} rows; {:.0}% strong share as before",
        training.len(),
        share * 100.0
    );

    let weak: Vec<f64> = held.iter().map(|x| x.weak).collect();
    let strong: Vec<f64> = held.iter().map(|x| x.strong).collect();
    let apgr = |m: &RouterModel| curve(&score_examples(m, &hx, &hem), &weak, &strong).apgr();
    let (before, after) = (apgr(&current), apgr(&next));
    let swap = after > before + a.min_gain;
    let mut what = format!(
        "{} {serving}: held-out APGR {before:.4} (current) vs {after:.4} (retrained) on {} rows; trained on {} rows ({base} from --data)",
        if swap { "swapped" } else { "kept" },
        held.len(),
        training.len()
    );
    if swap {
        let prev = path.with_extension("prev.json");
        std::fs::write(&prev, &current_text)
            .with_context(|| format!("keeping {}", prev.display()))?;
        match &pg {
            Some(pg) => {
                let body = serde_json::to_string(&next)?;
                let version = published::publish(pg, &a.route, &body, &next.threshold_note)?;
                what.push_str(&format!(
                    "; published as version {version} (every replica serves it within 2 s)"
                ));
            }
            None => next.save(&path)?,
        }
    }
    audit(what.clone())?;
    println!("{what}");
    Ok(())
}
