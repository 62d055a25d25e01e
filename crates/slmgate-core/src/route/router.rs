//! A router loaded by `serve`, swapped in place when its file changes (polled; writes by
//! `slmgate router train/calibrate` are atomic renames, so a half-written file is never read).

use std::path::PathBuf;
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
}

fn mtime(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl RouterHandle {
    pub fn load(path: PathBuf, threshold: Option<f32>, dims: usize) -> Result<Self, MlError> {
        let modified = mtime(&path);
        let m = RouterModel::load(&path)?;
        check_dims(&m, dims, &path)?;
        Ok(Self {
            path,
            threshold,
            model: RwLock::new(Arc::new(m)),
            modified: Mutex::new(modified),
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
        check_dims(&m, dims, &self.path)?;
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(m);
        Ok(true)
    }
}

fn check_dims(m: &RouterModel, dims: usize, path: &std::path::Path) -> Result<(), MlError> {
    if m.embedding_dims != dims {
        return Err(MlError::Data(format!(
            "router {} was trained on {}-dimensional embeddings, the embedding model gives {dims}",
            path.display(),
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
