//! Draft-model proposals. The draft model has its own context with one sequence per slot of
//! the target, mirroring the target's sequence: each step it catches up with what the target
//! accepted (trimming what it rejected), then drafts greedily, one batched decode per drafted
//! position over every sequence still drafting, until `n_max` tokens or a token whose
//! probability is below `p_min`.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::backend::backend;
use crate::logprobs::log_sum_exp;
use crate::settings::EngineSettings;
use crate::EngineError;

/// One sequence to draft for this step.
pub(crate) struct DraftJob {
    pub seq: i32,
    /// The target's sequence so far, its pending token last.
    pub history: Vec<LlamaToken>,
    pub n_max: usize,
    pub n_min: usize,
    pub p_min: f32,
    /// The proposal.
    pub out: Vec<LlamaToken>,
}

pub(crate) struct Drafter<'d> {
    ctx: LlamaContext<'d>,
    batch: LlamaBatch<'static>,
    batch_size: usize,
    /// Tokens in each sequence's draft KV cache, by seq id.
    kv: Vec<Vec<LlamaToken>>,
    /// Drafts must be token ids of the target.
    target_vocab: i32,
}

impl<'d> Drafter<'d> {
    pub fn new(
        model: &'d LlamaModel,
        settings: &EngineSettings,
        target_vocab: i32,
    ) -> Result<Self, EngineError> {
        let n_ctx = settings.context.saturating_mul(settings.parallel);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(settings.batch)
            .with_n_ubatch(settings.batch.min(512))
            .with_n_seq_max(settings.parallel)
            .with_n_threads(settings.threads)
            .with_n_threads_batch(settings.threads_batch);
        let ctx = model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Load {
                path: settings.path.display().to_string(),
                reason: format!("cannot create the draft model's context: {e}"),
            })?;
        Ok(Self {
            ctx,
            batch: LlamaBatch::new(settings.batch as usize, 1),
            batch_size: settings.batch as usize,
            kv: vec![Vec::new(); settings.parallel as usize],
            target_vocab,
        })
    }

    /// Fills every job's `out`. On a decode failure the draft caches are cleared and the jobs
    /// keep what they drafted so far (possibly nothing): speculation is an optimisation, never
    /// a reason to fail a request.
    pub fn propose(&mut self, jobs: &mut [DraftJob]) {
        if let Err(e) = self.run(jobs) {
            tracing::warn!(error = %e, "draft model decode failed; continuing without drafts");
            for job in jobs.iter() {
                self.forget(job.seq);
            }
        }
    }

    fn forget(&mut self, seq: i32) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        if let Some(kv) = self.kv.get_mut(seq as usize) {
            kv.clear();
        }
    }

    fn run(&mut self, jobs: &mut [DraftJob]) -> Result<(), String> {
        // Each job's next candidate (token, probability), once its history is decoded.
        let mut next: Vec<Option<(LlamaToken, f32)>> = vec![None; jobs.len()];
        let mut todo: Vec<usize> = Vec::with_capacity(jobs.len());
        for (j, job) in jobs.iter().enumerate() {
            if job.seq as usize >= self.kv.len() || job.history.is_empty() {
                continue;
            }
            let kv = &self.kv[job.seq as usize];
            let common = kv
                .iter()
                .zip(&job.history)
                .take_while(|(a, b)| a == b)
                .count()
                // The last history token is decoded again for fresh logits.
                .min(job.history.len() - 1);
            self.trim(job.seq, common);
            todo.push(j);
        }
        // Catch up, in chunks that fit the batch; a job's logits are read in the round that
        // decodes its last history token.
        while !todo.is_empty() {
            self.batch.clear();
            let mut budget = self.batch_size;
            let mut round: Vec<(usize, usize, Option<i32>)> = Vec::new();
            for &j in &todo {
                if budget == 0 {
                    break;
                }
                let job = &jobs[j];
                let kv = &self.kv[job.seq as usize];
                let left = job.history.len() - kv.len();
                let n = left.min(budget);
                let mut at = None;
                for k in 0..n {
                    let pos = kv.len() + k;
                    let last = k + 1 == left;
                    self.batch
                        .add(job.history[pos], pos as i32, &[job.seq], last)
                        .map_err(|e| e.to_string())?;
                    if last {
                        at = Some(self.batch.n_tokens() - 1);
                    }
                }
                budget -= n;
                round.push((j, n, at));
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| e.to_string())?;
            for &(j, n, at) in &round {
                let job = &jobs[j];
                let kv = &mut self.kv[job.seq as usize];
                let from = kv.len();
                kv.extend_from_slice(&job.history[from..from + n]);
                if let Some(i) = at {
                    next[j] = Some(greedy(self.ctx.get_logits_ith(i)));
                }
            }
            todo.retain(|&j| next[j].is_none());
        }
        // Draft: one decode per position over the jobs still drafting.
        loop {
            self.batch.clear();
            let mut round: Vec<usize> = Vec::new();
            for (j, job) in jobs.iter_mut().enumerate() {
                let Some((tok, p)) = next[j].take() else {
                    continue;
                };
                let confident = p >= job.p_min || job.out.len() < job.n_min;
                if !confident || tok.0 >= self.target_vocab {
                    continue;
                }
                job.out.push(tok);
                if job.out.len() >= job.n_max {
                    continue;
                }
                let pos = self.kv[job.seq as usize].len();
                self.batch
                    .add(tok, pos as i32, &[job.seq], true)
                    .map_err(|e| e.to_string())?;
                round.push(j);
                if self.batch.n_tokens() as usize >= self.batch_size {
                    break;
                }
            }
            if round.is_empty() {
                return Ok(());
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| e.to_string())?;
            for (i, &j) in round.iter().enumerate() {
                let job = &jobs[j];
                if let Some(&tok) = job.out.last() {
                    self.kv[job.seq as usize].push(tok);
                    next[j] = Some(greedy(self.ctx.get_logits_ith(i as i32)));
                }
            }
        }
    }

    /// Keeps the first `keep` tokens of a sequence's draft cache.
    fn trim(&mut self, seq: i32, keep: usize) {
        let kv = &mut self.kv[seq as usize];
        if kv.len() == keep {
            return;
        }
        let ok = self
            .ctx
            .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None)
            .ok()
            == Some(true);
        if ok {
            kv.truncate(keep);
        } else {
            self.forget(seq);
        }
    }
}

/// The most likely token and its probability.
fn greedy(logits: &[f32]) -> (LlamaToken, f32) {
    let (best, max) = logits
        .iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |acc, (i, &l)| {
                if l > acc.1 {
                    (i, l)
                } else {
                    acc
                }
            },
        );
    let p = if logits.is_empty() {
        0.0
    } else {
        (max - log_sum_exp(logits)).exp()
    };
    (LlamaToken(best as i32), p)
}
