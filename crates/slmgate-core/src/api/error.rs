//! The one error type of the HTTP layer, rendered in the OpenAI error shape
//! `{"error": {"message", "type", "param", "code"}}` with the matching status. A gateway
//! error becomes one through [`GatewayError::reply`], the one place status and code are
//! decided.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::exchange::GatewayError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub code: &'static str,
    pub param: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// Render with Anthropic's top-level `"type": "error"` too (for `/v1/messages`).
    pub anthropic: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code,
            param: None,
            retry_after_secs: None,
            anthropic: false,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::bad_request("invalid_value", message);
        e.param = Some(param.to_string());
        e
    }
    pub fn model_not_found(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "The model `{model}` does not exist; GET /v1/models lists the available models."
            ),
        );
        e.param = Some("model".into());
        e
    }
    pub fn param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
    pub fn anthropic(mut self) -> Self {
        self.anthropic = true;
        self
    }

    /// OpenAI's error `type` for a status.
    pub fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 404 | 405 | 409 | 413 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut v = json!({"error": {
            "message": self.message,
            "type": self.kind(),
            "param": self.param,
            "code": self.code,
        }});
        if self.anthropic {
            v["type"] = json!("error");
        }
        v
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let r = e.reply();
        Self {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: r.message,
            code: r.code,
            param: r.param,
            retry_after_secs: r.retry_after_secs,
            anthropic: false,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp.extensions_mut().insert(ErrorCode(self.code));
        resp
    }
}

/// Attached to error responses so metrics can count errors by kind.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);
