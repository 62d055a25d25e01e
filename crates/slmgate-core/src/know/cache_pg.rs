//! The response cache shared by every replica (`[storage] backend = "postgres"`): the same
//! scopes, exact keys and semantic lookup as [`super::cache::ResponseCache`], in one
//! Postgres table, question vectors in a pgvector column (cosine distance, `<=>`). Each
//! replica keeps its in-memory cache in front of it; an answer cached through one replica is
//! found through any other. Entries expire at their TTL; beyond `max_entries` the least
//! recently used go (pruned on the refresh tick).

use pgvector::Vector;
use serde::{Deserialize, Serialize};

use super::cache::{Cached, Found, Probe};
use super::context::Citation;
use super::vectors::normalise;
use crate::db::{Pg, PgError};
use crate::wire::openai::ChatResponse;

/// What is stored of a cached answer.
#[derive(Serialize, Deserialize)]
struct Stored {
    response: ChatResponse,
    citations: Vec<Citation>,
    source: String,
}

pub struct SharedCache {
    pg: Pg,
    max_entries: usize,
}

impl SharedCache {
    pub fn new(pg: Pg, max_entries: usize) -> Self {
        Self { pg, max_entries }
    }

    fn decode(text: &str) -> Option<std::sync::Arc<Cached>> {
        let s: Stored = serde_json::from_str(text).ok()?;
        Some(std::sync::Arc::new(Cached {
            response: s.response,
            citations: s.citations,
            source: s.source,
        }))
    }

    /// The fresh entry of exactly this request.
    pub fn exact(&self, p: &Probe) -> Result<Option<Found>, PgError> {
        let now = crate::db::now_ms();
        let row = self.pg.get()?.query_opt(
            "UPDATE cache_entries SET used_ms = $3 WHERE scope = $1 AND exact = $2 AND expires_ms > $3
             RETURNING answer",
            &[&p.scope.as_slice(), &p.exact.as_slice(), &now],
        )?;
        Ok(row
            .and_then(|r| Self::decode(r.get::<_, &str>(0)))
            .map(Found::Exact))
    }

    /// The most similar fresh entry of the probe's scope at or above `threshold`.
    pub fn similar(&self, p: &Probe, threshold: f32) -> Result<Option<Found>, PgError> {
        let Some(mut q) = p.vector.clone() else {
            return Ok(None);
        };
        normalise(&mut q);
        let now = crate::db::now_ms();
        let row = self.pg.get()?.query_opt(
            "SELECT answer, (1 - (vector <=> $2))::REAL AS similarity, exact FROM cache_entries
             WHERE scope = $1 AND expires_ms > $3 AND vector IS NOT NULL
             ORDER BY vector <=> $2 LIMIT 1",
            &[&p.scope.as_slice(), &Vector::from(q), &now],
        )?;
        let Some(r) = row else { return Ok(None) };
        let similarity: f32 = r.get(1);
        if similarity < threshold {
            return Ok(None);
        }
        let exact: Vec<u8> = r.get(2);
        let _ = self.pg.get()?.execute(
            "UPDATE cache_entries SET used_ms = $3 WHERE scope = $1 AND exact = $2",
            &[&p.scope.as_slice(), &exact, &now],
        );
        Ok(Self::decode(r.get::<_, &str>(0)).map(|c| Found::Semantic(c, similarity)))
    }

    /// Caches an answer under the probe for `ttl`.
    pub fn insert(
        &self,
        p: &Probe,
        cached: &Cached,
        ttl: std::time::Duration,
    ) -> Result<(), PgError> {
        let answer = serde_json::to_string(&Stored {
            response: cached.response.clone(),
            citations: cached.citations.clone(),
            source: cached.source.clone(),
        })
        .map_err(|e| PgError::Other(e.to_string()))?;
        let vector = p.vector.clone().map(|mut v| {
            normalise(&mut v);
            Vector::from(v)
        });
        let now = crate::db::now_ms();
        let expires = now + ttl.as_millis().min(i64::MAX as u128) as i64;
        self.pg.get()?.execute(
            "INSERT INTO cache_entries (scope, exact, question, vector, answer, created_ms, expires_ms, used_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6)
             ON CONFLICT (scope, exact) DO UPDATE SET question = excluded.question,
               vector = excluded.vector, answer = excluded.answer, created_ms = excluded.created_ms,
               expires_ms = excluded.expires_ms, used_ms = excluded.used_ms",
            &[
                &p.scope.as_slice(),
                &p.exact.as_slice(),
                &p.question,
                &vector,
                &answer,
                &now,
                &expires,
            ],
        )?;
        Ok(())
    }

    /// Drops expired entries, then the least recently used beyond `max_entries`.
    pub fn prune(&self) -> Result<u64, PgError> {
        let mut c = self.pg.get()?;
        let now = crate::db::now_ms();
        let mut n = c.execute("DELETE FROM cache_entries WHERE expires_ms <= $1", &[&now])?;
        n += c.execute(
            "DELETE FROM cache_entries WHERE (scope, exact) IN (
               SELECT scope, exact FROM cache_entries ORDER BY used_ms DESC OFFSET $1)",
            &[&(self.max_entries as i64)],
        )?;
        Ok(n)
    }

    /// Entries stored (every replica's).
    pub fn count(&self) -> Result<i64, PgError> {
        Ok(self
            .pg
            .get()?
            .query_one("SELECT count(*)::BIGINT FROM cache_entries", &[])?
            .get(0))
    }
}
