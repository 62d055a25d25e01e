//! Governance sections: `[auth]`, `[storage]`, `[cluster]`, `[audit]`, `[pii]`, `[guard]`,
//! `[review]`.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require an API key on `/v1/*`. Off, every request is anonymous (a warning at start).
    #[serde(default)]
    pub enabled: bool,
    /// The admin key (usually `${SLMGATE_ADMIN_KEY}`): `/admin/*` and every model, no limits.
    pub admin_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite` (the embedded default: one file beside the process) or `postgres` (shared
    /// by every replica: keys, the audit log, reviews, RAG collections, the response cache).
    #[serde(default)]
    pub backend: StorageBackend,
    /// SQLite file holding keys, the audit log, the review queue and the rest of the store
    /// (unused by the shared parts with `postgres`).
    #[serde(default = "default_storage_path")]
    pub path: String,
    /// The Postgres connection URL (`postgres://user:pass@host:5432/db`), usually
    /// `${DATABASE_URL}`; needed with `backend = "postgres"`.
    pub url: Option<String>,
    /// Connections per replica in the Postgres pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// A PEM file of the CA(s) that signed the Postgres server's certificate, trusted beside
    /// the system's roots when the URL's `sslmode` verifies (`verify-full`, `verify-ca`, or
    /// `require` with this file set: libpq's rules; `db::tls`).
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    #[default]
    Sqlite,
    Postgres,
}

fn default_pool_size() -> u32 {
    8
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Sqlite,
            path: default_storage_path(),
            url: None,
            pool_size: default_pool_size(),
            ca_file: None,
        }
    }
}

/// `[cluster]`: what replicas share besides the store — rate limits and budget
/// reservations in Redis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://host:6379/0` (`rediss://` for TLS, the certificate checked against the
    /// system's roots or `redis_ca_file`); without it every replica limits and budgets on its
    /// own.
    pub redis_url: Option<String>,
    /// A PEM file of the CA(s) that signed the Redis server's certificate, trusted instead of
    /// the system's roots (`rediss://` only).
    pub redis_ca_file: Option<String>,
    /// When Redis cannot be reached: `closed` refuses requests of keys with a budget (503
    /// `budget_unavailable`), `open` falls back to this replica's own budget ledger.
    #[serde(default = "closed")]
    pub budgets_when_redis_down: FailMode,
    /// When Redis cannot be reached: `open` falls back to this replica's own rpm/tpm buckets,
    /// `closed` refuses requests of keys with limits (503 `rate_limit_unavailable`).
    #[serde(default = "open")]
    pub limits_when_redis_down: FailMode,
    /// A Redis call slower than this counts as Redis being down (for that request).
    #[serde(default = "default_redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// A reservation not settled within this (its replica died) is charged in full.
    #[serde(default = "default_reservation_ttl_secs")]
    pub reservation_ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    Open,
    Closed,
}

fn closed() -> FailMode {
    FailMode::Closed
}

fn open() -> FailMode {
    FailMode::Open
}

fn default_redis_timeout_ms() -> u64 {
    250
}

fn default_reservation_ttl_secs() -> u64 {
    900
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_ca_file: None,
            budgets_when_redis_down: FailMode::Closed,
            limits_when_redis_down: FailMode::Open,
            redis_timeout_ms: default_redis_timeout_ms(),
            reservation_ttl_secs: default_reservation_ttl_secs(),
        }
    }
}

fn default_storage_path() -> String {
    "${SLMGATE_DATA_DIR:-~/.local/share/slmgate}/slmgate.db".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditContent {
    /// Metadata only (never the messages).
    None,
    /// Messages and answer with every PII value replaced by its type.
    Redacted,
    /// Messages and answer verbatim.
    Full,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default = "default_audit_content")]
    pub content: AuditContent,
    /// Content older than this is erased (the chain still verifies); 0 keeps it forever.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// When an answer may leave: after its entry is on disk (`sync`, the default) or at
    /// once, the entry following within `flush_interval_ms` (`interval`).
    #[serde(default)]
    pub durability: Durability,
    /// Under `interval`, entries are written in batches at most this often; after a crash,
    /// requests answered before the last interval are in the log.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// An answer is released only once its entry is committed and fsynced; concurrent
    /// requests share one commit (group commit). No acknowledged request is ever missing.
    #[default]
    Sync,
    /// Answers leave at once; a batch is written at most `flush_interval_ms` later. A crash
    /// loses up to that window of answered requests.
    Interval,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            content: default_audit_content(),
            retention_days: default_retention_days(),
            durability: Durability::default(),
            flush_interval_ms: default_flush_interval_ms(),
        }
    }
}

fn default_audit_content() -> AuditContent {
    AuditContent::None
}
fn default_retention_days() -> u32 {
    30
}
fn default_flush_interval_ms() -> u64 {
    10
}

/// Every PII type the detector knows (`[pii] types`, rules' `match.pii`).
pub const PII_TYPES: &[&str] = &[
    "email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "secret",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiPolicy {
    /// Detect and record the types; send as is.
    Allow,
    /// Replace values with placeholders before any off-premises model; restore in the answer.
    Redact,
    /// Only on-premises models may see a request that contains PII.
    ForceLocal,
    /// Refuse (403 naming the types, never the values).
    Block,
}

impl PiiPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiPolicy::Allow => "allow",
            PiiPolicy::Redact => "redact",
            PiiPolicy::ForceLocal => "force_local",
            PiiPolicy::Block => "block",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Policy for models and routes that set none.
    #[serde(default = "default_pii_policy")]
    pub policy: PiiPolicy,
    /// Detected types (default: all): email, phone, card, iban, ssn, ipv4, ipv6, secret.
    pub types: Option<Vec<String>>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        Self {
            policy: default_pii_policy(),
            types: None,
        }
    }
}

fn default_pii_policy() -> PiiPolicy {
    PiiPolicy::Allow
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardAction {
    Off,
    /// Record the score in the audit entry and a header; serve as usual.
    Flag,
    Block,
    ForceLocal,
}

impl GuardAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Off => "off",
            GuardAction::Flag => "flag",
            GuardAction::Block => "block",
            GuardAction::ForceLocal => "force_local",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Action for models and routes that set none.
    #[serde(default = "default_guard_action")]
    pub action: GuardAction,
    /// Scores at or above this are attacks (0..1).
    #[serde(default = "default_guard_threshold")]
    pub threshold: f32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            action: default_guard_action(),
            threshold: default_guard_threshold(),
        }
    }
}

fn default_guard_action() -> GuardAction {
    GuardAction::Flag
}
fn default_guard_threshold() -> f32 {
    0.8
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Share of answered requests sampled into the review queue (0..1).
    #[serde(default = "default_review_sample")]
    pub sample: f64,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            sample: default_review_sample(),
        }
    }
}

fn default_review_sample() -> f64 {
    0.05
}
