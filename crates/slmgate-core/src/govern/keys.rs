//! Virtual API keys: created by the admin API or the CLI, stored as SHA-256 hashes (the
//! plaintext is shown once), with a team, a budget, rate limits, allowed models and
//! residency; the SQLite table's operations (Postgres: `keys_pg`; the server's cache of
//! both: `key_cache`).

use rand::Rng;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::audit::chain::sha256_hex;
use super::{db, GovernError};

/// A budget: USD per period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub usd: f64,
    pub period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
    Total,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "day" | "d" => Period::Day,
            "week" | "w" => Period::Week,
            "month" | "mo" => Period::Month,
            "total" => Period::Total,
            _ => return None,
        })
    }

    /// Start of the period containing `now_ms` (UTC; months are 30 days from the epoch
    /// boundary of the calendar month).
    pub fn start_ms(self, now_ms: i64) -> i64 {
        const DAY: i64 = 86_400_000;
        match self {
            Period::Day => now_ms - now_ms.rem_euclid(DAY),
            // Weeks start on Monday (1970-01-01 was a Thursday).
            Period::Week => now_ms - (now_ms + 3 * DAY).rem_euclid(7 * DAY),
            Period::Month => {
                let t = db::rfc3339(now_ms);
                let day: i64 = t[8..10].parse().unwrap_or(1);
                let today = now_ms - now_ms.rem_euclid(DAY);
                today - (day - 1) * DAY
            }
            Period::Total => 0,
        }
    }

    /// End of the period containing `now_ms`, if it ends.
    pub fn end_ms(self, now_ms: i64) -> Option<i64> {
        const DAY: i64 = 86_400_000;
        match self {
            Period::Day => Some(self.start_ms(now_ms) + DAY),
            Period::Week => Some(self.start_ms(now_ms) + 7 * DAY),
            Period::Month => {
                // The first day of the next month: step 28 days in, then to that month's start.
                let start = self.start_ms(now_ms);
                let later = start + 32 * DAY;
                Some(Period::Month.start_ms(later))
            }
            Period::Total => None,
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = String;
    /// `50`, `50/day`, `12.5/month`, `100/week`, `$50/day`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().trim_start_matches('$');
        let (amount, period) = s.split_once('/').unwrap_or((s, "total"));
        let usd: f64 = amount
            .trim()
            .parse()
            .map_err(|_| format!("budget `{s}`: expected USD like 50 or 50/day"))?;
        if !(usd.is_finite() && usd >= 0.0) {
            return Err(format!("budget `{s}`: must be >= 0"));
        }
        let period = Period::parse(period.trim())
            .ok_or_else(|| format!("budget `{s}`: period must be day, week, month or total"))?;
        Ok(Budget { usd, period })
    }
}

/// Scopes a key may hold.
pub const SCOPES: [&str; 1] = ["vector_stores"];

/// What a new key may do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub budget: Option<Budget>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens (prompt + completion) per minute.
    #[serde(default)]
    pub tpm: Option<u32>,
    /// Model or route names the key may call (none: all).
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Where the key's data may go (residency labels; none: anywhere).
    #[serde(default)]
    pub residency: Option<Vec<String>>,
    /// What else the key may do besides calling models: `vector_stores` (create, fill and
    /// search its team's RAG collections and upload files).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub id: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    #[serde(flatten)]
    pub spec: KeySpec,
    pub created: String,
    pub revoked: Option<String>,
}

impl KeyRecord {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.spec
            .scopes
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }

    pub fn may_use(&self, model: &str) -> bool {
        self.spec
            .models
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == model))
    }
}

/// A new random key: `sk-slm-` and 40 alphanumerics (238 bits).
fn generate() -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..40)
        .map(|_| ABC[rng.random_range(0..ABC.len())] as char)
        .collect();
    format!("sk-slm-{tail}")
}

pub fn hash_key(plaintext: &str) -> String {
    sha256_hex(plaintext.as_bytes())
}

pub(super) fn join(v: &Option<Vec<String>>) -> Option<String> {
    v.as_ref().map(|v| v.join(","))
}

pub(super) fn split(s: Option<String>) -> Option<Vec<String>> {
    s.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    })
}

/// A new key: its plaintext, id and the prefix shown to recognise it.
pub(super) fn fresh() -> (String, String, String) {
    let plaintext = generate();
    let id = format!("key_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let prefix = plaintext[..11].to_string();
    (plaintext, id, prefix)
}

/// Stores a new key; returns its record and the plaintext (shown once, never stored).
pub fn create(conn: &Connection, spec: KeySpec) -> Result<(KeyRecord, String), GovernError> {
    let (plaintext, id, prefix) = fresh();
    let now = db::now_ms();
    conn.execute(
        "INSERT INTO keys (id, hash, prefix, name, team, budget_usd, budget_period, rpm, tpm, models, residency, created_ms, scopes)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        params![
            id,
            hash_key(&plaintext),
            prefix,
            spec.name,
            spec.team,
            spec.budget.map(|b| b.usd),
            spec.budget.map(|b| b.period.as_str()),
            spec.rpm,
            spec.tpm,
            join(&spec.models),
            join(&spec.residency),
            now,
            join(&spec.scopes)
        ],
    )?;
    let rec = KeyRecord {
        id,
        prefix,
        spec,
        created: db::rfc3339(now),
        revoked: None,
    };
    Ok((rec, plaintext))
}

pub(super) const COLUMNS: &str = "id, prefix, name, team, budget_usd, budget_period, rpm, tpm, models, residency, created_ms, revoked_ms, hash, scopes";

pub(super) fn row(r: &rusqlite::Row) -> rusqlite::Result<(KeyRecord, String)> {
    let budget = match (r.get::<_, Option<f64>>(4)?, r.get::<_, Option<String>>(5)?) {
        (Some(usd), Some(p)) => Period::parse(&p).map(|period| Budget { usd, period }),
        _ => None,
    };
    Ok((
        KeyRecord {
            id: r.get(0)?,
            prefix: r.get(1)?,
            spec: KeySpec {
                name: r.get(2)?,
                team: r.get(3)?,
                budget,
                rpm: r.get(6)?,
                tpm: r.get(7)?,
                models: split(r.get(8)?),
                residency: split(r.get(9)?),
                scopes: split(r.get(13)?),
            },
            created: db::rfc3339(r.get(10)?),
            revoked: r.get::<_, Option<i64>>(11)?.map(db::rfc3339),
        },
        r.get(12)?,
    ))
}

pub fn list(conn: &Connection) -> Result<Vec<KeyRecord>, GovernError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM keys ORDER BY created_ms"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.filter_map(Result::ok).map(|(k, _)| k).collect())
}

/// Revokes a key; false when there is no such key.
pub fn revoke(conn: &Connection, id: &str) -> Result<bool, GovernError> {
    Ok(conn.execute(
        "UPDATE keys SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1",
        params![id, db::now_ms()],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        let b: Budget = "50/day".parse().unwrap();
        assert_eq!((b.usd, b.period), (50.0, Period::Day));
        let b: Budget = "$12.5".parse().unwrap();
        assert_eq!((b.usd, b.period), (12.5, Period::Total));
        assert!("abc/day".parse::<Budget>().is_err());
        assert!("5/year".parse::<Budget>().is_err());
    }

    #[test]
    fn periods() {
        // 2024-02-29T15:00:00Z, a Thursday.
        let t = 1_709_218_800_000;
        assert_eq!(
            db::rfc3339(Period::Day.start_ms(t)),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            db::rfc3339(Period::Week.start_ms(t)),
            "2024-02-26T00:00:00.000Z"
        );
        assert_eq!(
            db::rfc3339(Period::Month.start_ms(t)),
            "2024-02-01T00:00:00.000Z"
        );
        assert_eq!(
            db::rfc3339(Period::Month.end_ms(t).unwrap()),
            "2024-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn keys_are_stored_hashed_and_revocable() {
        let path = std::env::temp_dir().join(format!("slmgate-keys-{}.db", uuid::Uuid::new_v4()));
        let cache = crate::govern::key_cache::KeyCache::open(&path).unwrap();
        let (rec, plain) = cache
            .create(KeySpec {
                team: Some("t".into()),
                models: Some(vec!["auto".into()]),
                ..Default::default()
            })
            .unwrap();
        assert!(plain.starts_with("sk-slm-") && plain.len() == 47);
        for f in [path.clone(), path.with_extension("db-wal")] {
            let raw = std::fs::read(&f).unwrap_or_default();
            assert!(!raw.windows(plain.len()).any(|w| w == plain.as_bytes()));
        }
        let k = cache.lookup(&plain).unwrap();
        assert!(k.may_use("auto") && !k.may_use("strong"));
        assert!(cache.lookup("sk-slm-wrong").is_none());
        assert!(cache.revoke(&rec.id).unwrap());
        assert!(cache.lookup(&plain).unwrap().revoked.is_some());
    }
}
