//! The router file and its forward pass. Inference is plain Rust over the stored weights
//! (microseconds); training (train.rs) uses candle.

use serde::{Deserialize, Serialize};

use super::MlError;

pub const FORMAT: &str = "slmgate-router/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    /// L2-regularised logistic regression.
    Logistic,
    /// One hidden layer (ReLU), L2-regularised.
    Mlp,
    /// Linear regression of the strong model's gain (strong − weak quality), L2-regularised,
    /// closed form (`ridge.rs`); scores are expected gains, not probabilities.
    Ridge,
}

impl Learner {
    pub fn parse(s: &str) -> Result<Self, MlError> {
        match s {
            "logistic" => Ok(Learner::Logistic),
            "mlp" => Ok(Learner::Mlp),
            "ridge" => Ok(Learner::Ridge),
            other => Err(MlError::Data(format!(
                "unknown learner {other:?}; use ridge, logistic or mlp"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Learner::Logistic => "logistic",
            Learner::Mlp => "mlp",
            Learner::Ridge => "ridge",
        }
    }
}

/// A trained router: scores how much a prompt needs the strong model (logistic, MLP: the
/// probability that it answers better; ridge: its expected quality gain).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterModel {
    pub format: String,
    pub learner: Learner,
    pub weak: String,
    pub strong: String,
    /// Embedding model the router was trained with (its name and dimensions).
    pub embedding: String,
    /// How prompts were turned into vectors with it.
    #[serde(default)]
    pub representation: super::Representation,
    pub embedding_dims: usize,
    /// `key=value` tags with their own input feature.
    pub tag_features: Vec<String>,
    /// System prompts hashed into this many one-hot features (0: none; routers from before).
    #[serde(default)]
    pub system_buckets: usize,
    /// The learned per-tag prior (ridge): its value is the last input, with weight 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prior: Option<super::tag_prior::TagPrior>,
    /// Feature standardisation (per input feature).
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// Hidden layer (`hidden` rows of `inputs` weights); empty for logistic regression.
    pub hidden: usize,
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// Output layer over the hidden units (or the inputs for logistic regression).
    pub w2: Vec<f32>,
    pub b2: f32,
    pub l2: f32,
    /// Scores at or above this go to the strong model (set by train or calibrate).
    pub threshold: f32,
    pub threshold_note: String,
    pub trained_examples: usize,
}

impl RouterModel {
    pub fn inputs(&self) -> usize {
        self.mean.len()
    }

    /// Input features: the prompt embedding, one per known tag, log prompt length, the
    /// system prompt's bucket (one-hot over `system_buckets`), and the per-tag prior if any.
    pub fn features(
        embedding: &[f32],
        tag_features: &[String],
        system_buckets: usize,
        prior: Option<&super::tag_prior::TagPrior>,
        req: &RequestShape<'_>,
    ) -> Vec<f32> {
        let mut x = Vec::with_capacity(embedding.len() + tag_features.len() + 2 + system_buckets);
        x.extend_from_slice(embedding);
        for t in tag_features {
            x.push(if req.tags.contains(t) { 1.0 } else { 0.0 });
        }
        x.push(((req.prompt_chars + 1) as f32).ln());
        let bucket = req.system.map(|s| system_bucket(s, system_buckets));
        for b in 0..system_buckets {
            x.push(if bucket == Some(b) { 1.0 } else { 0.0 });
        }
        if let Some(p) = prior {
            x.push(p.of(req.tags));
        }
        x
    }

    /// This router's input features for a request.
    pub fn features_of(&self, embedding: &[f32], req: &RequestShape<'_>) -> Vec<f32> {
        Self::features(
            embedding,
            &self.tag_features,
            self.system_buckets,
            self.tag_prior.as_ref(),
            req,
        )
    }

    /// The routing score: the probability (0..1) that the strong model answers better, or
    /// (ridge) the expected quality gain of the strong model (−1..1). Higher means stronger.
    pub fn score(&self, raw: &[f32]) -> f32 {
        let x: Vec<f32> = raw
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((v, m), s)| (v - m) / s)
            .collect();
        if self.learner == Learner::Ridge {
            return dot(&self.w2, &x) + self.b2;
        }
        let logit = if self.hidden == 0 {
            dot(&self.w2, &x) + self.b2
        } else {
            let n = x.len();
            let h: Vec<f32> = (0..self.hidden)
                .map(|j| (dot(&self.w1[j * n..(j + 1) * n], &x) + self.b1[j]).max(0.0))
                .collect();
            dot(&self.w2, &h) + self.b2
        };
        1.0 / (1.0 + (-logit).exp())
    }

    pub fn load(path: &std::path::Path) -> Result<Self, MlError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MlError::Data(format!("cannot read router {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// A router from its JSON text; `origin` names where it came from in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, MlError> {
        let m: RouterModel = serde_json::from_str(text)
            .map_err(|e| MlError::Data(format!("router {origin}: {e}")))?;
        m.check()
            .map_err(|e| MlError::Data(format!("router {origin}: {e}")))?;
        Ok(m)
    }

    pub fn save(&self, path: &std::path::Path) -> Result<(), MlError> {
        let text = serde_json::to_string(self).map_err(|e| MlError::Data(e.to_string()))?;
        // Write then rename, so a serving gateway never reads half a file.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| MlError::Data(format!("cannot write {}: {e}", path.display())))
    }

    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format {:?} is not {FORMAT:?}", self.format));
        }
        let n = self.embedding_dims
            + self.tag_features.len()
            + 1
            + self.system_buckets
            + usize::from(self.tag_prior.is_some());
        let ok = self.mean.len() == n
            && self.scale.len() == n
            && self.w1.len() == self.hidden * n
            && self.b1.len() == self.hidden
            && self.w2.len() == if self.hidden == 0 { n } else { self.hidden };
        if !ok {
            return Err("weight shapes do not match the declared dimensions".into());
        }
        Ok(())
    }
}

/// What a router reads of a request besides its text's vector.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestShape<'a> {
    /// `key=value` tags.
    pub tags: &'a [String],
    /// Characters of the routed text.
    pub prompt_chars: usize,
    /// The system prompt, if any.
    pub system: Option<&'a str>,
}

/// The bucket (0..buckets) of a system prompt: a stable hash of its trimmed text, so an
/// application's few system prompts each get their own feature (up to collisions).
pub fn system_bucket(system: &str, buckets: usize) -> usize {
    use sha2::{Digest, Sha256};
    if buckets == 0 {
        return 0;
    }
    let h = Sha256::digest(system.trim().as_bytes());
    let v = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    (v % buckets as u64) as usize
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
