//! Retrieval quality on a labelled question set: recall@k and mean reciprocal rank.
//!
//! A label names the source file and a passage of it (`answer`): a retrieved chunk is
//! relevant when it comes from that file and holds the passage (case, whitespace and
//! emphasis marks ignored). Labelling by passage rather than by chunk id keeps the set
//! valid when the chunking changes.

use serde::Deserialize;

/// One labelled question (a JSON line of `question`, `file`, `answer`).
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub question: String,
    /// The source file's name (matched against the end of the chunk's filename).
    pub file: String,
    /// Text the relevant chunk holds.
    pub answer: String,
}

/// Lower case, whitespace collapsed, and the emphasis and code marks that the HTML and
/// Markdown extraction keeps (`*`, `` ` ``) dropped.
fn squash(s: &str) -> String {
    s.replace(['*', '`'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Question {
    /// Whether a chunk of `filename` with `text` answers this question.
    pub fn relevant(&self, filename: &str, text: &str) -> bool {
        filename.ends_with(&self.file) && squash(text).contains(&squash(&self.answer))
    }
}

/// Recall and MRR of a set of searches.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub questions: usize,
    /// Share of questions with a relevant chunk in the first 1, 3, 5 and 10.
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    /// Mean of 1 / (rank of the first relevant chunk), 0 when none is in the first 10.
    pub mrr_at_10: f64,
}

/// Scores from each question's rank (from 1) of its first relevant chunk, if any.
pub fn score(ranks: &[Option<usize>]) -> Scores {
    let n = ranks.len().max(1) as f64;
    let within = |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
    let mrr = ranks
        .iter()
        .map(|r| match r {
            Some(r) if *r <= 10 => 1.0 / *r as f64,
            _ => 0.0,
        })
        .sum::<f64>()
        / n;
    Scores {
        questions: ranks.len(),
        recall_at_1: within(1),
        recall_at_3: within(3),
        recall_at_5: within(5),
        recall_at_10: within(10),
        mrr_at_10: mrr,
    }
}

/// The rank (from 1) of the first relevant hit among `(filename, text)` pairs.
pub fn first_relevant<'a>(
    q: &Question,
    hits: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<usize> {
    hits.into_iter()
        .position(|(f, t)| q.relevant(f, t))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(file: &str, answer: &str) -> Question {
        Question {
            question: "?".into(),
            file: file.into(),
            answer: answer.into(),
        }
    }

    #[test]
    fn relevance_needs_the_file_and_the_passage() {
        let l = q("users.html", "Cache/MAN");
        assert!(l.relevant("/docs/users.html", "writes to\n  /var/cache/man and"));
        assert!(!l.relevant("/docs/other.html", "writes to /var/cache/man"));
        assert!(!l.relevant("/docs/users.html", "writes to /var/cache"));
        let bold = q("u.html", "update-passwd tool keeps");
        assert!(bold.relevant("u.html", "The **update-passwd** tool keeps"));
    }

    #[test]
    fn recall_and_mrr() {
        let s = score(&[Some(1), Some(2), Some(6), None]);
        assert_eq!(s.questions, 4);
        assert_eq!(s.recall_at_1, 0.25);
        assert_eq!(s.recall_at_3, 0.5);
        assert_eq!(s.recall_at_5, 0.5);
        assert_eq!(s.recall_at_10, 0.75);
        assert!((s.mrr_at_10 - (1.0 + 0.5 + 1.0 / 6.0) / 4.0).abs() < 1e-12);
        let l = q("a.md", "x");
        assert_eq!(
            first_relevant(&l, [("a.md", "y"), ("b.md", "x"), ("a.md", "x")]),
            Some(3)
        );
        assert_eq!(first_relevant(&l, [("a.md", "y")]), None);
    }
}
