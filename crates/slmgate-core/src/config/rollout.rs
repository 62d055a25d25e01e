//! A route's `rollout = { candidate = "auto-v2", share = 0.1 }`: a sticky share of its
//! requests is served by another route version (or model), rolled back automatically when
//! the candidate fails too often. `slmgate rollout set` changes the share while serving.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// The route, alias or model that serves the candidate share (until `slmgate rollout
    /// set` says otherwise).
    pub candidate: Option<String>,
    /// The share of requests (by sticky identity) the candidate serves, 0 to 1.
    #[serde(default)]
    pub share: f64,
    /// Who stays on one arm: `key` (the API key, then the request's user) or `user` (the
    /// request's `user`, then the key). Requests with neither are assigned at random.
    #[serde(default)]
    pub sticky: Sticky,
    /// Roll back once more than this share of the candidate's requests fail (5xx)...
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// ...or more than this share of its reviewed answers are judged bad...
    #[serde(default = "default_max_bad_share")]
    pub max_bad_share: f64,
    /// ...judged over at least this many of its requests (or reviews) since the last change.
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sticky {
    #[default]
    Key,
    User,
}

fn default_max_error_rate() -> f64 {
    0.05
}

fn default_max_bad_share() -> f64 {
    0.2
}

fn default_min_requests() -> u32 {
    20
}
