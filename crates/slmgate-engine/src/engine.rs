//! The local engine's public face: model loading, request preparation (template,
//! tokenization, context check, sampler) and submission to the bounded queue that the batch
//! loop (`batch_loop/`) serves.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::adapter::{AdapterInfo, AdapterSpec, AdapterTable, FileStamp};
use crate::backend::backend;
use crate::queue::{GenerationStream, Job, Msg, QueuePlace};
use crate::request::{GenerationRequest, PreparedRequest};
use crate::sampling::SendSampler;
use crate::settings::EngineSettings;
use crate::speculate::{compat, DraftSettings, SpecMode};
use crate::stats::EngineStats;
use crate::{ChatMessage, ChatTemplate, EngineError};

/// A loaded GGUF model and its batch loop. Cheap to clone.
#[derive(Clone)]
pub struct LocalEngine {
    inner: Arc<Inner>,
}

struct Inner {
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    queue: mpsc::UnboundedSender<Msg>,
    settings: EngineSettings,
    adapters: Arc<AdapterTable>,
    stats: Arc<EngineStats>,
    add_bos: bool,
    bos_text: String,
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
        let params = &params;
        let model = LlamaModel::load_from_file(backend, &settings.path, params)
            .map_err(|e| load_err(format!("cannot load as GGUF: {e}")))?;
        let model = Arc::new(model);
        let draft_model = match &settings.speculation.draft {
            Some(d) => Some(Arc::new(load_draft(backend, &model, d, params)?)),
            None => None,
        };
        if let Some(l) = &settings.speculation.lookup {
            l.validate()
                .map_err(|e| load_err(format!("lookup speculation: {e}")))?;
        }

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
        let adapters = Arc::new(AdapterTable::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        {
            let model = model.clone();
            let settings = settings.clone();
            let stats = stats.clone();
            let adapters = adapters.clone();
            std::thread::Builder::new()
                .name("slmgate-engine".into())
                .spawn(move || {
                    crate::batch_loop::run(
                        model,
                        draft_model,
                        settings,
                        rx,
                        stats,
                        adapters,
                        ready_tx,
                    )
                })
                .map_err(|e| load_err(format!("cannot start the engine thread: {e}")))?;
        }
        ready_rx
            .recv()
            .map_err(|_| load_err("the engine thread died while starting".into()))??;
        tracing::info!(
            model = %settings.path.display(),
            arch, template = %template.source, context = settings.context,
            parallel = settings.parallel, threads = settings.threads,
            adapters = settings.adapters.len(),
            "local model loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                template,
                queue: tx,
                settings,
                adapters,
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
        let spec = SpecMode::resolve(req.speculation, &self.inner.settings.speculation)?;
        let adapter = match &req.adapter {
            None => None,
            Some(name) => {
                Some(
                    self.inner
                        .adapters
                        .get(name)
                        .ok_or_else(|| EngineError::Adapter {
                            name: name.clone(),
                            reason: "no adapter of that name is loaded in this model".into(),
                        })?,
                )
            }
        };
        let sampler = SendSampler(req.sampling.build(&self.inner.model)?);
        Ok(PreparedRequest {
            tokens,
            max_tokens,
            sampler,
            stops: req.stop,
            logprobs: req.logprobs || req.top_logprobs > 0,
            top_logprobs: req.top_logprobs as usize,
            ignore_eos: req.ignore_eos,
            spec,
            adapter,
        })
    }

    /// Queues a prepared request. Fails at once when the queue is full.
    pub fn submit(&self, req: PreparedRequest) -> Result<GenerationStream, EngineError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let prompt_tokens = req.tokens.len();
        let job = Job {
            req,
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
        if self.inner.queue.send(Msg::Job(job)).is_err() {
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

    /// Loads a LoRA adapter (or replaces the one of that name) without stopping the engine:
    /// requests prepared from now on use it; sequences in flight finish on the adapter they
    /// started with. Waits for the engine thread to load it (between two decode steps).
    pub async fn load_adapter(&self, spec: AdapterSpec) -> Result<AdapterInfo, EngineError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.inner
            .queue
            .send(Msg::LoadAdapter { spec, reply })
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Unloads an adapter by name (freed once its last sequence ends); false if none.
    pub fn remove_adapter(&self, name: &str) -> bool {
        self.inner.adapters.remove(name)
    }

    /// The adapters loaded now, by name.
    pub fn adapters(&self) -> Vec<AdapterInfo> {
        self.inner
            .adapters
            .list()
            .into_iter()
            .map(|a| a.info.clone())
            .collect()
    }

    /// Adapters whose file changed (modification time or length) since they were loaded:
    /// what a hot reload should load again.
    pub fn changed_adapters(&self) -> Vec<AdapterSpec> {
        self.inner
            .adapters
            .list()
            .into_iter()
            .filter(|a| {
                let now = FileStamp::of(&a.info.path);
                now.is_some() && now != a.stamp && !self.inner.adapters.failed_on(&a.info.name, now)
            })
            .map(|a| AdapterSpec {
                name: a.info.name.clone(),
                path: a.info.path.clone(),
                scale: a.info.scale,
            })
            .collect()
    }
}

/// Loads a draft model (weights shared with any other deployment of the same file through
/// the page cache, as llama.cpp maps GGUF files) and checks that its token ids mean the
/// target's.
fn load_draft(
    backend: &llama_cpp_2::llama_backend::LlamaBackend,
    target: &LlamaModel,
    d: &DraftSettings,
    params: &LlamaModelParams,
) -> Result<LlamaModel, EngineError> {
    let err = |reason: String| EngineError::Load {
        path: d.path.display().to_string(),
        reason,
    };
    d.validate().map_err(&err)?;
    if !d.path.is_file() {
        return Err(err("draft model file not found".into()));
    }
    let draft = LlamaModel::load_from_file(backend, &d.path, params)
        .map_err(|e| err(format!("cannot load the draft model as GGUF: {e}")))?;
    compat::check(target, &draft).map_err(|why| {
        err(format!(
            "the draft model cannot draft for this model: {why} (a draft needs the target's vocabulary, e.g. SmolLM2-135M for SmolLM2-1.7B)"
        ))
    })?;
    Ok(draft)
}
