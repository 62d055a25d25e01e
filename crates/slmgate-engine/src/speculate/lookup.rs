//! Prompt-lookup drafts: the tokens that followed the most recent earlier occurrence of the
//! sequence's last n-gram. Strong where the output quotes its input (RAG answers, extraction,
//! code edits), free where it does not (no match, no draft).

use llama_cpp_2::token::LlamaToken;

use super::LookupSettings;

/// Up to `limit` drafted tokens continuing `seq` (the whole sequence: prompt, output, and the
/// pending token last).
pub(crate) fn draft(seq: &[LlamaToken], s: &LookupSettings, limit: usize) -> Vec<LlamaToken> {
    let limit = limit.min(s.n_draft);
    if limit == 0 {
        return Vec::new();
    }
    let len = seq.len();
    for n in (s.ngram_min..=s.ngram_max).rev() {
        if len <= n {
            continue;
        }
        let pattern = &seq[len - n..];
        // Earlier occurrences only, most recent first; the one ending at `len` is the pattern.
        for start in (0..len - n).rev() {
            if &seq[start..start + n] == pattern {
                let from = start + n;
                let to = (from + limit).min(len);
                return seq[from..to].to_vec();
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&t| LlamaToken(t)).collect()
    }

    fn s(ngram_max: usize, ngram_min: usize, n_draft: usize) -> LookupSettings {
        LookupSettings {
            ngram_max,
            ngram_min,
            n_draft,
        }
    }

    #[test]
    fn drafts_what_followed_the_last_ngram() {
        let seq = toks(&[1, 2, 3, 4, 5, 6, 9, 2, 3]);
        assert_eq!(draft(&seq, &s(3, 2, 8), 8), toks(&[4, 5, 6, 9, 2, 3]));
        assert_eq!(draft(&seq, &s(3, 2, 2), 8), toks(&[4, 5]));
        assert_eq!(draft(&seq, &s(3, 2, 8), 1), toks(&[4]));
    }

    #[test]
    fn prefers_the_longest_ngram_then_the_most_recent() {
        // "7 2 3" occurs once earlier (followed by 8); "2 3" more recently (followed by 5).
        let seq = toks(&[7, 2, 3, 8, 1, 2, 3, 5, 7, 2, 3]);
        assert_eq!(draft(&seq, &s(3, 2, 1), 1), toks(&[8]));
        assert_eq!(draft(&seq, &s(2, 2, 1), 1), toks(&[5]));
    }

    #[test]
    fn no_match_no_draft() {
        let seq = toks(&[1, 2, 3, 4, 5]);
        assert!(draft(&seq, &s(3, 2, 8), 8).is_empty());
        assert!(draft(&toks(&[1]), &s(3, 1, 8), 8).is_empty());
        assert!(draft(&toks(&[1, 1, 1]), &s(3, 1, 8), 0).is_empty());
    }
}
