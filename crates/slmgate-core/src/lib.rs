//! # slmgate-core
//!
//! The gateway: a request enters at [`api`] (OpenAI / Anthropic wire formats), is checked,
//! resolved to a chain of deployments by [`route`], executed against [`providers`] (the
//! in-process engine or remote wire clients) with retries and fallback, and recorded by
//! [`observe`]. [`config`] is the typed, validated `slmgate.toml`; [`wire`] holds the wire
//! formats and their translations; [`server`] binds and serves.

pub mod advisor;
pub mod api;
pub mod config;
pub mod govern;
pub mod observe;
pub mod providers;
pub mod route;
pub mod server;
pub mod state;
pub mod wire;
