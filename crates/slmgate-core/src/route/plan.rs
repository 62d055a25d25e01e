//! The routing decision as a plain value. `plan()` is pure: config + request facts + router
//! score in, ordered tiers + escalation condition + reasons out. No network, no models.

use std::collections::BTreeMap;

use serde::Serialize;

use super::domain::DomainVerdict;
use crate::config::{
    CascadeConfig, ConfidenceSignal, Config, DomainsConfig, RouteConfig, RuleConfig, RuleMatch,
};

/// What routing knows about a request before any model runs.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// From the OpenAI `metadata` object and the `x-slmgate-tags` header.
    pub tags: BTreeMap<String, String>,
    /// Estimated prompt tokens (characters / 4).
    pub prompt_tokens: u32,
    /// The request's `max_tokens`, if any (worst-case cost uses 4096 when absent).
    pub max_tokens: Option<u32>,
    /// The API key's id and team (none when auth is off).
    pub key: Option<String>,
    pub team: Option<String>,
    /// PII types found in the messages.
    pub pii: Vec<String>,
    /// Why only on-premises models may serve (PII or guard policy), if they must.
    pub force_local: Option<String>,
    /// Residency labels the key allows (none: anywhere).
    pub residency: Option<Vec<String>>,
}

/// The learned router's verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RouterVerdict {
    pub score: f32,
    pub threshold: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedTier {
    pub name: String,
    /// Fallback chain within the tier.
    pub models: Vec<String>,
}

/// Escalate from one tier to the next when the answer's confidence is below `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CascadePlan {
    pub signal: ConfidenceSignal,
    pub threshold: f32,
    pub first_tokens: u32,
    /// Local model judging tiers without logprobs.
    pub verifier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub route: String,
    /// Tiers in the order they may serve; execution starts at the first.
    pub tiers: Vec<PlannedTier>,
    pub cascade: Option<CascadePlan>,
    /// The policy rule that matched, if any.
    pub rule: Option<String>,
    pub router: Option<RouterVerdict>,
    pub domain: Option<DomainVerdict>,
    /// Short, human-readable reasons, in decision order.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown model `{0}`")]
    UnknownRoute(String),
    #[error("request refused by routing rule `{rule}`: {message}")]
    Denied { rule: String, message: String },
    #[error("routing rule `{rule}` leaves no model allowed for this request ({why})")]
    NothingAllowed { rule: String, why: String },
}

/// Worst-case completion tokens when the request sets no `max_tokens`.
pub const DEFAULT_MAX_TOKENS_FOR_COST: u32 = 4096;

impl Plan {
    /// `x-slmgate-route-reason`: the reasons joined, ASCII only.
    pub fn reason_header(&self) -> String {
        let s = self.reasons.join("; ");
        s.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// Decides the plan for `route`. A plain model name or alias is one tier (its fallback chain).
pub fn plan(
    cfg: &Config,
    route: &str,
    facts: &RequestFacts,
    router: Option<RouterVerdict>,
    domain: Option<DomainVerdict>,
) -> Result<Plan, PlanError> {
    let Some(rc) = cfg.routes.get(route) else {
        let models = if cfg.models.contains_key(route) {
            vec![route.to_string()]
        } else if let Some(chain) = cfg.aliases.get(route) {
            chain.clone()
        } else {
            return Err(PlanError::UnknownRoute(route.to_string()));
        };
        let mut p = Plan {
            route: route.to_string(),
            tiers: vec![PlannedTier {
                name: route.to_string(),
                models,
            }],
            cascade: None,
            rule: None,
            router: None,
            domain: None,
            reasons: vec![format!("model {route} requested")],
        };
        constrain(cfg, None, facts, &mut p)?;
        return Ok(p);
    };
    let mut plan = Plan {
        route: route.to_string(),
        tiers: rc
            .tiers
            .iter()
            .map(|t| PlannedTier {
                name: t.name.clone(),
                models: t.models.clone(),
            })
            .collect(),
        cascade: None,
        rule: None,
        router: None,
        domain: None,
        reasons: Vec::new(),
    };
    let mut pinned = false;
    if let Some(rule) = rc.rules.iter().find(|r| matches(&r.when, facts)) {
        plan.rule = Some(rule.name.clone());
        pinned = apply_rule(cfg, rule, facts, &mut plan)?;
    }
    constrain(cfg, rc.residency.as_deref(), facts, &mut plan)?;
    if !pinned {
        if let (Some(v), Some(d)) = (domain, &rc.domains) {
            apply_domain(d, v, &mut plan);
        }
        start_tier(rc, router, &mut plan);
        if let Some(c) = &rc.cascade {
            cascade(c, &mut plan);
        }
    }
    if plan.reasons.is_empty() {
        plan.reasons
            .push(format!("default: start at {}", plan.tiers[0].name));
    }
    Ok(plan)
}

/// Applies a rule's actions; returns whether it pinned one model.
fn apply_rule(
    cfg: &Config,
    rule: &RuleConfig,
    facts: &RequestFacts,
    plan: &mut Plan,
) -> Result<bool, PlanError> {
    let name = &rule.name;
    if let Some(message) = &rule.deny {
        return Err(PlanError::Denied {
            rule: name.clone(),
            message: message.clone(),
        });
    }
    if let Some(m) = &rule.pin_model {
        plan.tiers = vec![PlannedTier {
            name: "pinned".into(),
            models: vec![m.clone()],
        }];
        plan.reasons.push(format!("rule {name}: pinned to {m}"));
        return Ok(true);
    }
    let nothing = |why: &str| PlanError::NothingAllowed {
        rule: name.clone(),
        why: why.to_string(),
    };
    if let Some(allow) = &rule.allow_tiers {
        plan.tiers.retain(|t| allow.contains(&t.name));
        plan.reasons
            .push(format!("rule {name}: tiers {}", allow.join(",")));
    }
    if !rule.deny_tiers.is_empty() {
        plan.tiers.retain(|t| !rule.deny_tiers.contains(&t.name));
        plan.reasons
            .push(format!("rule {name}: not {}", rule.deny_tiers.join(",")));
    }
    if plan.tiers.is_empty() {
        return Err(nothing("every tier is excluded"));
    }
    if rule.force_local {
        keep_models(plan, |m| cfg.models.get(m).is_some_and(|c| c.on_prem()));
        if plan.tiers.is_empty() {
            return Err(nothing("no on-premises model in the allowed tiers"));
        }
        plan.reasons.push(format!("rule {name}: on-prem only"));
    }
    if let Some(cap) = rule.max_cost_usd {
        let out = facts.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS_FOR_COST) as u64;
        let input = facts.prompt_tokens as u64;
        keep_models(plan, |m| {
            cfg.models
                .get(m)
                .is_some_and(|c| c.price().cost(input, 0, out) <= cap)
        });
        if plan.tiers.is_empty() {
            return Err(nothing(&format!(
                "every model's worst-case cost exceeds ${cap}"
            )));
        }
        plan.reasons.push(format!("rule {name}: cost <= ${cap}"));
    }
    Ok(false)
}

/// Where data may go, whatever the rules said: the route's and the key's residency labels,
/// and on-premises only when PII or guard policy demands it. Models outside are never planned.
fn constrain(
    cfg: &Config,
    route_residency: Option<&[String]>,
    facts: &RequestFacts,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let residency_of = |m: &str| cfg.models.get(m).map(|c| c.residency().to_string());
    let mut limits: Vec<(&str, &[String])> = Vec::new();
    if let Some(r) = route_residency {
        limits.push(("route", r));
    }
    if let Some(r) = facts.residency.as_deref() {
        limits.push(("key", r));
    }
    for (whose, allowed) in limits {
        keep_models(plan, |m| {
            residency_of(m).is_some_and(|r| allowed.contains(&r))
        });
        if plan.tiers.is_empty() {
            return Err(PlanError::NothingAllowed {
                rule: format!("{whose} residency"),
                why: format!("no model resides in {}", allowed.join(",")),
            });
        }
        plan.reasons
            .push(format!("{whose} residency: {}", allowed.join(",")));
    }
    if let Some(why) = &facts.force_local {
        keep_models(plan, |m| cfg.models.get(m).is_some_and(|c| c.on_prem()));
        if plan.tiers.is_empty() {
            return Err(PlanError::NothingAllowed {
                rule: why.clone(),
                why: "no on-premises model serves this model name".into(),
            });
        }
        plan.reasons.push(format!("{why}: on-prem only"));
    }
    Ok(())
}

fn keep_models(plan: &mut Plan, keep: impl Fn(&str) -> bool) {
    for t in plan.tiers.iter_mut() {
        t.models.retain(|m| keep(m));
    }
    plan.tiers.retain(|t| !t.models.is_empty());
}

/// Keeps the chosen domain's tier and drops the other domain tiers; below the floor, drops
/// every domain tier (the request escalates to the general tiers).
fn apply_domain(d: &DomainsConfig, v: DomainVerdict, plan: &mut Plan) {
    let domain_tiers: Vec<&str> = d.classes.iter().map(|c| c.tier.as_str()).collect();
    let before = plan.tiers.clone();
    if v.similarity >= v.floor {
        plan.tiers
            .retain(|t| t.name == v.tier || !domain_tiers.contains(&t.name.as_str()));
        plan.reasons.push(format!(
            "domain {} ({:.2} >= {:.2}): tier {}",
            v.domain, v.similarity, v.floor, v.tier
        ));
    } else {
        plan.tiers
            .retain(|t| !domain_tiers.contains(&t.name.as_str()));
        plan.reasons.push(format!(
            "domain: nearest {} at {:.2} < {:.2}, general tiers",
            v.domain, v.similarity, v.floor
        ));
    }
    if plan.tiers.is_empty() {
        // Rules already removed the general tiers: keep what they allowed.
        plan.tiers = before;
    }
    plan.domain = Some(v);
}

/// The learned router moves the start to the strong tier when its score is high enough.
fn start_tier(rc: &RouteConfig, verdict: Option<RouterVerdict>, plan: &mut Plan) {
    let (Some(v), Some(rcfg)) = (verdict, &rc.router) else {
        return;
    };
    plan.router = Some(v);
    let strong = rcfg
        .strong_tier
        .clone()
        .unwrap_or_else(|| rc.tiers[rc.tiers.len() - 1].name.clone());
    let Some(pos) = plan.tiers.iter().position(|t| t.name == strong) else {
        plan.reasons.push(format!(
            "router: {strong} not allowed, start at {}",
            plan.tiers[0].name
        ));
        return;
    };
    if v.score >= v.threshold && pos > 0 {
        plan.tiers.drain(..pos);
        plan.reasons.push(format!(
            "router: score {:.2} >= {:.2}, start at {strong}",
            v.score, v.threshold
        ));
    } else {
        plan.reasons.push(format!(
            "router: score {:.2} {} {:.2}, start at {}",
            v.score,
            if v.score >= v.threshold { ">=" } else { "<" },
            v.threshold,
            plan.tiers[0].name
        ));
    }
}

fn cascade(c: &CascadeConfig, plan: &mut Plan) {
    if plan.tiers.len() < 2 {
        return;
    }
    plan.cascade = Some(CascadePlan {
        signal: c.signal,
        threshold: c.threshold,
        first_tokens: c.first_tokens,
        verifier: c.verifier.clone(),
    });
    plan.reasons.push(format!(
        "cascade: escalate if {} < {}",
        c.signal.as_str(),
        c.threshold
    ));
}

/// Whether every condition of a rule's `match` holds.
pub fn matches(m: &RuleMatch, facts: &RequestFacts) -> bool {
    if m.min_prompt_tokens.is_some_and(|n| facts.prompt_tokens < n) {
        return false;
    }
    if m.max_prompt_tokens.is_some_and(|n| facts.prompt_tokens > n) {
        return false;
    }
    let listed = |list: &[String], v: &Option<String>| {
        list.is_empty() || v.as_ref().is_some_and(|v| list.contains(v))
    };
    if !listed(&m.keys, &facts.key) || !listed(&m.teams, &facts.team) {
        return false;
    }
    if !m.pii.is_empty()
        && !facts
            .pii
            .iter()
            .any(|t| m.pii.iter().any(|w| w == "*" || w == t))
    {
        return false;
    }
    m.tags.iter().all(|(k, want)| {
        let Some(have) = facts.tags.get(k) else {
            return false;
        };
        tag_matches(want, have)
    })
}

fn tag_matches(want: &str, have: &str) -> bool {
    if want == "*" {
        return true;
    }
    for op in ["<=", ">=", "<", ">"] {
        if let Some(n) = want.strip_prefix(op) {
            let (Ok(n), Ok(h)) = (n.trim().parse::<f64>(), have.trim().parse::<f64>()) else {
                return false;
            };
            return match op {
                "<=" => h <= n,
                ">=" => h >= n,
                "<" => h < n,
                _ => h > n,
            };
        }
    }
    want == have
}
