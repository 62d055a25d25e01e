//! The continuous-batching loop. One OS thread owns the llama.cpp context. Each step it
//! (1) admits queued requests into free slots, reusing the longest cached prompt prefix,
//! (2) drops requests whose client went away, (3) builds one batch from every decoding slot's
//! next token plus prompt chunks of slots still prefilling, (4) decodes once, and (5) samples,
//! detokenizes and streams each slot's next token.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::detok::{Detokenizer, Pushed};
use crate::engine::{
    backend, EngineSettings, EngineStats, FinishReason, GenerationEvent, KvType, Usage,
};
use crate::logprobs::{log_sum_exp, top_k, TokenLogprob, TopLogprob};
use crate::slot::{Active, Job, Slot};
use crate::EngineError;

/// The batch loop. Runs until every `LocalEngine` handle is dropped.
pub(crate) fn run(
    model: Arc<LlamaModel>,
    settings: EngineSettings,
    mut rx: mpsc::UnboundedReceiver<Job>,
    stats: Arc<EngineStats>,
    ready: std::sync::mpsc::Sender<Result<(), EngineError>>,
) {
    let fail = |reason: String| EngineError::Load {
        path: settings.path.display().to_string(),
        reason,
    };
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let n_ctx = settings.context.saturating_mul(settings.parallel);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(settings.batch)
        .with_n_ubatch(settings.batch.min(512))
        .with_n_seq_max(settings.parallel)
        .with_n_threads(settings.threads)
        .with_n_threads_batch(settings.threads_batch);
    let params = match settings.kv_cache_type {
        KvType::F16 => params,
        quant => {
            let t = if quant == KvType::Q8_0 {
                KvCacheType::Q8_0
            } else {
                KvCacheType::Q4_0
            };
            params
                .with_type_k(t)
                .with_type_v(t)
                .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED)
        }
    };
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(fail(format!(
                "cannot create a context of {n_ctx} tokens: {e}"
            ))));
            return;
        }
    };
    let _ = ready.send(Ok(()));

    let mut batch = LlamaBatch::new(settings.batch as usize, 1);
    let mut slots: Vec<Slot> = (0..settings.parallel as i32).map(Slot::new).collect();
    let mut clock: u64 = 0;
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let n_vocab = model.n_vocab() as usize;
    let slot_ctx = settings.context as usize;

    loop {
        clock += 1;
        // 1. Admit: block when idle; drop waiting jobs whose client left; fill free slots.
        if waiting.is_empty() && slots.iter().all(|s| s.active.is_none()) {
            match rx.blocking_recv() {
                Some(job) => waiting.push_back(job),
                None => break,
            }
        }
        while let Ok(job) = rx.try_recv() {
            waiting.push_back(job);
        }
        // Cancelled while waiting: the dropped stream already released the queue place.
        waiting.retain(|job| !job.place.is_cancelled());
        while slots.iter().any(|s| s.active.is_none()) {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            admit(&mut ctx, &mut slots, job, clock, &stats);
        }

        // 2. Cancel sequences whose client has gone.
        for slot in slots.iter_mut() {
            if slot
                .active
                .as_ref()
                .is_some_and(|a| a.job.events.is_closed())
            {
                slot.active = None;
                stats.cancelled.fetch_add(1, Ordering::Relaxed);
                stats.active.fetch_sub(1, Ordering::Relaxed);
            }
        }

        // 3. One batch: every decoding slot's pending token, then prompt chunks.
        batch.clear();
        let mut budget = settings.batch as usize;
        let mut in_batch: Vec<(usize, usize)> = Vec::new(); // (slot index, tokens added)
        for (i, slot) in slots.iter_mut().enumerate() {
            let pos = slot.n_past() as i32;
            let seq = slot.seq;
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            a.logits_at = None;
            if let Some(tok) = a.pending {
                if batch.add(tok, pos, &[seq], true).is_ok() {
                    a.logits_at = Some(batch.n_tokens() - 1);
                    budget -= 1;
                    in_batch.push((i, 1));
                }
            }
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            if budget == 0 {
                break;
            }
            let start = slot.n_past();
            let seq = slot.seq;
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            if a.pending.is_some() || a.prompt_done >= a.job.tokens.len() {
                continue;
            }
            let remaining = a.job.tokens.len() - a.prompt_done;
            let n = remaining.min(budget);
            let completes = n == remaining;
            let mut added = 0;
            for k in 0..n {
                let tok = a.job.tokens[a.prompt_done + k];
                let last = completes && k == n - 1;
                if batch.add(tok, (start + k) as i32, &[seq], last).is_err() {
                    break;
                }
                added += 1;
                if last {
                    a.logits_at = Some(batch.n_tokens() - 1);
                }
            }
            budget -= added;
            in_batch.push((i, added));
        }
        if batch.n_tokens() == 0 {
            continue;
        }

        // 4. Decode.
        if let Err(e) = ctx.decode(&mut batch) {
            tracing::error!(error = %e, "llama.cpp decode failed");
            for &(i, _) in &in_batch {
                let slot = &mut slots[i];
                if let Some(a) = slot.active.take() {
                    let _ = a
                        .job
                        .events
                        .send(GenerationEvent::Error(EngineError::Decode(e.to_string())));
                    stats.active.fetch_sub(1, Ordering::Relaxed);
                }
                let _ = ctx.clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                slot.kv.clear();
            }
            continue;
        }
        for &(i, added) in &in_batch {
            let slot = &mut slots[i];
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            if let Some(tok) = a.pending.take() {
                slot.kv.push(tok);
            } else {
                slot.kv
                    .extend_from_slice(&a.job.tokens[a.prompt_done..a.prompt_done + added]);
                a.prompt_done += added;
                stats
                    .prompt_tokens
                    .fetch_add(added as u64, Ordering::Relaxed);
            }
        }

        // 5. Sample, detokenize, stream.
        for slot in slots.iter_mut() {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            let Some(idx) = a.logits_at else { continue };
            let vocab = model.vocab();
            let tok = a.job.sampler.0.sample(&ctx, idx);
            a.generated += 1;
            stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
            let piece = |t: LlamaToken| vocab.token_to_piece(t, false, None);
            // Sampling only reads the logits, so they are still the raw distribution here.
            let lp = if a.job.logprobs {
                let logits = ctx.get_logits_ith(idx);
                (logits.len() == n_vocab).then(|| {
                    let lse = log_sum_exp(logits);
                    let bytes = piece(tok);
                    TokenLogprob {
                        token: String::from_utf8_lossy(&bytes).into_owned(),
                        logprob: logits
                            .get(tok.0 as usize)
                            .map(|l| l - lse)
                            .unwrap_or(f32::NEG_INFINITY),
                        bytes,
                        top_logprobs: top_k(logits, lse, a.job.top_logprobs)
                            .into_iter()
                            .map(|(id, logprob)| {
                                let bytes = piece(LlamaToken(id));
                                TopLogprob {
                                    token: String::from_utf8_lossy(&bytes).into_owned(),
                                    logprob,
                                    bytes,
                                }
                            })
                            .collect(),
                    }
                })
            } else {
                None
            };
            let usage = |a: &Active| Usage {
                prompt_tokens: a.job.tokens.len() as u32,
                completion_tokens: a.generated as u32,
                cached_tokens: a.cached as u32,
            };
            let mut finish = None;
            if vocab.is_eog(tok) && !a.job.ignore_eos {
                let rest = a.detok.finish();
                if !rest.is_empty() || lp.is_some() {
                    let _ = a.job.events.send(GenerationEvent::Token {
                        text: rest,
                        logprob: lp,
                    });
                }
                finish = Some(FinishReason::Stop);
            } else {
                match a.detok.push(&piece(tok)) {
                    Pushed::Text(text) => {
                        let _ = a
                            .job
                            .events
                            .send(GenerationEvent::Token { text, logprob: lp });
                    }
                    Pushed::Stop(text) => {
                        let _ = a
                            .job
                            .events
                            .send(GenerationEvent::Token { text, logprob: lp });
                        finish = Some(FinishReason::Stop);
                    }
                }
                if finish.is_none()
                    && (a.generated >= a.job.max_tokens || slot.kv.len() + 1 >= slot_ctx)
                {
                    let rest = a.detok.finish();
                    if !rest.is_empty() {
                        let _ = a.job.events.send(GenerationEvent::Token {
                            text: rest,
                            logprob: None,
                        });
                    }
                    finish = Some(FinishReason::Length);
                }
            }
            match finish {
                Some(reason) => {
                    let _ = a.job.events.send(GenerationEvent::Done {
                        finish_reason: reason,
                        usage: usage(a),
                    });
                    slot.active = None;
                    slot.last_used = clock;
                    stats.active.fetch_sub(1, Ordering::Relaxed);
                }
                None => a.pending = Some(tok),
            }
        }
    }
    stats.stopped.store(true, Ordering::Relaxed);
}

/// Puts a job into the free slot whose cache shares the longest prefix with its prompt
/// (least recently used on ties) and trims that cache to the shared prefix.
fn admit(
    ctx: &mut LlamaContext<'_>,
    slots: &mut [Slot],
    job: Job,
    clock: u64,
    stats: &EngineStats,
) {
    if !job.place.admit() {
        return; // the client left between the prune and now
    }
    stats.queued.fetch_sub(1, Ordering::AcqRel);
    let Some(best) = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.active.is_none())
        .max_by_key(|(_, s)| (s.reusable_prefix(&job.tokens), u64::MAX - s.last_used))
        .map(|(i, _)| i)
    else {
        return;
    };
    let slot = &mut slots[best];
    let mut keep = slot.reusable_prefix(&job.tokens);
    if ctx
        .clear_kv_cache_seq(Some(slot.seq as u32), Some(keep as u32), None)
        .ok()
        != Some(true)
    {
        // This cache cannot drop a suffix (e.g. a recurrent model): start the sequence afresh.
        let _ = ctx.clear_kv_cache_seq(Some(slot.seq as u32), None, None);
        keep = 0;
    }
    slot.kv.truncate(keep);
    slot.last_used = clock;
    stats
        .cached_tokens
        .fetch_add(keep as u64, Ordering::Relaxed);
    stats.active.fetch_add(1, Ordering::Relaxed);
    tracing::trace!(
        seq = slot.seq,
        reused = keep,
        waited_ms = job.enqueued.elapsed().as_millis() as u64,
        "admitted"
    );
    let detok = Detokenizer::new(job.stops.clone());
    slot.active = Some(Active {
        job,
        prompt_done: keep,
        cached: keep,
        pending: None,
        generated: 0,
        detok,
        logits_at: None,
    });
}
