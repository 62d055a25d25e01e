//! The Postgres schema, as numbered migrations applied in order, each once (recorded in
//! `slmgate_migrations`), under an advisory lock so replicas starting at once do not race.
//! A new table or column is a new migration at the end; released ones never change.
//!
//! The audit entry is stored as text, not `jsonb`: its exact bytes are what the hash chain
//! commits to (queries cast it: `entry::jsonb`).

use postgres::Client;

use super::PgError;

/// (version, what it does, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "governance: keys, the audit chain, content, reviews",
        "
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT,
    team TEXT,
    budget_usd DOUBLE PRECISION,
    budget_period TEXT,
    rpm BIGINT,
    tpm BIGINT,
    models TEXT,
    residency TEXT,
    scopes TEXT,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT,
    changed_ms BIGINT NOT NULL
);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    key_id TEXT,
    entry TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_key_ts ON audit (key_id, ts_ms);
CREATE INDEX audit_ts ON audit (ts_ms);
CREATE TABLE audit_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (one, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE audit_content (
    seq BIGINT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    key_id TEXT,
    user_id TEXT,
    content TEXT NOT NULL
);
CREATE INDEX audit_content_key ON audit_content (key_id);
CREATE INDEX audit_content_user ON audit_content (user_id);
CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
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
    reviewed_ms BIGINT,
    arm TEXT
);
CREATE INDEX reviews_arm ON reviews (arm, ts_ms);
",
    ),
    (
        2,
        "knowledge: collections, files, chunks with pgvector vectors, uploads",
        "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE kn_collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_s BIGINT NOT NULL,
    embedding TEXT NOT NULL,
    dims BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX kn_collections_name ON kn_collections (name);
CREATE TABLE kn_files (
    collection TEXT NOT NULL,
    file_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    chunks BIGINT NOT NULL,
    attributes TEXT NOT NULL,
    created_s BIGINT NOT NULL,
    PRIMARY KEY (collection, file_id)
);
CREATE TABLE kn_chunks (
    id TEXT NOT NULL,
    collection TEXT NOT NULL,
    file_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    vector vector NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX kn_chunks_file ON kn_chunks (collection, file_id);
CREATE TABLE kn_uploads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    created_s BIGINT NOT NULL,
    content BYTEA NOT NULL
);
",
    ),
    (
        3,
        "the shared response cache (exact key, pgvector question vectors)",
        "
CREATE TABLE cache_entries (
    scope BYTEA NOT NULL,
    exact BYTEA NOT NULL,
    question TEXT NOT NULL,
    vector vector,
    answer TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, exact)
);
CREATE INDEX cache_entries_used ON cache_entries (used_ms);
",
    ),
    (
        4,
        "A/B rollouts, so every replica serves one share",
        "
CREATE TABLE rollouts (
    route TEXT PRIMARY KEY,
    candidate TEXT NOT NULL,
    share DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    updated_ms BIGINT NOT NULL
);
",
    ),
    (
        5,
        "routers published to every replica",
        "
CREATE TABLE published_routers (
    route TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    note TEXT NOT NULL,
    published_ms BIGINT NOT NULL
);
",
    ),
    (
        6,
        "stored Responses API responses, continued through any replica",
        "
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    response TEXT NOT NULL,
    conversation TEXT NOT NULL
);
",
    ),
    (
        7,
        "shadow answers from every replica, for one report, export and retrain",
        "
CREATE TABLE shadow_answers (
    id BIGSERIAL PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    route TEXT NOT NULL,
    key_id TEXT,
    user_id TEXT,
    sample DOUBLE PRECISION NOT NULL,
    primary_model TEXT NOT NULL,
    primary_ms BIGINT NOT NULL,
    primary_cost_usd DOUBLE PRECISION NOT NULL,
    shadow_model TEXT NOT NULL,
    shadow_ms BIGINT NOT NULL,
    shadow_cost_usd DOUBLE PRECISION NOT NULL,
    error TEXT,
    exact BOOLEAN,
    normalised BOOLEAN,
    similarity REAL,
    json_fields REAL,
    agreement REAL,
    prompt TEXT,
    primary_answer TEXT,
    shadow_answer TEXT
);
CREATE INDEX shadow_answers_ts ON shadow_answers (ts_ms);
",
    ),
];

/// The advisory lock id migrations hold (any constant: `slmgate` in ASCII).
const LOCK: i64 = 0x0073_6c6d_6761_7465;

/// Applies the migrations this database has not had yet.
pub fn apply(client: &mut Client) -> Result<(), PgError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
    let result = apply_locked(client);
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]);
    result
}

fn apply_locked(client: &mut Client) -> Result<(), PgError> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS slmgate_migrations (
             version INTEGER PRIMARY KEY,
             what TEXT NOT NULL,
             applied_ms BIGINT NOT NULL
         )",
    )?;
    let done: Vec<i32> = client
        .query("SELECT version FROM slmgate_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, what, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let mut tx = client.transaction()?;
        tx.batch_execute(sql).map_err(|e| {
            let hint = if sql.contains("EXTENSION IF NOT EXISTS vector") {
                " (the pgvector extension must be installed on the server: Debian's postgresql-NN-pgvector)"
            } else {
                ""
            };
            PgError::Other(format!("migration {version} ({what}): {e}{hint}"))
        })?;
        tx.execute(
            "INSERT INTO slmgate_migrations (version, what, applied_ms) VALUES ($1, $2, $3)",
            &[version, what, &super::now_ms()],
        )?;
        tx.commit()?;
        tracing::info!(version, what, "postgres migration applied");
    }
    Ok(())
}
