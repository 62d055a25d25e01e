//! The routing decision as a plain value. `plan()` is pure: the compiled route table +
//! request facts + router and domain verdicts in, ordered tiers + escalation condition +
//! reasons out. No network, no models.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::domain::DomainVerdict;
pub use super::facts::RequestFacts;
pub use super::table::CascadePlan;
use super::table::{DeploymentId, Match, RouteKind, RouteSpec, RouteTable, Rule};

/// The learned router's verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RouterVerdict {
    pub score: f32,
    pub threshold: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTier {
    pub name: Arc<str>,
    /// Fallback chain within the tier.
    pub models: Vec<DeploymentId>,
}

#[derive(Debug, Clone, PartialEq)]
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
    /// The same plan from the tier after `tier` on (`None` when `tier` is the last).
    pub fn after(&self, tier: &str) -> Option<Plan> {
        let i = self.tiers.iter().position(|t| &*t.name == tier)?;
        if i + 1 >= self.tiers.len() {
            return None;
        }
        let mut p = self.clone();
        p.tiers.drain(..=i);
        Some(p)
    }

    /// The plan with deployment names, as `slmgate route explain` prints it.
    pub fn explain(&self, table: &RouteTable) -> Value {
        let name = |id: &DeploymentId| table.deployment(*id).name.clone();
        json!({
            "route": self.route,
            "tiers": self.tiers.iter().map(|t| json!({
                "name": &*t.name,
                "models": t.models.iter().map(name).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "cascade": self.cascade.as_ref().map(|c| json!({
                "signal": c.signal,
                "threshold": c.threshold,
                "first_tokens": c.first_tokens,
                "verifier": c.verifier.as_ref().map(name),
            })),
            "rule": self.rule,
            "router": self.router,
            "domain": self.domain,
            "reasons": self.reasons,
        })
    }

    /// Every deployment the plan may call.
    pub fn deployments(&self) -> impl Iterator<Item = DeploymentId> + '_ {
        self.tiers.iter().flat_map(|t| t.models.iter().copied())
    }

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
    table: &RouteTable,
    route: &str,
    facts: &RequestFacts,
    router: Option<RouterVerdict>,
    domain: Option<DomainVerdict>,
) -> Result<Plan, PlanError> {
    let Some(spec) = table.route(route) else {
        return Err(PlanError::UnknownRoute(route.to_string()));
    };
    let mut plan = Plan {
        route: spec.name.clone(),
        tiers: spec
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
    if spec.kind != RouteKind::Route {
        plan.reasons.push(format!("model {route} requested"));
        constrain(table, None, facts, &mut plan)?;
        return Ok(plan);
    }
    let mut pinned = false;
    if let Some(rule) = spec.rules.iter().find(|r| matches(&r.when, facts)) {
        plan.rule = Some(rule.name.clone());
        pinned = apply_rule(table, rule, facts, &mut plan)?;
    }
    constrain(table, spec.residency.as_deref(), facts, &mut plan)?;
    if !pinned {
        if let (Some(v), Some(d)) = (domain, &spec.domain_tiers) {
            apply_domain(d, v, &mut plan);
        }
        start_tier(spec, router, &mut plan);
        if let Some(c) = &spec.cascade {
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
    table: &RouteTable,
    rule: &Rule,
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
    if let Some(m) = rule.pin_model {
        plan.tiers = vec![PlannedTier {
            name: Arc::from("pinned"),
            models: vec![m],
        }];
        plan.reasons.push(format!(
            "rule {name}: pinned to {}",
            table.deployment(m).name
        ));
        return Ok(true);
    }
    let nothing = |why: &str| PlanError::NothingAllowed {
        rule: name.clone(),
        why: why.to_string(),
    };
    if let Some(allow) = &rule.allow_tiers {
        plan.tiers.retain(|t| allow.iter().any(|a| **a == *t.name));
        plan.reasons
            .push(format!("rule {name}: tiers {}", allow.join(",")));
    }
    if !rule.deny_tiers.is_empty() {
        plan.tiers
            .retain(|t| !rule.deny_tiers.iter().any(|d| **d == *t.name));
        plan.reasons
            .push(format!("rule {name}: not {}", rule.deny_tiers.join(",")));
    }
    if plan.tiers.is_empty() {
        return Err(nothing("every tier is excluded"));
    }
    if rule.force_local {
        keep_models(plan, |m| table.on_prem(m));
        if plan.tiers.is_empty() {
            return Err(nothing("no on-premises model in the allowed tiers"));
        }
        plan.reasons.push(format!("rule {name}: on-prem only"));
    }
    if let Some(cap) = rule.max_cost_usd {
        let out = facts.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS_FOR_COST) as u64;
        let input = facts.prompt_tokens as u64;
        keep_models(plan, |m| {
            table.deployment(m).price.cost(input, 0, out) <= cap
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
    table: &RouteTable,
    route_residency: Option<&[String]>,
    facts: &RequestFacts,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let mut limits: Vec<(&str, &[String])> = Vec::new();
    if let Some(r) = route_residency {
        limits.push(("route", r));
    }
    if let Some(r) = facts.residency.as_deref() {
        limits.push(("key", r));
    }
    for (whose, allowed) in limits {
        keep_models(plan, |m| allowed.contains(&table.deployment(m).residency));
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
        keep_models(plan, |m| table.on_prem(m));
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

/// Whether deployment `id` may see this request of `route`: what [`constrain`] and a matched
/// rule's `force_local` or `deny` enforce on planned tiers (residency of the route and the
/// key, on-premises only), for a model outside the plan (a shadow).
pub fn may_see(table: &RouteTable, route: &str, facts: &RequestFacts, id: DeploymentId) -> bool {
    let Some(spec) = table.route(route) else {
        return false;
    };
    let d = table.deployment(id);
    let resides =
        |allowed: &Option<Vec<String>>| allowed.as_ref().is_none_or(|a| a.contains(&d.residency));
    if !resides(&spec.residency) || !resides(&facts.residency) {
        return false;
    }
    if facts.force_local.is_some() && !d.on_prem {
        return false;
    }
    match spec.rules.iter().find(|r| matches(&r.when, facts)) {
        Some(rule) => rule.deny.is_none() && (d.on_prem || !rule.force_local),
        None => true,
    }
}

fn keep_models(plan: &mut Plan, keep: impl Fn(DeploymentId) -> bool) {
    for t in plan.tiers.iter_mut() {
        t.models.retain(|m| keep(*m));
    }
    plan.tiers.retain(|t| !t.models.is_empty());
}

/// Keeps the chosen domain's tier and drops the other domain tiers; below the floor, drops
/// every domain tier (the request escalates to the general tiers).
fn apply_domain(domain_tiers: &[String], v: DomainVerdict, plan: &mut Plan) {
    let is_domain = |t: &PlannedTier| domain_tiers.iter().any(|d| **d == *t.name);
    let before = plan.tiers.clone();
    if v.similarity >= v.floor {
        plan.tiers.retain(|t| *t.name == *v.tier || !is_domain(t));
        plan.reasons.push(format!(
            "domain {} ({:.2} >= {:.2}): tier {}",
            v.domain, v.similarity, v.floor, v.tier
        ));
    } else {
        plan.tiers.retain(|t| !is_domain(t));
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

/// The learned router moves the start to a later tier when its score reaches that tier's
/// start (the latest such tier the plan still allows).
fn start_tier(spec: &RouteSpec, verdict: Option<RouterVerdict>, plan: &mut Plan) {
    let (Some(v), Some(r)) = (verdict, &spec.router) else {
        return;
    };
    plan.router = Some(v);
    let first = plan.tiers[0].name.clone();
    for (tier, start) in r.starts.iter().rev() {
        let at = start.unwrap_or(v.threshold);
        if v.score < at {
            continue;
        }
        match plan.tiers.iter().position(|t| *t.name == **tier) {
            Some(pos) => {
                plan.tiers.drain(..pos);
                plan.reasons.push(format!(
                    "router: score {:.2} >= {:.2}, start at {tier}",
                    v.score, at
                ));
            }
            None => plan
                .reasons
                .push(format!("router: {tier} not allowed, start at {first}")),
        }
        return;
    }
    let lowest = r
        .starts
        .first()
        .map(|(_, s)| s.unwrap_or(v.threshold))
        .unwrap_or(v.threshold);
    plan.reasons.push(format!(
        "router: score {:.2} < {:.2}, start at {first}",
        v.score, lowest
    ));
}

/// The cascade between the plan's tiers; with `combine`, this request's threshold is the
/// confidence the combined rule needs given its router score.
fn cascade(c: &CascadePlan, plan: &mut Plan) {
    if plan.tiers.len() < 2 {
        return;
    }
    let mut c = c.clone();
    match (c.combine, plan.router) {
        (Some(m), Some(v)) => {
            c.threshold = m.confidence_threshold(v.score);
            plan.reasons.push(format!(
                "cascade: escalate if {} < {:.2} (router score {:.2} combined with the confidence)",
                c.signal.as_str(),
                c.threshold,
                v.score
            ));
        }
        _ => plan.reasons.push(format!(
            "cascade: escalate if {} < {}",
            c.signal.as_str(),
            c.threshold
        )),
    }
    plan.cascade = Some(c);
}

/// Whether every condition of a rule's `match` holds.
pub fn matches(m: &Match, facts: &RequestFacts) -> bool {
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
    m.tags
        .iter()
        .all(|(k, test)| facts.tags.get(k).is_some_and(|have| test.holds(have)))
}
