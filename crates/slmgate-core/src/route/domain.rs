//! Domain routing: a nearest-centroid classifier over prompt embeddings. Each domain's
//! centroid is the normalised mean of its example prompts' vectors; a request goes to the
//! domain whose centroid is most similar (cosine), unless that similarity is below the floor.

use serde::Serialize;
use slmgate_engine::SentenceEmbedder;

use crate::config::DomainsConfig;
use crate::ml::{embed_all, embed_one, MlError, Representation};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainVerdict {
    pub domain: String,
    pub tier: String,
    pub similarity: f32,
    pub floor: f32,
}

pub struct DomainClassifier {
    pub representation: Representation,
    pub floor: f32,
    /// (domain, tier, unit centroid)
    classes: Vec<(String, String, Vec<f32>)>,
}

impl DomainClassifier {
    /// Embeds every domain's examples (at start; seconds for contextual, less for static).
    pub fn build(e: &SentenceEmbedder, cfg: &DomainsConfig) -> Result<Self, MlError> {
        let representation = cfg.representation;
        let mut classes = Vec::new();
        for c in &cfg.classes {
            let mut examples = c.examples.clone();
            if let Some(p) = &c.examples_file {
                let text = std::fs::read_to_string(p)
                    .map_err(|err| MlError::Data(format!("{p}: {err}")))?;
                examples.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_string),
                );
            }
            let vectors = embed_all(e, representation, &examples, |_| {})?;
            classes.push((c.name.clone(), c.tier.clone(), unit_mean(&vectors)));
        }
        Ok(Self {
            representation,
            floor: cfg.floor,
            classes,
        })
    }

    pub fn classify_vector(&self, v: &[f32]) -> Option<DomainVerdict> {
        self.classes
            .iter()
            .map(|(name, tier, c)| (name, tier, dot(c, v)))
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(name, tier, sim)| DomainVerdict {
                domain: name.clone(),
                tier: tier.clone(),
                similarity: sim,
                floor: self.floor,
            })
    }

    pub fn classify(
        &self,
        e: &SentenceEmbedder,
        text: &str,
    ) -> Result<Option<DomainVerdict>, MlError> {
        let v = embed_one(e, self.representation, text)?;
        Ok(self.classify_vector(&v))
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit_mean(vectors: &[Vec<f32>]) -> Vec<f32> {
    let d = vectors.first().map(Vec::len).unwrap_or(0);
    let mut m = vec![0f32; d];
    for v in vectors {
        for (a, b) in m.iter_mut().zip(v) {
            *a += b;
        }
    }
    let n = m.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        m.iter_mut().for_each(|x| *x /= n);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_centroid_with_similarity() {
        let c = DomainClassifier {
            representation: Representation::Static,
            floor: 0.5,
            classes: vec![
                (
                    "a".into(),
                    "ta".into(),
                    unit_mean(&[vec![1.0, 0.0], vec![0.8, 0.2]]),
                ),
                ("b".into(), "tb".into(), vec![0.0, 1.0]),
            ],
        };
        let v = c.classify_vector(&[0.0, 1.0]).unwrap();
        assert_eq!((v.domain.as_str(), v.tier.as_str()), ("b", "tb"));
        assert!((v.similarity - 1.0).abs() < 1e-6);
        let v = c.classify_vector(&[1.0, 0.0]).unwrap();
        assert_eq!(v.domain, "a");
    }
}
