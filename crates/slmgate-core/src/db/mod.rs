//! The shared store of a scaled-out deployment: Postgres (`[storage] backend = "postgres"`),
//! reached through a pool of blocking connections, with its schema applied by versioned
//! migrations. Every replica opens the same database; the stores that use it (keys, the
//! audit log, reviews, the ledger, RAG collections, the response cache) live beside their
//! SQLite versions in their own modules.

pub mod migrations;

use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PgError {
    #[error("postgres: {0}")]
    Client(#[from] postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("postgres: {0}")]
    Other(String),
}

/// Runs blocking store work wherever it is called from. The Postgres client blocks on a
/// runtime of its own, which Tokio forbids inside an async task: on a worker of the
/// multi-threaded runtime the work steps off the worker (`block_in_place`); elsewhere (a
/// blocking-pool or plain thread, the CLI) it just runs.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// A pool of connections to the shared Postgres database. Cheap to clone.
#[derive(Clone)]
pub struct Pg {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pg")
    }
}

impl Pg {
    /// Connects (waiting up to 10 s for the first connection) and brings the schema up to
    /// date. Replicas starting together migrate one at a time (an advisory lock).
    pub fn connect(url: &str, size: u32) -> Result<Self, PgError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| PgError::Other(format!("bad URL: {e}")))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        let pg = Self { pool };
        migrations::apply(&mut *pg.get()?)?;
        Ok(pg)
    }

    /// A connection from the pool (waits up to 10 s for one).
    pub fn get(&self) -> Result<Conn, PgError> {
        Ok(self.pool.get()?)
    }
}
