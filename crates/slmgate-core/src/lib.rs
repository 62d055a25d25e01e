//! # slmgate-core
//!
//! The gateway: a request enters at [`api`] (OpenAI / Anthropic wire formats), which hands it
//! to the [`exchange`]: governance ([`govern`]) admits it, [`route`] plans and executes it
//! against [`providers`] (the in-process engine or remote wire clients) with fallback and the
//! confidence cascade, and the exchange records it ([`observe`], the audit log). [`config`] is
//! the typed, validated `slmgate.toml`; [`wire`] holds the wire formats and their
//! translations; [`ml`] the models shared by the router, domains and guard; [`state`] the
//! loaded parts; [`server`] binds and serves. Layers import only downwards
//! (`scripts/layers.py` checks it).

pub mod advisor;
pub mod api;
pub mod config;
pub mod db;
pub mod exchange;
pub mod fuzzing;
pub mod govern;
pub mod know;
pub mod learn;
pub mod ml;
pub mod observe;
pub mod providers;
pub mod route;
pub mod server;
pub mod state;
pub mod store;
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
