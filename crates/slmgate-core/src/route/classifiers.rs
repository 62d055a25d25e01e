//! The embedding model and everything that runs on it at request time: the learned routers
//! and the domain classifiers, by route. Loaded once; routers hot-swap when their file
//! changes or a newer version is published to the shared store.

use std::collections::BTreeMap;
use std::sync::Arc;

use slmgate_engine::SentenceEmbedder;
use tokio::sync::Semaphore;

use super::domain::{DomainClassifier, DomainVerdict};
use super::plan::RouterVerdict;
use super::router::RouterHandle;
use super::RequestFacts;
use crate::config::Config;
use crate::ml::{embed_one, Representation};
use crate::wire::openai::ChatRequest;

/// The sentence-embedding model, shared by `/v1/embeddings`, the router, domain routing
/// and the injection guard; `permits` bounds concurrent embedding work.
pub struct Embedder {
    pub name: String,
    pub model: Arc<SentenceEmbedder>,
    pub permits: Semaphore,
}

impl Embedder {
    /// Runs `f` on the model on the blocking pool, within the concurrency bound. A failure
    /// is logged as `failed` and gives none (the request is routed without this verdict).
    pub async fn run<T, E>(
        &self,
        failed: &'static str,
        f: impl FnOnce(&SentenceEmbedder) -> Result<T, E> + Send + 'static,
    ) -> Option<T>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let _permit = self.permits.acquire().await.ok()?;
        let model = self.model.clone();
        match tokio::task::spawn_blocking(move || f(&model)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "{failed}");
                None
            }
            Err(_) => None,
        }
    }
}

#[derive(Default)]
pub struct Classifiers {
    pub embedder: Option<Embedder>,
    /// Learned routers by route name.
    routers: BTreeMap<String, RouterHandle>,
    /// Domain classifiers by route name.
    domains: BTreeMap<String, Arc<DomainClassifier>>,
}

impl Classifiers {
    /// Loads the embedding model and builds every route's router and domain classifier
    /// (blocking; seconds).
    pub fn load(cfg: &Config) -> Result<Self, String> {
        let Some(e) = &cfg.embeddings else {
            return Ok(Self::default());
        };
        let model =
            SentenceEmbedder::load(std::path::Path::new(&e.path)).map_err(|e| e.to_string())?;
        tracing::info!(name = %e.name, dims = model.dimensions(), "embedding model loaded");
        let embedder = Embedder {
            name: e.name.clone(),
            model: Arc::new(model),
            permits: Semaphore::new(e.concurrency),
        };
        let mut routers = BTreeMap::new();
        let mut domains = BTreeMap::new();
        for (route, r) in &cfg.routes {
            if let Some(rc) = &r.router {
                let h = RouterHandle::load(
                    rc.path.clone().into(),
                    rc.threshold,
                    embedder.model.dimensions(),
                )
                .map_err(|e| format!("routes.{route}.router: {e}"))?;
                tracing::info!(route = %route, path = %rc.path, "learned router loaded");
                routers.insert(route.clone(), h);
            }
            if let Some(d) = &r.domains {
                let c = DomainClassifier::build(&embedder.model, d)
                    .map_err(|e| format!("routes.{route}.domains: {e}"))?;
                tracing::info!(route = %route, domains = d.classes.len(), "domain classifier built");
                domains.insert(route.clone(), Arc::new(c));
            }
        }
        let token_table =
            |r: Representation| matches!(r, Representation::Static | Representation::Bag);
        let uses_static = routers
            .values()
            .any(|h: &RouterHandle| token_table(h.current().representation))
            || domains.values().any(|d| token_table(d.representation));
        if uses_static {
            // Map the token table now, not on the first request.
            embedder
                .model
                .embed_static("warm up")
                .map_err(|e| e.to_string())?;
        }
        Ok(Self {
            embedder: Some(embedder),
            routers,
            domains,
        })
    }

    /// Re-reads router files that changed (called periodically by the server).
    pub fn reload_routers(&self) {
        let Some(e) = &self.embedder else { return };
        for (route, h) in &self.routers {
            match h.reload_if_changed(e.model.dimensions()) {
                Ok(true) => {
                    tracing::info!(route = %route, path = %h.path.display(), "learned router reloaded")
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(route = %route, error = %err, "router file changed but cannot be loaded; keeping the previous one")
                }
            }
        }
    }

    /// Serves the routers published to the shared store (`slmgate router publish`) that are
    /// newer than what each route serves; called at start and on every refresh tick.
    pub fn adopt_published(&self, pg: &crate::db::Pg) {
        let Some(e) = &self.embedder else { return };
        if self.routers.is_empty() {
            return;
        }
        let versions = match super::published::versions(pg) {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read published routers");
                return;
            }
        };
        for (route, version) in versions {
            let Some(h) = self.routers.get(&route) else {
                continue;
            };
            if version <= h.published() {
                continue;
            }
            let p = match super::published::fetch(pg, &route) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(route = %route, error = %err, "cannot read a published router");
                    continue;
                }
            };
            match h.adopt(p.version, &p.body, e.model.dimensions()) {
                Ok(()) => {
                    tracing::info!(route = %route, version = p.version, note = %p.note, "published router adopted")
                }
                Err(err) => {
                    tracing::warn!(route = %route, version = p.version, error = %err, "published router cannot be served; keeping the current one")
                }
            }
        }
    }

    /// The learned router's verdict on a request, if its route has a router. A router that
    /// cannot score (embedding failure) gives none: the plan then starts at the first tier.
    pub async fn router_verdict(
        &self,
        route: &str,
        req: &ChatRequest,
        facts: &RequestFacts,
    ) -> Option<RouterVerdict> {
        let h = self.routers.get(route)?;
        let emb = self.embedder.as_ref()?;
        let text = req.last_user_text()?;
        let model = h.current();
        let repr = model.representation;
        let routed = text.clone();
        let v = emb
            .run("router embedding failed", move |e| {
                embed_one(e, repr, &routed)
            })
            .await?;
        let x = super::router::request_features(&model, &v, &text, req, facts);
        Some(RouterVerdict {
            score: model.score(&x),
            threshold: h.threshold(&model),
        })
    }

    /// The domain classifier's verdict, if the route has domains.
    pub async fn domain_verdict(&self, route: &str, req: &ChatRequest) -> Option<DomainVerdict> {
        let c = self.domains.get(route)?.clone();
        let emb = self.embedder.as_ref()?;
        let text = req.last_user_text()?;
        emb.run("domain classification failed", move |e| {
            c.classify(e, &text)
        })
        .await
        .flatten()
    }
}
