//! What a request waits on under sync durability: the writer tells each entry's notice once
//! its group commit is on disk (or could not be written).

use tokio::sync::oneshot;

/// Sent to a request when its entry is committed (`true`) or could not be (`false`).
pub type CommitNotice = oneshot::Sender<bool>;

/// What a request awaits before its answer leaves (nothing under `interval`).
#[derive(Debug, Default)]
pub struct CommitWait(Option<oneshot::Receiver<bool>>);

impl CommitWait {
    /// True once the entry is on disk (at once when there is nothing to wait for); false
    /// when it could not be written, or the writer is gone.
    pub async fn committed(self) -> bool {
        match self.0 {
            None => true,
            Some(rx) => rx.await.unwrap_or(false),
        }
    }

    /// Nothing to wait for (interval durability).
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// A wait for `rx` (the writer's side holds the matching notice).
    pub(super) fn on(rx: oneshot::Receiver<bool>) -> Self {
        Self(Some(rx))
    }
}
