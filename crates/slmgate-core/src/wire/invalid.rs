//! The one error of a malformed request, shared by every wire.

/// What is wrong with a request, naming the field when one is at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRequest {
    pub param: Option<String>,
    /// A stable error code (`invalid_value` unless said otherwise).
    pub code: &'static str,
    pub message: String,
}

impl InvalidRequest {
    pub fn param(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_string()),
            code: "invalid_value",
            message: message.into(),
        }
    }
}

impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
