//! The confidence cascade: the first tier's own logprobs decide whether its answer is kept.

use super::*;

fn cascade(signal: &str, first_tokens: u32) -> String {
    two_tiers(
        ("a", "input_cost_per_mtok = 1\noutput_cost_per_mtok = 1"),
        ("b", "input_cost_per_mtok = 10\noutput_cost_per_mtok = 10"),
        &format!("cascade = {{ signal = \"{signal}\", threshold = -1.0, first_tokens = {first_tokens} }}"),
    )
}

#[tokio::test]
async fn a_confident_answer_is_kept_and_the_client_gets_no_logprobs_it_did_not_ask_for() {
    let h = Harness::new(
        &cascade("mean_logprob", 4),
        vec![("a", vec![Reply::words(6, -0.1)])],
    );
    let a = h.answer(&Principal::Anonymous, body("auto", "hi")).await;
    assert_eq!(&*a.meta.tier, "local");
    assert!(
        (a.meta.confidence.unwrap() + 0.1).abs() < 1e-6,
        "{:?}",
        a.meta.confidence
    );
    assert_eq!(
        a.response.choices[0].message.content.as_deref(),
        Some("w0 w1 w2 w3 w4 w5 ")
    );
    assert!(a.response.choices[0].logprobs.is_none());
    assert_eq!(h.provider("b").calls(), 0);
    // The cascade asked the tier for logprobs the client did not ask for.
    let seen = h.provider("a").seen.lock().unwrap().clone();
    assert_eq!(seen[0].logprobs, Some(true));
}

#[tokio::test]
async fn an_unsure_answer_escalates_and_its_judged_tokens_are_paid_for() {
    let h = Harness::new(
        &cascade("mean_logprob", 4),
        vec![
            ("a", vec![Reply::words(8, -3.0)]),
            ("b", vec![Reply::words(5, -0.1)]),
        ],
    );
    let a = h.answer(&Principal::Anonymous, body("auto", "hi")).await;
    assert_eq!((&*a.meta.tier, a.meta.deployment.as_str()), ("cloud", "b"));
    assert_eq!(a.meta.escalations, 1);
    assert!(
        a.meta
            .reason
            .contains("escalated local->cloud: confidence -3.00 over"),
        "{}",
        a.meta.reason
    );
    // a: 10 prompt + the tokens judged (-3 per token is certainly below -1 after one token)
    // at $1/Mtok; b: 10 prompt + 5 completion at $10/Mtok.
    let audit = h.audit();
    let judged = audit[0]["escalations"][0]["judged_tokens"]
        .as_u64()
        .unwrap();
    assert!((1..=4).contains(&judged), "{judged}");
    let want = (10.0 + judged as f64) * 1.0 / 1e6 + 15.0 * 10.0 / 1e6;
    assert!(
        (a.cost.actual - want).abs() < 1e-12,
        "{} vs {want}",
        a.cost.actual
    );
    assert_eq!(audit[0]["escalations"][0]["cause"], "low_confidence");
}

#[tokio::test]
async fn a_streaming_client_sees_only_the_answer_that_was_kept() {
    let h = Harness::new(
        &cascade("min_logprob", 3),
        vec![
            ("a", vec![Reply::words(6, -2.5)]),
            ("b", vec![Reply::text("the strong answer")]),
        ],
    );
    let mut b = body("auto", "hi");
    b["stream"] = true.into();
    let (answer, err) = text(h.chat(&Principal::Anonymous, b).await.expect("served")).await;
    assert!(err.is_none());
    assert_eq!(answer, "the strong answer");
}

#[tokio::test]
async fn the_client_gets_the_logprobs_it_asked_for_not_the_cascades() {
    let h = Harness::new(
        &cascade("mean_margin", 2),
        vec![("a", vec![Reply::words(3, -0.05)])],
    );
    let mut b = body("auto", "hi");
    b["logprobs"] = true.into();
    let a = h.answer(&Principal::Anonymous, b).await;
    // The margin signal needs alternatives: the tier was asked for them, the client was not.
    let seen = h.provider("a").seen.lock().unwrap().clone();
    assert!(
        seen[0].top_logprobs.unwrap_or(0) >= 2,
        "{:?}",
        seen[0].top_logprobs
    );
    let lp = a.response.choices[0].logprobs.clone().expect("asked for");
    for item in lp["content"].as_array().unwrap() {
        assert_eq!(item["top_logprobs"].as_array().map(Vec::len), Some(0));
    }
}

#[tokio::test]
async fn a_tier_that_rejects_logprobs_is_asked_again_without_them() {
    let h = Harness::new(
        &cascade("mean_logprob", 4),
        vec![(
            "a",
            vec![
                Reply::Fail(crate::providers::FailureKind::BadRequest),
                Reply::text("plain"),
            ],
        )],
    );
    let a = h.answer(&Principal::Anonymous, body("auto", "hi")).await;
    // No logprobs and no verifier: nothing to judge, the answer is kept.
    assert_eq!(
        a.response.choices[0].message.content.as_deref(),
        Some("plain")
    );
    assert_eq!(a.meta.confidence, None);
    let seen = h.provider("a").seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].logprobs, seen[1].logprobs), (Some(true), None));
}
