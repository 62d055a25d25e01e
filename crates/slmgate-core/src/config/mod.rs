//! Typed configuration (`slmgate.toml`), validated at start.
//!
//! Unknown keys, wrong types and bad values stop the process with a message that names the
//! field and says how to fix it. Strings may reference the environment: `${VAR}` or
//! `${VAR:-default}`; paths may start with `~/`.

mod env;
mod types;
mod validate;

pub use env::interpolate;
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
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Self::from_toml(DEFAULT_CONFIG, "(embedded default)")
    }

    /// Parses and validates TOML text; `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.resolve_env()
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
