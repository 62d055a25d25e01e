//! `slmgate rollout`: set a route's A/B candidate and share while the gateway serves, roll
//! back, and show the live states. Every change is an audit entry; the gateway adopts it
//! within its 2-second refresh.

use clap::Subcommand;
use slmgate_core::govern::{audit, db};
use slmgate_core::learn::rollout::{self, RolloutState};

use crate::govern_cmd::Store;

#[derive(Subcommand)]
pub enum RolloutCmd {
    /// `slmgate rollout set route=auto candidate=auto-v2 share=0.2`.
    Set {
        #[command(flatten)]
        store: Store,
        /// `route=NAME`, `candidate=NAME` (default: the current one) and `share=0..1`.
        #[arg(required = true)]
        settings: Vec<String>,
    },
    /// Send every request of a route back to control (share 0, status rolled_back).
    Rollback {
        #[command(flatten)]
        store: Store,
        /// `route=NAME`.
        route: String,
    },
    /// The stored rollouts.
    Status {
        #[command(flatten)]
        store: Store,
    },
}

pub fn run(cmd: RolloutCmd) -> anyhow::Result<()> {
    match cmd {
        RolloutCmd::Set { store, settings } => {
            let (mut route, mut candidate, mut share) = (None, None, None);
            for s in &settings {
                match s.split_once('=') {
                    Some(("route", v)) => route = Some(v.to_string()),
                    Some(("candidate", v)) => candidate = Some(v.to_string()),
                    Some(("share", v)) => {
                        let x: f64 = v
                            .parse()
                            .map_err(|_| anyhow::anyhow!("share={v}: not a number"))?;
                        if !(0.0..=1.0).contains(&x) {
                            anyhow::bail!("share={v}: must be between 0 and 1");
                        }
                        share = Some(x);
                    }
                    _ => anyhow::bail!("{s:?}: expected route=NAME, candidate=NAME or share=0..1"),
                }
            }
            let route = route.ok_or_else(|| anyhow::anyhow!("route=NAME is required"))?;
            let cfg = crate::load(store.config.as_ref())?;
            let r = cfg
                .routes
                .get(&route)
                .ok_or_else(|| anyhow::anyhow!("no route {route:?} in the config"))?;
            let conf = r.rollout.as_ref().ok_or_else(|| {
                anyhow::anyhow!("route {route:?} has no rollout = {{ ... }} in the config (its bounds live there)")
            })?;
            let db = Db::open(&store)?;
            let current = rollout::load(db.store(), &route)?;
            let candidate = candidate
                .or_else(|| current.as_ref().map(|c| c.candidate.clone()))
                .or_else(|| conf.candidate.clone())
                .ok_or_else(|| anyhow::anyhow!("candidate=NAME is required (none is set)"))?;
            let known = cfg.routes.contains_key(&candidate)
                || cfg.aliases.contains_key(&candidate)
                || cfg.models.contains_key(&candidate);
            if !known || candidate == route {
                anyhow::bail!(
                    "candidate {candidate:?} must be another route, alias or model of the config"
                );
            }
            let s = RolloutState {
                route,
                candidate,
                share: share.ok_or_else(|| anyhow::anyhow!("share=0..1 is required"))?,
                status: "active".into(),
                reason: Some("set by the CLI".into()),
                updated_ms: db::now_ms(),
            };
            db.change(&s)
        }
        RolloutCmd::Rollback { store, route } => {
            let route = route.strip_prefix("route=").unwrap_or(&route).to_string();
            let db = Db::open(&store)?;
            let Some(mut s) = rollout::load(db.store(), &route)? else {
                anyhow::bail!("route {route:?} has no stored rollout");
            };
            s.share = 0.0;
            s.status = "rolled_back".into();
            s.reason = Some("rolled back by the CLI".into());
            s.updated_ms = db::now_ms();
            db.change(&s)
        }
        RolloutCmd::Status { store } => {
            let db = Db::open(&store)?;
            let routes = rollout::routes(db.store())?;
            if routes.is_empty() {
                println!(
                    "no rollout has been set (a config's rollout = {{ candidate, share }} applies)"
                );
            }
            for route in routes {
                if let Some(s) = rollout::load(db.store(), &route)? {
                    println!(
                        "{}: candidate {} share {} {} ({}) at {}",
                        s.route,
                        s.candidate,
                        s.share,
                        s.status,
                        s.reason.as_deref().unwrap_or("-"),
                        db::rfc3339(s.updated_ms)
                    );
                }
            }
            Ok(())
        }
    }
}

/// Where the rollout states live: the config's SQLite file, or its shared Postgres store.
enum Db {
    Sqlite(rusqlite::Connection),
    Pg(slmgate_core::db::Pg),
}

impl Db {
    fn open(store: &crate::govern_cmd::Store) -> anyhow::Result<Self> {
        Ok(match store.pg()? {
            Some(pg) => Db::Pg(pg),
            None => Db::Sqlite(store.open()?),
        })
    }

    fn store(&self) -> rollout::Store<'_> {
        match self {
            Db::Sqlite(c) => rollout::Store::Sqlite(c),
            Db::Pg(p) => rollout::Store::Pg(p),
        }
    }

    /// Stores the new state and its audit entry.
    fn change(self, s: &RolloutState) -> anyhow::Result<()> {
        rollout::save(self.store(), s)?;
        let rec = rollout::audit_record(s, "cli");
        match self {
            Db::Sqlite(mut c) => {
                audit::store::append(&mut c, &[rec])?;
            }
            Db::Pg(p) => {
                let mut c = p.get()?;
                audit::pg::append(&mut c, &[rec])?;
            }
        }
        println!(
            "{}: candidate {} share {} ({}); the gateway applies it within 2 s",
            s.route, s.candidate, s.share, s.status
        );
        Ok(())
    }
}
