//! Shared server state. Models load after the port is bound, so `/health` answers at once and
//! `/ready` turns 200 when every model is loaded.

use std::sync::{Arc, OnceLock};

use slmgate_engine::SentenceEmbedder;
use tokio::sync::Semaphore;

use crate::api::error::ApiError;
use crate::config::Config;
use crate::observe::metrics::Metrics;
use crate::providers::Provider;
use crate::route::Gateway;

pub struct AppState {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    gateway: OnceLock<Gateway>,
    embedder: OnceLock<Option<Embedder>>,
}

pub struct Embedder {
    pub name: String,
    pub model: Arc<SentenceEmbedder>,
    pub permits: Semaphore,
}

impl AppState {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            config,
            metrics: Arc::new(Metrics::new()),
            gateway: OnceLock::new(),
            embedder: OnceLock::new(),
        })
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
        let gateway = Gateway::build(&self.config, self.metrics.clone())?;
        let _ = self.embedder.set(embedder);
        let _ = self.gateway.set(gateway);
        Ok(())
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
