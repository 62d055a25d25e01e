//! Shared machine learning: one small model family (ridge regression of the strong model's
//! gain, logistic regression or an MLP over a prompt's vector, its tags, its length and its
//! system prompt), its training (closed form; candle), k-fold evaluation and the
//! routing metrics (APGR, CPT), and how a prompt becomes a vector. The learned router
//! (`route::router`), domain routing (`route::domain`) and the injection guard
//! (`govern::guard`) all build on it; `data` reads the labelled outcomes a router learns from.

pub mod baselines;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod model;
pub mod ridge;
pub mod tag_prior;
pub mod train;

use slmgate_engine::SentenceEmbedder;

pub use model::{Learner, RequestShape, RouterModel};

#[derive(Debug, thiserror::Error)]
pub enum MlError {
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
    /// Mean of the embedding model's input-token vectors, unit length (no layers;
    /// microseconds).
    Static,
    /// Sum of the embedding model's input-token vectors over the prompt, divided by
    /// [`BAG_SCALE`] (no layers, not normalised: a bag of tokens whose evidence adds up with
    /// the prompt's length; microseconds). The ridge router's default.
    Bag,
}

/// The bag representation's divisor (a fixed scale, so one penalty grid fits typical prompts).
pub const BAG_SCALE: f32 = 16.0;

impl Representation {
    pub fn parse(s: &str) -> Result<Self, MlError> {
        match s {
            "contextual" => Ok(Representation::Contextual),
            "static" => Ok(Representation::Static),
            "bag" => Ok(Representation::Bag),
            other => Err(MlError::Data(format!(
                "unknown representation {other:?}; use bag, static or contextual"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Representation::Contextual => "contextual",
            Representation::Static => "static",
            Representation::Bag => "bag",
        }
    }
}

/// One prompt's router input vector.
pub fn embed_one(
    embedder: &SentenceEmbedder,
    repr: Representation,
    text: &str,
) -> Result<Vec<f32>, MlError> {
    let e = |e: slmgate_engine::EmbedError| MlError::Embed(e.to_string());
    match repr {
        Representation::Static => embedder.embed_static(text).map_err(e),
        Representation::Bag => {
            let mut v = embedder.embed_token_sum(text).map_err(e)?;
            v.iter_mut().for_each(|x| *x /= BAG_SCALE);
            Ok(v)
        }
        Representation::Contextual => embedder
            .embed_truncated(&[text.to_string()])
            .map_err(e)?
            .0
            .pop()
            .ok_or_else(|| MlError::Embed("no vector returned".into())),
    }
}

/// Embeds prompts in batches (inputs longer than the model's window are cut to it).
pub fn embed_all(
    embedder: &SentenceEmbedder,
    repr: Representation,
    prompts: &[String],
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>, MlError> {
    let mut out = Vec::with_capacity(prompts.len());
    for batch in prompts.chunks(16) {
        match repr {
            Representation::Contextual => {
                let (v, _) = embedder
                    .embed_truncated(batch)
                    .map_err(|e| MlError::Embed(e.to_string()))?;
                out.extend(v);
            }
            Representation::Static | Representation::Bag => {
                for p in batch {
                    out.push(embed_one(embedder, repr, p)?);
                }
            }
        }
        progress(out.len());
    }
    Ok(out)
}
