//! Engine settings, as the `[models.NAME]` config of a local model gives them.

use std::path::PathBuf;

use crate::adapter::AdapterSpec;
use crate::speculate::Speculation;

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
    /// Speculative decoding defaults (prompt lookup, a draft model).
    pub speculation: Speculation,
    /// LoRA adapters loaded at start (more can be loaded live).
    pub adapters: Vec<AdapterSpec>,
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
