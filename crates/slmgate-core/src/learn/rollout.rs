//! A/B rollouts: a route's `rollout = { candidate = "auto-v2", share = 0.1 }` sends a sticky
//! share of its requests to a candidate route version (or alias, or model). The arm is a
//! hash of the route and the caller's key or user, so one caller stays on one arm and
//! raising the share only moves callers from control to candidate, never back.
//!
//! The live candidate and share are in the store's `rollouts` table: `slmgate rollout set`
//! writes them (and an audit entry), and the server adopts a newer row within its refresh
//! tick (2 s). The server rolls back on its own — share 0, status `rolled_back`, an audit
//! entry — once, since the last change, the candidate's 5xx share exceeds `max_error_rate`
//! over at least `min_requests` requests, or its share of reviewed answers judged bad
//! exceeds `max_bad_share` over at least `min_requests` reviews.
//!
//! On the shared Postgres store the error bound is judged on every replica's requests: each
//! refresh counts the candidate's audited requests and 5xx answers appended since the last
//! one (the audit log is shared, so every replica reads the same totals), rather than each
//! replica judging only what it served.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, RolloutConfig, Sticky};
use crate::govern::audit::Record;
use crate::govern::{db, GovernError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Control,
    Candidate,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Control => "control",
            Arm::Candidate => "candidate",
        }
    }
}

/// Which arm one request is on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    /// The route the client asked for.
    pub route: String,
    pub candidate: String,
    pub arm: Arm,
}

/// A route's rollout as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutState {
    pub route: String,
    pub candidate: String,
    pub share: f64,
    /// `active` or `rolled_back`.
    pub status: String,
    pub reason: Option<String>,
    pub updated_ms: i64,
}

struct Live {
    state: Option<RolloutState>,
    /// The candidate's requests and failures since the last change.
    requests: u32,
    errors: u32,
    /// On Postgres: the audit sequence number counted up to.
    counted_seq: i64,
}

struct RouteRollout {
    cfg: RolloutConfig,
    live: Mutex<Live>,
}

/// Every route's rollout.
#[derive(Default)]
pub struct Rollouts {
    routes: HashMap<String, RouteRollout>,
    /// The error bound is judged on the shared audit log (Postgres), not per process.
    shared: bool,
}

impl Rollouts {
    /// The configured rollouts; a candidate in the config is live until the store has a newer
    /// state.
    pub fn new(cfg: &Config) -> Self {
        let routes = cfg
            .routes
            .iter()
            .filter_map(|(name, r)| {
                let c = r.rollout.as_ref()?;
                let state = c.candidate.as_ref().map(|cand| RolloutState {
                    route: name.clone(),
                    candidate: cand.clone(),
                    share: c.share,
                    status: "active".into(),
                    reason: Some("config".into()),
                    updated_ms: 0,
                });
                Some((
                    name.clone(),
                    RouteRollout {
                        cfg: c.clone(),
                        live: Mutex::new(Live {
                            state,
                            requests: 0,
                            errors: 0,
                            counted_seq: 0,
                        }),
                    },
                ))
            })
            .collect();
        Self {
            routes,
            shared: cfg.storage.backend == crate::config::StorageBackend::Postgres,
        }
    }

    /// The arm of a request to `route` from this key and user; `None` when the route has no
    /// live rollout.
    pub fn assign(&self, route: &str, key: Option<&str>, user: Option<&str>) -> Option<Assignment> {
        let r = self.routes.get(route)?;
        let live = lock(&r.live);
        let s = live.state.as_ref().filter(|s| s.status == "active")?;
        let who = match r.cfg.sticky {
            Sticky::Key => key.or(user),
            Sticky::User => user.or(key),
        };
        let point = match who {
            Some(id) => bucket(route, id),
            None => rand::random::<f64>(),
        };
        Some(Assignment {
            route: route.to_string(),
            candidate: s.candidate.clone(),
            arm: if point < s.share {
                Arm::Candidate
            } else {
                Arm::Control
            },
        })
    }

    /// Counts a finished request of the candidate arm; returns the rolled-back state when this
    /// failure crossed the error bound. On Postgres the shared audit log is counted instead
    /// (`refresh`).
    pub fn record(&self, a: &Assignment, failed: bool) -> Option<RolloutState> {
        if a.arm != Arm::Candidate || self.shared {
            return None;
        }
        let r = self.routes.get(&a.route)?;
        let mut live = lock(&r.live);
        count(&mut live, &r.cfg, 1, failed as u32)
    }

    /// Adopts states the store holds that are newer than the live ones (`slmgate rollout set`
    /// from another process), then judges each active candidate's reviewed answers (and, on
    /// Postgres, its audited requests from every replica).
    /// Returns the rollbacks this made (to audit).
    pub fn refresh(&self, conn: Store<'_>) -> Result<Vec<RolloutState>, GovernError> {
        let mut rolled = Vec::new();
        for (route, r) in &self.routes {
            let stored = load(conn, route)?;
            let since = {
                let mut live = lock(&r.live);
                if let Some(s) = stored {
                    if live
                        .state
                        .as_ref()
                        .is_none_or(|l| s.updated_ms > l.updated_ms)
                    {
                        tracing::info!(route = %route, candidate = %s.candidate, share = s.share, status = %s.status, "rollout changed");
                        live.state = Some(s);
                        live.requests = 0;
                        live.errors = 0;
                        // Recount from the change (entries before it are filtered by time).
                        live.counted_seq = 0;
                    }
                }
                match &live.state {
                    Some(s) if s.status == "active" && s.share > 0.0 => s.updated_ms,
                    _ => continue,
                }
            };
            if let Store::Pg(pg) = conn {
                let (candidate, after) = {
                    let live = lock(&r.live);
                    let c = live.state.as_ref().map(|s| s.candidate.clone());
                    (c.unwrap_or_default(), live.counted_seq)
                };
                let (head, n, e) = candidate_outcomes(pg, route, &candidate, since, after)?;
                let mut live = lock(&r.live);
                live.counted_seq = head;
                if let Some(s) = count(&mut live, &r.cfg, n, e) {
                    rolled.push(s);
                    continue;
                }
            }
            let (reviewed, bad) = verdicts(conn, route, since)?;
            if reviewed >= r.cfg.min_requests as i64
                && bad as f64 > r.cfg.max_bad_share * reviewed as f64
            {
                let why = format!(
                    "{bad}/{reviewed} reviewed answers judged bad, above {:.1}%",
                    100.0 * r.cfg.max_bad_share
                );
                if let Some(s) = roll_back(&mut lock(&r.live), &why) {
                    rolled.push(s);
                }
            }
        }
        Ok(rolled)
    }

    /// The live states (for `/ready`-style reporting and tests).
    pub fn states(&self) -> Vec<RolloutState> {
        let mut v: Vec<RolloutState> = self
            .routes
            .values()
            .filter_map(|r| lock(&r.live).state.clone())
            .collect();
        v.sort_by(|a, b| a.route.cmp(&b.route));
        v
    }
}

/// Adds finished candidate requests (`n`, of which `e` failed) and rolls back when they
/// cross the error bound.
fn count(live: &mut Live, cfg: &RolloutConfig, n: u32, e: u32) -> Option<RolloutState> {
    live.requests += n;
    live.errors += e;
    let (n, e) = (live.requests, live.errors);
    if n < cfg.min_requests || (e as f64) <= cfg.max_error_rate * n as f64 {
        return None;
    }
    let why = format!(
        "error rate {e}/{n} ({:.1}%) above {:.1}%",
        100.0 * e as f64 / n as f64,
        100.0 * cfg.max_error_rate
    );
    roll_back(live, &why)
}

/// The shared audit log's head, and the candidate arm's requests of `route` (and those
/// answered 5xx) since `since_ms` among the entries after sequence number `after`.
fn candidate_outcomes(
    pg: &crate::db::Pg,
    route: &str,
    candidate: &str,
    since_ms: i64,
    after: i64,
) -> Result<(i64, u32, u32), GovernError> {
    crate::db::blocking(|| {
        let mut c = pg.get().map_err(pg_err)?;
        let head: i64 = c
            .query_one("SELECT seq FROM audit_head WHERE one = 1", &[])
            .map_err(pg_err)?
            .get(0);
        let r = c
            .query_one(
                "SELECT COUNT(*)::BIGINT,
                        COUNT(*) FILTER (WHERE (entry::jsonb->>'status')::INT >= 500)::BIGINT
                 FROM audit
                 WHERE seq > $1 AND seq <= $2 AND ts_ms >= $3
                   AND entry::jsonb->>'kind' = 'request' AND entry::jsonb->>'model' = $4
                   AND entry::jsonb->'rollout'->>'arm' = 'candidate'
                   AND entry::jsonb->'rollout'->>'candidate' = $5",
                &[&after, &head, &since_ms, &route, &candidate],
            )
            .map_err(pg_err)?;
        let (n, e): (i64, i64) = (r.get(0), r.get(1));
        Ok((head, n as u32, e as u32))
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn roll_back(live: &mut Live, why: &str) -> Option<RolloutState> {
    let s = live.state.as_mut().filter(|s| s.status == "active")?;
    s.share = 0.0;
    s.status = "rolled_back".into();
    s.reason = Some(why.to_string());
    s.updated_ms = db::now_ms();
    tracing::warn!(route = %s.route, candidate = %s.candidate, reason = %why, "rollout rolled back");
    Some(s.clone())
}

/// Where a caller falls in `[0, 1)` for `route`: the same place every time.
pub fn bucket(route: &str, id: &str) -> f64 {
    let d = Sha256::new()
        .chain_update(route.as_bytes())
        .chain_update([0])
        .chain_update(id.as_bytes())
        .finalize();
    let v = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    (v >> 11) as f64 / (1u64 << 53) as f64
}

/// Where rollout states (and the reviews their verdict bound reads) are kept: the SQLite
/// file, or the Postgres store every replica shares (so `rollout set` and a rollback reach
/// every replica within its refresh tick).
#[derive(Clone, Copy)]
pub enum Store<'a> {
    Sqlite(&'a Connection),
    Pg(&'a crate::db::Pg),
}

/// Reviewed answers of `route`'s candidate arm since `since_ms`, and those judged bad.
const VERDICTS: &str = "SELECT COUNT(*)::BIGINT,
       COALESCE(SUM(CASE WHEN verdict IN ('bad', 'should_have_escalated') THEN 1 ELSE 0 END), 0)::BIGINT
     FROM reviews WHERE arm = ?1 AND verdict IS NOT NULL AND ts_ms >= ?2";

const LOAD: &str =
    "SELECT route, candidate, share, status, reason, updated_ms FROM rollouts WHERE route = ?1";

const SAVE: &str = "INSERT INTO rollouts (route, candidate, share, status, reason, updated_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT(route) DO UPDATE SET candidate = excluded.candidate, share = excluded.share,
       status = excluded.status, reason = excluded.reason, updated_ms = excluded.updated_ms";

fn pg_sql(sql: &str) -> String {
    sql.replace('?', "$")
}

fn pg_err(e: impl std::fmt::Display) -> GovernError {
    GovernError::Store(e.to_string())
}

fn verdicts(db: Store<'_>, route: &str, since_ms: i64) -> Result<(i64, i64), GovernError> {
    let arm = format!("{route}:candidate");
    match db {
        Store::Sqlite(conn) => Ok(conn.query_row(
            &VERDICTS.replace("::BIGINT", ""),
            params![arm, since_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?),
        Store::Pg(pg) => crate::db::blocking(|| {
            let r = pg
                .get()
                .map_err(pg_err)?
                .query_one(&pg_sql(VERDICTS), &[&arm, &since_ms])
                .map_err(pg_err)?;
            Ok((r.get(0), r.get(1)))
        }),
    }
}

pub fn load(db: Store<'_>, route: &str) -> Result<Option<RolloutState>, GovernError> {
    match db {
        Store::Sqlite(conn) => Ok(conn
            .query_row(LOAD, params![route], |r| {
                Ok(RolloutState {
                    route: r.get(0)?,
                    candidate: r.get(1)?,
                    share: r.get(2)?,
                    status: r.get(3)?,
                    reason: r.get(4)?,
                    updated_ms: r.get(5)?,
                })
            })
            .optional()?),
        Store::Pg(pg) => crate::db::blocking(|| {
            let rows = pg
                .get()
                .map_err(pg_err)?
                .query(&pg_sql(LOAD), &[&route])
                .map_err(pg_err)?;
            Ok(rows.first().map(|r| RolloutState {
                route: r.get(0),
                candidate: r.get(1),
                share: r.get(2),
                status: r.get(3),
                reason: r.get(4),
                updated_ms: r.get(5),
            }))
        }),
    }
}

pub fn save(db: Store<'_>, s: &RolloutState) -> Result<(), GovernError> {
    match db {
        Store::Sqlite(conn) => {
            conn.execute(
                SAVE,
                params![
                    s.route,
                    s.candidate,
                    s.share,
                    s.status,
                    s.reason,
                    s.updated_ms
                ],
            )?;
        }
        Store::Pg(pg) => crate::db::blocking(|| {
            pg.get()
                .map_err(pg_err)?
                .execute(
                    &pg_sql(SAVE),
                    &[
                        &s.route,
                        &s.candidate,
                        &s.share,
                        &s.status,
                        &s.reason,
                        &s.updated_ms,
                    ],
                )
                .map_err(pg_err)
        })
        .map(|_| ())?,
    }
    Ok(())
}

/// Every route with a stored rollout.
pub fn routes(db: Store<'_>) -> Result<Vec<String>, GovernError> {
    const SQL: &str = "SELECT route FROM rollouts ORDER BY route";
    match db {
        Store::Sqlite(conn) => {
            let mut stmt = conn.prepare(SQL)?;
            let v = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(v)
        }
        Store::Pg(pg) => crate::db::blocking(|| {
            Ok(pg
                .get()
                .map_err(pg_err)?
                .query(SQL, &[])
                .map_err(pg_err)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        }),
    }
}

/// The audit record of a rollout change by `actor` (`cli` or `gateway`).
pub fn audit_record(s: &RolloutState, actor: &'static str) -> Record {
    let reason = s
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    Record::event(
        "rollout",
        actor,
        &s.route,
        s.updated_ms,
        format!(
            "{} candidate {} at share {}{reason}",
            s.status, s.candidate, s.share
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollouts(share: f64, min: u32) -> Rollouts {
        let toml = format!(
            r#"
[models.a]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "a"

[routes.auto]
tiers = [{{ name = "t", models = ["a"] }}]
rollout = {{ candidate = "a", share = {share}, min_requests = {min}, max_error_rate = 0.1 }}
"#
        );
        Rollouts::new(&Config::from_toml(&toml, "test").expect("config"))
    }

    #[test]
    fn the_split_holds_its_share_and_is_sticky() {
        let r = rollouts(0.2, 20);
        let n = 20_000;
        let cand = (0..n)
            .filter(|i| {
                r.assign("auto", Some(&format!("key_{i}")), None)
                    .is_some_and(|a| a.arm == Arm::Candidate)
            })
            .count();
        let share = cand as f64 / n as f64;
        assert!((share - 0.2).abs() < 0.01, "share {share}");
        for i in 0..50 {
            let k = format!("key_{i}");
            let first = r.assign("auto", Some(&k), None).map(|a| a.arm);
            for _ in 0..5 {
                assert_eq!(
                    r.assign("auto", Some(&k), Some("someone")).map(|a| a.arm),
                    first
                );
            }
        }
        assert!(r.assign("other", Some("k"), None).is_none());
    }

    #[test]
    fn raising_the_share_only_moves_callers_to_the_candidate() {
        let (low, high) = (rollouts(0.1, 20), rollouts(0.3, 20));
        let arm = |r: &Rollouts, id: &str| r.assign("auto", Some(id), None).map(|a| a.arm);
        let (mut at_low, mut at_high) = (0, 0);
        for i in 0..2_000 {
            let id = format!("key-{i}");
            let (a, b) = (arm(&low, &id), arm(&high, &id));
            if a == Some(Arm::Candidate) {
                at_low += 1;
                assert_eq!(b, Some(Arm::Candidate), "{id} moved back to control");
            }
            at_high += (b == Some(Arm::Candidate)) as usize;
        }
        assert!(
            at_low > 100 && at_high > 2 * at_low,
            "{at_low} at 0.1, {at_high} at 0.3"
        );
    }

    #[test]
    fn failures_past_the_bound_roll_back_once() {
        let r = rollouts(1.0, 10);
        let a = r.assign("auto", Some("k"), None).expect("live");
        assert_eq!(a.arm, Arm::Candidate);
        for _ in 0..9 {
            assert!(
                r.record(&a, true).is_none(),
                "not judged before min_requests"
            );
        }
        let s = r.record(&a, true).expect("10 of 10 failed");
        assert_eq!((s.status.as_str(), s.share), ("rolled_back", 0.0));
        assert!(r.record(&a, true).is_none(), "rolled back once");
        assert!(
            r.assign("auto", Some("k"), None).is_none(),
            "no arm after a rollback"
        );
    }

    #[test]
    fn a_healthy_candidate_stays() {
        let r = rollouts(1.0, 10);
        let a = r.assign("auto", Some("k"), None).expect("live");
        for i in 0..100 {
            assert!(
                r.record(&a, i % 20 == 0).is_none(),
                "5% failures under a 10% bound"
            );
        }
    }
}
