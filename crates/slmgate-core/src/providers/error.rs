//! Why a deployment failed, and what the gateway may do about it (retry, fall back, or
//! return the error to the client).

use std::time::Duration;

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
    /// Upstream rejected our credentials or this model (401/403/404), or redirected (3xx):
    /// a config problem.
    Unauthorized,
    /// The request itself was refused (an upstream's 400/413/422, or what a local model
    /// cannot do): the client's problem; no fallback, no escalation.
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

/// What the client got wrong, when a deployment refused the request itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// A stable error code (`invalid_value`, `upstream_rejected_request`, ...).
    pub code: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// Said to the client as is.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ProviderError {
    pub kind: FailureKind,
    /// HTTP status from the upstream, if any.
    pub status: Option<u16>,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// For `BadRequest`: what to tell the client.
    pub rejection: Option<Box<Rejection>>,
}

impl ProviderError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
            rejection: None,
        }
    }

    /// The request was refused for what it asks (`param`, when one field is at fault).
    pub fn rejected(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(FailureKind::BadRequest, message.clone());
        e.rejection = Some(Box::new(Rejection {
            code,
            param: param.map(str::to_string),
            message,
        }));
        e
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

    /// Worth trying the next tier of a plan: the deployment's fault, not the request's.
    pub fn may_escalate(&self) -> bool {
        !matches!(
            self.kind,
            FailureKind::BadRequest | FailureKind::ContextOverflow
        )
    }

    /// Counts towards the deployment's cooldown (the deployment, not the request, is at fault).
    pub fn is_deployment_fault(&self) -> bool {
        !matches!(
            self.kind,
            FailureKind::BadRequest | FailureKind::ContextOverflow
        )
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
