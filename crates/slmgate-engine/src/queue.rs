//! The bounded queue between callers and the batch loop: a [`Job`] per submitted request,
//! its [`QueuePlace`], and the [`GenerationStream`] the caller reads events from.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::adapter::{AdapterInfo, AdapterSpec};
use crate::request::{GenerationEvent, PreparedRequest};
use crate::stats::EngineStats;
use crate::EngineError;

/// What the batch loop receives: requests to serve, and adapter loads (which must run on the
/// engine thread).
pub(crate) enum Msg {
    Job(Job),
    LoadAdapter {
        spec: AdapterSpec,
        reply: tokio::sync::oneshot::Sender<Result<AdapterInfo, EngineError>>,
    },
}

/// A request waiting in the queue, as the batch loop receives it.
pub(crate) struct Job {
    pub req: PreparedRequest,
    pub events: mpsc::UnboundedSender<GenerationEvent>,
    pub enqueued: Instant,
    pub place: Arc<QueuePlace>,
}

/// Where a request is: waiting in the queue, in a slot, or cancelled while waiting. Whoever
/// moves it out of `WAITING` first (the batch loop admitting it, or the client dropping its
/// stream) releases its queue place, so a cancelled request frees capacity at once.
#[derive(Debug, Default)]
pub(crate) struct QueuePlace(AtomicU8);

impl QueuePlace {
    const WAITING: u8 = 0;
    const ADMITTED: u8 = 1;
    const CANCELLED: u8 = 2;

    /// The batch loop takes the request; false if the client already left.
    pub(crate) fn admit(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WAITING,
                Self::ADMITTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::CANCELLED
    }

    fn cancel(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WAITING,
                Self::CANCELLED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

/// Events of one generation. Dropping it cancels the sequence at the next decode step.
pub struct GenerationStream {
    pub(crate) rx: mpsc::UnboundedReceiver<GenerationEvent>,
    pub prompt_tokens: usize,
    pub(crate) place: Arc<QueuePlace>,
    pub(crate) stats: Arc<EngineStats>,
}

impl Drop for GenerationStream {
    fn drop(&mut self) {
        if self.place.cancel() {
            self.stats.queued.fetch_sub(1, Ordering::AcqRel);
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl GenerationStream {
    pub async fn next(&mut self) -> Option<GenerationEvent> {
        self.rx.recv().await
    }

    /// Blocking variant for non-async callers (benchmarks, CLI).
    pub fn blocking_next(&mut self) -> Option<GenerationEvent> {
        self.rx.blocking_recv()
    }
}
