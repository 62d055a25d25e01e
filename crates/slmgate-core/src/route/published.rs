//! Routers published to the shared store, so that every replica of a scaled-out deployment
//! serves the same router without a shared volume: `slmgate router publish --route R` stores
//! the file's text under the route with the next version number, and each replica adopts a
//! version newer than its own at start and within its 2-second refresh
//! (`Classifiers::adopt_published`). Postgres only: one machine reloads the file itself.

use crate::db::{now_ms, Pg, PgError};

/// One route's published router.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub route: String,
    pub version: i64,
    /// The router's JSON, as `router train` writes it.
    pub body: String,
    /// Who published it and from where (shown by `router publish` and in the audit log).
    pub note: String,
    pub published_ms: i64,
}

/// Stores `body` as the route's router; returns its version (1 for the first, then one more
/// than the last, whichever process published it).
pub fn publish(pg: &Pg, route: &str, body: &str, note: &str) -> Result<i64, PgError> {
    crate::db::blocking(|| {
        let row = pg.get()?.query_one(
            "INSERT INTO published_routers (route, version, body, note, published_ms)
             VALUES ($1, 1, $2, $3, $4)
             ON CONFLICT (route) DO UPDATE SET version = published_routers.version + 1,
                 body = EXCLUDED.body, note = EXCLUDED.note, published_ms = EXCLUDED.published_ms
             RETURNING version",
            &[&route, &body, &note, &now_ms()],
        )?;
        Ok(row.get(0))
    })
}

/// Every route's published version (cheap: what replicas poll).
pub fn versions(pg: &Pg) -> Result<Vec<(String, i64)>, PgError> {
    crate::db::blocking(|| {
        Ok(pg
            .get()?
            .query("SELECT route, version FROM published_routers", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    })
}

/// A route's published router, if any.
pub fn fetch(pg: &Pg, route: &str) -> Result<Option<Published>, PgError> {
    crate::db::blocking(|| {
        Ok(pg
            .get()?
            .query_opt(
                "SELECT version, body, note, published_ms FROM published_routers WHERE route = $1",
                &[&route],
            )?
            .map(|r| Published {
                route: route.to_string(),
                version: r.get(0),
                body: r.get(1),
                note: r.get(2),
                published_ms: r.get(3),
            }))
    })
}
