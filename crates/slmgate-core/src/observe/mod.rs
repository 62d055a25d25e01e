//! Observability: Prometheus metrics and the cost ledger read back from the audit log.

pub mod ledger;
pub mod metrics;
pub mod traces;
