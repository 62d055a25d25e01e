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

/// How a prompt becomes the router's input vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Representation {
    /// The embedding model's full sentence embedding (transformer layers; milliseconds).
    #[default]
    Contextual,
    /// Mean of the embedding model's input-token vectors (no layers; microseconds).
    Static,
}

impl Representation {
    pub fn parse(s: &str) -> Result<Self, RouterError> {
        match s {
            "contextual" => Ok(Representation::Contextual),
            "static" => Ok(Representation::Static),
            other => Err(RouterError::Data(format!(
                "unknown representation {other:?}; use contextual or static"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Representation::Contextual => "contextual",
            Representation::Static => "static",
        }
    }
}

/// One prompt's router input vector.
pub fn embed_one(
    embedder: &SentenceEmbedder,
    repr: Representation,
    text: &str,
) -> Result<Vec<f32>, RouterError> {
    let e = |e: slmgate_engine::EmbedError| RouterError::Embed(e.to_string());
    match repr {
        Representation::Static => embedder.embed_static(text).map_err(e),
        Representation::Contextual => embedder
            .embed_truncated(&[text.to_string()])
            .map_err(e)?
            .0
            .pop()
            .ok_or_else(|| RouterError::Embed("no vector returned".into())),
    }
}

/// Embeds prompts in batches (inputs longer than the model's window are cut to it).
pub fn embed_all(
    embedder: &SentenceEmbedder,
    repr: Representation,
    prompts: &[String],
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>, RouterError> {
    let mut out = Vec::with_capacity(prompts.len());
    for batch in prompts.chunks(16) {
        match repr {
            Representation::Contextual => {
                let (v, _) = embedder
                    .embed_truncated(batch)
                    .map_err(|e| RouterError::Embed(e.to_string()))?;
                out.extend(v);
            }
            Representation::Static => {
                for p in batch {
                    out.push(embed_one(embedder, repr, p)?);
                }
            }
        }
        progress(out.len());
    }
    Ok(out)
}
