//! The tamper-evident audit log: one hash-chained entry per request, content stored apart
//! (erasable), written in batches (group commits) by one writer thread.

pub mod chain;
pub mod commit;
pub mod entry;
pub mod pg;
pub mod store;
pub mod verify;
pub mod writer;

pub use commit::{CommitNotice, CommitWait};
pub use entry::{
    AttemptSummary, CacheSummary, Entry, GuardSummary, PiiSummary, PlanSummary, Record,
    RetrievalSummary, RetrievedChunk, ReviewItem, RolloutSummary, ServedSummary, StoredContent,
};
pub use verify::{export, forget, verify, Verification};
pub use writer::AuditWriter;

#[cfg(test)]
mod tests;
