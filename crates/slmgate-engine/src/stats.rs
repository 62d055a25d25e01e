//! Live counters of the engine (for metrics and `/ready`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

#[derive(Debug, Default)]
pub struct EngineStats {
    pub active: AtomicUsize,
    pub queued: AtomicUsize,
    pub cancelled: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub cached_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    /// Speculative decoding: verify steps that had drafts, tokens drafted, drafts accepted.
    pub spec_steps: AtomicU64,
    pub spec_drafted: AtomicU64,
    pub spec_accepted: AtomicU64,
    pub stopped: AtomicBool,
}
