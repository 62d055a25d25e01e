//! LoRA adapters while serving: which deployments are adapters on a local base model, what
//! each has loaded, and loading a new file into one (a hot swap) without a restart.

use std::path::PathBuf;

use serde::Serialize;
use slmgate_engine::{AdapterSpec, LocalEngine};

use super::executor::Gateway;
use crate::providers::Provider;

/// One adapter deployment as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterStatus {
    /// The deployment clients ask for (`base:adapter`).
    pub deployment: String,
    pub base: String,
    pub adapter: String,
    pub path: String,
    pub scale: f32,
    /// Increases with every load in the base's engine.
    pub generation: u64,
    pub loaded_ms: i64,
}

/// Why a load was not done.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("`{0}` is not a LoRA adapter deployment; declare it as `[models.BASE] adapters = {{ NAME = \"file.gguf\" }}` and ask for `BASE:NAME`")]
    NotAnAdapter(String),
    #[error("{0}")]
    Load(String),
}

/// A deployment of an adapter: its engine, base and adapter name.
struct Target<'a> {
    engine: &'a LocalEngine,
    base: &'a str,
    adapter: &'a str,
}

impl Gateway {
    /// The engine and names behind an adapter deployment.
    fn adapter_target(&self, deployment: &str) -> Option<Target<'_>> {
        let d = self.deployments.iter().find(|d| d.name == deployment)?;
        let Provider::Local(l) = &d.provider else {
            return None;
        };
        let adapter = l.adapter.as_deref()?;
        let base = d.name.strip_suffix(adapter)?.strip_suffix(':')?;
        Some(Target {
            engine: &l.engine,
            base,
            adapter,
        })
    }

    /// Every adapter deployment with what its engine has loaded under its name.
    pub fn adapters(&self) -> Vec<AdapterStatus> {
        let mut out = Vec::new();
        for d in &self.deployments {
            let Some(t) = self.adapter_target(&d.name) else {
                continue;
            };
            if let Some(info) = t
                .engine
                .adapters()
                .into_iter()
                .find(|i| i.name == t.adapter)
            {
                out.push(AdapterStatus {
                    deployment: d.name.clone(),
                    base: t.base.to_string(),
                    adapter: info.name,
                    path: info.path.display().to_string(),
                    scale: info.scale,
                    generation: info.generation,
                    loaded_ms: info.loaded_ms,
                });
            }
        }
        out
    }

    /// Loads `path` (the adapter's current file when `None`) as `deployment`'s adapter: new
    /// requests use it at once; sequences in flight finish on the old weights.
    pub async fn load_adapter(
        &self,
        deployment: &str,
        path: Option<PathBuf>,
        scale: Option<f32>,
    ) -> Result<AdapterStatus, AdapterError> {
        let t = self
            .adapter_target(deployment)
            .ok_or_else(|| AdapterError::NotAnAdapter(deployment.to_string()))?;
        let current = t
            .engine
            .adapters()
            .into_iter()
            .find(|i| i.name == t.adapter);
        let spec = AdapterSpec {
            name: t.adapter.to_string(),
            path: match (path, &current) {
                (Some(p), _) => p,
                (None, Some(c)) => c.path.clone(),
                (None, None) => {
                    return Err(AdapterError::Load("no file given and none loaded".into()))
                }
            },
            scale: scale.or(current.as_ref().map(|c| c.scale)).unwrap_or(1.0),
        };
        let (base, adapter) = (t.base.to_string(), t.adapter.to_string());
        let result = t.engine.load_adapter(spec).await;
        self.metrics()
            .adapter_loads
            .with_label_values(&[
                deployment,
                &adapter,
                if result.is_ok() { "ok" } else { "error" },
            ])
            .inc();
        let info = result.map_err(|e| AdapterError::Load(e.to_string()))?;
        Ok(AdapterStatus {
            deployment: deployment.to_string(),
            base,
            adapter: info.name,
            path: info.path.display().to_string(),
            scale: info.scale,
            generation: info.generation,
            loaded_ms: info.loaded_ms,
        })
    }

    /// Adapter deployments whose file changed on disk since it was loaded.
    pub fn changed_adapters(&self) -> Vec<String> {
        self.deployments
            .iter()
            .filter_map(|d| {
                let t = self.adapter_target(&d.name)?;
                t.engine
                    .changed_adapters()
                    .iter()
                    .any(|s| s.name == t.adapter)
                    .then(|| d.name.clone())
            })
            .collect()
    }
}
