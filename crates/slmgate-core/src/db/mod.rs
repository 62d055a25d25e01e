//! The shared store of a scaled-out deployment: Postgres (`[storage] backend = "postgres"`),
//! reached through a pool of blocking connections, with its schema applied by versioned
//! migrations. Every replica opens the same database; the stores that use it (keys, the
//! audit log, reviews, the ledger, RAG collections, the response cache) live beside their
//! SQLite versions in their own modules.

pub mod migrations;
pub mod tls;

use std::time::Duration;

use r2d2_postgres::PostgresConnectionManager;
use thiserror::Error;
use tokio_postgres_rustls::MakeRustlsConnect;

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

/// A client error with its causes (`postgres::Error` alone prints "db error" for what the
/// server said).
pub fn explain(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub type Conn = r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>;

/// A pool of connections to the shared Postgres database. Cheap to clone.
#[derive(Clone)]
pub struct Pg {
    pool: r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pg")
    }
}

impl Pg {
    /// Connects (waiting up to 10 s for the first connection) and brings the schema up to
    /// date. Replicas starting together migrate one at a time (an advisory lock). TLS as the
    /// URL's `sslmode` says (`tls`), with `ca_file` added to the trusted roots.
    pub fn connect(url: &str, size: u32, ca_file: Option<&str>) -> Result<Self, PgError> {
        let (config, tls) = tls::connector(url, ca_file)?;
        // One connection first, so that a refusal (pg_hba, a password, a certificate) is
        // reported as the server or TLS stated it, at once, not as a pool timeout.
        let first = blocking(|| config.connect(tls.clone()))
            .map_err(|e| PgError::Other(format!("cannot connect: {}", explain(&e))))?;
        drop(first);
        let manager = PostgresConnectionManager::new(config, tls);
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
