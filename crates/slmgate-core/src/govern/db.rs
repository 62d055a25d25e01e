//! The SQLite file behind keys, the audit log and the review queue (WAL mode: readers never
//! block the audit writer). A Postgres backend would implement the same operations.

use std::path::Path;

use rusqlite::Connection;

use super::GovernError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT,
    team TEXT,
    budget_usd REAL,
    budget_period TEXT,
    rpm INTEGER,
    tpm INTEGER,
    models TEXT,
    residency TEXT,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    key_id TEXT,
    entry TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_key_ts ON audit(key_id, ts_ms);
-- Request ids are random: an index on them put every insert on a random page of it (most
-- of the audit writer's I/O). Nothing queried it; `audit export` finds a request by scan.
DROP INDEX IF EXISTS audit_id;
CREATE TABLE IF NOT EXISTS audit_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_content (
    seq INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    key_id TEXT,
    user_id TEXT,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_content_key ON audit_content(key_id);
CREATE INDEX IF NOT EXISTS audit_content_user ON audit_content(user_id);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    key_id TEXT,
    user_id TEXT,
    route TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    escalated_from TEXT,
    tags TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    verdict TEXT,
    note TEXT,
    reviewed_ms INTEGER,
    arm TEXT
);
-- Shadow mode (learn::shadow): one row per shadow answer, beside the route's answer.
CREATE TABLE IF NOT EXISTS shadow_answers (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    route TEXT NOT NULL,
    key_id TEXT,
    user_id TEXT,
    sample REAL NOT NULL,
    primary_model TEXT NOT NULL,
    primary_ms INTEGER NOT NULL,
    primary_cost_usd REAL NOT NULL,
    shadow_model TEXT NOT NULL,
    shadow_ms INTEGER NOT NULL,
    shadow_cost_usd REAL NOT NULL,
    error TEXT,
    exact INTEGER,
    normalised INTEGER,
    similarity REAL,
    json_fields REAL,
    agreement REAL,
    prompt TEXT,
    primary_answer TEXT,
    shadow_answer TEXT
);
-- A/B rollouts (learn::rollout): the live candidate and share of each route.
CREATE TABLE IF NOT EXISTS rollouts (
    route TEXT PRIMARY KEY,
    candidate TEXT NOT NULL,
    share REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_answers_route_ts ON shadow_answers(route, ts_ms);
";

/// Opens (creating if needed) the governance database.
pub fn open(path: &Path) -> Result<Connection, GovernError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| GovernError::Store(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path)
        .map_err(|e| GovernError::Store(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Columns added after a table's first release, for files made by an older version.
fn migrate(conn: &Connection) -> Result<(), GovernError> {
    let has_scopes: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('keys') WHERE name = 'scopes'")?
        .exists([])?;
    if !has_scopes {
        conn.execute_batch("ALTER TABLE keys ADD COLUMN scopes TEXT")?;
    }
    let has_arm: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('reviews') WHERE name = 'arm'")?
        .exists([])?;
    if !has_arm {
        conn.execute_batch("ALTER TABLE reviews ADD COLUMN arm TEXT")?;
    }
    // The rollout verdict bound reads a candidate's reviews every refresh tick.
    conn.execute_batch("CREATE INDEX IF NOT EXISTS reviews_arm ON reviews(arm, ts_ms)")?;
    Ok(())
}

pub use crate::db::now_ms;

/// RFC 3339 UTC time of a Unix-milliseconds timestamp.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_709_251_199_123),
            "2024-02-29T23:59:59.123Z"
        );
    }

    #[test]
    fn a_store_from_before_rollouts_gets_the_review_arm_and_its_index() {
        let dir = std::env::temp_dir().join(format!("slmgate-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE reviews (id TEXT PRIMARY KEY, request_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
                 key_id TEXT, user_id TEXT, route TEXT NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL,
                 escalated_from TEXT, tags TEXT NOT NULL, prompt TEXT NOT NULL, answer TEXT NOT NULL,
                 verdict TEXT, note TEXT, reviewed_ms INTEGER);
                 INSERT INTO reviews VALUES ('r1', 'q1', 1, NULL, NULL, 'auto', 'local', 'm', NULL, '{}', 'p', 'a', NULL, NULL, NULL);",
            )
            .unwrap();
        }
        let c = super::open(&path).unwrap();
        let arm: Option<String> = c
            .query_row("SELECT arm FROM reviews WHERE id = 'r1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(arm, None, "old rows keep their data and have no arm");
        let indexed: bool = c
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'reviews_arm'")
            .unwrap()
            .exists([])
            .unwrap();
        assert!(indexed);
        drop(c);
        assert!(super::open(&path).is_ok(), "opening twice is fine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
