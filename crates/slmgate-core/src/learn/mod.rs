//! The learning loop: shadow mode (other deployments answer a sampled share of a route's
//! requests off the response path, and their agreement with the route's answers is kept and
//! reported), A/B rollouts with automatic rollback, and distillation export (a teacher's
//! answers as SFT data), and the production feedback `router retrain` learns from.

pub mod agreement;
pub mod distill;
pub mod feedback;
pub mod report;
pub mod rollout;
pub mod shadow;
pub mod snapshot;
pub mod store;
pub mod store_pg;

pub use shadow::Shadows;
