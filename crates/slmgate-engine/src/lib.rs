//! # slmgate-engine
//!
//! In-process inference for small language models, isolated from the gateway so the slow
//! llama.cpp build lives in one crate.
//!
//! - [`LocalEngine`]: loads a GGUF model through llama.cpp (`llama-cpp-2`) and runs a
//!   continuous-batching scheduler on its own thread: one llama.cpp sequence per slot, new
//!   requests join between decode steps, prompts are prefilled in chunks beside running
//!   decodes, a bounded queue pushes back when full, a dropped [`GenerationStream`] cancels
//!   its sequence, and a slot reuses the KV cache of the longest common prompt prefix.
//! - LoRA adapters ([`AdapterSpec`]) on the shared base model, picked per request and
//!   loaded or swapped while serving: each step decodes once per adapter in use.
//! - [`ChatTemplate`]: renders the model's own Jinja chat template (GGUF metadata) with
//!   minijinja, so prompts match the reference tokenizer byte for byte.
//! - [`SamplingParams`]: temperature, top-p, top-k, seed, stop strings, a grammar; greedy at
//!   temperature 0. Per-token logprobs and top-logprobs come from the raw logits.
//! - [`grammar`]: JSON mode and JSON-schema output enforced by a GBNF grammar.
//! - [`SentenceEmbedder`]: all-MiniLM-L6-v2 style BERT sentence embeddings (candle).

mod adapter;
mod backend;
mod batch_loop;
mod detok;
mod embed;
mod engine;
mod error;
pub mod grammar;
mod logprobs;
mod quantize;
mod queue;
mod request;
mod sampling;
mod score;
mod settings;
mod slot;
mod speculate;
mod stats;
mod template;
mod token_table;

pub use adapter::{AdapterInfo, AdapterSpec};
pub use embed::{EmbedError, SentenceEmbedder};
pub use engine::LocalEngine;
pub use error::EngineError;
pub use logprobs::{TokenLogprob, TopLogprob};
pub use quantize::{quantize, quantize_types};
pub use queue::GenerationStream;
pub use request::{FinishReason, GenerationEvent, GenerationRequest, PreparedRequest, Usage};
pub use sampling::SamplingParams;
pub use score::TokenScore;
pub use settings::{EngineSettings, KvType};
pub use speculate::{DraftSettings, LookupSettings, SpecChoice, Speculation};
pub use stats::EngineStats;
pub use template::{ChatMessage, ChatTemplate};
