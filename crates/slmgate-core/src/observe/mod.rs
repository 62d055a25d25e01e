//! Observability: Prometheus metrics (and, later, cost ledger and traces).

pub mod metrics;
