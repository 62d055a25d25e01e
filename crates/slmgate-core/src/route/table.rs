//! The routing config compiled once at start, so a request never looks a name up or parses
//! a condition: deployments are numbered ([`DeploymentId`]), every public chat name
//! (deployment, alias, route) is a [`RouteSpec`] whose tiers hold deployment ids, rules carry
//! their tag conditions parsed ([`TagTest`]), and each route's PII and guard policy has the
//! global default filled in. [`plan`](super::plan::plan) reads only this.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{
    CombineConfig, ConfidenceSignal, Config, GuardAction, PiiPolicy, Price, RuleMatch,
};
pub use crate::providers::DeploymentId;

/// What routing needs to know about a deployment.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    pub name: String,
    /// `on_prem` for local models; a remote one's label (`remote` by default).
    pub residency: String,
    /// Runs on the operator's own machines (local, or remote labelled `on_prem`).
    pub on_prem: bool,
    pub price: Price,
}

/// A tier of a route: a fallback chain of deployments.
#[derive(Debug, Clone, PartialEq)]
pub struct TierSpec {
    pub name: Arc<str>,
    pub models: Vec<DeploymentId>,
}

/// How a public name was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A `[models.*]` deployment asked for by name: one tier, itself.
    Model,
    /// An `[aliases]` entry: one tier, its fallback chain.
    Alias,
    /// A `[routes.*]` entry: tiers, rules, router, cascade, domains.
    Route,
}

/// A tag condition, parsed: `*`, an exact value, or a numeric comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum TagTest {
    Any,
    Equals(String),
    Less(f64),
    LessOrEqual(f64),
    Greater(f64),
    GreaterOrEqual(f64),
}

impl TagTest {
    pub fn parse(want: &str) -> Self {
        if want == "*" {
            return TagTest::Any;
        }
        for (op, make) in [
            ("<=", TagTest::LessOrEqual as fn(f64) -> TagTest),
            (">=", TagTest::GreaterOrEqual),
            ("<", TagTest::Less),
            (">", TagTest::Greater),
        ] {
            if let Some(n) = want.strip_prefix(op) {
                // Validation made sure a number follows; a bad one matches nothing.
                return make(n.trim().parse::<f64>().unwrap_or(f64::NAN));
            }
        }
        TagTest::Equals(want.to_string())
    }

    pub fn holds(&self, have: &str) -> bool {
        let num = || have.trim().parse::<f64>().ok();
        match self {
            TagTest::Any => true,
            TagTest::Equals(w) => w == have,
            TagTest::Less(n) => num().is_some_and(|h| h < *n),
            TagTest::LessOrEqual(n) => num().is_some_and(|h| h <= *n),
            TagTest::Greater(n) => num().is_some_and(|h| h > *n),
            TagTest::GreaterOrEqual(n) => num().is_some_and(|h| h >= *n),
        }
    }
}

/// A rule's `match`, compiled.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub tags: Vec<(String, TagTest)>,
    pub min_prompt_tokens: Option<u32>,
    pub max_prompt_tokens: Option<u32>,
    pub keys: Vec<String>,
    pub teams: Vec<String>,
    pub pii: Vec<String>,
}

impl From<&RuleMatch> for Match {
    fn from(m: &RuleMatch) -> Self {
        Match {
            tags: m
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), TagTest::parse(v)))
                .collect(),
            min_prompt_tokens: m.min_prompt_tokens,
            max_prompt_tokens: m.max_prompt_tokens,
            keys: m.keys.clone(),
            teams: m.teams.clone(),
            pii: m.pii.clone(),
        }
    }
}

/// A policy rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub when: Match,
    pub allow_tiers: Option<Vec<String>>,
    pub deny_tiers: Vec<String>,
    pub force_local: bool,
    pub pin_model: Option<DeploymentId>,
    pub max_cost_usd: Option<f64>,
    pub deny: Option<String>,
}

/// Escalate from one tier to the next when the answer's confidence is below `threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadePlan {
    pub signal: ConfidenceSignal,
    pub threshold: f32,
    pub first_tokens: u32,
    /// Local model judging tiers without logprobs.
    pub verifier: Option<DeploymentId>,
    /// The router's prior combined with the confidence (per request, the threshold moves).
    pub combine: Option<CombineConfig>,
}

/// The learned router of a route: where a request starts for its score.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    /// Later tiers and the score from which a request starts there, in tier order; `None`:
    /// the router's own threshold (the two-tier `strong_tier` form).
    pub starts: Vec<(String, Option<f32>)>,
}

/// Everything routing knows about one public chat name.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub name: String,
    pub kind: RouteKind,
    pub tiers: Vec<TierSpec>,
    pub rules: Vec<Rule>,
    pub residency: Option<Vec<String>>,
    pub router: Option<RouterSpec>,
    pub cascade: Option<CascadePlan>,
    /// Tier names that serve a domain (domain routing keeps one of them, or none).
    pub domain_tiers: Option<Vec<String>>,
    /// The route's PII policy, or the global one.
    pub pii: PiiPolicy,
    /// The route's guard action, or the global one.
    pub guard: GuardAction,
}

/// The compiled routing config.
#[derive(Debug, Clone)]
pub struct RouteTable {
    deployments: Vec<DeploymentSpec>,
    ids: HashMap<String, DeploymentId>,
    routes: HashMap<String, Arc<RouteSpec>>,
    default_pii: PiiPolicy,
    default_guard: GuardAction,
    /// The `[cost] baseline`'s price: what savings are measured against.
    pub baseline: Option<Price>,
}

impl RouteTable {
    /// Compiles a validated config (names it references exist; validation said so).
    pub fn compile(cfg: &Config) -> Self {
        let deployments: Vec<DeploymentSpec> = cfg
            .models
            .iter()
            .map(|(name, m)| DeploymentSpec {
                name: name.clone(),
                residency: m.residency().to_string(),
                on_prem: m.on_prem(),
                price: m.price(),
            })
            .collect();
        let ids: HashMap<String, DeploymentId> = deployments
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), DeploymentId(i)))
            .collect();
        let resolve = |names: &[String]| -> Vec<DeploymentId> {
            names.iter().filter_map(|n| ids.get(n).copied()).collect()
        };
        let (pii, guard) = (cfg.pii.policy, cfg.guard.action);
        let single = |name: &str, kind, models: Vec<DeploymentId>| RouteSpec {
            name: name.to_string(),
            kind,
            tiers: vec![TierSpec {
                name: Arc::from(name),
                models,
            }],
            rules: Vec::new(),
            residency: None,
            router: None,
            cascade: None,
            domain_tiers: None,
            pii,
            guard,
        };
        let mut routes = HashMap::new();
        for (name, id) in &ids {
            routes.insert(
                name.clone(),
                Arc::new(single(name, RouteKind::Model, vec![*id])),
            );
        }
        for (alias, chain) in &cfg.aliases {
            routes.insert(
                alias.clone(),
                Arc::new(single(alias, RouteKind::Alias, resolve(chain))),
            );
        }
        for (name, r) in &cfg.routes {
            let spec = RouteSpec {
                name: name.clone(),
                kind: RouteKind::Route,
                tiers: r
                    .tiers
                    .iter()
                    .map(|t| TierSpec {
                        name: Arc::from(t.name.as_str()),
                        models: resolve(&t.models),
                    })
                    .collect(),
                rules: r
                    .rules
                    .iter()
                    .map(|rule| Rule {
                        name: rule.name.clone(),
                        when: Match::from(&rule.when),
                        allow_tiers: rule.allow_tiers.clone(),
                        deny_tiers: rule.deny_tiers.clone(),
                        force_local: rule.force_local,
                        pin_model: rule.pin_model.as_ref().and_then(|m| ids.get(m).copied()),
                        max_cost_usd: rule.max_cost_usd,
                        deny: rule.deny.clone(),
                    })
                    .collect(),
                residency: r.residency.clone(),
                router: r.router.as_ref().map(|rc| RouterSpec {
                    starts: if rc.starts.is_empty() {
                        vec![(
                            rc.strong_tier.clone().unwrap_or_else(|| {
                                r.tiers.last().map(|t| t.name.clone()).unwrap_or_default()
                            }),
                            None,
                        )]
                    } else {
                        r.tiers
                            .iter()
                            .filter_map(|t| {
                                rc.starts.get(&t.name).map(|s| (t.name.clone(), Some(*s)))
                            })
                            .collect()
                    },
                }),
                cascade: r.cascade.as_ref().map(|c| CascadePlan {
                    signal: c.signal,
                    threshold: c.threshold,
                    first_tokens: c.first_tokens,
                    verifier: c.verifier.as_ref().and_then(|v| ids.get(v).copied()),
                    combine: c.combine,
                }),
                domain_tiers: r
                    .domains
                    .as_ref()
                    .map(|d| d.classes.iter().map(|c| c.tier.clone()).collect()),
                pii: r.pii.unwrap_or(pii),
                guard: r.guard.unwrap_or(guard),
            };
            routes.insert(name.clone(), Arc::new(spec));
        }
        RouteTable {
            deployments,
            ids,
            routes,
            default_pii: pii,
            default_guard: guard,
            baseline: cfg.baseline().map(|(_, p)| p),
        }
    }

    /// The route behind a public chat name.
    pub fn route(&self, name: &str) -> Option<&Arc<RouteSpec>> {
        self.routes.get(name)
    }

    /// Each alias and route with its tiers, for the start-up log: `auto: local [smollm2] →
    /// frontier [gpt-4o-mini]`.
    pub fn live_tiers(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .routes
            .values()
            .filter(|r| r.kind != RouteKind::Model)
            .map(|r| {
                let tiers: Vec<String> = r
                    .tiers
                    .iter()
                    .map(|t| {
                        let names: Vec<&str> = t
                            .models
                            .iter()
                            .map(|d| self.deployment(*d).name.as_str())
                            .collect();
                        format!("{} [{}]", t.name, names.join(", "))
                    })
                    .collect();
                let cascade = if r.cascade.is_some() {
                    " (cascade)"
                } else {
                    ""
                };
                (r.name.clone(), format!("{}{cascade}", tiers.join(" → ")))
            })
            .collect();
        out.sort();
        out
    }

    pub fn deployments(&self) -> &[DeploymentSpec] {
        &self.deployments
    }

    pub fn deployment(&self, id: DeploymentId) -> &DeploymentSpec {
        &self.deployments[id.0]
    }

    pub fn id(&self, name: &str) -> Option<DeploymentId> {
        self.ids.get(name).copied()
    }

    /// The PII policy and guard action for a requested name (the defaults for unknown names).
    pub fn policy(&self, name: &str) -> (PiiPolicy, GuardAction) {
        match self.routes.get(name) {
            Some(r) => (r.pii, r.guard),
            None => (self.default_pii, self.default_guard),
        }
    }

    /// Whether a deployment may see data that must stay on premises.
    pub fn on_prem(&self, id: DeploymentId) -> bool {
        self.deployments[id.0].on_prem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_tests_parse_once_and_compare_numbers() {
        assert!(TagTest::parse("*").holds("anything"));
        assert!(TagTest::parse("high").holds("high"));
        assert!(!TagTest::parse("high").holds("low"));
        assert!(TagTest::parse("<=300").holds("300"));
        assert!(!TagTest::parse("<300").holds("300"));
        assert!(TagTest::parse(">= 2").holds(" 2.5 "));
        assert!(
            !TagTest::parse(">2").holds("fast"),
            "a non-number never compares"
        );
    }
}
