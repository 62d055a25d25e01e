use thiserror::Error;

/// Everything the local engine can refuse or fail with. The gateway maps each variant to an
/// HTTP status; the messages are written for the API user.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    #[error("model file {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("this model's maximum context length is {limit} tokens, but the request needs {requested} tokens ({prompt} in the prompt, {completion} for the completion); shorten the messages or lower max_tokens")]
    ContextOverflow {
        limit: usize,
        requested: usize,
        prompt: usize,
        completion: usize,
    },
    #[error("the local model's queue is full ({capacity} requests waiting); retry shortly")]
    QueueFull { capacity: usize },
    #[error("the local engine has stopped")]
    Stopped,
    #[error("invalid grammar or schema: {0}")]
    Grammar(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    #[error("inference failed: {0}")]
    Decode(String),
    #[error("LoRA adapter `{name}`: {reason}")]
    Adapter { name: String, reason: String },
}
