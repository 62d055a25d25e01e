//! Why an exchange gave no answer, and the one function that turns that into what a client
//! is told: status, code, message, the offending field, and when to retry. `api/` renders it
//! in each wire's error shape; the audit entry and the metrics record its status and code.

use crate::govern::limits::Refusal;
use crate::providers::{FailureKind, ProviderError};
use crate::route::{ExecError, PlanError};
use crate::wire::InvalidRequest;

#[derive(Debug, Clone)]
pub enum GatewayError {
    /// The request is malformed, or asks for what no deployment does.
    Invalid(InvalidRequest),
    /// Governance refused it before any model was called.
    Refused(Refused),
    /// Routing found no plan for it: unknown model, a deny rule, nothing allowed.
    Plan(PlanError),
    /// Every deployment that was tried failed; this is the last failure.
    Provider {
        deployment: String,
        error: ProviderError,
    },
    /// The plan names no deployment.
    NoDeployment,
    /// Models are still loading.
    NotReady,
    /// The request names something stored that does not exist (or is another key's):
    /// a `previous_response_id`.
    NotFound {
        param: &'static str,
        message: String,
    },
    /// The audit log cannot be written (a full disk, a lock): under sync durability no
    /// answer leaves unaudited.
    AuditUnavailable,
    /// The gateway's own fault (a worker task died, the server is stopping).
    Internal { code: &'static str, message: String },
    /// The route's retrieval (RAG) could not run: its collection is missing, or the
    /// embedding model or the index failed. The request is not answered without its
    /// documents.
    Retrieval { status: u16, message: String },
}

/// A governance refusal.
#[derive(Debug, Clone)]
pub enum Refused {
    /// The API key may not use this model.
    ModelNotAllowed(String),
    /// A rate limit or the budget (429 with a retry time).
    Limit(Refusal),
    /// The PII policy blocks these types (never the values).
    Pii(Vec<String>),
    /// The injection guard blocks a request scoring this.
    Injection(f32),
}

/// What the client is told.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub retry_after_secs: Option<u64>,
}

impl ErrorReply {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            param: None,
            retry_after_secs: None,
        }
    }

    fn param(mut self, p: impl Into<String>) -> Self {
        self.param = Some(p.into());
        self
    }

    fn retry(mut self, secs: Option<u64>) -> Self {
        self.retry_after_secs = secs;
        self
    }
}

impl From<InvalidRequest> for GatewayError {
    fn from(e: InvalidRequest) -> Self {
        GatewayError::Invalid(e)
    }
}

impl From<PlanError> for GatewayError {
    fn from(e: PlanError) -> Self {
        GatewayError::Plan(e)
    }
}

impl From<Refused> for GatewayError {
    fn from(r: Refused) -> Self {
        GatewayError::Refused(r)
    }
}

impl From<ExecError> for GatewayError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Provider { deployment, error } => {
                GatewayError::Provider { deployment, error }
            }
            ExecError::NoDeployment => GatewayError::NoDeployment,
        }
    }
}

impl GatewayError {
    pub fn model_not_found(model: &str) -> Self {
        GatewayError::Plan(PlanError::UnknownRoute(model.to_string()))
    }

    /// The status, code and message of this error: the only place either is decided.
    pub fn reply(&self) -> ErrorReply {
        match self {
            GatewayError::Invalid(e) => {
                let r = ErrorReply::new(400, e.code, e.message.clone());
                match &e.param {
                    Some(p) => r.param(p.clone()),
                    None => r,
                }
            }
            GatewayError::Refused(r) => refused(r),
            GatewayError::Plan(e) => match e {
                PlanError::UnknownRoute(m) => ErrorReply::new(
                    404,
                    "model_not_found",
                    format!(
                        "The model `{m}` does not exist; GET /v1/models lists the available models."
                    ),
                )
                .param("model"),
                PlanError::Denied { .. } => ErrorReply::new(403, "route_denied", e.to_string()),
                PlanError::NothingAllowed { .. } => {
                    ErrorReply::new(403, "no_allowed_model", e.to_string())
                }
            },
            GatewayError::Provider { deployment, error } => provider(deployment, error),
            GatewayError::NoDeployment => ErrorReply::new(
                503,
                "no_deployment",
                "No deployment is configured for this model.",
            ),
            GatewayError::NotReady => ErrorReply::new(
                503,
                "not_ready",
                "Models are still loading; retry shortly (GET /ready turns 200 when done).",
            )
            .retry(Some(2)),
            GatewayError::NotFound { param, message } => {
                ErrorReply::new(404, "not_found", message.clone()).param(*param)
            }
            GatewayError::AuditUnavailable => ErrorReply::new(
                503,
                "audit_unavailable",
                "The audit log cannot be written (for example, the disk is full), and no answer is released unaudited; retry later.",
            )
            .retry(Some(5)),
            GatewayError::Internal { code, message } => ErrorReply::new(500, code, message.clone()),
            GatewayError::Retrieval { status, message } => {
                let code = match status {
                    404 => "collection_not_found",
                    503 => "retrieval_unavailable",
                    _ => "retrieval_failed",
                };
                ErrorReply::new(*status, code, message.clone())
            }
        }
    }
}

fn refused(r: &Refused) -> ErrorReply {
    match r {
        Refused::ModelNotAllowed(m) => ErrorReply::new(
            403,
            "model_not_allowed",
            format!("This API key may not use model `{m}`."),
        ),
        Refused::Limit(l) => {
            // The shared limits store unreachable (`*_unavailable`) is not the caller's doing.
            let status = if l.code.ends_with("_unavailable") {
                503
            } else {
                429
            };
            ErrorReply::new(status, l.code, l.message.clone()).retry(l.retry_after_secs)
        }
        Refused::Pii(types) => ErrorReply::new(
            403,
            "pii_blocked",
            format!(
                "The request contains personal data ({}) and this model's policy blocks it.",
                types.join(", ")
            ),
        ),
        Refused::Injection(score) => ErrorReply::new(
            403,
            "prompt_injection",
            format!("The request looks like a prompt-injection attempt (score {score:.2})."),
        ),
    }
}

/// A deployment's failure as the client sees it when nothing else could answer.
fn provider(deployment: &str, e: &ProviderError) -> ErrorReply {
    let (status, code) = match e.kind {
        FailureKind::Connect => (502, "upstream_unreachable"),
        FailureKind::Timeout => (504, "upstream_timeout"),
        FailureKind::RateLimited => (429, "upstream_rate_limited"),
        FailureKind::ServerError => (502, "upstream_error"),
        FailureKind::Unauthorized => (502, "upstream_auth_failed"),
        FailureKind::BadRequest => {
            // The request itself was refused: hand back what was wrong with it.
            let status = e.status.filter(|s| (400..500).contains(s)).unwrap_or(400);
            return match &e.rejection {
                Some(r) => {
                    let reply = ErrorReply::new(status, r.code, r.message.clone());
                    match &r.param {
                        Some(p) => reply.param(p.clone()),
                        None => reply,
                    }
                }
                None => ErrorReply::new(status, "invalid_request", e.message.clone()),
            };
        }
        FailureKind::Protocol => (502, "upstream_protocol_error"),
        FailureKind::Overloaded => (503, "model_overloaded"),
        FailureKind::ContextOverflow => (400, "context_length_exceeded"),
        FailureKind::Internal => (500, "engine_error"),
    };
    let message = match e.kind {
        FailureKind::ContextOverflow | FailureKind::Overloaded => e.message.clone(),
        _ => format!("deployment `{deployment}` failed: {}", e.message),
    };
    let mut reply = ErrorReply::new(status, code, message);
    if e.kind == FailureKind::ContextOverflow {
        reply = reply.param("messages");
    }
    let wait = e.retry_after.map(|d| d.as_secs().max(1)).or(match e.kind {
        FailureKind::Overloaded | FailureKind::RateLimited => Some(1),
        _ => None,
    });
    reply.retry(wait)
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.reply();
        write!(f, "{} {}: {}", r.status, r.code, r.message)
    }
}

impl std::error::Error for GatewayError {}
