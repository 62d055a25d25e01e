//! Typed configuration (`slmgate.toml`), validated at start.
//!
//! Unknown keys, wrong types and bad values stop the process with a message that names the
//! field and says how to fix it. Strings may reference the environment: `${VAR}` or
//! `${VAR:-default}`; paths may start with `~/`.

mod adapter_deployments;
mod adapters;
mod cache;
mod checks;
mod cost;
mod env;
mod govern;
pub mod hybrid;
mod knowledge;
mod rollout;
mod routes;
mod shadow;
mod speculative;
mod telemetry;
mod types;
mod validate;
mod validate_routes;

pub use adapters::{AdapterConfig, AdapterOf};
pub use cache::*;
pub use cost::*;
pub use env::{expand_home_path, interpolate};
pub use govern::*;
pub use knowledge::*;
pub use rollout::{RolloutConfig, Sticky};
pub use routes::*;
pub use shadow::ShadowConfig;
pub use speculative::LookupConfig;
pub use telemetry::*;
pub use types::*;

use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config {origin}: `{field}`: {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
}

/// The default config compiled into the binary (`slmgate.toml` at the repository root).
pub const DEFAULT_CONFIG: &str = include_str!("../../../../slmgate.toml");

impl Config {
    /// Reads, parses and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The embedded default config.
    /// (With `OPENAI_API_KEY` or `ANTHROPIC_API_KEY` set: the hybrid default, see [`hybrid`].)
    pub fn embedded_default() -> Result<Self, ConfigError> {
        let text = hybrid::default_text(DEFAULT_CONFIG, |k| std::env::var(k).ok());
        Self::from_toml(&text, "(embedded default)")
    }

    /// Parses and validates TOML text; `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: diagnose_models(text).unwrap_or_else(|| e.to_string().trim_end().to_string()),
        })?;
        cfg.resolve_env()
            .and_then(|()| cfg.expand_adapters())
            .map_err(|(field, message)| ConfigError::Invalid {
                origin: origin.to_string(),
                field,
                message,
            })?;
        validate::validate(&cfg).map_err(|(field, message)| ConfigError::Invalid {
            origin: origin.to_string(),
            field,
            message,
        })?;
        Ok(cfg)
    }
}

/// `[models.NAME]` tables are a tagged enum, whose parse errors lose the key; re-parse each
/// table as its own type to name the model and the field.
fn diagnose_models(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let models = table.get("models")?.as_table()?;
    for (name, v) in models {
        let Some(t) = v.as_table() else {
            return Some(format!("`models.{name}` must be a table"));
        };
        let kind = t.get("type").and_then(|k| k.as_str());
        let mut rest = t.clone();
        rest.remove("type");
        let err = match kind {
            Some("local") => toml::Value::Table(rest)
                .try_into::<LocalModelConfig>()
                .err(),
            Some("remote") => toml::Value::Table(rest)
                .try_into::<RemoteModelConfig>()
                .err(),
            Some(other) => {
                return Some(format!(
                "`models.{name}.type`: unknown type {other:?}; expected \"local\" or \"remote\""
            ))
            }
            None => {
                return Some(format!(
                    "`models.{name}.type` is missing; set it to \"local\" or \"remote\""
                ))
            }
        };
        if let Some(e) = err {
            return Some(format!("`models.{name}`: {}", e.to_string().trim_end()));
        }
    }
    None
}

#[cfg(test)]
mod tests;
