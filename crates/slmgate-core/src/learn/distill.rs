//! Distillation export: a teacher deployment's answers, from the audit log's stored content
//! (the whole conversation) and from shadow rows (the last user message), as chat-format SFT
//! data. Rows whose request had PII or was flagged by the injection guard, whose answer a
//! reviewer judged bad, that are not plain text chats (tool calls, images), or that repeat a
//! conversation already kept are left out and counted. The split into train and eval is by a
//! hash of the conversation: stable from one export to the next.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::govern::GovernError;

/// What to export.
pub struct Query<'a> {
    /// The requested route (or model) name; all when `None`.
    pub route: Option<&'a str>,
    /// The deployment whose answers are the targets.
    pub teacher: &'a str,
    pub since_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI fine-tuning JSONL: `{"messages": [..., {"role": "assistant", ...}]}` (TRL's and
    /// Axolotl's `chat_template` conversational format too).
    OpenAi,
    /// TRL's conversational prompt–completion format: `{"prompt": [...], "completion": [...]}`
    /// (the loss on the teacher's answer only).
    PromptCompletion,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub request_id: String,
    /// System, user and assistant turns before the answer.
    pub prompt: Vec<(String, String)>,
    pub answer: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Answers of the teacher found (audit content and shadow rows).
    pub found: usize,
    pub pii: usize,
    pub guard: usize,
    pub bad_verdict: usize,
    /// Not a plain text chat (tool calls, images, other roles) or an empty answer.
    pub unsupported: usize,
    pub duplicate: usize,
    pub train: usize,
    pub eval: usize,
}

pub struct Export {
    pub train: Vec<Example>,
    pub eval: Vec<Example>,
    pub counts: Counts,
}

struct Flags {
    pii: bool,
    guard: bool,
}

/// A teacher answer before filtering: the whole stored conversation (audit content) or the
/// last user message (a shadow row).
struct Candidate {
    request_id: String,
    messages: Option<Value>,
    prompt: Option<String>,
    answer: Option<String>,
}

/// Reads the teacher's answers and filters, dedups and splits them (`eval_share` of the
/// distinct conversations go to eval).
pub fn export(conn: &Connection, q: &Query, eval_share: f64) -> Result<Export, GovernError> {
    let mut counts = Counts::default();
    let mut flags: HashMap<String, Flags> = HashMap::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT a.entry, c.content FROM audit a LEFT JOIN audit_content c ON c.seq = a.seq
             WHERE a.ts_ms >= ?1 ORDER BY a.seq",
        )?;
        let mut it = stmt.query(params![q.since_ms])?;
        while let Some(r) = it.next()? {
            let entry: String = r.get(0)?;
            let Ok(e) = serde_json::from_str::<Value>(&entry) else {
                continue;
            };
            let id = e["id"].as_str().unwrap_or_default().to_string();
            flags.insert(
                id.clone(),
                Flags {
                    pii: e["pii"]["types"].as_object().is_some_and(|t| !t.is_empty()),
                    // Scored by the guard, and not let pass.
                    guard: e["guard"]["action"].as_str().is_some_and(|a| a != "pass"),
                },
            );
            let served_by_teacher = e["kind"] == "request"
                && e["status"] == 200
                && e["served"]["deployment"] == q.teacher
                && q.route.is_none_or(|r| e["model"] == r);
            if !served_by_teacher {
                continue;
            }
            let Some(content) = r.get::<_, Option<String>>(1)? else {
                continue;
            };
            let Ok(c) = serde_json::from_str::<Value>(&content) else {
                continue;
            };
            candidates.push(Candidate {
                request_id: id,
                messages: Some(c["messages"].clone()),
                prompt: None,
                answer: c["answer"].as_str().map(str::to_string),
            });
        }
    }
    {
        let mut stmt = conn.prepare(
            "SELECT request_id, prompt, shadow_answer FROM shadow_answers
             WHERE ts_ms >= ?1 AND shadow_model = ?2 AND (?3 IS NULL OR route = ?3)
               AND error IS NULL AND shadow_answer IS NOT NULL AND prompt IS NOT NULL ORDER BY id",
        )?;
        let mut it = stmt.query(params![q.since_ms, q.teacher, q.route])?;
        while let Some(r) = it.next()? {
            candidates.push(Candidate {
                request_id: r.get(0)?,
                messages: None,
                prompt: r.get(1)?,
                answer: r.get(2)?,
            });
        }
    }
    let bad: HashSet<String> = {
        let mut stmt = conn.prepare(
            "SELECT request_id FROM reviews WHERE verdict IN ('bad', 'should_have_escalated')",
        )?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        ids.filter_map(Result::ok).collect()
    };
    let mut seen = HashSet::new();
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for Candidate {
        request_id: id,
        messages,
        prompt,
        answer,
    } in candidates
    {
        counts.found += 1;
        let f = flags.get(&id);
        if f.is_some_and(|f| f.pii) {
            counts.pii += 1;
            continue;
        }
        if f.is_some_and(|f| f.guard) {
            counts.guard += 1;
            continue;
        }
        if bad.contains(&id) {
            counts.bad_verdict += 1;
            continue;
        }
        let turns = match (messages, prompt) {
            (Some(m), _) => chat_turns(&m),
            (None, Some(p)) => Some(vec![("user".to_string(), p)]),
            _ => None,
        };
        let (Some(turns), Some(answer)) = (turns, answer.filter(|a| !a.trim().is_empty())) else {
            counts.unsupported += 1;
            continue;
        };
        let key = conversation_hash(&turns);
        if !seen.insert(key) {
            counts.duplicate += 1;
            continue;
        }
        let ex = Example {
            request_id: id,
            prompt: turns,
            answer,
        };
        if in_eval(key, eval_share) {
            eval.push(ex);
        } else {
            train.push(ex);
        }
    }
    counts.train = train.len();
    counts.eval = eval.len();
    Ok(Export {
        train,
        eval,
        counts,
    })
}

/// Stored messages as (role, text) turns; `None` for anything but a plain text chat ending in
/// a user turn.
fn chat_turns(messages: &Value) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for m in messages.as_array()? {
        let role = match m["role"].as_str()? {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" if m.get("tool_calls").is_none_or(Value::is_null) => "assistant",
            _ => return None,
        };
        let text = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => {
                let mut t = String::new();
                for p in parts {
                    if p["type"] != "text" {
                        return None;
                    }
                    t.push_str(p["text"].as_str()?);
                }
                t
            }
            _ => return None,
        };
        out.push((role.to_string(), text));
    }
    (out.last().is_some_and(|(r, _)| r == "user")).then_some(out)
}

fn conversation_hash(turns: &[(String, String)]) -> u64 {
    let mut h = Sha256::new();
    for (role, text) in turns {
        h.update(role.as_bytes());
        h.update([0]);
        h.update(
            text.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .as_bytes(),
        );
        h.update([0]);
    }
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn in_eval(hash: u64, share: f64) -> bool {
    (hash as f64 / u64::MAX as f64) < share
}

/// One JSONL line of an example.
pub fn line(ex: &Example, format: Format) -> Value {
    let turns: Vec<Value> = ex
        .prompt
        .iter()
        .map(|(role, text)| json!({"role": role, "content": text}))
        .collect();
    let answer = json!({"role": "assistant", "content": ex.answer});
    match format {
        Format::OpenAi => {
            let mut messages = turns;
            messages.push(answer);
            json!({ "messages": messages })
        }
        Format::PromptCompletion => json!({ "prompt": turns, "completion": [answer] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_chats_become_turns_and_others_are_refused() {
        let m = json!([
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
        ]);
        assert_eq!(
            chat_turns(&m),
            Some(vec![
                ("system".into(), "Be brief.".into()),
                ("user".into(), "Hi there".into())
            ])
        );
        let image = json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]);
        assert_eq!(chat_turns(&image), None);
        let tools = json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "tool_calls": [{}]}, {"role": "tool", "content": "y"}]);
        assert_eq!(chat_turns(&tools), None);
        let ends_with_assistant =
            json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]);
        assert_eq!(chat_turns(&ends_with_assistant), None);
    }

    #[test]
    fn the_split_is_stable_and_near_its_share() {
        let n = 10_000;
        let eval = (0..n)
            .filter(|i| {
                let turns = vec![("user".to_string(), format!("question {i}"))];
                in_eval(conversation_hash(&turns), 0.1)
            })
            .count();
        assert!((800..1200).contains(&eval), "{eval} of {n} in eval at 0.1");
        let t = vec![("user".to_string(), "same  question".to_string())];
        let u = vec![("user".to_string(), "same question".to_string())];
        assert_eq!(
            conversation_hash(&t),
            conversation_hash(&u),
            "whitespace does not make a new conversation"
        );
    }

    #[test]
    fn lines_in_both_formats() {
        let ex = Example {
            request_id: "r".into(),
            prompt: vec![("user".into(), "2+2?".into())],
            answer: "4".into(),
        };
        assert_eq!(
            line(&ex, Format::OpenAi),
            json!({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})
        );
        assert_eq!(
            line(&ex, Format::PromptCompletion),
            json!({"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]})
        );
    }
}
