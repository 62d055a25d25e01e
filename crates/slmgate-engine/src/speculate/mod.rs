//! Speculative decoding. A cheap proposer drafts the next few tokens of a sequence; the target
//! model decodes its pending token and the drafts in one batch with logits at every position;
//! the batch loop samples each position in turn with the request's own sampler and keeps the
//! drafts up to the first one the sampler did not pick, plus the token it picked there (the
//! bonus); the rejected drafts are removed from the KV cache (`seq_rm`).
//!
//! - `lookup.rs`: prompt lookup, drafting from an earlier occurrence of the last n-gram in the
//!   prompt and output so far (no second model);
//! - `draft.rs`: a small model with a compatible vocabulary drafts greedily in its own context,
//!   one batched decode per drafted position across all sequences;
//! - `compat.rs`: the vocabulary check (llama.cpp's `common_speculative_are_compatible`).
//!
//! Why the output is the target's. Drafts are deterministic (greedy or copied), so the draft
//! distribution `q` is one-hot on the drafted token `x`. Standard speculative sampling accepts
//! `x` with probability `min(1, p(x)/q(x)) = p(x)` and on rejection samples from
//! `norm(max(0, p − q))`, which is `p` without `x`. Sampling from `p` and comparing with `x`
//! does exactly that: it picks `x` with probability `p(x)`, and otherwise a token drawn from
//! `p` restricted to the rest. Every emitted token is therefore drawn by the request's sampler
//! chain (temperature, top-p, penalties, grammar, seed) from the target's logits given the
//! accepted prefix, one sampler call per emitted token, as without speculation; under greedy
//! decoding the text equals the target alone, token for token.

pub(crate) mod compat;
pub(crate) mod draft;
pub(crate) mod lookup;
mod settings;

pub(crate) use settings::SpecMode;
pub use settings::{DraftSettings, LookupSettings, SpecChoice, Speculation};
