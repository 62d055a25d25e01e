//! `slmgate report`: cost, savings against the baseline, escalation, latency and review
//! quality from the audit store, grouped; `--what-if cascade.threshold=T` replays the logged
//! confidences under another threshold.

use clap::Args;
use slmgate_core::govern::db;
use slmgate_core::observe::ledger::{self, By, Format};

use crate::govern_cmd::Store;

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    store: Store,
    /// How far back: `7d`, `24h`, `90m` or `all`.
    #[arg(long, default_value = "7d")]
    since: String,
    /// Group by: model (that answered), route (requested), key, tier or team.
    #[arg(long, default_value = "model")]
    by: By,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    format: Format,
    /// Replay the logged confidences: `cascade.threshold=-0.7`.
    #[arg(long = "what-if")]
    what_if: Option<String>,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let since = ledger::parse_since(&a.since, db::now_ms()).map_err(anyhow::Error::msg)?;
    let rows = match a.store.pg()? {
        Some(pg) => ledger::load_pg(&pg, since)?,
        None => ledger::load(&a.store.open()?, since)?,
    };
    if let Some(w) = &a.what_if {
        let t = w
            .strip_prefix("cascade.threshold=")
            .and_then(|v| v.trim().parse::<f32>().ok())
            .ok_or_else(|| {
                anyhow::anyhow!("--what-if {w:?}: expected cascade.threshold=NUMBER, e.g. cascade.threshold=-0.7")
            })?;
        // Prices and routes come from the config (the same file the server runs).
        let cfg = crate::load(a.store.config.as_ref())?;
        print!(
            "{}",
            ledger::render_what_if(&ledger::what_if(&rows, t, &cfg), a.format)
        );
        return Ok(());
    }
    let groups = ledger::group(&rows, a.by);
    let total = ledger::fold("total", &rows);
    print!("{}", ledger::render(&groups, &total, a.format));
    Ok(())
}
