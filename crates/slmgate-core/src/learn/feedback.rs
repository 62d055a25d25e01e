//! Production outcomes as router training rows, for `slmgate router retrain`: human review
//! verdicts, shadow agreement between a weak-tier and a strong-tier deployment, and the
//! cascade's own decisions. Each becomes `(weak, strong)` quality for one prompt; a request
//! labelled by several sources keeps the strongest (review, then shadow, then cascade).
//!
//! - review: [`crate::govern::review::outcomes`] (a bad weak answer → (0, 1); a needless
//!   escalation → (1, 1); ...);
//! - shadow: the strong side's answer is the reference; the weak side agreeing at least
//!   `agree` → (1, 1), else (0, 1);
//! - cascade: a weak answer escalated for low confidence → (0, 1); one the cascade kept → (1, 1).
//!
//! Every row carries what the router learns from besides the text: the request's tags (from
//! its audit entry, or the review item) and its system prompt (from stored content).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};
use serde_json::Value;

use crate::govern::review::{self, Verdict};
use crate::govern::GovernError;
use crate::ml::data::{Example, Row};

pub struct FeedbackQuery<'a> {
    pub route: &'a str,
    /// The route's first tier and the router's strong tier.
    pub weak_tier: &'a str,
    pub strong_tier: &'a str,
    /// Deployments of each tier (shadow rows name deployments).
    pub weak_models: &'a [String],
    pub strong_models: &'a [String],
    pub since_ms: i64,
    /// Shadow agreement at or above this counts as the weak side answering well.
    pub agree: f32,
    /// The outcome keys of the router being retrained.
    pub weak_key: &'a str,
    pub strong_key: &'a str,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sources {
    pub review: usize,
    pub shadow: usize,
    pub cascade: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Cascade,
    Shadow,
    Review,
}

struct Label {
    source: Source,
    prompt: String,
    weak: f64,
    strong: f64,
    /// Tags known from the source itself (a review item); the audit entry's win.
    tags: BTreeMap<String, Value>,
}

/// A request's routing metadata, from its audit entry and stored content.
#[derive(Default)]
struct Meta {
    tags: BTreeMap<String, Value>,
    system: Option<String>,
}

/// The labelled production rows of a route since `since_ms`, one per request.
pub fn collect(
    conn: &Connection,
    q: &FeedbackQuery,
) -> Result<(Vec<Example>, Sources), GovernError> {
    let mut labels: HashMap<String, Label> = HashMap::new();
    let mut put = |id: String, l: Label| {
        if labels.get(&id).is_none_or(|old| old.source < l.source) {
            labels.insert(id, l);
        }
    };
    // Reviews.
    {
        let mut stmt = conn.prepare(
            "SELECT request_id, tier, escalated_from, prompt, verdict, tags FROM reviews
             WHERE route = ?1 AND verdict IS NOT NULL AND ts_ms >= ?2",
        )?;
        let mut it = stmt.query(params![q.route, q.since_ms])?;
        while let Some(r) = it.next()? {
            let (id, tier, from, prompt, verdict, tags): (
                String,
                String,
                Option<String>,
                String,
                String,
                String,
            ) = (
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            );
            if prompt == "[erased]" || prompt == "[expired]" {
                continue;
            }
            let Ok(v) = serde_json::from_value::<Verdict>(Value::String(verdict)) else {
                continue;
            };
            let by_strong = tier == q.strong_tier;
            if !by_strong && tier != q.weak_tier {
                continue;
            }
            if let Some((weak, strong)) = review::outcomes(v, by_strong, from.is_some()) {
                put(
                    id,
                    Label {
                        source: Source::Review,
                        prompt,
                        weak,
                        strong,
                        tags: serde_json::from_str(&tags).unwrap_or_default(),
                    },
                );
            }
        }
    }
    // Shadow agreement between a weak-tier and a strong-tier deployment.
    {
        let mut stmt = conn.prepare(
            "SELECT request_id, primary_model, shadow_model, agreement, prompt FROM shadow_answers
             WHERE route = ?1 AND ts_ms >= ?2 AND agreement IS NOT NULL AND prompt IS NOT NULL",
        )?;
        let mut it = stmt.query(params![q.route, q.since_ms])?;
        while let Some(r) = it.next()? {
            let (id, p, s, agreement, prompt): (String, String, String, f64, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let pair =
                |a: &String, b: &String| q.weak_models.contains(a) && q.strong_models.contains(b);
            if !(pair(&p, &s) || pair(&s, &p)) {
                continue;
            }
            let weak = if agreement >= q.agree as f64 {
                1.0
            } else {
                0.0
            };
            put(
                id,
                Label {
                    source: Source::Shadow,
                    prompt,
                    weak,
                    strong: 1.0,
                    tags: BTreeMap::new(),
                },
            );
        }
    }
    // The cascade's decisions on the weak tier (needs stored content for the prompt), and
    // every request's tags and system prompt.
    let mut meta: HashMap<String, Meta> = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT a.entry, c.content FROM audit a LEFT JOIN audit_content c ON c.seq = a.seq
             WHERE a.ts_ms >= ?1",
        )?;
        let mut it = stmt.query(params![q.since_ms])?;
        while let Some(r) = it.next()? {
            let (entry, content): (String, Option<String>) = (r.get(0)?, r.get(1)?);
            let Ok(e) = serde_json::from_str::<Value>(&entry) else {
                continue;
            };
            if e["kind"] != "request" || e["model"] != q.route {
                continue;
            }
            let id = e["id"].as_str().unwrap_or_default().to_string();
            let m = meta.entry(id.clone()).or_default();
            if let Some(t) = e["tags"].as_object() {
                m.tags = t.clone().into_iter().collect();
            }
            let Some(content) = content else { continue };
            m.system = system_text(&content);
            if e["status"] != 200 {
                continue;
            }
            let escalated = e["escalations"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|x| x["cause"] == "low_confidence" && x["from_tier"] == q.weak_tier)
            });
            let kept = e["served"]["tier"] == q.weak_tier && !e["served"]["confidence"].is_null();
            if !(escalated || kept) {
                continue;
            }
            let Some(prompt) = last_user_text(&content) else {
                continue;
            };
            let weak = if escalated { 0.0 } else { 1.0 };
            put(
                id,
                Label {
                    source: Source::Cascade,
                    prompt,
                    weak,
                    strong: 1.0,
                    tags: BTreeMap::new(),
                },
            );
        }
    }
    let mut sources = Sources::default();
    let mut ids: Vec<String> = labels.keys().cloned().collect();
    ids.sort();
    let examples = ids
        .into_iter()
        .filter_map(|id| {
            let l = labels.remove(&id)?;
            match l.source {
                Source::Review => sources.review += 1,
                Source::Shadow => sources.shadow += 1,
                Source::Cascade => sources.cascade += 1,
            }
            let m = meta.remove(&id).unwrap_or_default();
            let outcomes: BTreeMap<String, f64> = [
                (q.weak_key.to_string(), l.weak),
                (q.strong_key.to_string(), l.strong),
            ]
            .into_iter()
            .collect();
            Some(Example {
                row: Row {
                    id: Some(id),
                    prompt: l.prompt,
                    tags: if m.tags.is_empty() { l.tags } else { m.tags },
                    outcomes,
                    responses: BTreeMap::new(),
                    system: m.system,
                },
                weak: l.weak,
                strong: l.strong,
            })
        })
        .collect();
    Ok((examples, sources))
}

fn last_user_text(content: &str) -> Option<String> {
    let c: Value = serde_json::from_str(content).ok()?;
    let m = c["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    message_text(m)
}

/// The system (or developer) messages' text of stored content, one per line.
fn system_text(content: &str) -> Option<String> {
    let c: Value = serde_json::from_str(content).ok()?;
    let parts: Vec<String> = c["messages"]
        .as_array()?
        .iter()
        .filter(|m| m["role"] == "system" || m["role"] == "developer")
        .filter_map(message_text)
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

fn message_text(m: &Value) -> Option<String> {
    match &m["content"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

/// Whether a request's row is held out (stable: a hash of its id).
pub fn held_out(id: &str, share: f64) -> bool {
    super::rollout::bucket("holdout", id) < share
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::govern::audit::{store::append, Entry, Record, ServedSummary, StoredContent};

    #[test]
    fn production_rows_carry_the_requests_tags_and_system_prompt() {
        let path =
            std::env::temp_dir().join(format!("slmgate-feedback-{}.db", uuid::Uuid::new_v4()));
        let mut conn = crate::govern::db::open(&path).unwrap();
        let entry = Entry {
            kind: "request",
            id: "req-1".into(),
            ts_ms: 1000,
            endpoint: "chat",
            model: "auto".into(),
            status: 200,
            served: Some(ServedSummary {
                tier: "local".into(),
                deployment: "slm".into(),
                confidence: Some(-0.2),
            }),
            tags: [("task".to_string(), "math".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let content = StoredContent {
            messages: serde_json::json!([
                {"role": "system", "content": "You are a maths tutor."},
                {"role": "user", "content": "What is 2 + 2?"}
            ]),
            answer: "4".into(),
        };
        append(
            &mut conn,
            &[Record {
                entry,
                content: Some(content),
                review: None,
                commit: None,
            }],
        )
        .unwrap();
        let q = FeedbackQuery {
            route: "auto",
            weak_tier: "local",
            strong_tier: "cloud",
            weak_models: &["slm".to_string()],
            strong_models: &["big".to_string()],
            since_ms: 0,
            agree: 0.9,
            weak_key: "w",
            strong_key: "s",
        };
        let (rows, sources) = collect(&conn, &q).unwrap();
        assert_eq!(sources.cascade, 1);
        let r = &rows[0].row;
        assert_eq!(r.prompt, "What is 2 + 2?");
        assert_eq!(r.tag_pairs(), ["task=math"]);
        assert_eq!(r.system.as_deref(), Some("You are a maths tutor."));
        assert_eq!(
            (rows[0].weak, rows[0].strong),
            (1.0, 1.0),
            "kept by the cascade"
        );
        let _ = std::fs::remove_file(&path);
    }
}
