//! The server's view of the keys: every key cached in memory by hash, re-read when the
//! store changed (SQLite's data version; the Postgres table's row count and latest change),
//! a key unknown to the cache looked up at once (created by the CLI or another replica).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{Connection, OptionalExtension};

use super::keys::{create, hash_key, list, revoke, row, KeyRecord, KeySpec, COLUMNS};
use super::{db, GovernError};

/// Where the keys live.
enum KeyStore {
    Sqlite(Mutex<Connection>),
    /// The shared store: a key created on one replica works on the others at once (a key
    /// unknown to this replica is looked up), a revocation within one refresh tick (2 s).
    Pg(crate::db::Pg),
}

/// The server's view of the keys table.
pub struct KeyCache {
    store: KeyStore,
    by_hash: RwLock<HashMap<String, Arc<KeyRecord>>>,
    /// The store's version at the last read (SQLite's data_version; Postgres: row count and
    /// latest change).
    version: Mutex<Option<(i64, i64)>>,
}

impl KeyCache {
    pub fn open(path: &std::path::Path) -> Result<Self, GovernError> {
        Self::with(KeyStore::Sqlite(Mutex::new(db::open(path)?)))
    }

    /// The keys of the shared Postgres store.
    pub fn open_pg(pg: crate::db::Pg) -> Result<Self, GovernError> {
        Self::with(KeyStore::Pg(pg))
    }

    fn with(store: KeyStore) -> Result<Self, GovernError> {
        let cache = Self {
            store,
            by_hash: RwLock::new(HashMap::new()),
            version: Mutex::new(None),
        };
        cache.refresh()?;
        Ok(cache)
    }

    fn sqlite(c: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
        c.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads every key if the store changed since the last read.
    pub fn refresh(&self) -> Result<(), GovernError> {
        let mut seen = self.version.lock().unwrap_or_else(|p| p.into_inner());
        let map: HashMap<String, Arc<KeyRecord>> = match &self.store {
            KeyStore::Sqlite(c) => {
                let conn = Self::sqlite(c);
                let v: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
                if *seen == Some((v, 0)) {
                    return Ok(());
                }
                *seen = Some((v, 0));
                let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM keys"))?;
                let map = stmt
                    .query_map([], row)?
                    .filter_map(Result::ok)
                    .map(|(k, h)| (h, Arc::new(k)))
                    .collect();
                map
            }
            KeyStore::Pg(p) => {
                if seen.is_some()
                    && *seen == Some(crate::db::blocking(|| super::keys_pg::version(p))?)
                {
                    return Ok(());
                }
                let (all, v) = crate::db::blocking(|| super::keys_pg::all(p))?;
                *seen = Some(v);
                all.into_iter().map(|(h, k)| (h, Arc::new(k))).collect()
            }
        };
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// The key's record (revoked ones included), if the key exists.
    pub fn lookup(&self, plaintext: &str) -> Option<Arc<KeyRecord>> {
        let h = hash_key(plaintext);
        if let Some(k) = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
        {
            return Some(k.clone());
        }
        // Created by another process (or replica) since the last refresh?
        let found = match &self.store {
            KeyStore::Sqlite(c) => Self::sqlite(c)
                .query_row(
                    &format!("SELECT {COLUMNS} FROM keys WHERE hash = ?1"),
                    [&h],
                    row,
                )
                .optional()
                .ok()
                .flatten()
                .map(|(k, _)| k),
            KeyStore::Pg(p) => crate::db::blocking(|| super::keys_pg::by_hash(p, &h))
                .ok()
                .flatten(),
        }?;
        let rec = Arc::new(found);
        self.by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(h, rec.clone());
        Some(rec)
    }

    pub fn create(&self, spec: KeySpec) -> Result<(KeyRecord, String), GovernError> {
        let (rec, plain) = match &self.store {
            KeyStore::Sqlite(c) => create(&Self::sqlite(c), spec)?,
            KeyStore::Pg(p) => crate::db::blocking(|| super::keys_pg::create(p, spec))?,
        };
        self.by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash_key(&plain), Arc::new(rec.clone()));
        Ok((rec, plain))
    }

    pub fn list(&self) -> Result<Vec<KeyRecord>, GovernError> {
        match &self.store {
            KeyStore::Sqlite(c) => list(&Self::sqlite(c)),
            KeyStore::Pg(p) => crate::db::blocking(|| super::keys_pg::list(p)),
        }
    }

    pub fn revoke(&self, id: &str) -> Result<bool, GovernError> {
        let found = match &self.store {
            KeyStore::Sqlite(c) => revoke(&Self::sqlite(c), id)?,
            KeyStore::Pg(p) => crate::db::blocking(|| super::keys_pg::revoke(p, id))?,
        };
        // Our own write does not change SQLite's data_version for this connection: re-read.
        *self.version.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.refresh()?;
        Ok(found)
    }

    /// Spend of a key since `since_ms`, from the audit log.
    pub fn spend_since(&self, key_id: &str, since_ms: i64) -> Result<f64, GovernError> {
        match &self.store {
            KeyStore::Sqlite(c) => {
                super::audit::store::spend_since(&Self::sqlite(c), key_id, since_ms)
            }
            KeyStore::Pg(p) => {
                crate::db::blocking(|| super::audit::pg::spend_since(p, key_id, since_ms))
            }
        }
    }
}
