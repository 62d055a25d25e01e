//! Sync durability (the default): nothing leaves the exchange — an answer, a refusal, a
//! stream's end — before its audit entry is committed; while the log cannot be written,
//! answers are withheld (503) and new requests refused.

use serde_json::json;

use super::{body, model, status, text, Harness};
use crate::govern::{db, Principal};
use crate::providers::scripted::Reply;

fn one_model() -> String {
    // Sync is the default; said here so the test keeps meaning it.
    format!("{}[audit]\ndurability = \"sync\"\n", model("m", ""))
}

/// The statuses of the entries after the first `n_before`, as committed now (another
/// connection, the writer still running).
fn committed_status(h: &Harness, n_before: usize) -> Vec<u16> {
    let conn = db::open(&h.dir.join("gw.db")).expect("store");
    let mut q = conn
        .prepare("SELECT json_extract(entry, '$.status') FROM audit WHERE seq > ?1 ORDER BY seq")
        .expect("query");
    q.query_map([n_before as i64], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

#[tokio::test]
async fn answers_refusals_and_streams_leave_only_once_audited() {
    let h = Harness::new(
        &one_model(),
        vec![("m", vec![Reply::text("one"), Reply::text("two")])],
    );
    let who = Principal::Anonymous;
    h.answer(&who, body("m", "hi")).await;
    assert_eq!(
        committed_status(&h, 0),
        vec![200],
        "the answer's entry was on disk first"
    );

    let e = h
        .chat(&who, body("nope", "hi"))
        .await
        .err()
        .expect("refused");
    assert_eq!(status(&e).0, 404);
    assert_eq!(committed_status(&h, 1), vec![404], "so was the refusal's");

    let mut b = body("m", "hi");
    b["stream"] = json!(true);
    let (t, err) = text(h.chat(&who, b).await.expect("a stream")).await;
    assert_eq!((t.as_str(), err.is_none()), ("two", true));
    assert_eq!(
        committed_status(&h, 2),
        vec![200],
        "and the stream's, before its end"
    );
}

#[tokio::test]
async fn a_log_that_cannot_be_written_withholds_answers_and_refuses_requests() {
    let h = Harness::new(
        &one_model(),
        vec![("m", vec![Reply::text("secret"), Reply::text("again")])],
    );
    let who = Principal::Anonymous;
    // Another process holds the write lock past the writer's busy timeout.
    let blocker = db::open(&h.dir.join("gw.db")).expect("store");
    blocker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let e = h.chat(&who, body("m", "hi")).await.err().expect("withheld");
    assert_eq!(status(&e), (503, "audit_unavailable"));
    let e = h.chat(&who, body("m", "hi")).await.err().expect("refused");
    assert_eq!(
        status(&e),
        (503, "audit_unavailable"),
        "refused at admission"
    );
    assert_eq!(
        h.provider("m").calls(),
        1,
        "the second never reached the model"
    );
    blocker.execute_batch("COMMIT").expect("unlock");
    drop(blocker);
    let audit = h.audit();
    let got: Vec<_> = audit
        .iter()
        .map(|e| (e["status"].clone(), e["error"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!(503), json!("audit_unavailable")),
            (json!(503), json!("audit_unavailable"))
        ],
        "both entries landed once the lock was gone, saying what the client got"
    );
}
