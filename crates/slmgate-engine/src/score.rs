//! Teacher-forced scoring: how likely the local model finds a given answer to a prompt, token
//! by token. The cascade uses it to judge answers from a tier without logprobs (the local SLM
//! as verifier), and `slmgate cascade eval` to measure signals on labelled responses.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;

use crate::backend::backend;
use crate::engine::LocalEngine;
use crate::logprobs::log_sum_exp;
use crate::{ChatMessage, EngineError};

/// One answer token as the model saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenScore {
    /// Log-probability of the answer's token.
    pub logprob: f32,
    /// Log-probability of the model's own top choice at this position.
    pub top: f32,
    /// Log-probability of the runner-up.
    pub second: f32,
    /// Entropy of the full next-token distribution (nats).
    pub entropy: f32,
}

impl LocalEngine {
    /// Scores each `(messages, answer)` pair on a context of its own (not the serving slots).
    /// Answers are cut where prompt + answer would exceed `context` tokens.
    pub fn score_answers(
        &self,
        items: &[(Vec<ChatMessage>, String)],
        context: u32,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<TokenScore>>, EngineError> {
        let model = self.model();
        let settings = self.settings();
        let n_batch = 512u32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(1)
            .with_n_threads(settings.threads)
            .with_n_threads_batch(settings.threads_batch);
        let mut ctx = model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Decode(format!("scoring context: {e}")))?;
        let mut batch = LlamaBatch::new(n_batch as usize, 1);
        let mut out = Vec::with_capacity(items.len());
        for (i, (messages, answer)) in items.iter().enumerate() {
            let prompt = self.tokenize(&self.render(messages)?);
            let cont = model.vocab().tokenize(answer.as_bytes(), false, false);
            let room = (context as usize).saturating_sub(prompt.len() + 1);
            let cont = &cont[..cont.len().min(room)];
            if cont.is_empty() || prompt.is_empty() {
                out.push(Vec::new());
                progress(i + 1);
                continue;
            }
            let all: Vec<_> = prompt.iter().chain(cont).copied().collect();
            // Logits are needed where the next token is an answer token.
            let first = prompt.len() - 1;
            let last = all.len() - 2;
            let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
            let mut scores = Vec::with_capacity(cont.len());
            for start in (0..all.len() - 1).step_by(n_batch as usize) {
                let end = (start + n_batch as usize).min(all.len() - 1);
                batch.clear();
                for (pos, tok) in all.iter().enumerate().take(end).skip(start) {
                    let want = pos >= first && pos <= last;
                    batch
                        .add(*tok, pos as i32, &[0], want)
                        .map_err(|e| EngineError::Decode(e.to_string()))?;
                }
                ctx.decode(&mut batch)
                    .map_err(|e| EngineError::Decode(e.to_string()))?;
                for (k, pos) in (start..end).enumerate() {
                    if pos < first || pos > last {
                        continue;
                    }
                    let logits = ctx.get_logits_ith(k as i32);
                    let lse = log_sum_exp(logits);
                    let actual = all[pos + 1].0 as usize;
                    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
                    let mut entropy = 0.0f32;
                    for &l in logits {
                        if l > a {
                            b = a;
                            a = l;
                        } else if l > b {
                            b = l;
                        }
                        let lp = l - lse;
                        entropy -= lp.exp() * lp;
                    }
                    scores.push(TokenScore {
                        logprob: logits.get(actual).copied().unwrap_or(f32::NEG_INFINITY) - lse,
                        top: a - lse,
                        second: b - lse,
                        entropy,
                    });
                }
            }
            out.push(scores);
            progress(i + 1);
        }
        Ok(out)
    }
}
