//! The server's parts. The config, its compiled route table, the metrics and governance
//! (keys, limits, audit) exist from the start; models load after the port is bound, so
//! `/health` answers at once and `/ready` turns 200 once [`Loaded`] is set.

use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::govern::{GovernError, Governance};
use crate::know::cache::ResponseCache;
use crate::know::Knowledge;
use crate::learn::Shadows;
use crate::observe::metrics::Metrics;
use crate::providers::Provider;
use crate::route::{Classifiers, Gateway, RouteTable};
use crate::store::ResponseStore;

pub struct AppState {
    pub config: Config,
    /// The routing config compiled once.
    pub table: RouteTable,
    pub metrics: Arc<Metrics>,
    /// Keys, limits, PII, guard, audit log, review queue.
    pub governance: Governance,
    /// Stored Responses API responses.
    pub responses: Arc<ResponseStore>,
    /// RAG collections (vector stores) and uploaded files.
    pub knowledge: Arc<Knowledge>,
    /// The response cache (exact and semantic), this replica's.
    pub cache: ResponseCache,
    /// The response cache every replica shares (`[storage] backend = "postgres"`), behind
    /// this replica's own.
    pub shared_cache: Option<Arc<crate::know::cache_pg::SharedCache>>,
    /// Shadow mode's per-route queues.
    pub shadows: Shadows,
    /// A/B rollouts: each route's live candidate, share and health.
    pub rollouts: crate::learn::rollout::Rollouts,
    loaded: OnceLock<Loaded>,
}

/// What loading the models made: the deployments, and the embedding model with the
/// classifiers that run on it.
pub struct Loaded {
    pub gateway: Gateway,
    pub classifiers: Classifiers,
}

impl AppState {
    /// Opens the governance store (keys, audit log) and starts the audit writer.
    pub fn new(config: Config) -> Result<Arc<Self>, GovernError> {
        let mut governance = Governance::open(&config)?;
        let metrics = Arc::new(Metrics::new());
        if config.cluster.redis_url.is_some() {
            governance.shared = Some(
                crate::govern::limits::shared::SharedLimits::new(
                    &config.cluster,
                    governance.limits.clone(),
                    metrics.clone(),
                )
                .map_err(GovernError::Store)?,
            );
        }
        let responses = match &governance.pg {
            Some(pg) => ResponseStore::pg(pg.clone()),
            None => ResponseStore::open(std::path::Path::new(&config.storage.path))
                .map_err(|e| GovernError::Store(e.to_string()))?,
        };
        let storage = std::path::Path::new(&config.storage.path);
        let knowledge = match &governance.pg {
            Some(pg) => Knowledge::open_pg(pg.clone(), storage, &config.knowledge),
            None => Knowledge::open_sqlite(storage, &config.knowledge),
        }
        .map_err(|e| GovernError::Store(e.to_string()))?;
        let table = RouteTable::compile(&config);
        let shadows = Shadows::new(&config, &table);
        Ok(Arc::new(Self {
            responses: Arc::new(responses),
            knowledge: Arc::new(knowledge),
            cache: ResponseCache::new(config.cache.max_entries),
            shared_cache: governance.pg.clone().map(|pg| {
                Arc::new(crate::know::cache_pg::SharedCache::new(
                    pg,
                    config.cache.max_entries,
                ))
            }),
            table,
            shadows,
            rollouts: crate::learn::rollout::Rollouts::new(&config),
            config,
            metrics,
            governance,
            loaded: OnceLock::new(),
        }))
    }

    /// Loads every model named in the config (blocking; seconds).
    pub fn load_models(&self) -> Result<(), String> {
        let classifiers = Classifiers::load(&self.config)?;
        if let Some(pg) = &self.governance.pg {
            classifiers.adopt_published(pg);
        }
        if let Some(e) = &classifiers.embedder {
            let g = crate::govern::guard::Guard::with_embedder(&e.model, None)?;
            self.governance.set_guard(g);
        }
        let gateway = Gateway::build(&self.config, &self.table, self.metrics.clone())?;
        self.install(Loaded {
            gateway,
            classifiers,
        });
        Ok(())
    }

    /// Makes loaded parts live (the server is ready from now on).
    pub fn install(&self, loaded: Loaded) {
        let _ = self.loaded.set(loaded);
    }

    /// The loaded parts; `None` while models are loading.
    pub fn loaded(&self) -> Option<&Loaded> {
        self.loaded.get()
    }

    pub fn is_ready(&self) -> bool {
        self.loaded.get().is_some()
    }

    /// Adopts rollout changes from the store and rolls back candidates whose reviewed
    /// answers cross their bound.
    pub fn refresh_rollouts(&self) {
        self.with_rollout_store(|db| match self.rollouts.refresh(db) {
            Ok(rolled) => {
                for s in &rolled {
                    self.rolled_back(db, s);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read rollouts"),
        })
    }

    /// Runs `f` on where rollout states live: the shared Postgres store when there is one
    /// (every replica then serves one share), else the SQLite file.
    pub fn with_rollout_store<T>(
        &self,
        f: impl FnOnce(crate::learn::rollout::Store<'_>) -> T,
    ) -> T {
        match &self.governance.pg {
            Some(pg) => f(crate::learn::rollout::Store::Pg(pg)),
            None => self
                .governance
                .with_admin_db(|c| f(crate::learn::rollout::Store::Sqlite(c))),
        }
    }

    /// A rollback the gateway decided: the store's state (the CLI and other replicas read
    /// it) and an audit entry.
    pub fn rolled_back(
        &self,
        db: crate::learn::rollout::Store<'_>,
        s: &crate::learn::rollout::RolloutState,
    ) {
        if let Err(e) = crate::learn::rollout::save(db, s) {
            tracing::error!(error = %e, route = %s.route, "cannot store the rollback");
        }
        self.governance
            .audit
            .submit(crate::learn::rollout::audit_record(s, "gateway"));
    }

    /// Loads `deployment`'s LoRA adapter from `path` (its current file when `None`) while
    /// serving; the change is audited (`actor`: who asked).
    pub async fn load_adapter(
        &self,
        deployment: &str,
        path: Option<std::path::PathBuf>,
        scale: Option<f32>,
        actor: &'static str,
    ) -> Result<crate::route::adapters::AdapterStatus, crate::route::adapters::AdapterError> {
        let Some(l) = self.loaded.get() else {
            return Err(crate::route::adapters::AdapterError::Load(
                "the models are still loading".into(),
            ));
        };
        let result = l.gateway.load_adapter(deployment, path, scale).await;
        let detail = match &result {
            Ok(s) => format!(
                "adapter {} loaded from {} (scale {}, generation {})",
                s.adapter, s.path, s.scale, s.generation
            ),
            Err(crate::route::adapters::AdapterError::NotAnAdapter(_)) => return result,
            Err(e) => format!("adapter load failed: {e}"),
        };
        match &result {
            Ok(_) => tracing::info!(deployment, actor, "{detail}"),
            Err(_) => tracing::error!(deployment, actor, "{detail}"),
        }
        self.governance
            .audit
            .submit(crate::govern::audit::Record::event(
                "adapter",
                actor,
                deployment,
                crate::govern::db::now_ms(),
                detail,
            ));
        result
    }

    /// Loads adapter files that changed on disk (hot swap without a restart); a file that
    /// fails to load is tried again only once it changes again.
    pub async fn reload_adapters(&self) {
        let Some(l) = self.loaded.get() else { return };
        for d in l.gateway.changed_adapters() {
            let _ = self.load_adapter(&d, None, None, "gateway").await;
        }
    }

    /// Re-reads router files that changed, then adopts routers newly published to the
    /// shared store.
    pub fn reload_routers(&self) {
        if let Some(l) = self.loaded.get() {
            l.classifiers.reload_routers();
            if let Some(pg) = &self.governance.pg {
                l.classifiers.adopt_published(pg);
            }
        }
    }

    /// Samples engine gauges into the metrics, then renders them.
    pub fn render_metrics(&self) -> String {
        if let Some(l) = self.loaded.get() {
            for d in &l.gateway.deployments {
                // An adapter's deployment shares its base's engine: counted once, there.
                if let Provider::Local(local) = &d.provider {
                    if local.adapter.is_some() {
                        continue;
                    }
                    self.metrics
                        .queue_depth
                        .with_label_values(&[&d.name])
                        .set(local.engine.queue_depth() as i64);
                    let stats = local.engine.stats();
                    let read = |v: &std::sync::atomic::AtomicU64| {
                        v.load(std::sync::atomic::Ordering::Relaxed)
                    };
                    let active = stats.active.load(std::sync::atomic::Ordering::Relaxed);
                    self.metrics
                        .active_sequences
                        .with_label_values(&[&d.name])
                        .set(active as i64);
                    // The engine's totals only grow: the counters catch up with them.
                    for (counter, total) in [
                        (&self.metrics.spec_steps, read(&stats.spec_steps)),
                        (&self.metrics.spec_drafted, read(&stats.spec_drafted)),
                        (&self.metrics.spec_accepted, read(&stats.spec_accepted)),
                    ] {
                        let c = counter.with_label_values(&[&d.name]);
                        c.inc_by(total.saturating_sub(c.get()));
                    }
                }
            }
        }
        self.metrics
            .cache_entries
            .with_label_values(&[] as &[&str])
            .set(self.cache.len() as i64);
        self.metrics.render()
    }
}
