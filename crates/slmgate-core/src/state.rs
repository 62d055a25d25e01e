//! Shared server state. Models load after the port is bound, so `/health` answers at once and
//! `/ready` turns 200 when every model is loaded.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use slmgate_engine::SentenceEmbedder;
use tokio::sync::Semaphore;

use crate::api::error::ApiError;
use crate::api::routing::router_text;
use crate::config::Config;
use crate::govern::{GovernError, Governance};
use crate::observe::metrics::Metrics;
use crate::providers::Provider;
use crate::route::domain::{DomainClassifier, DomainVerdict};
use crate::route::router::{embed_one, Representation, RouterHandle, RouterModel};
use crate::route::{Gateway, RequestFacts, RouterVerdict};
use crate::wire::openai::ChatRequest;

pub struct AppState {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// Keys, limits, PII, guard, audit log, review queue.
    pub governance: Governance,
    gateway: OnceLock<Gateway>,
    embedder: OnceLock<Option<Embedder>>,
    /// Learned routers by route name.
    routers: OnceLock<BTreeMap<String, RouterHandle>>,
    /// Domain classifiers by route name.
    domains: OnceLock<BTreeMap<String, Arc<DomainClassifier>>>,
}

pub struct Embedder {
    pub name: String,
    pub model: Arc<SentenceEmbedder>,
    pub permits: Semaphore,
}

impl AppState {
    /// Opens the governance store (keys, audit log) and starts the audit writer.
    pub fn new(config: Config) -> Result<Arc<Self>, GovernError> {
        let governance = Governance::open(&config)?;
        Ok(Arc::new(Self {
            config,
            metrics: Arc::new(Metrics::new()),
            governance,
            gateway: OnceLock::new(),
            embedder: OnceLock::new(),
            routers: OnceLock::new(),
            domains: OnceLock::new(),
        }))
    }

    /// Loads every model named in the config (blocking; seconds).
    pub fn load_models(&self) -> Result<(), String> {
        let embedder = match &self.config.embeddings {
            Some(e) => {
                let model = SentenceEmbedder::load(std::path::Path::new(&e.path))
                    .map_err(|e| e.to_string())?;
                tracing::info!(name = %e.name, dims = model.dimensions(), "embedding model loaded");
                Some(Embedder {
                    name: e.name.clone(),
                    model: Arc::new(model),
                    permits: Semaphore::new(e.concurrency),
                })
            }
            None => None,
        };
        let mut routers = BTreeMap::new();
        for (route, r) in &self.config.routes {
            if let (Some(rc), Some(e)) = (&r.router, &embedder) {
                let h =
                    RouterHandle::load(rc.path.clone().into(), rc.threshold, e.model.dimensions())
                        .map_err(|e| format!("routes.{route}.router: {e}"))?;
                tracing::info!(route = %route, path = %rc.path, "learned router loaded");
                routers.insert(route.clone(), h);
            }
        }
        let mut domains = BTreeMap::new();
        for (route, r) in &self.config.routes {
            if let (Some(d), Some(e)) = (&r.domains, &embedder) {
                let c = DomainClassifier::build(&e.model, d)
                    .map_err(|e| format!("routes.{route}.domains: {e}"))?;
                tracing::info!(route = %route, domains = d.classes.len(), "domain classifier built");
                domains.insert(route.clone(), Arc::new(c));
            }
        }
        let uses_static = routers
            .values()
            .any(|h: &RouterHandle| h.current().representation == Representation::Static)
            || domains
                .values()
                .any(|d| d.representation == Representation::Static);
        if let (true, Some(e)) = (uses_static, &embedder) {
            // Map the token table now, not on the first request.
            e.model.embed_static("warm up").map_err(|e| e.to_string())?;
        }
        if let Some(e) = &embedder {
            let g = crate::govern::guard::Guard::with_embedder(&e.model, None)?;
            *self
                .governance
                .guard
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Arc::new(g);
        }
        let gateway = Gateway::build(&self.config, self.metrics.clone())?;
        let _ = self.domains.set(domains);
        let _ = self.routers.set(routers);
        let _ = self.embedder.set(embedder);
        let _ = self.gateway.set(gateway);
        Ok(())
    }

    /// Re-reads router files that changed (called periodically by the server).
    pub fn reload_routers(&self) {
        let (Some(routers), Ok(Some(e))) = (self.routers.get(), self.embedder()) else {
            return;
        };
        for (route, h) in routers {
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

    /// The learned router's verdict on a request, if its route has a router. A router that
    /// cannot score (embedding failure) gives none: the plan then starts at the first tier.
    pub async fn router_verdict(
        &self,
        route: &str,
        req: &ChatRequest,
        facts: &RequestFacts,
    ) -> Option<RouterVerdict> {
        let h = self.routers.get()?.get(route)?;
        let emb = self.embedder().ok()??;
        let text = router_text(req)?;
        let model = h.current();
        let chars = text.chars().count();
        let _permit = emb.permits.acquire().await.ok()?;
        let e = emb.model.clone();
        let repr = model.representation;
        let embedded = tokio::task::spawn_blocking(move || embed_one(&e, repr, &text)).await;
        let v = match embedded {
            Ok(Ok(v)) => v,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "router embedding failed");
                return None;
            }
            Err(_) => return None,
        };
        let tags: Vec<String> = facts.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let x = RouterModel::features(&v, &model.tag_features, &tags, chars);
        Some(RouterVerdict {
            score: model.score(&x),
            threshold: h.threshold(&model),
        })
    }

    /// The domain classifier's verdict, if the route has domains.
    pub async fn domain_verdict(&self, route: &str, req: &ChatRequest) -> Option<DomainVerdict> {
        let c = self.domains.get()?.get(route)?.clone();
        let emb = self.embedder().ok()??;
        let text = router_text(req)?;
        let _permit = emb.permits.acquire().await.ok()?;
        let e = emb.model.clone();
        match tokio::task::spawn_blocking(move || c.classify(&e, &text)).await {
            Ok(Ok(v)) => v,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "domain classification failed");
                None
            }
            Err(_) => None,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.gateway.get().is_some()
    }

    pub fn gateway(&self) -> Result<&Gateway, ApiError> {
        self.gateway.get().ok_or_else(not_ready)
    }

    pub fn embedder(&self) -> Result<Option<&Embedder>, ApiError> {
        self.embedder
            .get()
            .map(Option::as_ref)
            .ok_or_else(not_ready)
    }

    /// Samples engine gauges into the metrics, then renders them.
    pub fn render_metrics(&self) -> String {
        if let Some(g) = self.gateway.get() {
            for (name, d) in &g.deployments {
                if let Provider::Local(l) = &d.provider {
                    self.metrics
                        .queue_depth
                        .with_label_values(&[name])
                        .set(l.engine.queue_depth() as i64);
                    let active = l
                        .engine
                        .stats()
                        .active
                        .load(std::sync::atomic::Ordering::Relaxed);
                    self.metrics
                        .active_sequences
                        .with_label_values(&[name])
                        .set(active as i64);
                }
            }
        }
        self.metrics.render()
    }
}

fn not_ready() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "Models are still loading; retry shortly (GET /ready turns 200 when done).",
    )
    .with_retry_after(2)
}
