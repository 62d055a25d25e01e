//! Checks of `[routes.*]`: tiers name known models, rules name known tiers and models, numbers
//! are in range, a router has the embedding model it needs.

use std::collections::HashSet;

use super::checks::{bad, check_pii_types, Invalid};
use super::routes::RouteConfig;
use super::types::Config;

pub(crate) fn validate_route(cfg: &Config, name: &str, r: &RouteConfig) -> Result<(), Invalid> {
    let f = |k: &str| format!("routes.{name}.{k}");
    if let Some(rag) = &r.rag {
        if cfg.embeddings.is_none() {
            return Err(bad(
                f("rag"),
                "retrieval needs the embedding model: configure [embeddings] path",
            ));
        }
        if rag.collection.trim().is_empty() {
            return Err(bad(f("rag.collection"), "must name a collection"));
        }
        if !(1..=50).contains(&rag.top_k) {
            return Err(bad(f("rag.top_k"), "must be between 1 and 50"));
        }
        if rag.max_context_tokens < 64 {
            return Err(bad(f("rag.max_context_tokens"), "must be at least 64"));
        }
        if rag.min_grounding.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return Err(bad(f("rag.min_grounding"), "must be between 0 and 1"));
        }
        if rag
            .min_similarity
            .is_some_and(|s| !(-1.0..=1.0).contains(&s))
        {
            return Err(bad(
                f("rag.min_similarity"),
                "must be a cosine similarity between -1 and 1",
            ));
        }
    }
    if let Some(sh) = &r.shadow {
        if sh.models.is_empty() {
            return Err(bad(f("shadow.models"), "must name at least one model"));
        }
        if let Some(m) = sh.models.iter().find(|m| !cfg.models.contains_key(*m)) {
            return Err(bad(
                f("shadow.models"),
                format!("unknown model {m:?}; shadows may only name [models.*] entries"),
            ));
        }
        if !(0.0..=1.0).contains(&sh.sample) {
            return Err(bad(f("shadow.sample"), "must be between 0 and 1"));
        }
        if !(1..=100_000).contains(&sh.queue) {
            return Err(bad(f("shadow.queue"), "must be between 1 and 100000"));
        }
        if !(1..=64).contains(&sh.concurrency) {
            return Err(bad(f("shadow.concurrency"), "must be between 1 and 64"));
        }
    }
    if let Some(ro) = &r.rollout {
        if let Some(c) = &ro.candidate {
            let known = cfg.routes.contains_key(c)
                || cfg.aliases.contains_key(c)
                || cfg.models.contains_key(c);
            if !known || c == name {
                return Err(bad(
                    f("rollout.candidate"),
                    format!("{c:?} must be another route, alias or model"),
                ));
            }
        }
        for (k, v) in [
            ("share", ro.share),
            ("max_error_rate", ro.max_error_rate),
            ("max_bad_share", ro.max_bad_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(f(&format!("rollout.{k}")), "must be between 0 and 1"));
            }
        }
        if ro.min_requests == 0 {
            return Err(bad(f("rollout.min_requests"), "must be at least 1"));
        }
    }
    if r.tiers.is_empty() {
        return Err(bad(f("tiers"), "a route needs at least one tier"));
    }
    let mut tier_names = HashSet::new();
    for (i, t) in r.tiers.iter().enumerate() {
        let tf = f(&format!("tiers[{i}]"));
        if t.name.trim().is_empty() || !tier_names.insert(t.name.as_str()) {
            return Err(bad(
                tf,
                format!("tier names must be non-empty and unique, got {:?}", t.name),
            ));
        }
        if t.models.is_empty() {
            return Err(bad(tf, format!("tier {:?} lists no models", t.name)));
        }
        for m in &t.models {
            if !cfg.models.contains_key(m) {
                return Err(bad(
                    tf,
                    format!("unknown model {m:?}; tiers may only name [models.*] entries"),
                ));
            }
        }
    }
    for (i, rule) in r.rules.iter().enumerate() {
        let rf = |k: &str| f(&format!("rules[{i}].{k}"));
        if rule.name.trim().is_empty() {
            return Err(bad(
                rf("name"),
                "every rule needs a name (it is reported in headers and logs)",
            ));
        }
        for t in rule.allow_tiers.iter().flatten().chain(&rule.deny_tiers) {
            if !tier_names.contains(t.as_str()) {
                return Err(bad(
                    rf("allow_tiers/deny_tiers"),
                    format!("rule {:?} names unknown tier {t:?}", rule.name),
                ));
            }
        }
        check_pii_types(&rf("match.pii"), &rule.when.pii)?;
        if let Some(m) = &rule.pin_model {
            if !cfg.models.contains_key(m) {
                return Err(bad(rf("pin_model"), format!("unknown model {m:?}")));
            }
        }
        if let Some(c) = rule.max_cost_usd {
            if c.is_nan() || c < 0.0 {
                return Err(bad(rf("max_cost_usd"), "must be a number >= 0"));
            }
        }
        for (k, v) in &rule.when.tags {
            if let Some(op) = ["<=", ">=", "<", ">"].iter().find(|op| v.starts_with(**op)) {
                if v[op.len()..].trim().parse::<f64>().is_err() {
                    return Err(bad(
                        rf(&format!("match.tags.{k}")),
                        format!("{v:?} compares with {op} but is not followed by a number"),
                    ));
                }
            }
        }
    }
    if let Some(router) = &r.router {
        if cfg.embeddings.is_none() {
            return Err(bad(
                f("router"),
                "the learned router needs the [embeddings] model",
            ));
        }
        if let Some(t) = router.threshold {
            if !t.is_finite() {
                return Err(bad(f("router.threshold"), "must be a number"));
            }
        }
        if let Some(s) = &router.strong_tier {
            if !tier_names.contains(s.as_str()) {
                return Err(bad(f("router.strong_tier"), format!("unknown tier {s:?}")));
            }
        }
        if !router.starts.is_empty() && (router.threshold.is_some() || router.strong_tier.is_some())
        {
            return Err(bad(
                f("router.starts"),
                "give either starts (one score per tier) or threshold/strong_tier, not both",
            ));
        }
        for (tier, score) in &router.starts {
            if !tier_names.contains(tier.as_str()) {
                return Err(bad(f(&format!("router.starts.{tier}")), "unknown tier"));
            }
            if !score.is_finite() {
                return Err(bad(f(&format!("router.starts.{tier}")), "must be a number"));
            }
        }
        if r.tiers
            .first()
            .is_some_and(|t| router.starts.contains_key(&t.name))
        {
            return Err(bad(
                f("router.starts"),
                "the first tier is where every other request starts; list only later tiers",
            ));
        }
        if r.tiers.len() < 2 {
            return Err(bad(
                f("router"),
                "a router chooses between tiers; add a second tier",
            ));
        }
    }
    if let Some(d) = &r.domains {
        if cfg.embeddings.is_none() {
            return Err(bad(
                f("domains"),
                "domain routing needs the [embeddings] model",
            ));
        }
        if !(-1.0..=1.0).contains(&d.floor) {
            return Err(bad(
                f("domains.floor"),
                "a cosine similarity, between -1 and 1",
            ));
        }
        if d.classes.is_empty() {
            return Err(bad(f("domains.classes"), "list at least one domain"));
        }
        let mut domain_tiers = HashSet::new();
        for (i, c) in d.classes.iter().enumerate() {
            let cf = f(&format!("domains.classes[{i}]"));
            if !tier_names.contains(c.tier.as_str()) {
                return Err(bad(
                    cf,
                    format!("domain {:?} names unknown tier {:?}", c.name, c.tier),
                ));
            }
            domain_tiers.insert(c.tier.as_str());
            if c.examples.is_empty() && c.examples_file.is_none() {
                return Err(bad(cf, format!("domain {:?} has no examples", c.name)));
            }
            if let Some(p) = &c.examples_file {
                if !std::path::Path::new(p).is_file() {
                    return Err(bad(cf + ".examples_file", format!("no file at {p}")));
                }
            }
        }
        if r.tiers
            .iter()
            .all(|t| domain_tiers.contains(t.name.as_str()))
        {
            return Err(bad(
                f("domains"),
                "every tier is a domain tier; add a general tier for requests below the floor",
            ));
        }
    }
    if let Some(c) = &r.cascade {
        if r.tiers.len() < 2 {
            return Err(bad(
                f("cascade"),
                "a cascade escalates to a next tier; add a second tier",
            ));
        }
        if !c.threshold.is_finite() {
            return Err(bad(f("cascade.threshold"), "must be a number"));
        }
        if let Some(v) = &c.verifier {
            if !matches!(cfg.models.get(v), Some(super::types::ModelConfig::Local(_))) {
                return Err(bad(
                    f("cascade.verifier"),
                    format!("{v:?} is not a local model"),
                ));
            }
        }
        if c.first_tokens > 4096 {
            return Err(bad(f("cascade.first_tokens"), "at most 4096"));
        }
        if let Some(m) = &c.combine {
            if r.router.is_none() {
                return Err(bad(
                    f("cascade.combine"),
                    "combines the route's router score with the confidence: add a router",
                ));
            }
            let all = [
                m.router_weight,
                m.confidence_weight,
                m.router_mean,
                m.router_std,
                m.confidence_mean,
                m.confidence_std,
                m.threshold,
            ];
            if all.iter().any(|v| !v.is_finite()) {
                return Err(bad(f("cascade.combine"), "every value must be a number"));
            }
            if m.router_std <= 0.0 || m.confidence_std <= 0.0 {
                return Err(bad(f("cascade.combine"), "the deviations must be above 0"));
            }
            if m.confidence_weight <= 0.0 || m.router_weight < 0.0 {
                return Err(bad(
                    f("cascade.combine"),
                    "confidence_weight must be above 0 and router_weight at least 0",
                ));
            }
        }
    }
    Ok(())
}
