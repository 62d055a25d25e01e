//! The in-process engine as a provider: canonical request → engine request, engine events →
//! canonical response or chunks. Tool calls: `tools` (prompt and grammar) and `tool_output`
//! (the output split into text and calls).

pub mod tool_output;
pub mod tools;

use serde_json::{json, Value};
use slmgate_engine::{
    grammar, AdapterSpec, ChatMessage, DraftSettings, EngineError, EngineSettings, FinishReason,
    GenerationEvent, GenerationRequest, GenerationStream, KvType, LocalEngine, LookupSettings,
    SamplingParams, SpecChoice, Speculation, TokenLogprob,
};

use super::error::{FailureKind, ProviderError};
use super::ChatStream;
use crate::config::{KvCache, LocalModelConfig, LookupConfig};
use crate::wire::openai::{
    completion_id, now_secs, ChatChunk, ChatRequest, ChatResponse, Delta, ResponseFormat,
    SpeculativeKind, SpeculativeRequest, Usage,
};
use crate::wire::tools::{check_call, tool_mode, Tool, ToolCall, ToolCallDelta, ToolMode};
use tool_output::{BadCall, Piece, ToolOutput};

pub struct LocalProvider {
    pub engine: LocalEngine,
    pub(crate) name: String,
    /// The LoRA adapter this deployment runs (`NAME:ADAPTER`, sharing the base's engine).
    pub adapter: Option<String>,
}

impl LocalProvider {
    pub fn load(
        name: &str,
        cfg: &LocalModelConfig,
        draft: Option<std::path::PathBuf>,
    ) -> Result<Self, String> {
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
            speculation: Speculation {
                lookup: cfg.lookup.map(|l| l.engine()),
                draft: draft.map(|path| DraftSettings {
                    path,
                    n_max: cfg.draft_max,
                    n_min: cfg.draft_min,
                    p_min: cfg.draft_p_min,
                }),
            },
            adapters: adapter_specs(cfg),
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            engine,
            name: name.to_string(),
            adapter: None,
        })
    }

    /// The deployment `name` serving `adapter` on this provider's engine.
    pub fn with_adapter(&self, name: &str, adapter: &str) -> Self {
        Self {
            engine: self.engine.clone(),
            name: name.to_string(),
            adapter: Some(adapter.to_string()),
        }
    }

    fn start(&self, req: &ChatRequest) -> Result<GenerationStream, ProviderError> {
        let mut gen = to_generation(req)?;
        gen.adapter = self.adapter.clone();
        self.engine.generate(gen).map_err(engine_error)
    }

    /// The stream, folded into one response.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        super::collect::collect(self.stream(req)?).await
    }

    pub fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let mut gen = self.start(req)?;
        let want_logprobs = req.logprobs.unwrap_or(false);
        let model = self.name.clone();
        let tools: Option<Vec<Tool>> = calls_expected(req).map(<[Tool]>::to_vec);
        Ok(Box::pin(async_stream::stream! {
            let id = completion_id();
            let created = now_secs();
            let chunk = |delta: Delta, lp: Option<Value>, finish: Option<&str>| {
                ChatChunk::new(&id, created, &model).delta(delta, lp, finish)
            };
            let mut output = tools.as_ref().map(|_| ToolOutput::new());
            let mut calls: Vec<ToolCall> = Vec::new();
            let mut generated = 0u32;
            yield Ok(chunk(Delta::role("assistant"), None, None));
            loop {
                match gen.next().await {
                    Some(GenerationEvent::Token { text, logprob }) => {
                        generated += 1;
                        let mut lp = if want_logprobs { logprob.map(|l| logprob_value(vec![l])) } else { None };
                        let Some(out) = output.as_mut() else {
                            if !text.is_empty() || lp.is_some() {
                                yield Ok(chunk(Delta::content(text), lp, None));
                            }
                            continue;
                        };
                        let pieces = match out.push(&text) {
                            Ok(p) => p,
                            Err(e) => { yield Err(bad_call(e)); return; }
                        };
                        for piece in pieces {
                            match piece {
                                Piece::Text(t) => yield Ok(chunk(Delta::content(t), lp.take(), None)),
                                Piece::Call(c) => {
                                    if let Err(e) = checked(tools.as_deref().unwrap_or(&[]), &c) { yield Err(e); return; }
                                    if calls.iter().any(|p| same_call(p, &c)) {
                                        // A small model repeats its call in a loop: the
                                        // repeat ends the answer (the decode is cancelled).
                                        yield Ok(chunk(Delta::default(), None, Some("tool_calls")));
                                        let mut u = ChatChunk::new(&id, created, &model);
                                        u.usage = Some(Usage::new(gen.prompt_tokens as u32, generated));
                                        yield Ok(u);
                                        return;
                                    }
                                    yield Ok(chunk(Delta::calls(vec![ToolCallDelta::whole(calls.len() as u32, &c)]), lp.take(), None));
                                    calls.push(c);
                                }
                            }
                        }
                        if lp.is_some() {
                            // Held text (a possible call): the token's logprob still goes out,
                            // so a cascade judges the call as it is written.
                            yield Ok(chunk(Delta::content(""), lp, None));
                        }
                    }
                    Some(GenerationEvent::Done { finish_reason, usage }) => {
                        let mut reason = match finish_reason { FinishReason::Stop => "stop", FinishReason::Length => "length" };
                        if let Some(out) = output.as_mut() {
                            match out.finish() {
                                Ok(rest) => for piece in rest {
                                    if let Piece::Text(t) = piece { yield Ok(chunk(Delta::content(t), None, None)); }
                                },
                                Err(e) => { yield Err(bad_call(e)); return; }
                            }
                            if !calls.is_empty() { reason = "tool_calls"; }
                        }
                        yield Ok(chunk(Delta::default(), None, Some(reason)));
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

/// The tools whose calls to look for in the output (none under `tool_choice: none`).
fn calls_expected(req: &ChatRequest) -> Option<&[Tool]> {
    match tool_mode(req.tools.as_deref(), req.tool_choice.as_ref()) {
        Ok(ToolMode::None) | Err(_) => None,
        Ok(_) => Some(req.tool_list()),
    }
}

fn same_call(a: &ToolCall, b: &ToolCall) -> bool {
    a.function.name == b.function.name && a.arguments_value() == b.arguments_value()
}

fn checked(tools: &[Tool], c: &ToolCall) -> Result<(), ProviderError> {
    check_call(tools, c).map_err(|e| {
        ProviderError::new(
            FailureKind::Protocol,
            format!(
                "the model's call of `{}` does not match its schema: {e}",
                c.function.name
            ),
        )
    })
}

/// The model broke the call format (a cut-off call): a failed answer, which a cascade or
/// fallback chain passes on to the next deployment.
fn bad_call(e: BadCall) -> ProviderError {
    ProviderError::new(FailureKind::Protocol, e.0)
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
        EngineError::Load { .. }
        | EngineError::Stopped
        | EngineError::Decode(_)
        | EngineError::Adapter { .. } => ProviderError::new(FailureKind::Internal, e.to_string()),
    }
}

/// A local model's configured adapters, as the engine loads them.
pub fn adapter_specs(cfg: &LocalModelConfig) -> Vec<AdapterSpec> {
    cfg.adapters
        .iter()
        .map(|(name, a)| AdapterSpec {
            name: name.clone(),
            path: a.path.clone().into(),
            scale: a.scale,
        })
        .collect()
}

/// Maps the canonical request onto the engine; what local models cannot do is a clear 400.
pub fn to_generation(req: &ChatRequest) -> Result<GenerationRequest, ProviderError> {
    if req.extra.get("functions").is_some_and(|v| !v.is_null()) {
        return Err(invalid(
            "functions",
            "the deprecated `functions` is not supported by local models; send `tools`",
        ));
    }
    let mode = tool_mode(req.tools.as_deref(), req.tool_choice.as_ref())
        .map_err(|e| invalid(e.param.as_deref().unwrap_or("tool_choice"), e.message))?;
    let mut messages: Vec<ChatMessage> = Vec::with_capacity(req.messages.len() + 1);
    for (i, m) in req.messages.iter().enumerate() {
        let content = match &m.content {
            None => String::new(),
            Some(c) => c.as_text().ok_or_else(|| {
                invalid(
                    &format!("messages[{i}].content"),
                    "local models accept only text content parts",
                )
            })?,
        };
        match m.role.as_str() {
            "system" | "developer" => messages.push(ChatMessage::new("system", content)),
            "user" => messages.push(ChatMessage::new("user", content)),
            "assistant" => messages.push(ChatMessage::new(
                "assistant",
                tools::render_calls(&content, m),
            )),
            // Results of one turn's calls share one user turn.
            "tool" => match messages.last_mut() {
                Some(last) if last.role == "user" && last.content.ends_with("</tool_response>") => {
                    last.content.push('\n');
                    last.content.push_str(&tools::render_result(&content));
                }
                _ => messages.push(ChatMessage::new("user", tools::render_result(&content))),
            },
            other => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    format!("role `{other}` is not supported by local models (use system, user, assistant or tool)"),
                ))
            }
        }
    }
    let mut triggers = Vec::new();
    let grammar =
        if mode != ToolMode::None {
            if !matches!(req.response_format, None | Some(ResponseFormat::Text)) {
                return Err(invalid(
                    "response_format",
                    "local models cannot combine `response_format` with `tools`; send one of them",
                ));
            }
            tools::add_section(&mut messages, tools::system_section(req.tool_list(), &mode));
            let g = tools::call_grammar(
                req.tool_list(),
                &mode,
                req.parallel_tool_calls.unwrap_or(true),
            )
            .map_err(|e| {
                invalid(
                    "tools",
                    format!("cannot build a grammar from the tools' schemas: {e}"),
                )
            })?;
            triggers = g.triggers;
            Some(g.gbnf)
        } else {
            match &req.response_format {
                None | Some(ResponseFormat::Text) => None,
                Some(ResponseFormat::JsonObject) => Some(grammar::JSON_OBJECT_GBNF.to_string()),
                Some(ResponseFormat::JsonSchema { json_schema }) => {
                    let schema = json_schema
                        .schema
                        .clone()
                        .unwrap_or(json!({"type": "object"}));
                    Some(grammar::json_schema_to_gbnf(&schema).map_err(|e| {
                        invalid("response_format.json_schema.schema", e.to_string())
                    })?)
                }
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
    let prompt = if req.raw_prompt {
        let text = messages.pop().map(|m| m.content).unwrap_or_default();
        messages.clear();
        Some(text)
    } else {
        None
    };
    Ok(GenerationRequest {
        messages,
        prompt,
        max_tokens: req.max_output_tokens(),
        sampling: SamplingParams {
            temperature: req.temperature.unwrap_or(1.0),
            top_p: req.top_p.unwrap_or(1.0),
            top_k: req.top_k.unwrap_or(0),
            seed: req.seed.map(|s| s as u64),
            grammar,
            grammar_triggers: triggers,
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
        speculation: req.speculative.as_ref().map(speculation),
        adapter: None,
    })
}

/// The request's `speculative` extension as the engine's choice (lookup settings default to
/// `[models.x] lookup`'s defaults).
fn speculation(s: &SpeculativeRequest) -> SpecChoice {
    match s.kind {
        SpeculativeKind::None => SpecChoice::Off,
        SpeculativeKind::Draft => SpecChoice::Draft,
        SpeculativeKind::Lookup => {
            let d = LookupConfig::default();
            SpecChoice::Lookup(LookupSettings {
                ngram_max: s.ngram_max.unwrap_or(d.ngram_max),
                ngram_min: s.ngram_min.unwrap_or(d.ngram_min),
                n_draft: s.n_draft.unwrap_or(d.n_draft),
            })
        }
    }
}

fn invalid(param: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::rejected("invalid_value", Some(param), message)
}
