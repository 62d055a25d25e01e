//! Per-key limits: requests and tokens per minute (token buckets), and budgets that are
//! *reserved* before a call — the request's worst-case cost — and reconciled with the real
//! cost after it, so concurrent requests can never spend more than the budget together.
//! Money is kept in integer nano-dollars: reservations coming and going leave no float
//! residue (a property test found one: `reserved` stayed above 0 with nothing in flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub mod shared;

use super::db;
use super::keys::{Budget, KeyRecord};

/// Why a request was refused, and when to come back.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

struct Bucket {
    per_minute: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute as f64,
            level: per_minute as f64,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let secs = (now - self.at).as_secs_f64();
        self.level = (self.level + secs * self.per_minute / 60.0).min(self.per_minute);
        self.at = now;
    }

    /// Takes `n` if available (a request larger than the whole bucket may go when it is
    /// full); otherwise the seconds until it would be.
    fn take(&mut self, n: f64) -> Result<(), u64> {
        self.refill();
        let need = n.min(self.per_minute);
        if self.level >= need {
            self.level -= n;
            Ok(())
        } else {
            let secs = (need - self.level) * 60.0 / self.per_minute.max(1e-9);
            Err(secs.ceil().max(1.0) as u64)
        }
    }

    fn adjust(&mut self, delta: f64) {
        self.refill();
        self.level = (self.level - delta).min(self.per_minute);
    }
}

/// Integer nano-dollars.
type Nanos = i64;

fn nanos(usd: f64) -> Nanos {
    // `as` saturates (and maps NaN to 0): no overflow on absurd prices.
    (usd * 1e9).round() as Nanos
}

fn dollars(n: Nanos) -> f64 {
    n as f64 / 1e9
}

struct Ledger {
    period_start: i64,
    spent: Nanos,
    reserved: Nanos,
}

#[derive(Default)]
struct KeyState {
    rpm: Option<Bucket>,
    tpm: Option<Bucket>,
    ledger: Option<Ledger>,
}

/// Limits of every key seen since start.
#[derive(Default)]
pub struct Limits {
    keys: Mutex<HashMap<String, KeyState>>,
}

/// Budget held for one request until it is reconciled (or released when dropped).
pub struct Reservation {
    holder: Holder,
    key: String,
    amount: Nanos,
    period_start: i64,
    tokens: f64,
    done: bool,
    /// Charge the whole reservation if dropped unreconciled (an answer had started).
    charge_on_drop: bool,
}

/// Whose ledger holds the reservation.
enum Holder {
    /// This replica's own.
    Local(Arc<Limits>),
    /// Redis, shared by every replica: settled by id.
    Shared(Arc<shared::SharedLimits>, String),
}

/// The refusal of a reservation the budget cannot cover.
pub(crate) fn budget_refusal(budget: Budget, worst_usd: f64, left_usd: f64, now: i64) -> Refusal {
    let retry = budget
        .period
        .end_ms(now)
        .map(|end| ((end - now) / 1000).max(1) as u64);
    Refusal {
        code: "budget_exceeded",
        message: format!(
            "This key's budget of ${} per {} cannot cover this request (worst case ${worst_usd:.6}, ${:.6} left after requests in flight).",
            budget.usd,
            budget.period.as_str(),
            left_usd.max(0.0)
        ),
        retry_after_secs: retry,
    }
}

impl Limits {
    fn state(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeyState>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the request against the key's rpm and its estimated tokens against tpm.
    pub fn admit(&self, key: &KeyRecord, est_tokens: u32) -> Result<(), Refusal> {
        let mut all = self.state();
        let st = all.entry(key.id.clone()).or_default();
        if let Some(rpm) = key.spec.rpm {
            let b = st.rpm.get_or_insert_with(|| Bucket::new(rpm));
            b.take(1.0).map_err(|secs| Refusal {
                code: "rate_limit_exceeded",
                message: format!("This key's limit of {rpm} requests per minute is reached."),
                retry_after_secs: Some(secs),
            })?;
        }
        if let Some(tpm) = key.spec.tpm {
            let b = st.tpm.get_or_insert_with(|| Bucket::new(tpm));
            if let Err(secs) = b.take(est_tokens as f64) {
                if let Some(r) = st.rpm.as_mut() {
                    r.adjust(-1.0);
                }
                return Err(Refusal {
                    code: "rate_limit_exceeded",
                    message: format!("This key's limit of {tpm} tokens per minute is reached."),
                    retry_after_secs: Some(secs),
                });
            }
        }
        Ok(())
    }

    /// Reserves the request's worst-case cost against the key's budget. `spent_since` reads
    /// the spend already recorded in the audit log (first use of the key after a start).
    pub fn reserve(
        self: &Arc<Self>,
        key: &KeyRecord,
        budget: Budget,
        worst_usd: f64,
        est_tokens: u32,
        spent_since: impl FnOnce(i64) -> f64,
    ) -> Result<Reservation, Refusal> {
        let now = db::now_ms();
        let start = budget.period.start_ms(now);
        let mut all = self.state();
        let st = all.entry(key.id.clone()).or_default();
        let ledger = match st.ledger.as_mut() {
            Some(l) if l.period_start == start => l,
            _ => st.ledger.insert(Ledger {
                period_start: start,
                spent: nanos(spent_since(start)),
                reserved: 0,
            }),
        };
        let worst = nanos(worst_usd);
        let left = nanos(budget.usd) - ledger.spent - ledger.reserved;
        if worst > left {
            return Err(budget_refusal(budget, worst_usd, dollars(left.max(0)), now));
        }
        ledger.reserved += worst;
        Ok(Reservation {
            holder: Holder::Local(self.clone()),
            key: key.id.clone(),
            amount: worst,
            period_start: start,
            tokens: est_tokens as f64,
            done: false,
            charge_on_drop: false,
        })
    }

    /// Corrects tpm with the real token count (for keys without a budget).
    pub fn settle_tokens(&self, key: &str, estimated: u32, actual: u32) {
        if let Some(b) = self.state().get_mut(key).and_then(|s| s.tpm.as_mut()) {
            b.adjust(actual as f64 - estimated as f64);
        }
    }

    /// (spent, reserved) in the current period of a key's budget, in dollars.
    pub fn ledger(&self, key: &str) -> Option<(f64, f64)> {
        self.ledger_nanos(key)
            .map(|(s, r)| (dollars(s), dollars(r)))
    }

    fn ledger_nanos(&self, key: &str) -> Option<(Nanos, Nanos)> {
        self.state()
            .get(key)
            .and_then(|s| s.ledger.as_ref())
            .map(|l| (l.spent, l.reserved))
    }
}

impl Reservation {
    /// A reservation held in Redis (`shared.rs`).
    fn shared(
        s: Arc<shared::SharedLimits>,
        key: String,
        period_start: i64,
        id: String,
        amount: Nanos,
        tokens: u32,
    ) -> Self {
        Self {
            holder: Holder::Shared(s, id),
            key,
            amount,
            period_start,
            tokens: tokens as f64,
            done: false,
            charge_on_drop: false,
        }
    }

    /// A model has started answering: if the request is abandoned now (the client leaves a
    /// stream), its usage is unknown, so the whole reservation is charged.
    pub fn answering(&mut self) {
        self.charge_on_drop = true;
    }

    /// Replaces the reservation with the request's real cost and token count. (A shared
    /// reservation's tokens are settled by the caller, which has the key's limits.)
    pub fn reconcile(mut self, actual_usd: f64, actual_tokens: u32) {
        self.settle(nanos(actual_usd));
        if let Holder::Local(limits) = &self.holder {
            limits.settle_tokens(&self.key, self.tokens as u32, actual_tokens);
        }
    }

    /// Whether Redis holds it (its tokens settle through the shared limits).
    pub fn is_shared(&self) -> bool {
        matches!(self.holder, Holder::Shared(..))
    }

    /// The request was abandoned before it was reconciled: charged in full if a model had
    /// started answering (its real usage is unknown), nothing if not.
    pub fn abandon(mut self) {
        self.settle(self.abandoned_charge());
    }

    fn abandoned_charge(&self) -> Nanos {
        if self.charge_on_drop {
            self.amount
        } else {
            0
        }
    }

    fn settle(&mut self, actual: Nanos) {
        if self.done {
            return;
        }
        self.done = true;
        match &self.holder {
            Holder::Local(limits) => {
                let mut all = limits.state();
                if let Some(l) = all.get_mut(&self.key).and_then(|s| s.ledger.as_mut()) {
                    if l.period_start == self.period_start {
                        l.reserved -= self.amount;
                    }
                    l.spent += actual;
                }
            }
            Holder::Shared(s, id) => s.settle(&self.key, self.period_start, id.clone(), actual),
        }
    }
}

impl Drop for Reservation {
    /// A reservation never leaks: one dropped unreconciled is settled as abandoned.
    fn drop(&mut self) {
        self.settle(self.abandoned_charge());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::govern::keys::{KeySpec, Period};

    fn key(spec: KeySpec) -> KeyRecord {
        KeyRecord {
            id: "key_t".into(),
            prefix: "sk-slm-abcd".into(),
            spec,
            created: String::new(),
            revoked: None,
        }
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_budget() {
        let limits = Arc::new(Limits::default());
        let budget = Budget {
            usd: 1.0,
            period: Period::Day,
        };
        let k = key(KeySpec::default());
        let held: Vec<Reservation> = (0..10)
            .filter_map(|_| limits.reserve(&k, budget, 0.3, 10, |_| 0.0).ok())
            .collect();
        assert_eq!(held.len(), 3, "0.3 x 3 fits in 1.0, a fourth does not");
        for r in held {
            r.reconcile(0.1, 10);
        }
        assert!((limits.ledger("key_t").unwrap().0 - 0.3).abs() < 1e-9);
        // After reconciliation the unused reservation is free again.
        assert!(limits.reserve(&k, budget, 0.6, 10, |_| 0.0).is_ok());
        // Failed before answering: nothing charged; abandoned mid-answer: all of it.
        drop(limits.reserve(&k, budget, 0.2, 10, |_| 0.0).unwrap());
        assert!((limits.ledger("key_t").unwrap().0 - 0.3).abs() < 1e-9);
        let mut r = limits.reserve(&k, budget, 0.2, 10, |_| 0.0).unwrap();
        r.answering();
        drop(r);
        assert!((limits.ledger("key_t").unwrap().0 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn rpm_refuses_with_retry_after() {
        let limits = Limits::default();
        let k = key(KeySpec {
            rpm: Some(2),
            ..Default::default()
        });
        assert!(limits.admit(&k, 1).is_ok());
        assert!(limits.admit(&k, 1).is_ok());
        let r = limits.admit(&k, 1).unwrap_err();
        assert_eq!(r.code, "rate_limit_exceeded");
        assert!(r.retry_after_secs.unwrap() >= 1);
    }
}

#[cfg(test)]
mod props;
