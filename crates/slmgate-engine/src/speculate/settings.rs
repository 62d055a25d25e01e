//! Speculation settings: per model (`EngineSettings::speculation`) and per request
//! (`GenerationRequest::speculation`), resolved into one [`SpecMode`] when a request is
//! prepared.

use std::path::PathBuf;

use crate::EngineError;

/// What a model speculates with by default. With both set, requests use the draft model
/// unless they ask for lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Speculation {
    /// Prompt lookup for every request.
    pub lookup: Option<LookupSettings>,
    /// A draft model.
    pub draft: Option<DraftSettings>,
}

/// Prompt-lookup (n-gram) speculation: the last `ngram_max` … `ngram_min` tokens are looked up
/// in the sequence so far (prompt and output), most recent earlier occurrence first, and the
/// tokens that followed it are the draft.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookupSettings {
    /// Longest n-gram matched (tried first).
    pub ngram_max: usize,
    /// Shortest n-gram matched.
    pub ngram_min: usize,
    /// Most tokens drafted per step.
    pub n_draft: usize,
}

impl Default for LookupSettings {
    fn default() -> Self {
        Self {
            ngram_max: 3,
            ngram_min: 2,
            n_draft: 8,
        }
    }
}

impl LookupSettings {
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.ngram_min == 0 || self.ngram_min > self.ngram_max || self.ngram_max > 16 {
            return Err(EngineError::InvalidParam(format!(
                "lookup n-gram sizes must satisfy 1 <= ngram_min <= ngram_max <= 16, got {}..{}",
                self.ngram_min, self.ngram_max
            )));
        }
        if !(1..=64).contains(&self.n_draft) {
            return Err(EngineError::InvalidParam(format!(
                "n_draft must be between 1 and 64, got {}",
                self.n_draft
            )));
        }
        Ok(())
    }
}

/// Draft-model speculation (llama.cpp's `--draft-max`, `--draft-min`, `--draft-p-min`).
#[derive(Debug, Clone, PartialEq)]
pub struct DraftSettings {
    /// The draft model's GGUF file.
    pub path: PathBuf,
    /// Most tokens drafted per step.
    pub n_max: usize,
    /// Tokens drafted per step even below `p_min`.
    pub n_min: usize,
    /// Drafting stops at a token whose draft probability is below this.
    pub p_min: f32,
}

impl DraftSettings {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            n_max: 16,
            n_min: 0,
            p_min: 0.75,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=64).contains(&self.n_max) || self.n_min > self.n_max {
            return Err(format!(
                "draft n_max must be 1..=64 and n_min <= n_max, got n_max {} and n_min {}",
                self.n_max, self.n_min
            ));
        }
        if !(0.0..=1.0).contains(&self.p_min) {
            return Err(format!("draft p_min must be in [0, 1], got {}", self.p_min));
        }
        Ok(())
    }
}

/// What one request asks for; `None` on the request means the model's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpecChoice {
    Off,
    Lookup(LookupSettings),
    Draft,
}

/// What the batch loop does for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SpecMode {
    Off,
    Lookup(LookupSettings),
    Draft {
        n_max: usize,
        n_min: usize,
        p_min: f32,
    },
}

impl SpecMode {
    /// The request's choice over the model's default.
    pub fn resolve(choice: Option<SpecChoice>, model: &Speculation) -> Result<Self, EngineError> {
        let draft = |d: &DraftSettings| SpecMode::Draft {
            n_max: d.n_max,
            n_min: d.n_min,
            p_min: d.p_min,
        };
        Ok(match choice {
            Some(SpecChoice::Off) => SpecMode::Off,
            Some(SpecChoice::Lookup(l)) => {
                l.validate()?;
                SpecMode::Lookup(l)
            }
            Some(SpecChoice::Draft) => match &model.draft {
                Some(d) => draft(d),
                None => {
                    return Err(EngineError::InvalidParam(
                        "speculative type \"draft\" needs a draft model; this model has none (set `draft` in its config)".into(),
                    ))
                }
            },
            None => match (&model.draft, model.lookup) {
                (Some(d), _) => draft(d),
                (None, Some(l)) => SpecMode::Lookup(l),
                (None, None) => SpecMode::Off,
            },
        })
    }
}
