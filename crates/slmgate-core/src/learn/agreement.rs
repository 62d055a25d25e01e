//! How far two answers to the same request agree: exactly, after normalisation, by meaning
//! (cosine of their embeddings), and for JSON answers field by field.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Agreement {
    /// Byte for byte.
    pub exact: bool,
    /// Equal after case folding, whitespace collapsing and trimming trailing punctuation.
    pub normalised: bool,
    /// Cosine similarity of the two answers' embeddings (when an embedding model is loaded).
    pub similarity: Option<f32>,
    /// When both answers are JSON: the share of leaf fields (by path, over both answers'
    /// fields) whose values are equal.
    pub json_fields: Option<f32>,
    /// The one number reports threshold: the JSON field share for JSON answers, else 1 for
    /// a normalised match, else the embedding similarity, else 0.
    pub score: f32,
}

/// Compares `a` and `b`; `similarity` is their embeddings' cosine, if measured.
pub fn agreement(a: &str, b: &str, similarity: Option<f32>) -> Agreement {
    let exact = a == b;
    let normalised = exact || normalise(a) == normalise(b);
    let json_fields = json_field_share(a, b);
    let similarity = similarity.map(|s| s.clamp(-1.0, 1.0));
    let score = match (json_fields, normalised, similarity) {
        (Some(j), _, _) => j,
        (None, true, _) => 1.0,
        (None, false, Some(s)) => s.max(0.0),
        (None, false, None) => 0.0,
    };
    Agreement {
        exact,
        normalised,
        similarity,
        json_fields,
        score,
    }
}

/// Lower case, runs of whitespace as one space, no surrounding whitespace or trailing
/// sentence punctuation.
pub fn normalise(s: &str) -> String {
    let folded = s.to_lowercase();
    let words: Vec<&str> = folded.split_whitespace().collect();
    words
        .join(" ")
        .trim_end_matches(['.', '!', '?', ',', ';', ':'])
        .to_string()
}

/// Cosine similarity of two vectors (0 when either is empty or zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// Both answers parse as JSON objects or arrays (a fenced ```json block counts): the share
/// of leaf paths in either whose values are equal in both.
fn json_field_share(a: &str, b: &str) -> Option<f32> {
    let (a, b) = (parse_json(a)?, parse_json(b)?);
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    leaves(&a, String::new(), &mut fa);
    leaves(&b, String::new(), &mut fb);
    let fb: std::collections::BTreeMap<String, &Value> = fb.into_iter().collect();
    let fa: std::collections::BTreeMap<String, &Value> = fa.into_iter().collect();
    let union: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    if union.is_empty() {
        return Some(1.0);
    }
    let equal = union
        .iter()
        .filter(|k| matches!((fa.get(**k), fb.get(**k)), (Some(x), Some(y)) if x == y))
        .count();
    Some(equal as f32 / union.len() as f32)
}

fn parse_json(s: &str) -> Option<Value> {
    let t = s.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|x| x.trim_end().strip_suffix("```"))
        .unwrap_or(t)
        .trim();
    match serde_json::from_str::<Value>(t).ok()? {
        v @ (Value::Object(_) | Value::Array(_)) => Some(v),
        _ => None,
    }
}

fn leaves<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaves(x, format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{path}[{i}]"), out);
            }
        }
        leaf => out.push((path, leaf)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_normalised_matches_score_one() {
        let a = agreement("Paris.", "Paris.", None);
        assert!(a.exact && a.normalised);
        assert_eq!(a.score, 1.0);
        let b = agreement("  The answer is PARIS!", "the answer   is paris", Some(0.2));
        assert!(!b.exact && b.normalised);
        assert_eq!(b.score, 1.0, "a normalised match wins over the embedding");
    }

    #[test]
    fn different_text_scores_its_similarity_or_zero() {
        let a = agreement("Paris", "Lyon", Some(0.61));
        assert!(!a.normalised);
        assert!((a.score - 0.61).abs() < 1e-6);
        assert_eq!(agreement("Paris", "Lyon", None).score, 0.0);
        assert_eq!(agreement("Paris", "Lyon", Some(-0.3)).score, 0.0);
    }

    #[test]
    fn json_answers_agree_field_by_field() {
        let a = r#"{"name": "Ada", "age": 36, "tags": ["x", "y"]}"#;
        let b = "```json\n{\"age\": 36, \"name\": \"Bob\", \"tags\": [\"x\", \"y\"]}\n```";
        let g = agreement(a, b, Some(0.99));
        // Leaves: .name (differs), .age, .tags[0], .tags[1] (equal).
        assert_eq!(g.json_fields, Some(0.75));
        assert_eq!(g.score, 0.75, "JSON answers are scored by their fields");
        let c = r#"{"name": "Ada", "extra": true}"#;
        // Union of leaves: .name, .age, .tags[0], .tags[1], .extra; equal: .name.
        assert_eq!(agreement(a, c, None).json_fields, Some(0.2));
        assert_eq!(
            agreement("42", "42", None).json_fields,
            None,
            "a bare number is text"
        );
    }

    #[test]
    fn cosine_of_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert_eq!(cosine(&[], &[]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
