//! Sampling parameters and the llama.cpp sampler chain built from them.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use crate::EngineError;

/// How to pick the next token. `temperature == 0` means greedy (deterministic).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: i32,
    pub seed: Option<u64>,
    /// GBNF grammar the output must match (root rule `root`).
    pub grammar: Option<String>,
    /// Makes the grammar lazy: free text until one of these regular expressions matches the
    /// output so far, then the grammar from the match on (llama.cpp's lazy grammar; a tool
    /// call's opening tag under `tool_choice: auto`). Empty: the grammar holds from the start.
    pub grammar_triggers: Vec<String>,
    /// OpenAI-style penalties over the generated tokens (-2..2, 0 = off).
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// Additive logit bias per token id (-100..100).
    pub logit_bias: Vec<(i32, f32)>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            grammar: None,
            grammar_triggers: Vec::new(),
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: Vec::new(),
        }
    }
}

impl SamplingParams {
    pub fn validate(&self) -> Result<(), EngineError> {
        if !(0.0..=2.0).contains(&self.temperature) || self.temperature.is_nan() {
            return Err(EngineError::InvalidParam(format!(
                "temperature must be between 0 and 2, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::InvalidParam(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        if self.top_k < 0 {
            return Err(EngineError::InvalidParam(format!(
                "top_k must be >= 0, got {}",
                self.top_k
            )));
        }
        for (name, v) in [
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ] {
            if !(-2.0..=2.0).contains(&v) {
                return Err(EngineError::InvalidParam(format!(
                    "{name} must be between -2 and 2, got {v}"
                )));
            }
        }
        if let Some((t, b)) = self
            .logit_bias
            .iter()
            .find(|(_, b)| !(-100.0..=100.0).contains(b))
        {
            return Err(EngineError::InvalidParam(format!(
                "logit_bias for token {t} must be between -100 and 100, got {b}"
            )));
        }
        Ok(())
    }

    /// Builds the sampler chain. Called on the request path so a bad grammar is a 400 there,
    /// not a failure inside the batch loop.
    pub(crate) fn build(&self, model: &LlamaModel) -> Result<LlamaSampler, EngineError> {
        self.validate()?;
        let mut chain = Vec::with_capacity(8);
        let n_vocab = model.n_vocab();
        if !self.logit_bias.is_empty() {
            if let Some((t, _)) = self
                .logit_bias
                .iter()
                .find(|(t, _)| *t < 0 || *t >= n_vocab)
            {
                return Err(EngineError::InvalidParam(format!(
                    "logit_bias names token {t}, outside this model's vocabulary of {n_vocab}"
                )));
            }
            let biases: Vec<LlamaLogitBias> = self
                .logit_bias
                .iter()
                .map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t), b))
                .collect();
            chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        if self.frequency_penalty != 0.0 || self.presence_penalty != 0.0 {
            // Over the last 4096 generated tokens (llama.cpp keeps a ring buffer of that size).
            chain.push(LlamaSampler::penalties(
                n_vocab,
                4096,
                1.0,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if let Some(g) = &self.grammar {
            let sampler = if self.grammar_triggers.is_empty() {
                LlamaSampler::grammar(model, g, "root")
            } else {
                LlamaSampler::grammar_lazy_patterns(model, g, "root", &self.grammar_triggers, &[])
            }
            .map_err(|e| EngineError::Grammar(format!("{e}")))?;
            chain.push(sampler);
        }
        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            let seed = self
                .seed
                .map(|s| (s ^ (s >> 32)) as u32)
                .unwrap_or_else(rand_seed);
            chain.push(LlamaSampler::dist(seed));
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}

fn rand_seed() -> u32 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// A sampler chain moved from the request thread into the batch loop thread. llama.cpp
/// sampler objects are plain heap state used by one thread at a time.
pub(crate) struct SendSampler(pub LlamaSampler);
// SAFETY: the sampler is created on the request path and then only ever used by the single
// scheduler thread; llama.cpp samplers hold no thread-affine state.
unsafe impl Send for SendSampler {}
