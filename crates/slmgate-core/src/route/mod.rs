//! Which deployments may answer a request, in which order, and why.
//!
//! `plan` decides (policy rules → learned router → cascade condition) as a plain value;
//! `tiers` executes a plan tier by tier with the confidence cascade; `executor` runs one
//! tier's fallback chain; `router` is the learned pre-generation router and its metrics.

pub mod collect;
pub mod confidence;
pub mod domain;
pub mod executor;
pub mod plan;
pub mod router;
pub mod tiers;
pub mod verifier;

pub use executor::{Attempt, Escalation, Gateway, Served};
pub use plan::{plan, Plan, PlanError, RequestFacts, RouterVerdict, DEFAULT_MAX_TOKENS_FOR_COST};

#[cfg(test)]
mod plan_tests;
