//! The local engine's public face: settings, model loading, request preparation (template,
//! tokenization, context check, sampler) and submission to the bounded queue. The batch loop
//! that serves the queue is in `batch_loop.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::logprobs::TokenLogprob;
use crate::sampling::SendSampler;
use crate::slot::Job;
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
    place: Arc<QueuePlace>,
    stats: Arc<EngineStats>,
}

/// Where a request is: waiting in the queue, in a slot, or cancelled while waiting. Whoever
/// moves it out of `WAITING` first (the batch loop admitting it, or the client dropping its
/// stream) releases its queue place, so a cancelled request frees capacity at once.
#[derive(Debug, Default)]
pub(crate) struct QueuePlace(std::sync::atomic::AtomicU8);

impl QueuePlace {
    const WAITING: u8 = 0;
    const ADMITTED: u8 = 1;
    const CANCELLED: u8 = 2;

    /// The batch loop takes the request; false if the client already left.
    pub(crate) fn admit(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WAITING,
                Self::ADMITTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::CANCELLED
    }

    fn cancel(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WAITING,
                Self::CANCELLED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

impl Drop for GenerationStream {
    fn drop(&mut self) {
        if self.place.cancel() {
            self.stats.queued.fetch_sub(1, Ordering::AcqRel);
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
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

pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
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
                .spawn(move || crate::batch_loop::run(model, settings, rx, stats, ready_tx))
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

    pub(crate) fn model(&self) -> &LlamaModel {
        &self.inner.model
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
            place: Arc::new(QueuePlace::default()),
        };
        let place = job.place.clone();
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
        Ok(GenerationStream {
            rx,
            prompt_tokens,
            place,
            stats: self.inner.stats.clone(),
        })
    }

    /// `prepare` then `submit`.
    pub fn generate(&self, req: GenerationRequest) -> Result<GenerationStream, EngineError> {
        self.submit(self.prepare(req)?)
    }
}
