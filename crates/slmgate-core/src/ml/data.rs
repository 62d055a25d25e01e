//! Labelled outcomes: one JSON object per line,
//! `{"prompt", "tags": {k: v}, "outcomes": {model: score 0..1}, "responses": {model: text}}`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::MlError;

#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    #[serde(default)]
    pub id: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub tags: BTreeMap<String, Value>,
    pub outcomes: BTreeMap<String, f64>,
    #[serde(default)]
    pub responses: BTreeMap<String, String>,
    /// The request's system prompt, if it had one (a router feature).
    #[serde(default)]
    pub system: Option<String>,
}

impl Row {
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Tags as `key=value` strings (the router's tag features).
    pub fn tag_pairs(&self) -> Vec<String> {
        self.tags
            .keys()
            .filter_map(|k| self.tag(k).map(|v| format!("{k}={v}")))
            .collect()
    }
}

/// One prompt with both models' quality.
#[derive(Debug, Clone)]
pub struct Example {
    pub row: Row,
    pub weak: f64,
    pub strong: f64,
}

impl Example {
    /// What the classifying routers learn: the strong model answers better than the weak one.
    pub fn strong_wins(&self) -> bool {
        self.strong > self.weak
    }

    /// What the ridge router learns: how much better the strong model answers (−1..1).
    pub fn gain(&self) -> f64 {
        self.strong - self.weak
    }

    /// The request as a router sees it besides its text's vector.
    pub fn shape<'a>(&'a self, tags: &'a [String]) -> super::RequestShape<'a> {
        super::RequestShape {
            tags,
            prompt_chars: self.row.prompt.chars().count(),
            system: self.row.system.as_deref(),
        }
    }
}

/// Reads the examples that have outcomes for both models; returns them and the count skipped.
pub fn load(path: &Path, weak: &str, strong: &str) -> Result<(Vec<Example>, usize), MlError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| MlError::Data(format!("cannot read {}: {e}", path.display())))?;
    parse(&text, weak, strong).map_err(|e| MlError::Data(format!("{}: {e}", path.display())))
}

pub fn parse(text: &str, weak: &str, strong: &str) -> Result<(Vec<Example>, usize), String> {
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        match (row.outcomes.get(weak), row.outcomes.get(strong)) {
            (Some(&w), Some(&s)) => {
                if !(0.0..=1.0).contains(&w) || !(0.0..=1.0).contains(&s) {
                    return Err(format!("line {}: outcomes must be between 0 and 1", i + 1));
                }
                out.push(Example {
                    row,
                    weak: w,
                    strong: s,
                });
            }
            _ => skipped += 1,
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no line has outcomes for both `{weak}` and `{strong}`"
        ));
    }
    Ok((out, skipped))
}
