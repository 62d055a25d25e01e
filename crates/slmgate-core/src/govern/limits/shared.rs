//! Rate limits and budget reservations shared by every replica, in Redis (`[cluster]
//! redis_url`). Each check is one atomic Lua script, so replicas never interleave a read and a
//! write of the same counter:
//!
//! - **rpm / tpm**: token buckets (refilled from Redis' own clock, so replicas' clocks do not
//!   matter), one request against rpm and the estimated tokens against tpm in one script;
//!   the real token count corrects tpm afterwards.
//! - **budgets**: per key and budget period, `spent` and `reserved` in integer nano-dollars
//!   (`HINCRBY`, never floats), and each reservation as a lease: its amount by id, and its
//!   deadline in a sorted set. A reservation is settled with the real cost; one never settled
//!   (its replica died, or Redis was unreachable when it finished) is charged *in full* when
//!   its lease runs out — a crash can overcharge a key, never let it overspend. The first
//!   reservation of a period seeds `spent` from the audit log (what was spent before).
//!
//! When Redis cannot be reached (or answers slower than `redis_timeout_ms`), `[cluster]
//! budgets_when_redis_down` and `limits_when_redis_down` decide: `closed` refuses the keys
//! that have a budget (or limits) with 503, `open` falls back to this replica's own
//! in-memory limits. Either way `slmgate_redis_up` and `/ready` say so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::Script;

use super::{Limits, Refusal, Reservation};
use crate::config::{ClusterConfig, FailMode};
use crate::govern::keys::{Budget, KeyRecord};
use crate::observe::metrics::Metrics;

const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function level(key, per_min)
  local v = redis.call('HMGET', key, 'level', 'at')
  local lvl, at = tonumber(v[1]), tonumber(v[2])
  if not lvl then return per_min end
  return math.min(per_min, lvl + (now - at) * per_min / 60000)
end
local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local r_lvl, t_lvl
if rpm > 0 then
  r_lvl = level(KEYS[1], rpm)
  if r_lvl < 1 then return {0, math.ceil((1 - r_lvl) * 60 / rpm), 'rpm'} end
end
if tpm > 0 then
  t_lvl = level(KEYS[2], tpm)
  local need = math.min(est, tpm)
  if t_lvl < need then return {0, math.ceil((need - t_lvl) * 60 / tpm), 'tpm'} end
end
if rpm > 0 then
  redis.call('HSET', KEYS[1], 'level', tostring(r_lvl - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[1], 120000)
end
if tpm > 0 then
  redis.call('HSET', KEYS[2], 'level', tostring(t_lvl - est), 'at', now)
  redis.call('PEXPIRE', KEYS[2], 120000)
end
return {1, 0, ''}
"#;

const ADJUST: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'level', 'at')
local lvl, at = tonumber(v[1]), tonumber(v[2])
if not lvl then lvl, at = tpm, now end
lvl = math.min(tpm, lvl + (now - at) * tpm / 60000)
lvl = math.min(tpm, lvl - delta)
redis.call('HSET', KEYS[1], 'level', tostring(lvl), 'at', now)
redis.call('PEXPIRE', KEYS[1], 120000)
return 1
"#;

/// KEYS: the budget hash, the lease deadlines (sorted set), the lease amounts (hash).
/// ARGV: budget, worst case, seed (nano-dollars; -1: unknown), lease ms, reservation id,
/// key time-to-live ms. Returns {1, left} (reserved), {0, left} (refused), or {2} (the
/// period has no ledger yet: call again with the seed from the audit log).
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HEXISTS', KEYS[1], 'spent') == 0 then
  if tonumber(ARGV[3]) < 0 then return {2, 0} end
  redis.call('HSET', KEYS[1], 'spent', ARGV[3], 'reserved', 0)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  local amt = redis.call('HGET', KEYS[3], id)
  if amt then
    redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(amt))
    redis.call('HINCRBY', KEYS[1], 'spent', amt)
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('ZREM', KEYS[2], id)
end
local v = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
local left = tonumber(ARGV[1]) - tonumber(v[1]) - tonumber(v[2] or 0)
local worst = tonumber(ARGV[2])
if worst > left then return {0, left} end
redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
return {1, left - worst}
"#;

/// KEYS as RESERVE; ARGV: reservation id, the real cost (nano-dollars). 0 when the lease
/// had already run out (and was charged in full).
const SETTLE: &str = r#"
local amt = redis.call('HGET', KEYS[3], ARGV[1])
if not amt then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(amt))
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"#;

/// Why a Redis call did not answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0} ms")]
    Timeout(u64),
}

pub struct SharedLimits {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    cfg: ClusterConfig,
    /// This replica's own limits: the fallback when Redis is down (`open`).
    pub local: Arc<Limits>,
    metrics: Arc<Metrics>,
    up: AtomicBool,
    admit: Script,
    adjust: Script,
    reserve: Script,
    settle: Script,
}

/// Nano-dollars (integer).
fn nanos(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

impl SharedLimits {
    /// Checks the URL; connects on first use (a replica starts while Redis is down, and
    /// reports it).
    pub fn new(
        cfg: &ClusterConfig,
        local: Arc<Limits>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, String> {
        let url = cfg.redis_url.as_deref().ok_or("no [cluster] redis_url")?;
        let client = match &cfg.redis_ca_file {
            None => redis::Client::open(url),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("[cluster] redis_ca_file {path}: {e}"))?;
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
        }
        .map_err(|e| format!("[cluster] redis_url: {e}"))?;
        Ok(Arc::new(Self {
            client,
            conn: tokio::sync::Mutex::new(None),
            cfg: cfg.clone(),
            local,
            metrics,
            up: AtomicBool::new(false),
            admit: Script::new(ADMIT),
            adjust: Script::new(ADJUST),
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
        }))
    }

    /// Whether the last Redis call answered.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.redis_timeout_ms)
    }

    async fn conn(&self) -> Result<ConnectionManager, SharedError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout()))
            .set_response_timeout(Some(self.timeout()))
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            self.timeout() * 4,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| SharedError::Timeout(self.cfg.redis_timeout_ms * 4))??;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs `script` once, timed, within the timeout; records Redis' health.
    async fn run<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<T, SharedError> {
        let start = Instant::now();
        let result = async {
            let mut c = self.conn().await?;
            let mut inv = script.prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            for a in args {
                inv.arg(a);
            }
            tokio::time::timeout(self.timeout(), inv.invoke_async::<T>(&mut c))
                .await
                .map_err(|_| SharedError::Timeout(self.cfg.redis_timeout_ms))?
                .map_err(SharedError::from)
        }
        .await;
        self.metrics
            .redis_seconds
            .with_label_values(&[op])
            .observe(start.elapsed().as_secs_f64());
        self.note(op, result.is_ok());
        result
    }

    fn note(&self, op: &str, ok: bool) {
        let was = self.up.swap(ok, Ordering::Relaxed);
        self.metrics.redis_up.set(i64::from(ok));
        if !ok {
            self.metrics.redis_errors.with_label_values(&[op]).inc();
        }
        if was != ok {
            if ok {
                tracing::info!("redis reachable again: shared limits and budgets resume");
            } else {
                tracing::error!(
                    op,
                    "redis unreachable: limits and budgets follow [cluster] *_when_redis_down"
                );
            }
        }
    }

    /// A PING, to keep `/ready` and `slmgate_redis_up` current without traffic.
    pub async fn ping(&self) {
        let start = Instant::now();
        let ok = async {
            let mut c = self.conn().await?;
            tokio::time::timeout(
                self.timeout(),
                redis::cmd("PING").query_async::<String>(&mut c),
            )
            .await
            .map_err(|_| SharedError::Timeout(self.cfg.redis_timeout_ms))?
            .map_err(SharedError::from)
        }
        .await
        .is_ok();
        self.metrics
            .redis_seconds
            .with_label_values(&["ping"])
            .observe(start.elapsed().as_secs_f64());
        self.note("ping", ok);
    }

    /// Counts the request against the key's rpm and its estimated tokens against tpm, across
    /// every replica.
    pub async fn admit(&self, key: &KeyRecord, est_tokens: u32) -> Result<(), Refusal> {
        let (rpm, tpm) = (key.spec.rpm.unwrap_or(0), key.spec.tpm.unwrap_or(0));
        if rpm == 0 && tpm == 0 {
            return Ok(());
        }
        let keys = [
            format!("slmgate:{{{}}}:rpm", key.id),
            format!("slmgate:{{{}}}:tpm", key.id),
        ];
        let args = [rpm.to_string(), tpm.to_string(), est_tokens.to_string()];
        match self
            .run::<(i64, i64, String)>("admit", &self.admit, &keys, &args)
            .await
        {
            Ok((1, _, _)) => Ok(()),
            Ok((_, retry, which)) => Err(Refusal {
                code: "rate_limit_exceeded",
                message: if which == "rpm" {
                    format!("This key's limit of {rpm} requests per minute is reached.")
                } else {
                    format!("This key's limit of {tpm} tokens per minute is reached.")
                },
                retry_after_secs: Some(retry.max(1) as u64),
            }),
            Err(e) => match self.cfg.limits_when_redis_down {
                FailMode::Open => self.local.admit(key, est_tokens),
                FailMode::Closed => Err(unavailable("rate_limit_unavailable", &e)),
            },
        }
    }

    /// Corrects tpm with the real token count (off the request's path).
    pub fn settle_tokens(self: &Arc<Self>, key: &KeyRecord, estimated: u32, actual: u32) {
        let Some(tpm) = key.spec.tpm else { return };
        if actual == estimated {
            return;
        }
        let me = self.clone();
        let keys = [format!("slmgate:{{{}}}:tpm", key.id)];
        let args = [
            tpm.to_string(),
            (i64::from(actual) - i64::from(estimated)).to_string(),
        ];
        spawn(async move {
            let _ = me.run::<i64>("adjust", &me.adjust, &keys, &args).await;
        });
    }

    /// Reserves the request's worst case against the key's budget, across every replica.
    /// `spent_since` reads the audit log (only for a period's first reservation).
    pub async fn reserve(
        self: &Arc<Self>,
        key: &KeyRecord,
        budget: Budget,
        worst_usd: f64,
        est_tokens: u32,
        spent_since: impl FnOnce(i64) -> f64,
    ) -> Result<Reservation, Refusal> {
        let now = crate::govern::db::now_ms();
        let start = budget.period.start_ms(now);
        let keys = ledger_keys(&key.id, start);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let worst = nanos(worst_usd);
        let ttl_ms = budget
            .period
            .end_ms(now)
            .map(|end| end - now + 86_400_000)
            .unwrap_or(400 * 86_400_000)
            .max(self.cfg.reservation_ttl_secs as i64 * 1000 * 2);
        let mut args = vec![
            nanos(budget.usd).to_string(),
            worst.to_string(),
            "-1".to_string(),
            (self.cfg.reservation_ttl_secs as i64 * 1000).to_string(),
            id.clone(),
            ttl_ms.to_string(),
        ];
        let mut seed = Some(spent_since);
        let answer = loop {
            match self
                .run::<Vec<i64>>("reserve", &self.reserve, &keys, &args)
                .await
            {
                Ok(v) if v.first() == Some(&2) => {
                    let Some(f) = seed.take() else {
                        break Err(SharedError::Timeout(0));
                    };
                    // The period's first reservation: what was spent before, from the log.
                    args[2] = nanos(f(start)).to_string();
                }
                other => break other,
            }
        };
        match answer {
            Ok(v) if v.first() == Some(&1) => Ok(Reservation::shared(
                self.clone(),
                key.id.clone(),
                start,
                id,
                worst,
                est_tokens,
            )),
            Ok(v) => {
                let left = v.get(1).copied().unwrap_or(0).max(0) as f64 / 1e9;
                Err(super::budget_refusal(budget, worst_usd, left, now))
            }
            Err(e) => match self.cfg.budgets_when_redis_down {
                FailMode::Open => {
                    self.local
                        .reserve(key, budget, worst_usd, est_tokens, |s| match seed.take() {
                            Some(f) => f(s),
                            None => 0.0,
                        })
                }
                FailMode::Closed => Err(unavailable("budget_unavailable", &e)),
            },
        }
    }

    /// Settles a reservation with the real cost (off the request's path; if Redis does not
    /// answer, the lease runs out and charges the whole reservation).
    pub(super) fn settle(self: &Arc<Self>, key: &str, period_start: i64, id: String, actual: i64) {
        let me = self.clone();
        let keys = ledger_keys(key, period_start);
        spawn(async move {
            let args = [id, actual.to_string()];
            if let Err(e) = me.run::<i64>("settle", &me.settle, &keys, &args).await {
                tracing::warn!(error = %e, "budget reservation not settled; its lease will charge it in full");
            }
        });
    }

    /// (spent, reserved) of a key's current period in dollars (tests, `slmgate keys`).
    pub async fn ledger(&self, key: &str, budget: Budget) -> Result<(f64, f64), SharedError> {
        let start = budget.period.start_ms(crate::govern::db::now_ms());
        let keys = ledger_keys(key, start);
        let mut c = self.conn().await?;
        let (spent, reserved): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(&keys[0])
            .arg("spent")
            .arg("reserved")
            .query_async(&mut c)
            .await?;
        Ok((
            spent.unwrap_or(0) as f64 / 1e9,
            reserved.unwrap_or(0) as f64 / 1e9,
        ))
    }
}

/// The budget ledger's keys of one key and period (one hash slot: a Redis Cluster keeps
/// them together).
fn ledger_keys(key: &str, period_start: i64) -> [String; 3] {
    [
        format!("slmgate:{{{key}}}:budget:{period_start}"),
        format!("slmgate:{{{key}}}:leases:{period_start}"),
        format!("slmgate:{{{key}}}:amounts:{period_start}"),
    ]
}

fn unavailable(code: &'static str, e: &SharedError) -> Refusal {
    tracing::warn!(error = %e, code, "refused: redis unreachable and [cluster] fails closed");
    Refusal {
        code,
        message: "The shared limits store (Redis) is unreachable, and this gateway refuses such requests until it is back; retry shortly.".into(),
        retry_after_secs: Some(5),
    }
}

/// Runs a task on the current Tokio runtime (nothing outside one: tests, the CLI).
fn spawn(f: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(f);
    }
}
