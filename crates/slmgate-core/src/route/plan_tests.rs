//! Table-driven tests of routing plans for representative requests.

use super::plan::{Plan, PlanError, RequestFacts, RouterVerdict};
use super::table::RouteTable;
use crate::config::Config;

/// A plan with its deployments named, decided on `cfg` compiled.
struct Named {
    plan: Plan,
    names: Vec<(String, Vec<String>)>,
}

impl std::ops::Deref for Named {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        &self.plan
    }
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.plan.fmt(f)
    }
}

fn plan(
    cfg: &Config,
    route: &str,
    facts: &RequestFacts,
    router: Option<RouterVerdict>,
    domain: Option<super::domain::DomainVerdict>,
) -> Result<Named, PlanError> {
    let table = RouteTable::compile(cfg);
    let plan = super::plan::plan(&table, route, facts, router, domain)?;
    let names = plan
        .tiers
        .iter()
        .map(|t| {
            let models = t.models.iter().map(|m| table.deployment(*m).name.clone());
            (t.name.to_string(), models.collect())
        })
        .collect();
    Ok(Named { plan, names })
}

pub(super) const CFG: &str = r#"
[models.slm]
type = "local"
path = "/models/slm.gguf"
[models.onprem-llm]
type = "remote"
wire = "openai"
base_url = "http://10.0.0.5/v1"
model = "big"
residency = "on_prem"
input_cost_per_mtok = 0.1
output_cost_per_mtok = 0.1
[models.mini]
type = "remote"
wire = "openai"
base_url = "https://api.example.com/v1"
model = "mini"
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.6
[models.frontier]
type = "remote"
wire = "anthropic"
base_url = "https://api.example.com"
model = "frontier"
input_cost_per_mtok = 3.0
output_cost_per_mtok = 15.0
[models.frontier-backup]
type = "remote"
wire = "openai"
base_url = "https://backup.example.com/v1"
model = "frontier"
input_cost_per_mtok = 5.0
output_cost_per_mtok = 15.0

[aliases]
cheap = ["slm", "mini"]

[routes.auto]
tiers = [
  { name = "local", models = ["slm"] },
  { name = "mid", models = ["onprem-llm", "mini"] },
  { name = "frontier", models = ["frontier", "frontier-backup"] },
]
rules = [
  { name = "blocked", match = { tags = { task = "forbidden" } }, deny = "this task is not allowed" },
  { name = "private", match = { tags = { privacy = "high" } }, force_local = true },
  { name = "premium", match = { tags = { tier = "premium" } }, pin_model = "frontier" },
  { name = "fast", match = { tags = { latency_budget_ms = "<=300" } }, allow_tiers = ["local"] },
  { name = "cheap", match = { tags = { budget = "low" } }, max_cost_usd = 0.0005 },
  { name = "long", match = { min_prompt_tokens = 2000 }, deny_tiers = ["local"] },
]
router = { path = "/r.json", strong_tier = "frontier" }
cascade = { signal = "min_logprob", threshold = -2.5, first_tokens = 8 }
"#;

fn cfg() -> Config {
    toml::from_str(CFG).expect("test config parses")
}

fn facts(tags: &[(&str, &str)], prompt_tokens: u32, max_tokens: Option<u32>) -> RequestFacts {
    RequestFacts {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        prompt_tokens,
        max_tokens,
        ..Default::default()
    }
}

fn tiers(p: &Named) -> Vec<(String, Vec<String>)> {
    p.names.clone()
}

fn t(name: &str, models: &[&str]) -> (String, Vec<String>) {
    (
        name.to_string(),
        models.iter().map(|s| s.to_string()).collect(),
    )
}

#[test]
fn plans_for_representative_requests() {
    let cfg = cfg();
    let low = Some(RouterVerdict {
        score: 0.1,
        threshold: 0.5,
    });
    let high = Some(RouterVerdict {
        score: 0.9,
        threshold: 0.5,
    });
    type Case = (
        &'static str,
        RequestFacts,
        Option<RouterVerdict>,
        Vec<(String, Vec<String>)>,
        Option<&'static str>,
        bool,
    );
    let all = vec![
        t("local", &["slm"]),
        t("mid", &["onprem-llm", "mini"]),
        t("frontier", &["frontier", "frontier-backup"]),
    ];
    let cases: Vec<Case> = vec![
        (
            "no tags, no router: every tier, cascade on",
            facts(&[], 50, None),
            None,
            all.clone(),
            None,
            true,
        ),
        (
            "router low: start local",
            facts(&[], 50, None),
            low,
            all.clone(),
            None,
            true,
        ),
        (
            "router high: start at frontier, nothing to cascade to",
            facts(&[], 50, None),
            high,
            vec![t("frontier", &["frontier", "frontier-backup"])],
            None,
            false,
        ),
        (
            "privacy=high: on-prem models only",
            facts(&[("privacy", "high")], 50, None),
            high,
            vec![t("local", &["slm"]), t("mid", &["onprem-llm"])],
            Some("private"),
            true,
        ),
        (
            "tier=premium: pinned",
            facts(&[("tier", "premium")], 50, None),
            low,
            vec![t("pinned", &["frontier"])],
            Some("premium"),
            false,
        ),
        (
            "latency 200ms <= 300: local only",
            facts(&[("latency_budget_ms", "200")], 50, None),
            None,
            vec![t("local", &["slm"])],
            Some("fast"),
            false,
        ),
        (
            "latency 900ms: rule does not match",
            facts(&[("latency_budget_ms", "900")], 50, None),
            None,
            all.clone(),
            None,
            true,
        ),
        (
            "cost cap $0.0005 at 1000+1000 tokens drops mini ($0.00075) and frontier",
            facts(&[("budget", "low")], 1000, Some(1000)),
            None,
            vec![t("local", &["slm"]), t("mid", &["onprem-llm"])],
            Some("cheap"),
            true,
        ),
        (
            "long prompt skips the local tier",
            facts(&[], 5000, None),
            None,
            vec![
                t("mid", &["onprem-llm", "mini"]),
                t("frontier", &["frontier", "frontier-backup"]),
            ],
            Some("long"),
            true,
        ),
        (
            "first match wins: private before premium",
            facts(&[("privacy", "high"), ("tier", "premium")], 50, None),
            None,
            vec![t("local", &["slm"]), t("mid", &["onprem-llm"])],
            Some("private"),
            true,
        ),
    ];
    for (what, f, verdict, want, rule, cascade) in cases {
        let p = plan(&cfg, "auto", &f, verdict, None).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(tiers(&p), want, "{what}");
        assert_eq!(p.rule.as_deref(), rule, "{what}");
        assert_eq!(p.cascade.is_some(), cascade, "{what}");
        assert!(!p.reasons.is_empty(), "{what}: no reason given");
    }
}

#[test]
fn cascade_and_router_are_explained() {
    let p = plan(
        &cfg(),
        "auto",
        &facts(&[], 10, None),
        Some(RouterVerdict {
            score: 0.2,
            threshold: 0.5,
        }),
        None,
    )
    .unwrap();
    let c = p.cascade.clone().expect("cascade planned");
    assert_eq!((c.threshold, c.first_tokens), (-2.5, 8));
    assert_eq!(
        p.reason_header(),
        "router: score 0.20 < 0.50, start at local; cascade: escalate if min_logprob < -2.5"
    );
}

#[test]
fn deny_rule_refuses_with_its_message() {
    let e = plan(
        &cfg(),
        "auto",
        &facts(&[("task", "forbidden")], 10, None),
        None,
        None,
    )
    .unwrap_err();
    assert_eq!(
        e,
        PlanError::Denied {
            rule: "blocked".into(),
            message: "this task is not allowed".into()
        }
    );
}

#[test]
fn impossible_constraints_say_which_rule() {
    let mut cfg = cfg();
    // privacy=high on a route whose tiers are all remote: nothing may serve it.
    let r = cfg.routes.get_mut("auto").unwrap();
    r.tiers.remove(0);
    r.tiers[0].models = vec!["mini".into()];
    let e = plan(
        &cfg,
        "auto",
        &facts(&[("privacy", "high")], 10, None),
        None,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, PlanError::NothingAllowed { ref rule, .. } if rule == "private"),
        "{e:?}"
    );
}

#[test]
fn models_and_aliases_are_single_tier_plans() {
    let cfg = cfg();
    let p = plan(&cfg, "cheap", &facts(&[], 10, None), None, None).unwrap();
    assert_eq!(tiers(&p), vec![t("cheap", &["slm", "mini"])]);
    let p = plan(&cfg, "mini", &facts(&[], 10, None), None, None).unwrap();
    assert_eq!(tiers(&p), vec![t("mini", &["mini"])]);
    assert!(p.cascade.is_none());
    assert_eq!(
        plan(&cfg, "nope", &facts(&[], 10, None), None, None).unwrap_err(),
        PlanError::UnknownRoute("nope".into())
    );
}

#[test]
fn domain_picks_its_tier_and_the_floor_escalates() {
    use crate::route::domain::DomainVerdict;
    let text = CFG.replace(
        "[aliases]",
        r#"[routes.support]
tiers = [
  { name = "billing", models = ["slm"] },
  { name = "tech", models = ["onprem-llm"] },
  { name = "general", models = ["frontier"] },
]
domains = { floor = 0.4, classes = [
  { name = "billing", tier = "billing", examples = ["refund"] },
  { name = "tech", tier = "tech", examples = ["crash"] },
] }
[aliases]"#,
    );
    let cfg: Config = toml::from_str(&text).unwrap();
    let v = |d: &str, sim| DomainVerdict {
        domain: d.into(),
        tier: d.into(),
        similarity: sim,
        floor: 0.4,
    };
    let p = plan(
        &cfg,
        "support",
        &facts(&[], 10, None),
        None,
        Some(v("tech", 0.7)),
    )
    .unwrap();
    assert_eq!(
        tiers(&p),
        vec![t("tech", &["onprem-llm"]), t("general", &["frontier"])]
    );
    assert_eq!(p.reason_header(), "domain tech (0.70 >= 0.40): tier tech");
    let p = plan(
        &cfg,
        "support",
        &facts(&[], 10, None),
        None,
        Some(v("billing", 0.2)),
    )
    .unwrap();
    assert_eq!(tiers(&p), vec![t("general", &["frontier"])]);
    assert!(p.reason_header().contains("0.20 < 0.40"));
}

#[test]
fn pii_force_local_and_key_residency_constrain_every_plan() {
    let c = cfg();
    // PII policy force_local: only on-prem models, whatever the rules said.
    let mut f = facts(&[], 10, None);
    f.force_local = Some("pii policy (email)".into());
    let p = plan(&c, "auto", &f, None, None).unwrap();
    assert_eq!(
        tiers(&p),
        vec![t("local", &["slm"]), t("mid", &["onprem-llm"])]
    );
    assert!(p
        .reasons
        .iter()
        .any(|r| r == "pii policy (email): on-prem only"));
    // Even a pinned model cannot escape it.
    let mut f = facts(&[("tier", "premium")], 10, None);
    f.force_local = Some("guard (score 0.91)".into());
    assert!(matches!(
        plan(&c, "auto", &f, None, None),
        Err(PlanError::NothingAllowed { .. })
    ));
    // A key allowed only on_prem: plain model names are constrained too.
    let mut f = facts(&[], 10, None);
    f.residency = Some(vec!["on_prem".into()]);
    let p = plan(&c, "cheap", &f, None, None).unwrap();
    assert_eq!(tiers(&p), vec![t("cheap", &["slm"])]);
    assert!(plan(&c, "mini", &f, None, None).is_err());
}

#[test]
fn rules_match_keys_teams_and_pii_types() {
    let mut c = cfg();
    let r = c.routes.get_mut("auto").unwrap();
    r.rules.insert(
        0,
        toml::from_str(
            r#"name = "support-pii"
               match = { teams = ["support"], pii = ["card", "iban"] }
               allow_tiers = ["local"]"#,
        )
        .unwrap(),
    );
    let mut f = facts(&[], 10, None);
    f.team = Some("support".into());
    f.pii = vec!["email".into()];
    assert_eq!(plan(&c, "auto", &f, None, None).unwrap().rule, None);
    f.pii = vec!["email".into(), "card".into()];
    let p = plan(&c, "auto", &f, None, None).unwrap();
    assert_eq!(p.rule.as_deref(), Some("support-pii"));
    assert_eq!(tiers(&p), vec![t("local", &["slm"])]);
    f.team = Some("sales".into());
    assert_eq!(plan(&c, "auto", &f, None, None).unwrap().rule, None);
}

#[test]
fn a_router_picks_among_n_tiers_by_each_tiers_start() {
    let mut c = cfg();
    let r = c.routes.get_mut("auto").unwrap();
    r.router = Some(
        toml::from_str(
            r#"path = "/r.json"
                          starts = { mid = 0.1, frontier = 0.4 }"#,
        )
        .unwrap(),
    );
    let at = |score: f32| {
        let v = Some(RouterVerdict {
            score,
            threshold: 0.9,
        });
        plan(&c, "auto", &facts(&[], 10, None), v, None).unwrap()
    };
    let names = |p: &Named| p.names.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(names(&at(0.05)), ["local", "mid", "frontier"]);
    assert_eq!(names(&at(0.1)), ["mid", "frontier"]);
    assert_eq!(names(&at(0.39)), ["mid", "frontier"]);
    let p = at(0.5);
    assert_eq!(names(&p), ["frontier"]);
    assert!(p
        .reason_header()
        .contains("score 0.50 >= 0.40, start at frontier"));
    assert!(at(0.05)
        .reason_header()
        .contains("score 0.05 < 0.10, start at local"));
    // A rule that keeps the request local wins over the router.
    let f = facts(&[("latency_budget_ms", "200")], 10, None);
    let v = Some(RouterVerdict {
        score: 0.9,
        threshold: 0.9,
    });
    let p = plan(&c, "auto", &f, v, None).unwrap();
    assert_eq!(names(&p), ["local"]);
}

#[test]
fn a_combined_cascade_moves_each_requests_threshold_with_its_router_score() {
    let mut c = cfg();
    let r = c.routes.get_mut("auto").unwrap();
    r.cascade = Some(
        toml::from_str(
            r#"signal = "mean_logprob"
               threshold = -0.6
               combine = { router_mean = 0.2, router_std = 0.1, confidence_mean = -0.8, confidence_std = 0.4, threshold = 0.5 }"#,
        )
        .unwrap(),
    );
    let at = |score: f32| {
        let v = Some(RouterVerdict {
            score,
            threshold: 0.99,
        });
        plan(&c, "auto", &facts(&[], 10, None), v, None).unwrap()
    };
    // c* = μc + σc/wc · (wr·(r − μr)/σr − θ): r = 0.2 → −0.8 + 0.4·(0 − 0.5) = −1.0;
    // r = 0.4 → −0.8 + 0.4·(2 − 0.5) = −0.2 (a likelier hard prompt escalates sooner).
    let easy = at(0.2);
    let hard = at(0.4);
    let th = |p: &Named| p.cascade.as_ref().unwrap().threshold;
    assert!((th(&easy) + 1.0).abs() < 1e-5, "{}", th(&easy));
    assert!((th(&hard) + 0.2).abs() < 1e-5, "{}", th(&hard));
    assert!(hard
        .reason_header()
        .contains("escalate if mean_logprob < -0.20 (router score 0.40 combined"));
    // Without a router score the configured threshold holds.
    let p = plan(&c, "auto", &facts(&[], 10, None), None, None).unwrap();
    assert_eq!(th(&p), -0.6);
}
