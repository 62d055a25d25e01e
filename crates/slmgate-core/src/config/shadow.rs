//! A route's `shadow = { models = ["gemma"], sample = 0.1 }`: a sampled share of its requests
//! is answered again by other deployments, off the response path, and the answers compared.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// `[models.*]` deployments that answer the same request beside the route.
    pub models: Vec<String>,
    /// The share of the route's answered requests shadowed (0 to 1).
    #[serde(default = "default_sample")]
    pub sample: f64,
    /// Shadow requests waiting at most; beyond it new ones are dropped (and counted), so a
    /// slow shadow never holds memory or the route's answers.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Shadow requests of this route running at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_sample() -> f64 {
    0.1
}

fn default_queue() -> usize {
    64
}

fn default_concurrency() -> usize {
    1
}
