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

#[cfg(test)]
pub(crate) mod golden {
    /// Compares `got` with the golden file `dir/name` (relative to this crate);
    /// `UPDATE_GOLDEN=1 cargo test` rewrites it instead (review the diff).
    pub fn check(dir: &str, name: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(dir)
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, got).expect("write golden file");
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(got, want, "{name} differs from its golden file");
    }
}
