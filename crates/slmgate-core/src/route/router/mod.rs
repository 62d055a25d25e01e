//! The learned router: predicts, before any model runs, whether the strong model would answer
//! a prompt better than the weak one — from the prompt's embedding (the local MiniLM), its tags
//! and its length. Trained on the user's labelled outcomes (`data`), evaluated by k-fold
//! cross-validation with the field's metrics (`eval`, `metrics`), served hot-swappable (`live`).

pub mod data;
pub mod eval;
pub mod live;
pub mod metrics;
pub mod model;
pub mod train;

use slmgate_engine::SentenceEmbedder;

pub use live::RouterHandle;
pub use model::{Learner, RouterModel};

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    Data(String),
    #[error("training failed: {0}")]
    Train(String),
    #[error("embedding failed: {0}")]
    Embed(String),
}

/// Embeds prompts in batches (inputs longer than the model's window are cut to it).
pub fn embed_all(
    embedder: &SentenceEmbedder,
    prompts: &[String],
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>, RouterError> {
    let mut out = Vec::with_capacity(prompts.len());
    for batch in prompts.chunks(16) {
        let (v, _) = embedder
            .embed_truncated(batch)
            .map_err(|e| RouterError::Embed(e.to_string()))?;
        out.extend(v);
        progress(out.len());
    }
    Ok(out)
}
