//! A router loaded by `serve`, swapped in place when its file changes (polled; writes by
//! `slmgate router train/calibrate` are atomic renames, so a half-written file is never read)
//! or when a newer version is published to the shared store (`slmgate router publish`,
//! `route::published`). Whichever changed last is served.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::ml::{MlError, RequestShape, RouterModel};
use crate::wire::openai::ChatRequest;

use super::facts::RequestFacts;

pub struct RouterHandle {
    pub path: PathBuf,
    /// Threshold from the route config; `None` uses the file's.
    pub threshold: Option<f32>,
    model: RwLock<Arc<RouterModel>>,
    modified: Mutex<Option<SystemTime>>,
    /// The shared store's version last adopted (0: none).
    published: AtomicI64,
}

fn mtime(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl RouterHandle {
    pub fn load(path: PathBuf, threshold: Option<f32>, dims: usize) -> Result<Self, MlError> {
        let modified = mtime(&path);
        let m = RouterModel::load(&path)?;
        check_dims(&m, dims, &path.display().to_string())?;
        Ok(Self {
            path,
            threshold,
            model: RwLock::new(Arc::new(m)),
            modified: Mutex::new(modified),
            published: AtomicI64::new(0),
        })
    }

    pub fn current(&self) -> Arc<RouterModel> {
        match self.model.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn threshold(&self, m: &RouterModel) -> f32 {
        self.threshold.unwrap_or(m.threshold)
    }

    /// Reloads when the file's modification time changed; a bad new file keeps the old model.
    pub fn reload_if_changed(&self, dims: usize) -> Result<bool, MlError> {
        let now = mtime(&self.path);
        {
            let mut last = self.modified.lock().unwrap_or_else(|p| p.into_inner());
            if now.is_none() || *last == now {
                return Ok(false);
            }
            *last = now;
        }
        let m = RouterModel::load(&self.path)?;
        check_dims(&m, dims, &self.path.display().to_string())?;
        self.swap(m);
        Ok(true)
    }

    /// The shared store's version this handle last adopted (0: none yet).
    pub fn published(&self) -> i64 {
        self.published.load(Ordering::Acquire)
    }

    /// Serves a router published to the shared store as `version`. A router that cannot be
    /// served keeps the current one, and the version is not tried again.
    pub fn adopt(&self, version: i64, body: &str, dims: usize) -> Result<(), MlError> {
        self.published.store(version, Ordering::Release);
        let origin = format!("published version {version}");
        let m = RouterModel::parse(body, &origin)?;
        check_dims(&m, dims, &origin)?;
        self.swap(m);
        Ok(())
    }

    fn swap(&self, m: RouterModel) {
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(m);
    }
}

fn check_dims(m: &RouterModel, dims: usize, origin: &str) -> Result<(), MlError> {
    if m.embedding_dims != dims {
        return Err(MlError::Data(format!(
            "router {origin} was trained on {}-dimensional embeddings, the embedding model gives {dims}",
            m.embedding_dims
        )));
    }
    Ok(())
}

/// A router's input features for a request, given the vector of its routed text (`text`, the
/// last user message): its tags, that text's length and its system prompt.
pub fn request_features(
    m: &RouterModel,
    vector: &[f32],
    text: &str,
    req: &ChatRequest,
    facts: &RequestFacts,
) -> Vec<f32> {
    let tags: Vec<String> = facts.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let system = req.texts(&["system", "developer"]);
    m.features_of(
        vector,
        &RequestShape {
            tags: &tags,
            prompt_chars: text.chars().count(),
            system: (!system.is_empty()).then_some(system.as_str()),
        },
    )
}
