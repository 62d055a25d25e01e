//! Property tests of the budget arithmetic: any interleaving of reservations and their
//! settlements (reconciled, failed before answering, abandoned mid-answer) keeps the spend
//! within the budget and accounts for every charge exactly.

use std::sync::Arc;

use proptest::prelude::*;

use super::{nanos, Limits, Reservation};
use crate::govern::keys::{Budget, KeyRecord, KeySpec, Period};

#[derive(Debug, Clone)]
enum Step {
    /// A request with this worst case (a share of the budget) and real cost (a share of
    /// its worst case).
    Open { worst: f64, actual: f64 },
    /// Settles the held reservation at this position (mod the number held).
    Settle { which: usize, how: How },
}

#[derive(Debug, Clone, Copy)]
enum How {
    Reconcile,
    FailedBeforeAnswer,
    AbandonedMidAnswer,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0.0001f64..0.6, 0.0f64..=1.0).prop_map(|(worst, actual)| Step::Open { worst, actual }),
        (
            any::<usize>(),
            prop_oneof![
                Just(How::Reconcile),
                Just(How::FailedBeforeAnswer),
                Just(How::AbandonedMidAnswer)
            ]
        )
            .prop_map(|(which, how)| Step::Settle { which, how }),
    ]
}

fn key() -> KeyRecord {
    KeyRecord {
        id: "key_p".into(),
        prefix: "sk-slm-prop".into(),
        spec: KeySpec::default(),
        created: String::new(),
        revoked: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn spend_never_exceeds_the_budget_and_every_charge_is_counted(
        usd in 0.001f64..50.0,
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let limits = Arc::new(Limits::default());
        let budget = Budget { usd, period: Period::Month };
        let k = key();
        let mut held: Vec<(Reservation, f64)> = Vec::new();
        let mut charged = Vec::new();
        for s in steps {
            match s {
                Step::Open { worst, actual } => {
                    let worst = worst * usd;
                    let (spent, reserved) = limits.ledger_nanos("key_p").unwrap_or((0, 0));
                    match limits.reserve(&k, budget, worst, 10, |_| 0.0) {
                        Ok(r) => held.push((r, worst * actual)),
                        Err(refusal) => {
                            prop_assert_eq!(refusal.code, "budget_exceeded");
                            prop_assert!(nanos(worst) > nanos(usd) - spent - reserved, "refused although it fit");
                        }
                    }
                }
                Step::Settle { which, how } if !held.is_empty() => {
                    let (mut r, actual) = held.remove(which % held.len());
                    match how {
                        How::Reconcile => {
                            charged.push(actual);
                            r.reconcile(actual, 10);
                        }
                        How::FailedBeforeAnswer => drop(r),
                        How::AbandonedMidAnswer => {
                            charged.push(r.amount as f64 / 1e9);
                            r.answering();
                            drop(r);
                        }
                    }
                }
                Step::Settle { .. } => {}
            }
            let (spent, reserved) = limits.ledger_nanos("key_p").unwrap_or((0, 0));
            prop_assert!(spent + reserved <= nanos(usd), "committed {} of a {} budget (nano-dollars)", spent + reserved, nanos(usd));
        }
        for (r, actual) in held.drain(..) {
            charged.push(actual);
            r.reconcile(actual, 10);
        }
        let (spent, reserved) = limits.ledger_nanos("key_p").unwrap_or((0, 0));
        prop_assert_eq!(reserved, 0, "nothing stays reserved once all is settled");
        prop_assert!(spent <= nanos(usd));
        let expected: i64 = charged.iter().map(|c| nanos(*c)).sum();
        prop_assert_eq!(spent, expected, "every charge counted, exactly");
    }
}
