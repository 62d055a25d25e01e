//! Requantizing a GGUF file with llama.cpp's own quantizer (`llama_model_quantize`, what the
//! `llama-quantize` tool calls), so a user can make a higher- or lower-precision copy of a
//! model without building llama.cpp's tools: e.g. a Q8_0 target for a Q4_1 draft of the same
//! weights, or a Q4_K_M of an F16 download.

use std::ffi::CString;
use std::path::Path;

use crate::backend::backend;
use crate::EngineError;

/// Output types, by the names `llama-quantize` accepts.
const TYPES: &[(&str, llama_cpp_sys_2::llama_ftype)] = &[
    ("f16", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16),
    ("bf16", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_BF16),
    ("q8_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0),
    ("q6_k", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q6_K),
    ("q5_k_m", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_M),
    ("q4_k_m", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M),
    ("q4_1", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1),
    ("q4_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0),
];

/// The type names [`quantize`] accepts.
pub fn quantize_types() -> Vec<&'static str> {
    TYPES.iter().map(|(n, _)| *n).collect()
}

/// Writes `output`, `input`'s tensors in `ftype`. `allow_requantize` permits an input that is
/// already quantized (its values are dequantized first, so precision lost then stays lost).
pub fn quantize(
    input: &Path,
    output: &Path,
    ftype: &str,
    allow_requantize: bool,
    threads: i32,
) -> Result<(), EngineError> {
    let err = |reason: String| EngineError::Load {
        path: input.display().to_string(),
        reason,
    };
    let Some(&(_, ft)) = TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(ftype)) else {
        return Err(EngineError::InvalidParam(format!(
            "unknown type {ftype:?}; use one of {}",
            quantize_types().join(", ")
        )));
    };
    if !input.is_file() {
        return Err(err("file not found".into()));
    }
    let c = |p: &Path| {
        CString::new(p.to_string_lossy().as_bytes())
            .map_err(|_| err("the path contains a NUL byte".into()))
    };
    let (inp, out) = (c(input)?, c(output)?);
    backend()?;
    // SAFETY: plain C calls; the params struct comes from llama.cpp's defaults and the two
    // paths outlive the call.
    let rc = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = ft;
        params.allow_requantize = allow_requantize;
        params.nthread = threads;
        llama_cpp_sys_2::llama_model_quantize(inp.as_ptr(), out.as_ptr(), &params)
    };
    if rc != 0 {
        let hint = if allow_requantize {
            ""
        } else {
            " (an already quantized input needs allow_requantize)"
        };
        return Err(err(format!("llama.cpp could not quantize it{hint}")));
    }
    Ok(())
}
