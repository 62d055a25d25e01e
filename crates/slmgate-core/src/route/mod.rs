//! Which deployments may answer a request, in which order, and the execution of that order
//! with fallback. (Policy rules, the learned router and the confidence cascade build on this.)

pub mod executor;

pub use executor::{Attempt, Gateway, Served};
