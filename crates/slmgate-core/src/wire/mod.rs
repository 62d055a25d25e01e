//! Wire formats. `openai` is the gateway's canonical shape; `anthropic` and `gemini` are
//! translated to and from it (both as served APIs and as upstream clients).

pub mod anthropic;
pub mod completions;
pub mod gemini;
pub mod invalid;
pub mod openai;
pub mod responses;
pub mod tools;
pub mod validate;

pub use validate::InvalidRequest;
