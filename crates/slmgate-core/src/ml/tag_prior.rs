//! The learned per-tag prior of the ridge router: how much the strong model gains, on
//! average, for requests carrying each `key=value` tag, as a deviation from the overall mean
//! gain, shrunk towards 0 for rarely seen tags (empirical Bayes: [`SHRINK`] pseudo-requests at
//! the overall mean). A request's prior is the mean of its known tags' deviations (0 with
//! none). The router adds it to the score with a fixed weight of 1 and learns the rest — the
//! text, the length, the system prompt — on what the prior leaves unexplained, so a tag that
//! predicts the gain well is used at full strength however strongly the text is regularised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Pseudo-requests at the overall mean added to every tag.
pub const SHRINK: f64 = 10.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagPrior {
    /// Tag → its shrunk mean gain minus the overall mean gain.
    pub effects: BTreeMap<String, f32>,
}

impl TagPrior {
    /// Learns the prior from requests' tags and gains.
    pub fn fit<'a>(rows: impl Iterator<Item = (&'a [String], f64)> + Clone) -> Self {
        let (sum, n) = rows
            .clone()
            .fold((0.0, 0usize), |(s, n), (_, g)| (s + g, n + 1));
        let global = if n == 0 { 0.0 } else { sum / n as f64 };
        let mut by_tag: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (tags, g) in rows {
            for t in tags {
                let e = by_tag.entry(t.as_str()).or_default();
                e.0 += g;
                e.1 += 1.0;
            }
        }
        let effects = by_tag
            .into_iter()
            .map(|(t, (s, c))| {
                let shrunk = (s + SHRINK * global) / (c + SHRINK);
                (t.to_string(), (shrunk - global) as f32)
            })
            .collect();
        Self { effects }
    }

    /// A request's prior: the mean deviation of its tags that were seen in training.
    pub fn of(&self, tags: &[String]) -> f32 {
        let known: Vec<f32> = tags
            .iter()
            .filter_map(|t| self.effects.get(t).copied())
            .collect();
        if known.is_empty() {
            0.0
        } else {
            known.iter().sum::<f32>() / known.len() as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_that_gain_get_a_positive_prior_shrunk_by_their_rarity() {
        let math = vec!["task=math".to_string()];
        let chat = vec!["task=chat".to_string()];
        let rare = vec!["task=rare".to_string()];
        let mut rows: Vec<(&[String], f64)> = Vec::new();
        for _ in 0..50 {
            rows.push((&math, 1.0));
            rows.push((&chat, 0.0));
        }
        rows.push((&rare, 1.0));
        let p = TagPrior::fit(rows.iter().copied());
        let global = 51.0 / 101.0;
        // (50 + 10·g) / 60 − g
        let want_math = (50.0 + SHRINK * global) / 60.0 - global;
        assert!((p.of(&math) as f64 - want_math).abs() < 1e-5);
        assert!(p.of(&chat) < -0.4);
        // One row: pulled most of the way back to the mean.
        assert!(p.of(&rare) > 0.0 && (p.of(&rare) as f64) < 0.1 * (1.0 - global) + 1e-6);
        assert_eq!(p.of(&["task=unseen".to_string()]), 0.0);
        assert_eq!(p.of(&[]), 0.0);
    }
}
