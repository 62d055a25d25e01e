//! `slmgate router publish`: a route's router into the shared Postgres store, from which
//! every replica adopts it (at start and within its 2-second refresh). The router is checked
//! first — it parses, and its embedding size is the config's embedding model's — so a bad
//! file never reaches the replicas. The publication is an audit entry (`router_publish`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use slmgate_core::govern::audit::{self, Record};
use slmgate_core::ml::RouterModel;
use slmgate_core::route::published;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: crate::govern_cmd::Store,
    /// The route whose router is published.
    #[arg(long)]
    route: String,
    /// The router file (default: the route's `router = { path }`).
    #[arg(long)]
    file: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let cfg = crate::load(a.store.config.as_ref())?;
    let r = cfg
        .routes
        .get(&a.route)
        .with_context(|| format!("no route {:?} in the config", a.route))?;
    let rc = r.router.as_ref().with_context(|| {
        format!(
            "route {:?} has no router = {{ path }} in the config",
            a.route
        )
    })?;
    let Some(pg) = a.store.pg()? else {
        bail!(
            "router publish needs [storage] backend = \"postgres\"; on one machine the gateway \
             reloads {} itself within 2 s of a change",
            rc.path
        );
    };
    let file = a.file.unwrap_or_else(|| PathBuf::from(&rc.path));
    let body =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let m = RouterModel::parse(&body, &file.display().to_string())?;
    let (e, name) = crate::router_cmd::embedder(a.store.config.as_ref())?;
    if m.embedding_dims != e.dimensions() {
        bail!(
            "{} was trained on {}-dimensional embeddings; the config's embedding model {name} gives {}",
            file.display(),
            m.embedding_dims,
            e.dimensions()
        );
    }
    let note = format!("{} from {}", m.threshold_note, file.display());
    let version = published::publish(&pg, &a.route, &body, &note)?;
    let what = format!(
        "version {version} of route {}'s router published ({note})",
        a.route
    );
    let rec = Record::event(
        "router_publish",
        "cli",
        &a.route,
        slmgate_core::db::now_ms(),
        what.clone(),
    );
    let mut conn = pg.get()?;
    audit::pg::append(&mut conn, &[rec])?;
    println!("{what}; every replica serves it within 2 s");
    Ok(())
}
