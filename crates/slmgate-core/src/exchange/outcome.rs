//! What an exchange gives back: a whole answer with what it cost, or a stream of chunks; with
//! either, what the response headers say about how it was served.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use super::GatewayError;
use crate::govern::audit::CommitWait;
use crate::govern::cost::RequestCost;
use crate::route::Served;
use crate::wire::openai::{ChatChunk, ChatResponse};

pub enum Outcome {
    Answer(Answer),
    Stream(AnswerStream),
}

/// A whole answer (redacted PII restored), and what it cost.
pub struct Answer {
    pub response: ChatResponse,
    pub meta: ServedMeta,
    pub cost: RequestCost,
}

/// A stream committed to one deployment. It finishes the exchange at its end; dropped
/// early, the exchange finishes as abandoned. An `Err` item is a failure after the stream
/// started, and the last item.
pub struct AnswerStream {
    pub meta: ServedMeta,
    chunks: Pin<Box<dyn Stream<Item = Result<ChatChunk, GatewayError>> + Send>>,
}

impl AnswerStream {
    pub(super) fn new(
        meta: ServedMeta,
        chunks: Pin<Box<dyn Stream<Item = Result<ChatChunk, GatewayError>> + Send>>,
    ) -> Self {
        Self { meta, chunks }
    }

    /// The same stream, ending only once `commit` resolves; a failed commit ends it with an
    /// `audit_unavailable` error item instead of a clean end.
    pub(super) fn then_commit(self, commit: CommitWait) -> Self {
        if commit.is_none() {
            return self;
        }
        let Self { meta, mut chunks } = self;
        let chunks = async_stream::stream! {
            while let Some(item) = chunks.next().await {
                let last = item.is_err();
                yield item;
                if last {
                    return;
                }
            }
            // The relay (and with it the exchange and its ticket) is done: the entry is
            // submitted.
            drop(chunks);
            if !commit.committed().await {
                yield Err(GatewayError::AuditUnavailable);
            }
        };
        Self::new(meta, Box::pin(chunks))
    }
}

impl Stream for AnswerStream {
    type Item = Result<ChatChunk, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

/// How a request was served: the `x-slmgate-*` response headers say this.
#[derive(Debug, Clone)]
pub struct ServedMeta {
    /// The deployment that answered.
    pub deployment: String,
    /// `local`, `openai`, `anthropic`, `gemini`.
    pub provider: &'static str,
    /// Deployments called, the answering one included.
    pub attempts: usize,
    /// The first deployment that failed, when the answer came from a fallback.
    pub fallback_from: Option<String>,
    /// The plan tier that answered.
    pub tier: Arc<str>,
    /// Why: the plan's reasons, then each escalation (ASCII).
    pub reason: String,
    pub escalations: usize,
    /// The answering tier's confidence, when a cascade judged it.
    pub confidence: Option<f32>,
    /// Chunk ids of the passages retrieval put into the prompt.
    pub citations: Vec<String>,
    /// `hit`, `miss` or `bypass` when the route is cached.
    pub cache: Option<&'static str>,
    /// The A/B rollout arm (`candidate` or `control`).
    pub rollout: Option<&'static str>,
}

impl ServedMeta {
    pub(super) fn new(served: &Served, reason: String) -> Self {
        Self {
            deployment: served.deployment.name.clone(),
            provider: served.deployment.provider.kind(),
            attempts: served.attempts.len() + 1,
            fallback_from: served.attempts.first().map(|a| a.deployment.clone()),
            tier: served.tier.clone(),
            reason,
            escalations: served.escalations.len(),
            confidence: served.confidence,
            citations: Vec::new(),
            cache: None,
            rollout: None,
        }
    }
}
