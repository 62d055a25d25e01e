//! Speculative decoding of a local model: `[models.x] draft = "smollm2"` (a local model with
//! the same vocabulary drafts, llama.cpp's `--draft-max/--draft-min/--draft-p-min`), and
//! `lookup = { ngram_max, ngram_min, n_draft }` (prompt-lookup drafts for every request).

use serde::Deserialize;

/// Prompt lookup: the last `ngram_max` … `ngram_min` tokens are looked up earlier in the
/// prompt and output, and what followed them is drafted.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    #[serde(default = "ngram_max")]
    pub ngram_max: usize,
    #[serde(default = "ngram_min")]
    pub ngram_min: usize,
    #[serde(default = "n_draft")]
    pub n_draft: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            ngram_max: ngram_max(),
            ngram_min: ngram_min(),
            n_draft: n_draft(),
        }
    }
}

impl LookupConfig {
    pub fn engine(&self) -> slmgate_engine::LookupSettings {
        slmgate_engine::LookupSettings {
            ngram_max: self.ngram_max,
            ngram_min: self.ngram_min,
            n_draft: self.n_draft,
        }
    }

    /// `Err((field, message))` for values the engine would refuse.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        self.engine()
            .validate()
            .map_err(|e| ("lookup", e.to_string()))
    }
}

fn ngram_max() -> usize {
    3
}
fn ngram_min() -> usize {
    2
}
fn n_draft() -> usize {
    8
}
pub(crate) fn draft_max() -> usize {
    16
}
pub(crate) fn draft_p_min() -> f32 {
    0.75
}
