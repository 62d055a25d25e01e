//! The executor and the tier loop on scripted deployments, without a gateway around them.

use std::sync::Arc;

use futures::StreamExt;

use super::plan::{plan, RequestFacts};
use super::{ExecError, Gateway, RouteTable};
use crate::config::Config;
use crate::observe::metrics::Metrics;
use crate::providers::scripted::{Reply, ScriptedProvider};
use crate::providers::{Deployment, DeploymentId, FailureKind, Provider};
use crate::wire::openai::ChatRequest;

fn setup(extra: &str, scripts: Vec<Vec<Reply>>) -> (RouteTable, Gateway) {
    let mut toml = String::new();
    for name in ["a", "b"] {
        toml.push_str(&format!(
            "[models.{name}]\ntype = \"remote\"\nwire = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"{name}\"\n"
        ));
    }
    toml.push_str(extra);
    let cfg = Config::from_toml(&toml, "test").unwrap();
    let table = RouteTable::compile(&cfg);
    let deployments = scripts
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let name = &table.deployment(DeploymentId(i)).name;
            Deployment::scripted(DeploymentId(i), ScriptedProvider::new(name, s), 0)
        })
        .collect();
    (
        table,
        Gateway::from_deployments(deployments, Arc::new(Metrics::new())),
    )
}

fn calls(gw: &Gateway, i: usize) -> usize {
    match &gw.deployments[i].provider {
        Provider::Scripted(p) => p.calls(),
        _ => unreachable!("scripted"),
    }
}

fn req(model: &str) -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": model, "messages": [{"role": "user", "content": "hi"}]
    }))
    .unwrap()
}

#[tokio::test]
async fn a_stream_broken_before_its_first_token_falls_back_silently() {
    let (table, gw) = setup(
        "[aliases]\nai = [\"a\", \"b\"]\n",
        vec![
            vec![Reply::BreakAfter(vec![], FailureKind::Protocol)],
            vec![Reply::text("b")],
        ],
    );
    let p = plan(&table, "ai", &RequestFacts::default(), None, None).unwrap();
    let (s, served) = gw.stream(&p, &req("ai")).await.expect("b streams");
    assert_eq!(served.deployment.name, "b");
    assert_eq!(served.attempts.len(), 1, "a's failure is an attempt");
    let items: Vec<_> = s.collect().await;
    assert!(items.iter().all(|i| i.is_ok()));
}

#[tokio::test]
async fn a_stream_broken_after_its_first_token_is_committed() {
    let (table, gw) = setup(
        "[aliases]\nai = [\"a\", \"b\"]\n",
        vec![
            vec![Reply::BreakAfter(
                vec![("x".into(), 0.0)],
                FailureKind::Protocol,
            )],
            vec![Reply::text("b")],
        ],
    );
    let p = plan(&table, "ai", &RequestFacts::default(), None, None).unwrap();
    let (s, served) = gw.stream(&p, &req("ai")).await.expect("a committed");
    assert_eq!(served.deployment.name, "a");
    let items: Vec<_> = s.collect().await;
    assert!(matches!(items.last(), Some(Err(e)) if e.kind == FailureKind::Protocol));
    assert_eq!(
        calls(&gw, 1),
        0,
        "no second answer after the client saw the first"
    );
}

#[tokio::test]
async fn the_cascade_stops_judging_once_the_outcome_is_certain() {
    let (table, gw) = setup(
        "[routes.auto]\ntiers = [{ name = \"t1\", models = [\"a\"] }, { name = \"t2\", models = [\"b\"] }]\ncascade = { signal = \"mean_logprob\", threshold = -1.0, first_tokens = 8 }\n",
        vec![vec![Reply::words(20, -9.0)], vec![Reply::text("b")]],
    );
    let p = plan(&table, "auto", &RequestFacts::default(), None, None).unwrap();
    let (_, served) = gw.complete(&p, &req("auto")).await.expect("escalated");
    let e = &served.escalations[0];
    assert_eq!(
        (e.cause, e.deployment.as_deref()),
        ("low_confidence", Some("a"))
    );
    // Mean logprob −9 after one token cannot climb to −1 within 8 tokens of logprob ≤ 0.
    assert!(e.judged_tokens < 8, "{}", e.judged_tokens);
}

#[tokio::test]
async fn a_plan_with_no_deployment_says_so() {
    let (table, gw) = setup("[aliases]\nai = [\"a\"]\n", vec![vec![], vec![]]);
    let mut p = plan(&table, "ai", &RequestFacts::default(), None, None).unwrap();
    p.tiers[0].models.clear();
    let f = gw
        .complete(&p, &req("ai"))
        .await
        .err()
        .expect("nothing to call");
    assert!(matches!(f.error, ExecError::NoDeployment));
}
