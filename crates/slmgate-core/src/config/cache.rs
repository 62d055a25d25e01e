//! `[cache]`: the response cache (exact, then semantic), and a route's `cache = { ... }`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Cache every route and model (a route's `cache.enabled` overrides this).
    #[serde(default)]
    pub enabled: bool,
    /// Entries kept at most; the least recently used go first.
    #[serde(default = "defaults::max_entries")]
    pub max_entries: usize,
    /// Seconds an entry is served for.
    #[serde(default = "defaults::ttl_secs")]
    pub ttl_secs: u64,
    /// Also answer a question whose embedding is at least this similar (cosine) to a cached
    /// one in the same scope; measured in docs/benchmarks.md.
    #[serde(default = "defaults::semantic_threshold")]
    pub semantic_threshold: f32,
    /// Look up by meaning as well as by exact text (needs `[embeddings]`).
    #[serde(default = "defaults::semantic")]
    pub semantic: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_entries: defaults::max_entries(),
            ttl_secs: defaults::ttl_secs(),
            semantic_threshold: defaults::semantic_threshold(),
            semantic: defaults::semantic(),
        }
    }
}

/// A route's `cache = { enabled = true, semantic_threshold = 0.95, ttl_secs = 600 }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheConfig {
    pub enabled: Option<bool>,
    pub semantic: Option<bool>,
    pub semantic_threshold: Option<f32>,
    pub ttl_secs: Option<u64>,
}

/// What applies to one request's route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachePolicy {
    pub semantic: bool,
    pub threshold: f32,
    pub ttl: std::time::Duration,
}

impl CacheConfig {
    /// The policy for a route (`None`: not cached).
    pub fn policy(&self, route: Option<&RouteCacheConfig>) -> Option<CachePolicy> {
        let r = route.cloned().unwrap_or_default();
        if !r.enabled.unwrap_or(self.enabled) {
            return None;
        }
        Some(CachePolicy {
            semantic: r.semantic.unwrap_or(self.semantic),
            threshold: r.semantic_threshold.unwrap_or(self.semantic_threshold),
            ttl: std::time::Duration::from_secs(r.ttl_secs.unwrap_or(self.ttl_secs)),
        })
    }
}

mod defaults {
    pub fn max_entries() -> usize {
        10_000
    }
    pub fn ttl_secs() -> u64 {
        3600
    }
    pub fn semantic_threshold() -> f32 {
        0.92
    }
    pub fn semantic() -> bool {
        true
    }
}
