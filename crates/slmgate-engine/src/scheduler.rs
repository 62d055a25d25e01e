//! The local engine: model loading, request preparation and the continuous-batching loop.
//!
//! One OS thread owns the llama.cpp context. Each step it (1) admits queued requests into free
//! slots, reusing the longest cached prompt prefix, (2) drops slots whose client went away,
//! (3) builds one batch from every decoding slot's next token plus prompt chunks of slots
//! still prefilling, (4) decodes once, and (5) samples, detokenizes and streams each slot's
//! next token. Requests wait in a bounded queue; when it is full, submission fails at once.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::detok::{Detokenizer, Pushed};
use crate::logprobs::{log_sum_exp, top_k, TokenLogprob, TopLogprob};
use crate::sampling::SendSampler;
use crate::slot::{Active, Job, Slot};
use crate::{ChatMessage, ChatTemplate, EngineError, SamplingParams};

/// Engine settings, as the `[models.NAME]` config of a local model gives them.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub path: PathBuf,
    /// Threads for generation.
    pub threads: i32,
    /// Threads for prompt processing.
    pub threads_batch: i32,
    /// Context length of one request (prompt + completion), in tokens.
    pub context: u32,
    /// Sequences decoded together (slots).
    pub parallel: u32,
    /// Most tokens decoded in one step (across slots).
    pub batch: u32,
    /// Requests that may wait for a free slot before submission is refused.
    pub queue: usize,
    /// Jinja chat template that overrides the one in the GGUF file.
    pub chat_template: Option<String>,
    /// Offload this many layers to a GPU (needs a CUDA build).
    pub gpu_layers: u32,
    /// Element type of the KV cache: `f16` (default), `q8_0` (half the memory, near-lossless)
    /// or `q4_0`. Quantized V needs flash attention, which is then switched on.
    pub kv_cache_type: KvType,
}

/// KV cache element type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KvType {
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

impl std::str::FromStr for KvType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f16" => Ok(KvType::F16),
            "q8_0" => Ok(KvType::Q8_0),
            "q4_0" => Ok(KvType::Q4_0),
            other => Err(format!(
                "unknown KV cache type {other:?}; use f16, q8_0 or q4_0"
            )),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Default)]
pub struct GenerationRequest {
    pub messages: Vec<ChatMessage>,
    /// A raw prompt used instead of `messages` (no chat template).
    pub prompt: Option<String>,
    pub max_tokens: Option<u32>,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    pub logprobs: bool,
    /// Alternatives per position (0..=20); needs `logprobs`.
    pub top_logprobs: u8,
    /// Keep generating past end-of-generation tokens (benchmarks: fixed-length outputs).
    pub ignore_eos: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens served from a slot's KV cache.
    pub cached_tokens: u32,
}

/// What a [`GenerationStream`] yields. A stream ends with exactly one `Done` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// One generated token: the text it releases (may be empty while a multi-byte character or
    /// a possible stop string is incomplete) and its logprob when asked for.
    Token {
        text: String,
        logprob: Option<TokenLogprob>,
    },
    Done {
        finish_reason: FinishReason,
        usage: Usage,
    },
    Error(EngineError),
}

/// Events of one generation. Dropping it cancels the sequence at the next decode step.
pub struct GenerationStream {
    rx: mpsc::UnboundedReceiver<GenerationEvent>,
    pub prompt_tokens: usize,
}

impl GenerationStream {
    pub async fn next(&mut self) -> Option<GenerationEvent> {
        self.rx.recv().await
    }

    /// Blocking variant for non-async callers (benchmarks, CLI).
    pub fn blocking_next(&mut self) -> Option<GenerationEvent> {
        self.rx.blocking_recv()
    }
}

/// A request validated, templated, tokenized and with its sampler built — ready to queue.
pub struct PreparedRequest {
    tokens: Vec<LlamaToken>,
    max_tokens: usize,
    sampler: SendSampler,
    stops: Vec<String>,
    logprobs: bool,
    top_logprobs: usize,
    ignore_eos: bool,
}

impl PreparedRequest {
    pub fn prompt_tokens(&self) -> usize {
        self.tokens.len()
    }
}

/// Live counters of the engine (for metrics and `/ready`).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub active: AtomicUsize,
    pub queued: AtomicUsize,
    pub cancelled: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub cached_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub stopped: AtomicBool,
}

/// A loaded GGUF model and its batch loop. Cheap to clone.
#[derive(Clone)]
pub struct LocalEngine {
    inner: Arc<Inner>,
}

struct Inner {
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    queue: mpsc::UnboundedSender<Job>,
    settings: EngineSettings,
    stats: Arc<EngineStats>,
    add_bos: bool,
    bos_text: String,
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            b.void_logs();
            Ok(b)
        })
        .as_ref()
        .map_err(|e| EngineError::Load {
            path: String::new(),
            reason: e.clone(),
        })
}

impl LocalEngine {
    /// Loads the model and starts the batch loop. Blocks until the context is ready.
    pub fn load(settings: EngineSettings) -> Result<Self, EngineError> {
        let path = settings.path.display().to_string();
        let load_err = |reason: String| EngineError::Load {
            path: path.clone(),
            reason,
        };
        if !settings.path.is_file() {
            return Err(load_err("file not found".into()));
        }
        if settings.parallel == 0 || settings.batch < settings.parallel {
            return Err(load_err("need parallel >= 1 and batch >= parallel".into()));
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(settings.gpu_layers);
        let model = LlamaModel::load_from_file(backend, &settings.path, &params)
            .map_err(|e| load_err(format!("cannot load as GGUF: {e}")))?;
        let model = Arc::new(model);

        let meta = |k: &str| model.meta_val_str(k).ok();
        let arch = meta("general.architecture").unwrap_or_default();
        let vocab = model.vocab();
        let token_text = |t: LlamaToken| {
            if t.0 < 0 {
                String::new()
            } else {
                vocab
                    .text(t)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }
        };
        let bos_text = token_text(vocab.bos());
        let eos_text = token_text(vocab.eos());
        let add_bos = vocab.should_add_bos() && vocab.bos().0 >= 0;
        let gguf_template = meta("tokenizer.chat_template");
        let template = ChatTemplate::new(
            settings.chat_template.as_deref(),
            gguf_template.as_deref(),
            &arch,
            &bos_text,
            &eos_text,
        )?;
        let train_ctx = model.n_ctx_train();
        if settings.context > train_ctx {
            tracing::warn!(
                context = settings.context,
                train_ctx,
                "context is longer than the model was trained on; quality may degrade"
            );
        }

        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(EngineStats::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        {
            let model = model.clone();
            let settings = settings.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("slmgate-engine".into())
                .spawn(move || batch_loop(model, settings, rx, stats, ready_tx))
                .map_err(|e| load_err(format!("cannot start the engine thread: {e}")))?;
        }
        ready_rx
            .recv()
            .map_err(|_| load_err("the engine thread died while starting".into()))??;
        tracing::info!(
            model = %settings.path.display(),
            arch, template = %template.source, context = settings.context,
            parallel = settings.parallel, threads = settings.threads,
            "local model loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                template,
                queue: tx,
                settings,
                stats,
                add_bos,
                bos_text,
            }),
        })
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    pub fn stats(&self) -> &EngineStats {
        &self.inner.stats
    }

    /// Requests waiting for a slot.
    pub fn queue_depth(&self) -> usize {
        self.inner.stats.queued.load(Ordering::Relaxed)
    }

    /// The chat template's prompt for these messages.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        self.inner.template.render(messages)
    }

    /// Tokenizes text exactly as prompts are (special tokens parsed, BOS per the model).
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.inner.model.vocab();
        let mut tokens = Vec::with_capacity(text.len() / 3 + 2);
        if self.inner.add_bos && !text.starts_with(&self.inner.bos_text) {
            tokens.push(vocab.bos());
        }
        tokens.extend(vocab.tokenize(text.as_bytes(), false, true));
        tokens
    }

    /// Validates and tokenizes a request and builds its sampler; every client error
    /// (context overflow, bad grammar, bad parameters) surfaces here, before queueing.
    pub fn prepare(&self, req: GenerationRequest) -> Result<PreparedRequest, EngineError> {
        if req.top_logprobs > 20 {
            return Err(EngineError::InvalidParam(format!(
                "top_logprobs must be between 0 and 20, got {}",
                req.top_logprobs
            )));
        }
        if req.stop.len() > 4 {
            return Err(EngineError::InvalidParam("at most 4 stop sequences".into()));
        }
        let prompt = match &req.prompt {
            Some(p) => p.clone(),
            None => self.render(&req.messages)?,
        };
        let tokens = self.tokenize(&prompt);
        if tokens.is_empty() {
            return Err(EngineError::InvalidParam("the prompt is empty".into()));
        }
        let limit = self.inner.settings.context as usize;
        let room = limit.saturating_sub(tokens.len());
        let max_tokens = match req.max_tokens {
            Some(0) => {
                return Err(EngineError::InvalidParam(
                    "max_tokens must be at least 1".into(),
                ))
            }
            Some(m) => m as usize,
            None => room,
        };
        if tokens.len() >= limit || max_tokens > room {
            return Err(EngineError::ContextOverflow {
                limit,
                requested: tokens.len() + max_tokens.max(1),
                prompt: tokens.len(),
                completion: max_tokens.max(1),
            });
        }
        let sampler = SendSampler(req.sampling.build(&self.inner.model)?);
        Ok(PreparedRequest {
            tokens,
            max_tokens,
            sampler,
            stops: req.stop,
            logprobs: req.logprobs || req.top_logprobs > 0,
            top_logprobs: req.top_logprobs as usize,
            ignore_eos: req.ignore_eos,
        })
    }

    /// Queues a prepared request. Fails at once when the queue is full.
    pub fn submit(&self, req: PreparedRequest) -> Result<GenerationStream, EngineError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let prompt_tokens = req.tokens.len();
        let job = Job {
            tokens: req.tokens,
            max_tokens: req.max_tokens,
            sampler: req.sampler,
            stops: req.stops,
            logprobs: req.logprobs,
            top_logprobs: req.top_logprobs,
            ignore_eos: req.ignore_eos,
            events: tx,
            enqueued: Instant::now(),
        };
        // The bound counts requests not yet in a slot; cancelled ones leave it at once.
        let queued = &self.inner.stats.queued;
        if queued.fetch_add(1, Ordering::AcqRel) >= self.inner.settings.queue {
            queued.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::QueueFull {
                capacity: self.inner.settings.queue,
            });
        }
        if self.inner.queue.send(job).is_err() {
            queued.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::Stopped);
        }
        Ok(GenerationStream { rx, prompt_tokens })
    }

    /// `prepare` then `submit`.
    pub fn generate(&self, req: GenerationRequest) -> Result<GenerationStream, EngineError> {
        self.submit(self.prepare(req)?)
    }
}

/// The batch loop. Runs until every `LocalEngine` handle is dropped.
fn batch_loop(
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
        waiting.retain(|job| {
            let gone = job.events.is_closed();
            if gone {
                stats.queued.fetch_sub(1, Ordering::AcqRel);
                stats.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            !gone
        });
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
