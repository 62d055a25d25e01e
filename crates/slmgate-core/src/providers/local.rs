//! The in-process engine as a provider: canonical request → engine request, engine events →
//! canonical response or chunks.

use serde_json::{json, Value};
use slmgate_engine::{
    grammar, ChatMessage, EngineError, EngineSettings, FinishReason, GenerationEvent,
    GenerationRequest, GenerationStream, KvType, LocalEngine, SamplingParams, TokenLogprob,
};

use super::error::{FailureKind, ProviderError};
use super::ChatStream;
use crate::config::{KvCache, LocalModelConfig};
use crate::wire::openai::{
    completion_id, now_secs, ChatChunk, ChatRequest, ChatResponse, Delta, ResponseFormat, Usage,
};

pub struct LocalProvider {
    pub engine: LocalEngine,
    pub(crate) name: String,
}

impl LocalProvider {
    pub fn load(name: &str, cfg: &LocalModelConfig) -> Result<Self, String> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(2);
        let threads = cfg.threads.unwrap_or(cores);
        let engine = LocalEngine::load(EngineSettings {
            path: cfg.path_buf(),
            threads,
            threads_batch: cfg.threads_batch.unwrap_or(threads),
            context: cfg.context,
            parallel: cfg.parallel,
            batch: cfg.batch,
            queue: cfg.queue,
            chat_template: cfg.chat_template.clone(),
            gpu_layers: cfg.gpu_layers,
            kv_cache_type: match cfg.kv_cache {
                KvCache::F16 => KvType::F16,
                KvCache::Q8_0 => KvType::Q8_0,
                KvCache::Q4_0 => KvType::Q4_0,
            },
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            engine,
            name: name.to_string(),
        })
    }

    fn start(&self, req: &ChatRequest) -> Result<GenerationStream, ProviderError> {
        let gen = to_generation(req)?;
        self.engine.generate(gen).map_err(engine_error)
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let mut stream = self.start(req)?;
        let want_logprobs = req.logprobs.unwrap_or(false);
        let mut text = String::new();
        let mut logprobs = Vec::new();
        loop {
            match stream.next().await {
                Some(GenerationEvent::Token { text: t, logprob }) => {
                    text.push_str(&t);
                    logprobs.extend(logprob);
                }
                Some(GenerationEvent::Done {
                    finish_reason,
                    usage,
                }) => {
                    return Ok(ChatResponse::assistant(
                        completion_id(),
                        now_secs(),
                        self.name.clone(),
                        text,
                        want_logprobs.then(|| json!({"content": logprobs, "refusal": null})),
                        Some(finish_reason.as_str().into()),
                        Some(usage_of(&usage)),
                    ));
                }
                Some(GenerationEvent::Error(e)) => return Err(engine_error(e)),
                None => {
                    return Err(ProviderError::new(
                        FailureKind::Internal,
                        "the engine dropped the request",
                    ))
                }
            }
        }
    }

    pub fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let mut gen = self.start(req)?;
        let want_logprobs = req.logprobs.unwrap_or(false);
        let model = self.name.clone();
        Ok(Box::pin(async_stream::stream! {
            let id = completion_id();
            let created = now_secs();
            yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::role("assistant"), None, None));
            loop {
                match gen.next().await {
                    Some(GenerationEvent::Token { text, logprob }) => {
                        let lp = if want_logprobs { logprob.map(|l| logprob_value(vec![l])) } else { None };
                        if !text.is_empty() || lp.is_some() {
                            yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::content(text), lp, None));
                        }
                    }
                    Some(GenerationEvent::Done { finish_reason, usage }) => {
                        let reason = match finish_reason { FinishReason::Stop => "stop", FinishReason::Length => "length" };
                        yield Ok(ChatChunk::new(&id, created, &model).delta(Delta::default(), None, Some(reason)));
                        let mut u = ChatChunk::new(&id, created, &model);
                        u.usage = Some(usage_of(&usage));
                        yield Ok(u);
                        return;
                    }
                    Some(GenerationEvent::Error(e)) => { yield Err(engine_error(e)); return; }
                    None => { yield Err(ProviderError::new(FailureKind::Internal, "the engine dropped the request")); return; }
                }
            }
        }))
    }
}

fn logprob_value(l: Vec<TokenLogprob>) -> Value {
    json!({"content": l, "refusal": null})
}

fn usage_of(u: &slmgate_engine::Usage) -> Usage {
    Usage::new(u.prompt_tokens, u.completion_tokens)
}

fn engine_error(e: EngineError) -> ProviderError {
    match e {
        EngineError::ContextOverflow { .. } => {
            ProviderError::new(FailureKind::ContextOverflow, e.to_string())
        }
        EngineError::QueueFull { .. } => ProviderError::new(FailureKind::Overloaded, e.to_string()),
        EngineError::Grammar(_) => {
            ProviderError::rejected("invalid_value", Some("response_format"), e.to_string())
        }
        EngineError::InvalidParam(_) => {
            ProviderError::rejected("invalid_value", None, e.to_string())
        }
        EngineError::Template(_) => ProviderError::rejected(
            "invalid_messages",
            None,
            format!("The messages do not fit this model's chat template: {e}"),
        ),
        EngineError::Load { .. } | EngineError::Stopped | EngineError::Decode(_) => {
            ProviderError::new(FailureKind::Internal, e.to_string())
        }
    }
}

/// Maps the canonical request onto the engine; what local models cannot do is a clear 400.
pub fn to_generation(req: &ChatRequest) -> Result<GenerationRequest, ProviderError> {
    for key in ["tools", "functions"] {
        if req.extra.get(key).is_some_and(|v| !v.is_null()) {
            return Err(invalid(key, format!("`{key}` is not supported by local models yet; route this request to a remote model")));
        }
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    format!("role `{other}` is not supported by local models (use system, user or assistant)"),
                ))
            }
        };
        let content = match &m.content {
            None => String::new(),
            Some(c) => c.as_text().ok_or_else(|| {
                invalid(
                    &format!("messages[{i}].content"),
                    "local models accept only text content parts",
                )
            })?,
        };
        messages.push(ChatMessage::new(role, content));
    }
    let grammar = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => Some(grammar::JSON_OBJECT_GBNF.to_string()),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema
                .schema
                .clone()
                .unwrap_or(json!({"type": "object"}));
            Some(
                grammar::json_schema_to_gbnf(&schema)
                    .map_err(|e| invalid("response_format.json_schema.schema", e.to_string()))?,
            )
        }
    };
    let mut logit_bias = Vec::new();
    for (k, v) in req.logit_bias.iter().flatten() {
        let id = k.parse::<i32>().map_err(|_| {
            invalid(
                "logit_bias",
                format!("logit_bias keys must be token ids, got {k:?}"),
            )
        })?;
        logit_bias.push((id, *v));
    }
    Ok(GenerationRequest {
        messages,
        prompt: None,
        max_tokens: req.max_output_tokens(),
        sampling: SamplingParams {
            temperature: req.temperature.unwrap_or(1.0),
            top_p: req.top_p.unwrap_or(1.0),
            top_k: req.top_k.unwrap_or(0),
            seed: req.seed.map(|s| s as u64),
            grammar,
            frequency_penalty: req.frequency_penalty.unwrap_or(0.0),
            presence_penalty: req.presence_penalty.unwrap_or(0.0),
            logit_bias,
        },
        stop: req.stop_list(),
        logprobs: req.logprobs.unwrap_or(false),
        top_logprobs: if req.logprobs.unwrap_or(false) {
            req.top_logprobs.unwrap_or(0)
        } else {
            0
        },
        ignore_eos: false,
    })
}

fn invalid(param: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::rejected("invalid_value", Some(param), message)
}
