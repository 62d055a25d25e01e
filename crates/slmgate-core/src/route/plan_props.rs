//! Property tests of the plan function over random request facts on the table of
//! `plan_tests`: whatever the tags, sizes, router score, PII and residency, a plan never
//! sends data where the policy forbids, never invents a deployment, and is well formed.

use proptest::prelude::*;

use super::plan::{plan, PlanError, RequestFacts, RouterVerdict};
use super::table::RouteTable;
use crate::config::Config;

fn tag() -> impl Strategy<Value = (String, String)> {
    let pairs = [
        ("task", "forbidden"),
        ("task", "faq"),
        ("privacy", "high"),
        ("privacy", "low"),
        ("tier", "premium"),
        ("latency_budget_ms", "200"),
        ("latency_budget_ms", "900"),
        ("latency_budget_ms", "fast"),
        ("budget", "low"),
    ];
    proptest::sample::select(pairs.to_vec()).prop_map(|(k, v)| (k.to_string(), v.to_string()))
}

fn facts() -> impl Strategy<Value = RequestFacts> {
    (
        proptest::collection::btree_map("[a-z_]{1,8}", "[a-z0-9<=]{0,6}", 0..3),
        proptest::collection::vec(tag(), 0..4),
        0u32..10_000,
        proptest::option::of(1u32..8192),
        any::<bool>(),
        proptest::option::of(proptest::sample::subsequence(
            vec![
                "on_prem".to_string(),
                "remote".to_string(),
                "eu".to_string(),
            ],
            0..=2,
        )),
    )
        .prop_map(
            |(noise, tags, prompt_tokens, max_tokens, force_local, residency)| {
                let mut all = noise;
                all.extend(tags);
                RequestFacts {
                    tags: all,
                    prompt_tokens,
                    max_tokens,
                    force_local: force_local.then(|| "pii".to_string()),
                    residency,
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn plans_respect_policy_and_are_well_formed(
        f in facts(),
        score in proptest::option::of(0.0f32..=1.0),
        route in proptest::sample::select(vec!["auto", "cheap", "slm", "frontier", "nope"]),
    ) {
        let cfg: Config = toml::from_str(super::plan_tests::CFG).expect("parses");
        let table = RouteTable::compile(&cfg);
        let verdict = score.map(|score| RouterVerdict { score, threshold: 0.5 });
        let route_ids: Vec<_> = table
            .route(route)
            .map(|r| r.tiers.iter().flat_map(|t| t.models.clone()).collect())
            .unwrap_or_default();
        match plan(&table, route, &f, verdict, None) {
            Ok(p) => {
                prop_assert!(!p.tiers.is_empty(), "a plan has a tier");
                prop_assert!(!p.reasons.is_empty(), "a plan says why");
                for t in &p.tiers {
                    prop_assert!(!t.models.is_empty(), "tier {} is empty", t.name);
                    for m in &t.models {
                        let d = table.deployment(*m);
                        prop_assert!(route_ids.contains(m), "{} is not in route {}", d.name, route);
                        // The `private` rule is route auto's; force_local holds on every route.
                        let private = route == "auto" && p.rule.as_deref() == Some("private");
                        if f.force_local.is_some() || private {
                            prop_assert!(d.on_prem, "{} is off-premises under force_local", d.name);
                        }
                        if let Some(allowed) = &f.residency {
                            prop_assert!(allowed.contains(&d.residency), "{} ({}) outside {:?}", d.name, d.residency, allowed);
                        }
                    }
                }
                if p.cascade.is_some() {
                    prop_assert!(p.tiers.len() >= 2, "a cascade needs a tier to escalate to");
                }
                prop_assert!(
                    f.tags.get("task").map(String::as_str) != Some("forbidden") || route != "auto",
                    "the deny rule matched but a plan came back"
                );
            }
            Err(PlanError::UnknownRoute(r)) => prop_assert_eq!(r, "nope"),
            Err(PlanError::Denied { .. }) => {
                prop_assert_eq!(f.tags.get("task").map(String::as_str), Some("forbidden"));
            }
            Err(PlanError::NothingAllowed { .. }) => {
                // Only a constraint can leave nothing: residency, force_local, a rule.
                prop_assert!(f.residency.is_some() || f.force_local.is_some() || !f.tags.is_empty() || f.prompt_tokens >= 2000);
            }
        }
    }
}
