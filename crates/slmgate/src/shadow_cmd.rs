//! `slmgate shadow report`: how shadow models agreed with the routes they shadowed, what each
//! side cost and how fast it was, per route and by day, with projected savings.

use clap::Subcommand;
use slmgate_core::govern::db;
use slmgate_core::learn::{report, store};
use slmgate_core::observe::ledger;

use crate::govern_cmd::Store;

#[derive(Subcommand)]
pub enum ShadowCmd {
    /// Agreement, latency and cost of each shadow model against its route.
    Report {
        #[command(flatten)]
        store: Store,
        /// How far back: `30d`, `24h`, `90m` or `all`.
        #[arg(long, default_value = "30d")]
        since: String,
        /// Only this route.
        #[arg(long)]
        route: Option<String>,
        /// Agreement thresholds to project savings at (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = report::DEFAULT_THRESHOLDS)]
        thresholds: Vec<f32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ShadowCmd) -> anyhow::Result<()> {
    match cmd {
        ShadowCmd::Report {
            store: s,
            since,
            route,
            thresholds,
            json,
        } => {
            if let Some(t) = thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
                anyhow::bail!("--thresholds: {t} is not between 0 and 1");
            }
            let since = ledger::parse_since(&since, db::now_ms()).map_err(anyhow::Error::msg)?;
            let rows = match s.pg()? {
                Some(pg) => slmgate_core::learn::store_pg::load(&pg, since, route.as_deref())?,
                None => store::load(&s.open()?, since, route.as_deref())?,
            };
            let r = report::report(&rows, since, &thresholds);
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", report::render(&r));
            }
            Ok(())
        }
    }
}
