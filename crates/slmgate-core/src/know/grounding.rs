//! Groundedness of an answer in the passages it was given: the share of the answer's content
//! words that the passages contain, not counting words the question already had (an answer
//! that only restates the question claims nothing). Words are whitespace tokens with their
//! surrounding punctuation cut, case folded and the commonest suffixes dropped (`writes` meets
//! `write`), so a path or a number (`/var/cache/man`, `uid 37`) must appear whole. An answer
//! that claims nothing new scores 1.

use std::collections::HashSet;

/// Common English words that carry no claim.
const STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "are",
    "but",
    "not",
    "you",
    "all",
    "any",
    "can",
    "has",
    "had",
    "her",
    "was",
    "one",
    "our",
    "out",
    "his",
    "how",
    "its",
    "may",
    "who",
    "why",
    "use",
    "used",
    "this",
    "that",
    "with",
    "from",
    "they",
    "them",
    "then",
    "than",
    "there",
    "their",
    "these",
    "those",
    "what",
    "when",
    "where",
    "which",
    "while",
    "will",
    "would",
    "could",
    "should",
    "into",
    "also",
    "been",
    "being",
    "have",
    "does",
    "did",
    "doing",
    "such",
    "some",
    "other",
    "only",
    "more",
    "most",
    "very",
    "each",
    "about",
    "over",
    "under",
    "your",
    "were",
    "is",
    "it",
    "of",
    "to",
    "in",
    "on",
    "at",
    "by",
    "as",
    "or",
    "an",
    "a",
    "be",
    "so",
    "if",
    "no",
    "yes",
    "do",
    "answer",
    "question",
    "context",
    "based",
    "according",
    "provided",
    "mentioned",
];

/// A word without its commonest inflections (`-ing`, `-ed`, `-s`), so `writes` meets
/// `write` and `owned` meets `own`. Paths and numbers are kept as they are.
fn stem(w: String) -> String {
    if !w.chars().all(|c| c.is_alphabetic()) || w.len() <= 4 {
        return w;
    }
    for suffix in ["ing", "ed", "s"] {
        if let Some(base) = w.strip_suffix(suffix) {
            if base.len() >= 3 {
                return base.to_string();
            }
        }
    }
    w
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace().filter_map(|w| {
        let w = w
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '/')
            .trim_end_matches('/')
            .to_lowercase();
        let has_digit = w.chars().any(|c| c.is_ascii_digit());
        (!w.is_empty() && (has_digit || w.chars().count() >= 3) && !STOP.contains(&w.as_str()))
            .then(|| stem(w))
    })
}

/// 0..1: how much of what the answer claims is in the passages.
pub fn score(answer: &str, question: &str, passages: &str) -> f32 {
    let known: HashSet<String> = words(passages).collect();
    let asked: HashSet<String> = words(question).collect();
    let claimed: Vec<String> = words(answer).filter(|w| !asked.contains(w)).collect();
    if claimed.is_empty() {
        return 1.0;
    }
    let found = claimed.iter().filter(|w| known.contains(*w)).count();
    found as f32 / claimed.len() as f32
}

/// One labelled answer: the question, the passages it was given, and whether it is grounded
/// in them.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Labelled {
    pub question: String,
    pub passages: String,
    pub answer: String,
    pub grounded: bool,
}

/// Precision and recall of calling an answer ungrounded (score below `threshold`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
    pub flagged: usize,
}

pub fn evaluate(rows: &[Labelled], threshold: f32) -> Detection {
    let (mut tp, mut fp, mut positives) = (0usize, 0usize, 0usize);
    for r in rows {
        let flagged = score(&r.answer, &r.question, &r.passages) < threshold;
        positives += usize::from(!r.grounded);
        match (flagged, r.grounded) {
            (true, false) => tp += 1,
            (true, true) => fp += 1,
            _ => {}
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Detection {
        threshold,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, positives),
        flagged: tp + fp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &str = "The man program (sometimes) runs as user man, so it can write cat \
                           pages to /var/cache/man and update its databases there.";
    const Q: &str = "Where does the man program write its cat pages?";

    #[test]
    fn a_copied_answer_is_grounded_and_an_invented_one_is_not() {
        let right = score(
            "The man program writes its cat pages to /var/cache/man.",
            Q,
            CONTEXT,
        );
        let wrong = score(
            "The man program writes its cat pages to /var/log/man.",
            Q,
            CONTEXT,
        );
        let invented = score(
            "It writes them on a server called Lemons.com in Portugal.",
            Q,
            CONTEXT,
        );
        assert!(right > 0.6, "{right}");
        assert!(wrong < 0.5, "{wrong}");
        assert!(invented < 0.2, "{invented}");
        assert_eq!(score("The man program writes cat pages.", Q, CONTEXT), 1.0);
    }

    #[test]
    fn inflections_meet() {
        assert_eq!(stem("writes".into()), "write");
        assert_eq!(stem("owned".into()), "own");
        assert_eq!(stem("/var/logs".into()), "/var/logs");
        assert_eq!(stem("pages".into()), "page");
    }

    #[test]
    fn detection_counts_flagged_ungrounded_answers() {
        let row = |answer: &str, grounded| Labelled {
            question: Q.into(),
            passages: CONTEXT.into(),
            answer: answer.into(),
            grounded,
        };
        let rows = [
            row("It is /var/cache/man.", true),
            row("It is /var/log/man, on Lemons.com.", false),
            row("Pages go to /var/cache/man, in Portugal.", true),
        ];
        let d = evaluate(&rows, 0.6);
        // Flags the second (0 of 3 found) and the third (1 of 2): one right, one wrong.
        assert_eq!((d.flagged, d.precision, d.recall), (2, 0.5, 1.0));
    }
}
