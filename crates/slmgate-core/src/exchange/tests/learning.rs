//! Shadow mode and A/B rollouts on the request path: where a shadow may send the request
//! (PII and redaction policy), that a shadow that never answers does not hold the client's
//! answer, and that a key's model list is checked against the name it asked for, whichever
//! arm serves it.

use std::time::Duration;

use super::*;
use crate::providers::scripted::Reply;

/// Route `auto` on an on-premises `local` tier, shadowed by a remote `cloud` and an
/// on-premises `onprem` deployment; `extra` adds route keys.
fn shadowed(extra: &str) -> String {
    format!(
        "{}{}{}[routes.auto]\ntiers = [{{ name = \"local\", models = [\"local\"] }}]\nshadow = {{ models = [\"cloud\", \"onprem\"], sample = 1.0 }}\n{extra}\n",
        model("local", "residency = \"on_prem\""),
        model("onprem", "residency = \"on_prem\""),
        model("cloud", ""),
    )
}

/// Waits until `name` has been called `n` times (the shadow runs on its worker).
async fn called(h: &Harness, name: &str, n: usize) {
    for _ in 0..200 {
        if h.provider(name).calls() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} called {} times, not {n}", h.provider(name).calls());
}

fn skipped(h: &Harness, model: &str) -> u64 {
    h.st.metrics
        .shadow_requests
        .with_label_values(&["auto", model, "skipped"])
        .get()
}

#[tokio::test]
async fn a_request_kept_on_premises_is_shadowed_on_premises_only() {
    let h = Harness::new(&shadowed("pii = \"force_local\""), vec![]);
    shadow_worker::start(&h.st);
    h.answer(
        &Principal::Anonymous,
        body("auto", "mail me at jane@example.com"),
    )
    .await;
    called(&h, "onprem", 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.provider("cloud").calls(),
        0,
        "PII never reaches the remote shadow"
    );
    assert_eq!(skipped(&h, "cloud"), 1);
    // Without PII both shadows answer.
    h.answer(&Principal::Anonymous, body("auto", "hello")).await;
    called(&h, "cloud", 1).await;
    called(&h, "onprem", 2).await;
}

#[tokio::test]
async fn an_unredacted_request_with_pii_is_not_shadowed_off_premises() {
    // The route's own tier is on premises, so redaction did not run: the remote shadow would
    // see the raw values.
    let h = Harness::new(&shadowed("pii = \"redact\""), vec![]);
    shadow_worker::start(&h.st);
    h.answer(
        &Principal::Anonymous,
        body("auto", "my card is 4111 1111 1111 1111"),
    )
    .await;
    called(&h, "onprem", 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.provider("cloud").calls(), 0);
    assert_eq!(skipped(&h, "cloud"), 1);
}

#[tokio::test]
async fn a_redacted_request_reaches_a_remote_shadow_redacted() {
    let cfg = format!(
        "{}{}[routes.auto]\ntiers = [{{ name = \"cloud\", models = [\"cloud\"] }}]\npii = \"redact\"\nshadow = {{ models = [\"other\"], sample = 1.0 }}\n",
        model("cloud", ""),
        model("other", ""),
    );
    let h = Harness::new(&cfg, vec![]);
    shadow_worker::start(&h.st);
    h.answer(
        &Principal::Anonymous,
        body("auto", "mail me at jane@example.com"),
    )
    .await;
    called(&h, "other", 1).await;
    let seen = h.provider("other").seen.lock().unwrap().clone();
    let text = seen[0].last_user_text().unwrap_or_default();
    assert!(!text.contains("jane@example.com"), "{text}");
    assert!(
        text.contains("[EMAIL_1]"),
        "the shadow sees what the route's model saw: {text}"
    );
}

#[tokio::test]
async fn a_shadow_that_never_answers_does_not_hold_the_answer() {
    let h = Harness::new(
        &shadowed(""),
        vec![("cloud", vec![Reply::Hang]), ("onprem", vec![Reply::Hang])],
    );
    shadow_worker::start(&h.st);
    for _ in 0..3 {
        let answered = tokio::time::timeout(
            Duration::from_secs(5),
            h.answer(&Principal::Anonymous, body("auto", "hello")),
        )
        .await;
        assert!(answered.is_ok(), "the client's answer waited on a shadow");
    }
    let audit = h.audit();
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|e| e["status"] == 200));
}

#[tokio::test]
async fn a_key_for_the_route_is_served_on_the_candidate_arm() {
    let cfg = format!(
        "{}{}[routes.auto]\ntiers = [{{ name = \"a\", models = [\"a\"] }}]\nrollout = {{ candidate = \"auto-v2\", share = 1.0 }}\n[routes.auto-v2]\ntiers = [{{ name = \"b\", models = [\"b\"] }}]\n",
        model("a", ""),
        model("b", ""),
    );
    let h = Harness::new(&cfg, vec![]);
    let who = h.key(KeySpec {
        models: Some(vec!["auto".into()]),
        ..Default::default()
    });
    let a = h.answer(&who, body("auto", "hi")).await;
    assert_eq!(a.meta.rollout, Some("candidate"));
    assert_eq!(&*a.meta.tier, "b", "the candidate route served it");
    assert_eq!(h.provider("a").calls(), 0);
    // Asking for the candidate by name is still the key's model list's business.
    let e = h
        .chat(&who, body("auto-v2", "hi"))
        .await
        .err()
        .expect("refused");
    assert_eq!(status(&e), (403, "model_not_allowed"));
    let audit = h.audit();
    assert_eq!(
        audit[0]["model"], "auto",
        "audited under the name asked for"
    );
    assert_eq!(audit[0]["rollout"]["arm"], "candidate");
    assert_eq!(audit[0]["rollout"]["candidate"], "auto-v2");
}
