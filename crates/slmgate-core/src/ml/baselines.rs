//! Simple routers a learned one must beat, scored out of fold like it (`router eval` prints
//! them): the per-tag prior — each prompt scores the mean gain (strong − weak quality) of the
//! training prompts sharing its tags — and a length-only router (log prompt length, its
//! direction taken from the training folds). Random routing is the diagonal (APGR 0.5).

use std::collections::BTreeMap;

use super::data::Example;

/// The gain of routing `e` to the strong model.
fn gain(e: &Example) -> f64 {
    e.strong - e.weak
}

/// Out-of-fold per-tag prior scores: the mean over a prompt's `key=value` tags of the
/// training prompts' mean gain with that tag, minus the training prompts' mean gain (0 for
/// tags never seen).
pub fn tag_prior_scores(examples: &[Example], fold_of: &[usize], k: usize) -> Vec<f64> {
    let mut out = vec![0.0; examples.len()];
    for f in 0..k {
        let train: Vec<&Example> = examples
            .iter()
            .zip(fold_of)
            .filter(|(_, g)| **g != f)
            .map(|(e, _)| e)
            .collect();
        let global = train.iter().map(|e| gain(e)).sum::<f64>() / train.len().max(1) as f64;
        let mut by_tag: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for e in &train {
            for t in e.row.tag_pairs() {
                let s = by_tag.entry(t).or_default();
                s.0 += gain(e);
                s.1 += 1;
            }
        }
        for (i, e) in examples.iter().enumerate() {
            if fold_of[i] != f {
                continue;
            }
            let priors: Vec<f64> = e
                .row
                .tag_pairs()
                .iter()
                .filter_map(|t| by_tag.get(t).map(|(s, n)| s / *n as f64))
                .collect();
            // Centred on the fold's mean, so scores of different folds compare (a tag every
            // prompt shares scores 0 everywhere: random routing).
            out[i] = if priors.is_empty() {
                0.0
            } else {
                priors.iter().sum::<f64>() / priors.len() as f64 - global
            };
        }
    }
    out
}

/// Out-of-fold length-only scores: log prompt length, negated when longer training prompts
/// gained less from the strong model (their correlation is below zero).
pub fn length_scores(examples: &[Example], fold_of: &[usize], k: usize) -> Vec<f64> {
    let len = |e: &Example| ((e.row.prompt.chars().count() + 1) as f64).ln();
    let mut out = vec![0.0; examples.len()];
    for f in 0..k {
        let train: Vec<(f64, f64)> = examples
            .iter()
            .zip(fold_of)
            .filter(|(_, g)| **g != f)
            .map(|(e, _)| (len(e), gain(e)))
            .collect();
        let n = train.len().max(1) as f64;
        let (mx, my) = (
            train.iter().map(|p| p.0).sum::<f64>() / n,
            train.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = train.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let sign = if cov < 0.0 { -1.0 } else { 1.0 };
        for (i, e) in examples.iter().enumerate() {
            if fold_of[i] == f {
                out[i] = sign * len(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::data::parse;
    use crate::ml::metrics::{curve, oracle_scores};

    fn examples(lines: &[(&str, &str, f64, f64)]) -> Vec<Example> {
        let text: String = lines
            .iter()
            .map(|(p, tag, w, s)| {
                format!(
                    "{{\"prompt\": \"{p}\", \"tags\": {{\"task\": \"{tag}\"}}, \"outcomes\": {{\"w\": {w}, \"s\": {s}}}}}\n"
                )
            })
            .collect();
        parse(&text, "w", "s").unwrap().0
    }

    #[test]
    fn the_tag_prior_learns_which_tags_gain_and_unseen_tags_get_the_mean() {
        // "math" always gains from the strong model, "chat" never.
        let mut rows = Vec::new();
        for i in 0..20 {
            rows.push((
                "q",
                if i % 2 == 0 { "math" } else { "chat" },
                if i % 2 == 0 { 0.0 } else { 1.0 },
                1.0,
            ));
        }
        rows.push(("q", "poetry", 1.0, 1.0));
        let ex = examples(&rows);
        let folds: Vec<usize> = (0..ex.len()).map(|i| i % 3).collect();
        let s = tag_prior_scores(&ex, &folds, 3);
        for (e, v) in ex.iter().zip(&s) {
            match e.row.tag("task").as_deref() {
                Some("math") => assert!(*v > 0.4, "math gains: {v}"),
                Some("chat") => assert!(*v < -0.4, "chat does not: {v}"),
                _ => assert_eq!(*v, 0.0, "an unseen tag is neutral"),
            }
        }
        // One tag on every prompt says nothing: every score is the same (random routing).
        let same = examples(
            &[
                ("q", "all", 0.0, 1.0),
                ("q", "all", 1.0, 1.0),
                ("q", "all", 1.0, 0.0),
            ]
            .repeat(5),
        );
        let same_folds: Vec<usize> = (0..same.len()).map(|i| i % 3).collect();
        let flat = tag_prior_scores(&same, &same_folds, 3);
        assert!(flat.iter().all(|v| v.abs() < 1e-12), "{flat:?}");
        let weak: Vec<f64> = ex.iter().map(|e| e.weak).collect();
        let strong: Vec<f64> = ex.iter().map(|e| e.strong).collect();
        let best = curve(&oracle_scores(&weak, &strong), &weak, &strong).apgr();
        let prior = curve(&s, &weak, &strong).apgr();
        assert!(
            (prior - best).abs() < 1e-9,
            "the prior ranks math first: {prior} vs {best}"
        );
    }

    #[test]
    fn the_length_router_takes_its_direction_from_training() {
        // Short prompts gain from the strong model here: the length score is negated.
        let rows: Vec<(&str, &str, f64, f64)> = (0..20)
            .map(|i| {
                if i % 2 == 0 {
                    ("hi", "x", 0.0, 1.0)
                } else {
                    ("a much longer prompt about many things", "x", 1.0, 1.0)
                }
            })
            .collect();
        let ex = examples(&rows);
        let folds: Vec<usize> = (0..ex.len()).map(|i| i % 3).collect();
        let s = length_scores(&ex, &folds, 3);
        assert!(s[0] > s[1], "the short prompt scores higher");
    }
}
