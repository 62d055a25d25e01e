//! One llama.cpp sequence of the batch loop: what is in its KV cache, and the request it is
//! serving, if any.

use llama_cpp_2::token::LlamaToken;

use crate::detok::Detokenizer;
use crate::queue::Job;
use crate::request::Usage;

/// The request a slot is serving.
pub(crate) struct Active {
    pub job: Job,
    /// Prompt tokens already in the KV cache (reused prefix included).
    pub prompt_done: usize,
    /// Prompt tokens found in the cache from an earlier request.
    pub cached: usize,
    /// Sampled token not yet decoded (its logits are the next step's input).
    pub pending: Option<LlamaToken>,
    pub generated: usize,
    pub detok: Detokenizer,
    /// Index in the current batch of this slot's pending token; its drafts follow it.
    pub logits_at: Option<i32>,
    /// Tokens drafted for this step (speculative decoding), decoded after the pending one.
    pub draft: Vec<LlamaToken>,
    /// Most tokens to draft next: adapts to how many the target accepted last time
    /// (`batch_loop::next_draft_len`); unbounded until the first verify.
    pub draft_len: usize,
}

impl Active {
    pub fn prompt(&self) -> &[LlamaToken] {
        &self.job.req.tokens
    }

    /// The prompt still to prefill (none once the prompt is in the cache).
    pub fn prefill_left(&self) -> usize {
        self.prompt().len() - self.prompt_done
    }

    /// The adapter's generation this request runs under (0: none).
    pub fn adapter_id(&self) -> u64 {
        self.job.req.adapter_id()
    }

    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt().len() as u32,
            completion_tokens: self.generated as u32,
            cached_tokens: self.cached as u32,
        }
    }
}

pub(crate) struct Slot {
    pub seq: i32,
    /// Tokens whose keys/values are in this sequence's KV cache, in order.
    pub kv: Vec<LlamaToken>,
    pub active: Option<Active>,
    pub last_used: u64,
    /// The adapter (its generation; 0: none) the cached keys/values were computed under.
    pub kv_adapter: u64,
}

impl Slot {
    pub fn new(seq: i32) -> Self {
        Self {
            seq,
            kv: Vec::new(),
            active: None,
            last_used: 0,
            kv_adapter: 0,
        }
    }

    pub fn is_free(&self) -> bool {
        self.active.is_none()
    }

    /// Length of the prompt prefix this slot already has in its cache, computed under the
    /// same adapter (`adapter`: its generation, 0 for none). One token is always left to
    /// decode so the prompt's last position yields fresh logits.
    pub fn reusable_prefix(&self, prompt: &[LlamaToken], adapter: u64) -> usize {
        if adapter != self.kv_adapter {
            return 0;
        }
        let common = self
            .kv
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        common.min(prompt.len().saturating_sub(1))
    }

    /// Position of the next token to decode in this sequence.
    pub fn n_past(&self) -> usize {
        self.kv.len()
    }
}
