//! The process-wide llama.cpp backend, initialised once (its logs silenced).

use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;

use crate::EngineError;

pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            b.void_logs();
            Ok(b)
        })
        .as_ref()
        .map_err(|e| EngineError::Load {
            path: String::new(),
            reason: e.clone(),
        })
}
