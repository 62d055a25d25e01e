//! Budgets: reserved at the worst case before a call, reconciled to the real cost after;
//! concurrent requests never spend more than the budget; abandoned answers are charged.

use std::time::Duration;

use super::*;
use crate::govern::keys::{Budget, Period};
use crate::providers::FailureKind;

/// $1000 per million tokens: a token costs $0.001. A one-word prompt is bounded at
/// 2 + 2 + 8 + 32 = 44 tokens; with max_tokens 256 the worst case is 300 tokens, $0.30.
fn priced() -> String {
    format!(
        "{}[aliases]\nai = [\"a\"]\n",
        model(
            "a",
            "input_cost_per_mtok = 1000\noutput_cost_per_mtok = 1000"
        )
    )
}

fn dollar_a_day(h: &Harness) -> Principal {
    h.key(KeySpec {
        budget: Some(Budget {
            usd: 1.0,
            period: Period::Day,
        }),
        ..Default::default()
    })
}

fn request(stream: bool) -> Value {
    json!({"model": "ai", "stream": stream, "max_tokens": 256,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn ledger(h: &Harness, who: &Principal) -> (f64, f64) {
    h.st.governance
        .limits
        .ledger(&who.key().unwrap().id)
        .unwrap_or_default()
}

#[tokio::test]
async fn the_reservation_is_replaced_by_the_real_cost() {
    let h = Harness::new(&priced(), vec![("a", vec![Reply::words(5, 0.0)])]);
    let who = dollar_a_day(&h);
    let a = h.answer(&who, request(false)).await;
    // 10 prompt + 5 completion tokens at $0.001.
    assert!((a.cost.actual - 0.015).abs() < 1e-12, "{}", a.cost.actual);
    let (spent, reserved) = ledger(&h, &who);
    assert!(
        (spent - 0.015).abs() < 1e-12 && reserved == 0.0,
        "{spent} {reserved}"
    );
    assert!((h.audit()[0]["cost_usd"].as_f64().unwrap() - 0.015).abs() < 1e-12);
}

#[tokio::test]
async fn concurrent_requests_never_spend_more_than_the_budget() {
    let h = Arc::new(Harness::new(&priced(), vec![("a", vec![Reply::Hang])]));
    let who = dollar_a_day(&h);
    let mut running = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        let (h2, who2) = (h.clone(), who.clone());
        let task = tokio::spawn(async move { h2.chat(&who2, request(false)).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        if task.is_finished() {
            let e = task.await.unwrap().expect_err("refused");
            assert_eq!(status(&e), (429, "budget_exceeded"));
            refused += 1;
        } else {
            running.push(task);
        }
    }
    // $0.30 each: three fit in $1 while they run, the fourth would not.
    assert_eq!((running.len(), refused), (3, 7));
    let (spent, reserved) = ledger(&h, &who);
    assert!(
        spent == 0.0 && (reserved - 0.9).abs() < 1e-9,
        "{spent} {reserved}"
    );
    // The clients give up mid-answer: the usage is unknown, the reservation is charged.
    for t in running {
        t.abort();
        let _ = t.await;
    }
    let (spent, reserved) = ledger(&h, &who);
    assert!(
        (spent - 0.9).abs() < 1e-9 && reserved.abs() < 1e-9,
        "{spent} {reserved}"
    );
    let audit = h.audit();
    assert_eq!(audit.len(), 10, "every request has its entry");
    assert_eq!(audit.iter().filter(|e| e["status"] == 499).count(), 3);
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["error"] == "budget_exceeded")
            .count(),
        7
    );
}

#[tokio::test]
async fn a_request_no_model_answered_costs_nothing() {
    let h = Harness::new(
        &priced(),
        vec![("a", vec![Reply::Fail(FailureKind::ServerError)])],
    );
    let who = dollar_a_day(&h);
    assert!(h.chat(&who, request(false)).await.is_err());
    assert_eq!(ledger(&h, &who), (0.0, 0.0));
}

#[tokio::test]
async fn an_abandoned_stream_is_charged_its_reservation_and_audited_as_499() {
    let h = Harness::new(&priced(), vec![("a", vec![Reply::words(50, 0.0)])]);
    let who = dollar_a_day(&h);
    let Outcome::Stream(mut s) = h.chat(&who, request(true)).await.expect("streams") else {
        panic!("a stream")
    };
    assert!(s.next().await.is_some());
    drop(s);
    let (spent, reserved) = ledger(&h, &who);
    assert!(
        (spent - 0.3).abs() < 1e-9 && reserved.abs() < 1e-9,
        "{spent} {reserved}"
    );
    // A stream read to its end is charged what it used.
    let Outcome::Stream(s) = h.chat(&who, request(true)).await.expect("streams") else {
        panic!("a stream")
    };
    let n = s.count().await;
    assert!(n > 50, "{n} chunks");
    let (spent, _) = ledger(&h, &who);
    assert!((spent - 0.3 - 0.06).abs() < 1e-9, "10 + 50 tokens: {spent}");
    let audit = h.audit();
    assert_eq!(
        (audit[0]["status"].as_u64(), audit[0]["error"].as_str()),
        (Some(499), Some("client_closed_request"))
    );
    assert_eq!(audit[1]["status"], 200);
    assert_eq!(audit[1]["completion_tokens"], 50);
}
