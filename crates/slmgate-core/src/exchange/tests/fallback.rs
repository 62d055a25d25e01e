//! Fallback within a tier and escalation between tiers on failures.

use super::*;
use crate::providers::FailureKind;

fn chain(extra_a: &str) -> String {
    format!(
        "{}{}[aliases]\nai = [\"a\", \"b\"]\n",
        model("a", extra_a),
        model("b", "")
    )
}

#[tokio::test]
async fn a_failing_deployment_falls_back_to_the_next() {
    let h = Harness::new(
        &chain(""),
        vec![
            ("a", vec![Reply::Fail(FailureKind::ServerError)]),
            ("b", vec![Reply::text("from b")]),
        ],
    );
    let a = h.answer(&Principal::Anonymous, body("ai", "hi")).await;
    assert_eq!(
        a.response.choices[0].message.content.as_deref(),
        Some("from b")
    );
    assert_eq!((a.meta.deployment.as_str(), a.meta.attempts), ("b", 2));
    assert_eq!(a.meta.fallback_from.as_deref(), Some("a"));
    let audit = h.audit();
    let attempts: Vec<(String, String)> = audit[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["deployment"].as_str().unwrap().into(),
                a["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("a".into(), "server_error".into()),
            ("b".into(), "ok".into())
        ]
    );
}

#[tokio::test]
async fn a_rejected_request_does_not_fall_back() {
    let h = Harness::new(
        &chain(""),
        vec![("a", vec![Reply::Fail(FailureKind::BadRequest)])],
    );
    let e = h
        .chat(&Principal::Anonymous, body("ai", "hi"))
        .await
        .err()
        .expect("rejected");
    let r = e.reply();
    assert_eq!(
        (r.status, r.code, r.param.as_deref()),
        (400, "invalid_value", Some("messages"))
    );
    assert_eq!(
        h.provider("b").calls(),
        0,
        "the client's error is not b's to fix"
    );
}

#[tokio::test]
async fn a_deployment_that_keeps_failing_cools_down() {
    let h = Harness::new(
        &chain("cooldown_failures = 2"),
        vec![
            ("a", vec![Reply::Fail(FailureKind::Connect)]),
            ("b", vec![Reply::text("b")]),
        ],
    );
    for _ in 0..4 {
        assert!(h
            .chat(&Principal::Anonymous, body("ai", "hi"))
            .await
            .is_ok());
    }
    // Two failures start the cooldown: afterwards b is tried first and answers.
    assert_eq!(h.provider("a").calls(), 2);
    assert_eq!(h.provider("b").calls(), 4);
}

#[tokio::test]
async fn a_failed_tier_escalates_with_cause_error() {
    let cfg = two_tiers(("a", ""), ("b", ""), "");
    let h = Harness::new(
        &cfg,
        vec![
            ("a", vec![Reply::Fail(FailureKind::Timeout)]),
            ("b", vec![Reply::text("b")]),
        ],
    );
    let a = h.answer(&Principal::Anonymous, body("auto", "hi")).await;
    assert_eq!(&*a.meta.tier, "cloud");
    assert_eq!(a.meta.escalations, 1);
    assert!(
        a.meta.reason.ends_with("escalated local->cloud: error"),
        "{}",
        a.meta.reason
    );
    let audit = h.audit();
    assert_eq!(audit[0]["escalations"][0]["cause"], "error");
}

#[tokio::test]
async fn a_context_overflow_does_not_escalate() {
    let cfg = two_tiers(("a", ""), ("b", ""), "");
    let h = Harness::new(
        &cfg,
        vec![("a", vec![Reply::Fail(FailureKind::ContextOverflow)])],
    );
    let e = h
        .chat(&Principal::Anonymous, body("auto", "hi"))
        .await
        .err()
        .expect("too long");
    let r = e.reply();
    assert_eq!(
        (r.status, r.code, r.param.as_deref()),
        (400, "context_length_exceeded", Some("messages"))
    );
    assert_eq!(h.provider("b").calls(), 0);
}

#[tokio::test]
async fn when_every_deployment_fails_the_last_failure_is_told() {
    let h = Harness::new(
        &chain(""),
        vec![
            ("a", vec![Reply::Fail(FailureKind::Connect)]),
            ("b", vec![Reply::Fail(FailureKind::RateLimited)]),
        ],
    );
    let e = h
        .chat(&Principal::Anonymous, body("ai", "hi"))
        .await
        .err()
        .expect("both fail");
    let r = e.reply();
    assert_eq!((r.status, r.code), (429, "upstream_rate_limited"));
    assert_eq!(r.retry_after_secs, Some(1));
    assert!(r.message.contains("deployment `b` failed"), "{}", r.message);
    let audit = h.audit();
    assert_eq!(audit[0]["status"], 429);
    assert_eq!(audit[0]["attempts"].as_array().map(Vec::len), Some(2));
}
