//! Why a deployment failed, and what the gateway may do about it (retry, fall back, or
//! return the error to the client).

use std::time::Duration;

use axum::http::StatusCode;

use crate::api::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The connection could not be made (refused, reset, DNS, TLS).
    Connect,
    /// No response (or no first event) within the deadline, or the total deadline passed.
    Timeout,
    /// Upstream said 429.
    RateLimited,
    /// Upstream said 5xx.
    ServerError,
    /// Upstream rejected our credentials or this model (401/403/404): a config problem.
    Unauthorized,
    /// Upstream rejected the request itself (400/413/422): the client's problem; no fallback.
    BadRequest,
    /// The response broke the wire format (bad JSON, truncated stream).
    Protocol,
    /// The local engine's queue is full.
    Overloaded,
    /// The prompt does not fit this model's context.
    ContextOverflow,
    /// Local engine failure.
    Internal,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::ServerError => "server_error",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::BadRequest => "bad_request",
            FailureKind::Protocol => "protocol",
            FailureKind::Overloaded => "overloaded",
            FailureKind::ContextOverflow => "context_overflow",
            FailureKind::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProviderError {
    pub kind: FailureKind,
    /// HTTP status from the upstream, if any.
    pub status: Option<u16>,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// For `BadRequest`: the error to hand back to the client verbatim.
    pub client_error: Option<Box<ApiError>>,
}

impl ProviderError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
            client_error: None,
        }
    }

    /// Worth another attempt at the same deployment.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Connect
                | FailureKind::Timeout
                | FailureKind::RateLimited
                | FailureKind::ServerError
        )
    }

    /// Worth trying the next deployment of the chain.
    pub fn may_fall_back(&self) -> bool {
        self.kind != FailureKind::BadRequest
    }

    /// Counts towards the deployment's cooldown (the deployment, not the request, is at fault).
    pub fn is_deployment_fault(&self) -> bool {
        !matches!(
            self.kind,
            FailureKind::BadRequest | FailureKind::ContextOverflow
        )
    }

    /// The error the client sees when nothing else could answer.
    pub fn to_api_error(&self, deployment: &str) -> ApiError {
        if let Some(e) = &self.client_error {
            return (**e).clone();
        }
        let (status, code) = match self.kind {
            FailureKind::Connect => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
            FailureKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            FailureKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
            FailureKind::ServerError => (StatusCode::BAD_GATEWAY, "upstream_error"),
            FailureKind::Unauthorized => (StatusCode::BAD_GATEWAY, "upstream_auth_failed"),
            FailureKind::BadRequest => (StatusCode::BAD_REQUEST, "invalid_request"),
            FailureKind::Protocol => (StatusCode::BAD_GATEWAY, "upstream_protocol_error"),
            FailureKind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "model_overloaded"),
            FailureKind::ContextOverflow => (StatusCode::BAD_REQUEST, "context_length_exceeded"),
            FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "engine_error"),
        };
        let message = match self.kind {
            FailureKind::ContextOverflow | FailureKind::Overloaded => self.message.clone(),
            _ => format!("deployment `{deployment}` failed: {}", self.message),
        };
        let mut e = ApiError::new(status, code, message);
        if matches!(self.kind, FailureKind::ContextOverflow) {
            e.param = Some("messages".into());
        }
        let wait = self
            .retry_after
            .map(|d| d.as_secs().max(1))
            .or(match self.kind {
                FailureKind::Overloaded | FailureKind::RateLimited => Some(1),
                _ => None,
            });
        if let Some(s) = wait {
            e = e.with_retry_after(s);
        }
        e
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
