//! Which deployments may answer a request, in which order, and why — and running that.
//!
//! `table` is the routing config compiled once; `facts` what is known of a request before a
//! model runs; `plan` decides (policy rules → domain → learned router → cascade) as a plain
//! value; `tiers` executes a plan tier by tier with the confidence cascade; `executor` runs
//! one tier's fallback chain; `router` and `domain` hold the loaded classifiers' models and
//! `classifiers` the embedding model and everything that runs on it; `adapters` the LoRA
//! adapter deployments and their live loading.

pub mod adapters;
pub mod classifiers;
pub mod confidence;
pub mod domain;
pub mod executor;
pub mod facts;
pub mod plan;
pub mod published;
pub mod router;
pub mod table;
pub mod tiers;
pub mod verifier;

pub use classifiers::{Classifiers, Embedder};
pub use executor::{Attempt, Escalation, ExecError, Failure, Gateway, Served};
pub use facts::RequestFacts;
pub use plan::{plan, Plan, PlanError, RouterVerdict, DEFAULT_MAX_TOKENS_FOR_COST};
pub use table::{DeploymentId, RouteSpec, RouteTable};

#[cfg(test)]
mod executor_tests;
#[cfg(test)]
mod plan_props;
#[cfg(test)]
mod plan_tests;
