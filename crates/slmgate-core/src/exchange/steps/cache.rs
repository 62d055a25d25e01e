//! The response cache (`[cache]`, a route's `cache = { ... }`): an exact lookup, then a
//! semantic one, inside the request's scope (tenant, model, sampling, system prompt and
//! earlier turns; see `know::cache`). A hit ends admission: no retrieval, no plan, no
//! budget reservation; the exchange replays the cached answer at no cost. A miss is
//! remembered so the answer can be cached once it is complete. `x-slmgate-cache: off` on
//! the request skips both.

use super::super::{CacheState, Exchange, GatewayError};
use crate::govern::Principal;
use crate::know::cache::Probe;
use crate::ml::{embed_one, Representation};

/// Who shares cache entries: a key's team, or the key alone.
fn tenant(who: &Principal) -> String {
    match who {
        Principal::Anonymous => "anonymous".into(),
        Principal::Admin => "admin".into(),
        Principal::Key(k) => match &k.spec.team {
            Some(t) => format!("team:{t}"),
            None => format!("key:{}", k.id),
        },
    }
}

pub(super) async fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    let route = ex
        .st
        .config
        .routes
        .get(&ex.req.model)
        .and_then(|r| r.cache.as_ref());
    let Some(policy) = ex.st.config.cache.policy(route) else {
        return Ok(());
    };
    let count = |ex: &Exchange, result: &str| {
        ex.st
            .metrics
            .cache_lookups
            .with_label_values(&[ex.req.model.as_str(), result])
            .inc();
    };
    if matches!(ex.cache, CacheState::Bypass) {
        count(ex, "bypass");
        return Ok(());
    }
    let Some(mut probe) = Probe::of(&tenant(&ex.who), &ex.req) else {
        return Ok(());
    };
    let st = ex.st.clone();
    if let Some(found) = st.cache.exact(&probe) {
        ex.cache = CacheState::Hit(found);
        return Ok(());
    }
    if let Some(found) = shared(&st, &probe, None).await {
        ex.cache = CacheState::Hit(found);
        return Ok(());
    }
    if policy.semantic {
        if let Some(e) = st.loaded().and_then(|l| l.classifiers.embedder.as_ref()) {
            let q = probe.question.clone();
            probe.vector = e
                .run("cache embedding failed", move |m| {
                    embed_one(m, Representation::Contextual, &q)
                })
                .await;
            if let Some(found) = st.cache.similar(&probe, policy.threshold) {
                ex.cache = CacheState::Hit(found);
                return Ok(());
            }
            if let Some(found) = shared(&st, &probe, Some(policy.threshold)).await {
                ex.cache = CacheState::Hit(found);
                return Ok(());
            }
        }
    }
    count(ex, "miss");
    ex.cache = CacheState::Miss(Box::new(probe), policy.ttl);
    Ok(())
}

/// The lookup in the cache every replica shares, if there is one: exact, or (with a
/// threshold) semantic. A store error is a miss (logged).
async fn shared(
    st: &std::sync::Arc<crate::state::AppState>,
    probe: &Probe,
    threshold: Option<f32>,
) -> Option<crate::know::cache::Found> {
    let c = st.shared_cache.clone()?;
    let p = probe.clone();
    let r = tokio::task::spawn_blocking(move || match threshold {
        None => c.exact(&p),
        Some(t) => c.similar(&p, t),
    })
    .await
    .ok()?;
    match r {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "shared cache lookup failed; treated as a miss");
            None
        }
    }
}
