//! Precision and recall of the detector on a labelled corpus (`data/pii/corpus.jsonl`:
//! `{"text", "pii": [{"type", "value"}]}`). A finding counts when its type and its text equal
//! a labelled value; any other finding is a false positive.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::PiiScanner;

#[derive(Debug, Deserialize)]
pub struct LabelledText {
    pub text: String,
    #[serde(default)]
    pub pii: Vec<Label>,
}

#[derive(Debug, Deserialize)]
pub struct Label {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn add(&mut self, o: Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

pub struct Evaluation {
    pub by_type: BTreeMap<String, Counts>,
    pub total: Counts,
    /// (text, what went wrong) for the first misses and false alarms.
    pub errors: Vec<(String, String)>,
    pub negatives: u32,
    pub flagged_negatives: u32,
}

pub fn evaluate(rows: &[LabelledText], scanner: &PiiScanner) -> Evaluation {
    let mut by_type: BTreeMap<String, Counts> = BTreeMap::new();
    let mut errors = Vec::new();
    let (mut negatives, mut flagged_negatives) = (0, 0);
    for row in rows {
        let found = scanner.detect(&row.text);
        if row.pii.is_empty() {
            negatives += 1;
            flagged_negatives += u32::from(!found.is_empty());
        }
        let mut matched = vec![false; row.pii.len()];
        for f in &found {
            let text = &row.text[f.start..f.end];
            let hit =
                row.pii.iter().enumerate().find(|(i, l)| {
                    !matched[*i] && l.kind == f.kind && l.value.trim() == text.trim()
                });
            match hit {
                Some((i, _)) => {
                    matched[i] = true;
                    by_type.entry(f.kind.to_string()).or_default().tp += 1;
                }
                None => {
                    by_type.entry(f.kind.to_string()).or_default().fp += 1;
                    errors.push((row.text.clone(), format!("false {}: {text:?}", f.kind)));
                }
            }
        }
        for (l, m) in row.pii.iter().zip(&matched) {
            if !m {
                by_type.entry(l.kind.clone()).or_default().fn_ += 1;
                errors.push((
                    row.text.clone(),
                    format!("missed {}: {:?}", l.kind, l.value),
                ));
            }
        }
    }
    let mut total = Counts::default();
    for c in by_type.values() {
        total.add(*c);
    }
    Evaluation {
        by_type,
        total,
        errors,
        negatives,
        flagged_negatives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped corpus: the detector must stay at least this good (measured values are in
    /// docs/benchmarks.md; `slmgate pii eval` prints them).
    #[test]
    fn corpus_precision_and_recall() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/pii/corpus.jsonl");
        let rows: Vec<LabelledText> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let e = evaluate(&rows, &PiiScanner::new(None));
        assert!(e.total.recall() >= 0.95, "recall {}", e.total.recall());
        assert!(
            e.total.precision() >= 0.95,
            "precision {}",
            e.total.precision()
        );
        for (t, c) in &e.by_type {
            assert!(c.recall() >= 0.8, "{t} recall {}", c.recall());
        }
    }
}
