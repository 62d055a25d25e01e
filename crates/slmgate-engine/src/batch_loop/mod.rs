//! The continuous-batching loop. One OS thread owns the llama.cpp context; each step runs
//! [`BatchLoop::step`]:
//!
//! 1. **admit** queued requests into free slots, reusing the longest cached prompt prefix;
//! 2. **cancel** sequences whose client went away;
//! 3. **build** one batch from every decoding slot's next token plus prompt chunks of slots
//!    still prefilling;
//! 4. **decode** it once;
//! 5. **sample**, detokenize and stream each slot's next token.
//!
//! llama.cpp applies LoRA adapters per context: steps 3–5 run once per adapter in use
//! (sequences on the base model are one more group), the context set to that adapter before
//! its decode. With one group (the usual case) a step is one decode, as before.

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

mod adapters;
mod output;

use adapters::LoopAdapters;
use output::{emit, logprob, next_draft_len};

use crate::adapter::{self, AdapterTable};
use crate::backend::backend;
use crate::detok::Detokenizer;
use crate::queue::{Job, Msg};
use crate::request::GenerationEvent;
use crate::settings::{EngineSettings, KvType};
use crate::slot::{Active, Slot};
use crate::speculate::draft::{DraftJob, Drafter};
use crate::speculate::{lookup, SpecMode};
use crate::stats::EngineStats;
use crate::EngineError;

/// Creates the context, reports readiness, and serves the queue until every `LocalEngine`
/// handle is dropped.
pub(crate) fn run(
    model: Arc<LlamaModel>,
    draft_model: Option<Arc<LlamaModel>>,
    settings: EngineSettings,
    rx: mpsc::UnboundedReceiver<Msg>,
    stats: Arc<EngineStats>,
    adapters: Arc<AdapterTable>,
    ready: std::sync::mpsc::Sender<Result<(), EngineError>>,
) {
    let mut ctx = match context(&model, &settings) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let drafter = match draft_model.as_deref() {
        Some(d) => match Drafter::new(d, &settings, model.n_vocab()) {
            Ok(dr) => Some(dr),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        },
        None => None,
    };
    let rollback = can_roll_back(&model, &mut ctx);
    if !rollback {
        tracing::info!(model = %settings.path.display(), "this model's cache cannot drop a suffix: no speculative decoding");
    }
    let (grave_tx, grave_rx) = std::sync::mpsc::channel();
    for spec in &settings.adapters {
        match adapter::load(&model, &adapters, spec, &grave_tx) {
            Ok(a) => adapters.insert(a),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    let mut lp = BatchLoop::new(&model, ctx, drafter, &settings, rx, stats.clone());
    lp.speculate = rollback;
    lp.adapters = Some(LoopAdapters {
        table: adapters,
        grave_tx,
        grave_rx,
        current: None,
    });
    while lp.step() {}
    stats.stopped.store(true, Ordering::Relaxed);
}

/// Whether the context can remove the tail of a sequence (attention caches can; recurrent
/// state cannot), which rolling back rejected drafts needs. Decodes two tokens into sequence
/// 0, removes the second, and clears the cache.
fn can_roll_back(model: &LlamaModel, ctx: &mut LlamaContext<'_>) -> bool {
    let tok = model.vocab().bos();
    let tok = if tok.0 < 0 { LlamaToken(0) } else { tok };
    let mut batch = LlamaBatch::new(2, 1);
    let ok = batch.add(tok, 0, &[0], false).is_ok()
        && batch.add(tok, 1, &[0], true).is_ok()
        && ctx.decode(&mut batch).is_ok()
        && ctx.clear_kv_cache_seq(Some(0), Some(1), None).ok() == Some(true);
    ctx.clear_kv_cache();
    ok
}

/// One context of `context × parallel` tokens, `parallel` sequences.
fn context<'m>(
    model: &'m LlamaModel,
    settings: &EngineSettings,
) -> Result<LlamaContext<'m>, EngineError> {
    let fail = |reason: String| EngineError::Load {
        path: settings.path.display().to_string(),
        reason,
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
    model
        .new_context(backend()?, params)
        .map_err(|e| fail(format!("cannot create a context of {n_ctx} tokens: {e}")))
}

struct BatchLoop<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// The draft model's context, when the model has one.
    drafter: Option<Drafter<'m>>,
    /// Whether drafts can be rolled back (see `can_roll_back`); no speculation otherwise.
    speculate: bool,
    batch: LlamaBatch<'static>,
    slots: Vec<Slot>,
    rx: mpsc::UnboundedReceiver<Msg>,
    waiting: VecDeque<Job>,
    stats: Arc<EngineStats>,
    /// Steps so far (slots remember when they were last used).
    clock: u64,
    /// Most tokens per decode step.
    batch_size: usize,
    /// Context of one sequence.
    slot_ctx: usize,
    n_vocab: usize,
    /// This step's batch: (slot index, tokens added).
    in_batch: Vec<(usize, usize)>,
    /// LoRA adapters: the engine's table, freeing, and the one the context is set to.
    adapters: Option<LoopAdapters>,
}

impl<'m> BatchLoop<'m> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        drafter: Option<Drafter<'m>>,
        settings: &EngineSettings,
        rx: mpsc::UnboundedReceiver<Msg>,
        stats: Arc<EngineStats>,
    ) -> Self {
        Self {
            model,
            ctx,
            drafter,
            speculate: true,
            batch: LlamaBatch::new(settings.batch as usize, 1),
            slots: (0..settings.parallel as i32).map(Slot::new).collect(),
            rx,
            waiting: VecDeque::new(),
            stats,
            clock: 0,
            batch_size: settings.batch as usize,
            slot_ctx: settings.context as usize,
            n_vocab: model.n_vocab() as usize,
            in_batch: Vec::new(),
            adapters: None,
        }
    }

    /// One step of the loop; false once every engine handle is gone.
    fn step(&mut self) -> bool {
        self.clock += 1;
        if !self.admit() {
            return false;
        }
        self.cancel_abandoned();
        self.propose();
        for group in self.groups() {
            let id = group.as_ref().map_or(0, |a| a.id());
            self.use_adapter(group);
            if self.build(id) {
                match self.decode() {
                    Ok(()) => self.sample(),
                    Err(e) => self.fail_batch(&e),
                }
            }
        }
        self.release_adapters();
        true
    }

    /// Blocks while idle; takes what is queued, drops jobs whose client left, fills free
    /// slots. False when the queue is closed and nothing is left to serve.
    fn admit(&mut self) -> bool {
        if self.waiting.is_empty() && self.slots.iter().all(Slot::is_free) {
            match self.rx.blocking_recv() {
                Some(msg) => self.receive(msg),
                None => return false,
            }
        }
        while let Ok(msg) = self.rx.try_recv() {
            self.receive(msg);
        }
        // Cancelled while waiting: the dropped stream already released the queue place.
        self.waiting.retain(|job| !job.place.is_cancelled());
        while self.slots.iter().any(Slot::is_free) {
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            self.place(job);
        }
        true
    }

    fn receive(&mut self, msg: Msg) {
        match msg {
            Msg::Job(job) => self.waiting.push_back(job),
            Msg::LoadAdapter { spec, reply } => {
                let _ = reply.send(self.load_adapter(&spec));
            }
        }
    }

    /// Puts a job into the free slot whose cache shares the longest prefix with its prompt
    /// (least recently used on ties) and trims that cache to the shared prefix.
    fn place(&mut self, job: Job) {
        if !job.place.admit() {
            return; // the client left between the prune and now
        }
        self.stats.queued.fetch_sub(1, Ordering::AcqRel);
        let prompt = &job.req.tokens;
        let adapter = job.req.adapter_id();
        let Some(best) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_free())
            .max_by_key(|(_, s)| (s.reusable_prefix(prompt, adapter), u64::MAX - s.last_used))
            .map(|(i, _)| i)
        else {
            return;
        };
        let slot = &mut self.slots[best];
        let mut keep = slot.reusable_prefix(prompt, adapter);
        if self
            .ctx
            .clear_kv_cache_seq(Some(slot.seq as u32), Some(keep as u32), None)
            .ok()
            != Some(true)
        {
            // This cache cannot drop a suffix (e.g. a recurrent model): start afresh.
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
            keep = 0;
        }
        slot.kv.truncate(keep);
        slot.kv_adapter = adapter;
        slot.last_used = self.clock;
        self.stats
            .cached_tokens
            .fetch_add(keep as u64, Ordering::Relaxed);
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(
            seq = slot.seq,
            reused = keep,
            waited_ms = job.enqueued.elapsed().as_millis() as u64,
            "admitted"
        );
        let detok = Detokenizer::new(job.req.stops.clone());
        slot.active = Some(Active {
            job,
            prompt_done: keep,
            cached: keep,
            pending: None,
            generated: 0,
            detok,
            logits_at: None,
            draft: Vec::new(),
            draft_len: usize::MAX,
        });
    }

    /// Frees the slots of requests whose client has gone.
    fn cancel_abandoned(&mut self) {
        for slot in self.slots.iter_mut() {
            if slot
                .active
                .as_ref()
                .is_some_and(|a| a.job.events.is_closed())
            {
                slot.active = None;
                self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                self.stats.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Drafts the next tokens of every decoding slot that speculates: prompt lookup inline,
    /// a draft model in one batched pass over all its sequences.
    fn propose(&mut self) {
        if !self.speculate {
            return;
        }
        let mut at: Vec<usize> = Vec::new();
        let mut jobs: Vec<DraftJob> = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let kv = &slot.kv;
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            a.draft.clear();
            let Some(pending) = a.pending else {
                continue;
            };
            // All drafts may be accepted, and a token of the target's comes with them: stay
            // within max_tokens and the context.
            let room = a
                .job
                .req
                .max_tokens
                .saturating_sub(a.generated + 1)
                .min(self.slot_ctx.saturating_sub(kv.len() + 2));
            // Drafts this long were accepted lately (see `Active::draft_len`).
            let room = room.min(a.draft_len);
            if room == 0 {
                continue;
            }
            let mut seq = Vec::with_capacity(kv.len() + 1);
            match a.job.req.spec {
                SpecMode::Off => {}
                SpecMode::Lookup(s) => {
                    seq.extend_from_slice(kv);
                    seq.push(pending);
                    a.draft = lookup::draft(&seq, &s, room);
                }
                SpecMode::Draft {
                    n_max,
                    n_min,
                    p_min,
                } => {
                    if self.drafter.is_some() {
                        seq.extend_from_slice(kv);
                        seq.push(pending);
                        at.push(i);
                        jobs.push(DraftJob {
                            seq: slot.seq,
                            history: seq,
                            n_max: n_max.min(room),
                            n_min: n_min.min(room),
                            p_min,
                            out: Vec::new(),
                        });
                    }
                }
            }
        }
        let Some(drafter) = self.drafter.as_mut() else {
            return;
        };
        if jobs.is_empty() {
            return;
        }
        drafter.propose(&mut jobs);
        for (i, job) in at.into_iter().zip(jobs) {
            if let Some(a) = self.slots[i].active.as_mut() {
                a.draft = job.out;
            }
        }
    }

    /// Fills the batch with the sequences running under adapter `group` (0: none): every
    /// decoding slot's pending token (and its drafts, with logits at each) first, then prompt
    /// chunks while the budget lasts. False when there is nothing to decode.
    fn build(&mut self, group: u64) -> bool {
        self.batch.clear();
        self.in_batch.clear();
        for a in self.slots.iter_mut().filter_map(|s| s.active.as_mut()) {
            // Only this group's slots are sampled after this decode.
            a.logits_at = None;
        }
        let mut budget = self.batch_size;
        let mut decoding = self
            .slots
            .iter()
            .filter_map(|s| s.active.as_ref())
            .filter(|a| a.pending.is_some() && a.adapter_id() == group)
            .count();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let pos = slot.n_past() as i32;
            let seq = slot.seq;
            let Some(a) = slot.active.as_mut().filter(|a| a.adapter_id() == group) else {
                continue;
            };
            let Some(tok) = a.pending else {
                continue;
            };
            decoding -= 1;
            if self.batch.add(tok, pos, &[seq], true).is_err() {
                a.draft.clear();
                continue;
            }
            a.logits_at = Some(self.batch.n_tokens() - 1);
            budget -= 1;
            // Drafts never take the place of another slot's pending token.
            let room = budget.saturating_sub(decoding);
            a.draft.truncate(room);
            let mut added = 0;
            for (k, &d) in a.draft.iter().enumerate() {
                if self.batch.add(d, pos + 1 + k as i32, &[seq], true).is_err() {
                    break;
                }
                added += 1;
            }
            a.draft.truncate(added);
            budget -= added;
            self.in_batch.push((i, 1 + added));
        }
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if budget == 0 {
                break;
            }
            let start = slot.n_past();
            let seq = slot.seq;
            let Some(a) = slot.active.as_mut().filter(|a| a.adapter_id() == group) else {
                continue;
            };
            if a.pending.is_some() || a.prefill_left() == 0 {
                continue;
            }
            let remaining = a.prefill_left();
            let n = remaining.min(budget);
            let completes = n == remaining;
            let mut added = 0;
            for k in 0..n {
                let tok = a.prompt()[a.prompt_done + k];
                let last = completes && k == n - 1;
                if self
                    .batch
                    .add(tok, (start + k) as i32, &[seq], last)
                    .is_err()
                {
                    break;
                }
                added += 1;
                if last {
                    a.logits_at = Some(self.batch.n_tokens() - 1);
                }
            }
            budget -= added;
            self.in_batch.push((i, added));
        }
        self.batch.n_tokens() > 0
    }

    /// Decodes the batch and records what entered each slot's cache.
    fn decode(&mut self) -> Result<(), String> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| e.to_string())?;
        for &(i, added) in &self.in_batch {
            let slot = &mut self.slots[i];
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            if let Some(tok) = a.pending.take() {
                slot.kv.push(tok);
            } else {
                slot.kv
                    .extend_from_slice(&a.job.req.tokens[a.prompt_done..a.prompt_done + added]);
                a.prompt_done += added;
                self.stats
                    .prompt_tokens
                    .fetch_add(added as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// A failed decode ends every request in the batch with the error; their caches are
    /// cleared.
    fn fail_batch(&mut self, e: &str) {
        tracing::error!(error = %e, "llama.cpp decode failed");
        for &(i, _) in &self.in_batch {
            let slot = &mut self.slots[i];
            if let Some(a) = slot.active.take() {
                let _ = a
                    .job
                    .events
                    .send(GenerationEvent::Error(EngineError::Decode(e.to_string())));
                self.stats.active.fetch_sub(1, Ordering::Relaxed);
            }
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
            slot.kv.clear();
        }
    }

    /// Samples every slot that has fresh logits, streams the token, and frees finished slots.
    /// A slot with drafts samples position after position while the sampler picks the drafted
    /// token, keeps those (their KV entries are valid), and ends on the first token of its
    /// own; the rejected drafts leave the cache.
    fn sample(&mut self) {
        for slot in self.slots.iter_mut() {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            let Some(first) = a.logits_at else { continue };
            let drafted = std::mem::take(&mut a.draft);
            let mut accepted = 0;
            let finished = loop {
                let idx = first + accepted as i32;
                let tok = a.job.req.sampler.0.sample(&self.ctx, idx);
                a.generated += 1;
                self.stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
                // Sampling only reads the logits, so they are still the raw distribution here.
                let lp = a.job.req.logprobs.then(|| {
                    logprob(
                        &self.ctx,
                        self.model,
                        idx,
                        tok,
                        self.n_vocab,
                        a.job.req.top_logprobs,
                    )
                });
                if let Some(reason) = emit(
                    self.model,
                    a,
                    tok,
                    lp.flatten(),
                    slot.kv.len(),
                    self.slot_ctx,
                ) {
                    break Some(reason);
                }
                if drafted.get(accepted) == Some(&tok) {
                    slot.kv.push(tok);
                    accepted += 1;
                    continue;
                }
                a.pending = Some(tok);
                break None;
            };
            if !drafted.is_empty() {
                a.draft_len = next_draft_len(drafted.len(), accepted);
                self.stats.spec_steps.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .spec_drafted
                    .fetch_add(drafted.len() as u64, Ordering::Relaxed);
                self.stats
                    .spec_accepted
                    .fetch_add(accepted as u64, Ordering::Relaxed);
                let kept = slot.kv.len() as u32;
                if self
                    .ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), Some(kept), None)
                    .ok()
                    != Some(true)
                {
                    // A cache that cannot drop a suffix cannot speculate; `load` refuses
                    // speculation for such models, so this is a bug if it happens.
                    tracing::error!(seq = slot.seq, "cannot roll back rejected drafts");
                    let _ = a
                        .job
                        .events
                        .send(GenerationEvent::Error(EngineError::Decode(
                            "speculative decoding could not roll back its KV cache".into(),
                        )));
                    let _ = self
                        .ctx
                        .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                    slot.kv.clear();
                    slot.active = None;
                    self.stats.active.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
            }
            if let Some(reason) = finished {
                let _ = a.job.events.send(GenerationEvent::Done {
                    finish_reason: reason,
                    usage: a.usage(),
                });
                slot.active = None;
                slot.last_used = self.clock;
                self.stats.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
