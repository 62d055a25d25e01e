//! What a generation asks for, what it yields, and a request once prepared (templated,
//! tokenized, its sampler built) and ready to queue.

use std::sync::Arc;

use llama_cpp_2::token::LlamaToken;
use serde::Serialize;

use crate::adapter::Adapter;

use crate::logprobs::TokenLogprob;
use crate::sampling::SendSampler;
use crate::speculate::{SpecChoice, SpecMode};
use crate::{ChatMessage, EngineError, SamplingParams};

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
    /// Speculative decoding for this request; `None`: the model's default.
    pub speculation: Option<SpecChoice>,
    /// A LoRA adapter loaded in this engine, by name; `None`: the base model.
    pub adapter: Option<String>,
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

/// What a [`crate::GenerationStream`] yields. A stream ends with exactly one `Done` or `Error`.
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

/// A request validated, templated, tokenized and with its sampler built — ready to queue.
pub struct PreparedRequest {
    pub(crate) tokens: Vec<LlamaToken>,
    pub(crate) max_tokens: usize,
    pub(crate) sampler: SendSampler,
    pub(crate) stops: Vec<String>,
    pub(crate) logprobs: bool,
    pub(crate) top_logprobs: usize,
    pub(crate) ignore_eos: bool,
    pub(crate) spec: SpecMode,
    /// Held until the sequence ends: a swapped-out adapter lives until then.
    pub(crate) adapter: Option<Arc<Adapter>>,
}

impl PreparedRequest {
    pub fn prompt_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// The adapter's generation (0: the base model).
    pub(crate) fn adapter_id(&self) -> u64 {
        self.adapter.as_ref().map_or(0, |a| a.id())
    }
}
