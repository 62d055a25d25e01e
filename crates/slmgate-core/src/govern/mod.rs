//! Governance: who may call (keys, rate limits, budgets), what may leave (PII policy,
//! residency, injection guard), and what is kept (the hash-chained audit log, the human
//! review queue).

pub mod audit;
pub mod cost;
pub mod db;
pub mod guard;
pub mod key_cache;
pub mod keys;
mod keys_pg;
pub mod limits;
pub mod pii;
pub mod review;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::config::Config;
use audit::AuditWriter;
use guard::Guard;
use key_cache::KeyCache;
use keys::hash_key;
use limits::Limits;
use pii::PiiScanner;

#[derive(Debug, Error)]
pub enum GovernError {
    #[error("governance store: {0}")]
    Store(String),
    #[error("governance store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Auth is off.
    Anonymous,
    Admin,
    Key(Arc<keys::KeyRecord>),
}

impl Principal {
    pub fn key(&self) -> Option<&keys::KeyRecord> {
        match self {
            Principal::Key(k) => Some(k),
            _ => None,
        }
    }
}

pub struct Governance {
    pub auth_enabled: bool,
    admin_hash: Option<String>,
    pub keys: KeyCache,
    pub limits: Arc<Limits>,
    pub audit: AuditWriter,
    pub pii: PiiScanner,
    /// Heuristics until the embedder is loaded; then heuristics plus attack similarity.
    pub guard: std::sync::RwLock<Arc<Guard>>,
    /// The admin API's connection (reviews; with Postgres: rollouts, which stay per replica).
    pub admin_db: Mutex<rusqlite::Connection>,
    pub path: PathBuf,
    /// The shared store, with `[storage] backend = "postgres"`: keys, the audit log, reviews.
    pub pg: Option<crate::db::Pg>,
    /// Rate limits and budgets shared by every replica (`[cluster] redis_url`).
    pub shared: Option<Arc<limits::shared::SharedLimits>>,
}

impl Governance {
    /// Opens the store and starts the audit writer.
    pub fn open(cfg: &Config) -> Result<Self, GovernError> {
        let path = PathBuf::from(&cfg.storage.path);
        let pg = match (cfg.storage.backend, cfg.storage.url.as_deref()) {
            (crate::config::StorageBackend::Postgres, Some(url)) => Some(
                crate::db::Pg::connect(url, cfg.storage.pool_size, cfg.storage.ca_file.as_deref())
                    .map_err(|e| GovernError::Store(format!("[storage] postgres: {e}")))?,
            ),
            _ => None,
        };
        let (keys, audit) = match &pg {
            Some(p) => (
                KeyCache::open_pg(p.clone())?,
                AuditWriter::start_pg(p.clone(), &cfg.audit)?,
            ),
            None => (
                KeyCache::open(&path)?,
                AuditWriter::start(path.clone(), &cfg.audit)?,
            ),
        };
        Ok(Self {
            auth_enabled: cfg.auth.enabled,
            admin_hash: cfg.auth.admin_key.as_deref().map(hash_key),
            keys,
            limits: Arc::new(Limits::default()),
            audit,
            pii: PiiScanner::new(cfg.pii.types.as_deref()),
            guard: std::sync::RwLock::new(Arc::new(Guard::heuristic())),
            admin_db: Mutex::new(db::open(&path)?),
            path,
            pg,
            shared: None,
        })
    }

    pub fn is_admin(&self, presented: &str) -> bool {
        // Comparing digests of equal length: no early exit that leaks the key's prefix.
        self.admin_hash.as_deref().is_some_and(|h| {
            let p = hash_key(presented);
            p.bytes().zip(h.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        })
    }

    /// A dashboard session token valid until `exp` (seconds since the epoch): the expiry and
    /// a digest of it with the admin key's hash, so it cannot be forged without the key and
    /// every session ends when the admin key changes. `None` without an admin key.
    pub fn dashboard_token(&self, exp: i64) -> Option<String> {
        let h = self.admin_hash.as_deref()?;
        let sig = audit::chain::sha256_hex(format!("dashboard:{h}:{exp}").as_bytes());
        Some(format!("{exp}.{sig}"))
    }

    /// Whether `token` is a live dashboard session.
    pub fn dashboard_session_ok(&self, token: &str) -> bool {
        let Some((exp, _)) = token.split_once('.') else {
            return false;
        };
        let Ok(exp) = exp.parse::<i64>() else {
            return false;
        };
        exp > db::now_ms() / 1000
            && self.dashboard_token(exp).is_some_and(|want| {
                want.len() == token.len()
                    && want
                        .bytes()
                        .zip(token.bytes())
                        .fold(0u8, |a, (x, y)| a | (x ^ y))
                        == 0
            })
    }

    /// Counts a request against its key's rpm and tpm (shared across replicas with Redis).
    pub async fn admit(
        &self,
        key: &keys::KeyRecord,
        est_tokens: u32,
    ) -> Result<(), limits::Refusal> {
        match &self.shared {
            Some(s) => s.admit(key, est_tokens).await,
            None => self.limits.admit(key, est_tokens),
        }
    }

    /// Reserves a request's worst-case cost against its key's budget (shared across replicas
    /// with Redis); the period's spend so far comes from the audit log.
    pub async fn reserve(
        &self,
        key: &keys::KeyRecord,
        budget: keys::Budget,
        worst_usd: f64,
        est_tokens: u32,
    ) -> Result<limits::Reservation, limits::Refusal> {
        let spent =
            |since| crate::db::blocking(|| self.keys.spend_since(&key.id, since)).unwrap_or(0.0);
        match &self.shared {
            Some(s) => s.reserve(key, budget, worst_usd, est_tokens, spent).await,
            None => self
                .limits
                .reserve(key, budget, worst_usd, est_tokens, spent),
        }
    }

    /// Corrects a key's tpm with the real token count of an answer.
    pub fn settle_tokens(&self, key: &keys::KeyRecord, estimated: u32, actual: u32) {
        match &self.shared {
            Some(s) => s.settle_tokens(key, estimated, actual),
            None => self.limits.settle_tokens(&key.id, estimated, actual),
        }
    }

    /// Runs `f` on the admin connection of the SQLite file (reviews, rollouts without a
    /// shared store).
    pub fn with_admin_db<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
        f(&self.admin_db.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn guard(&self) -> Arc<Guard> {
        self.guard.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the guard (once the embedding model is loaded: rules plus the classifier).
    pub fn set_guard(&self, g: Guard) {
        *self.guard.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(g);
    }
}
