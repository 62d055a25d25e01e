//! Reciprocal-rank fusion (Cormack et al., 2009): each ranking adds `1 / (k + rank)` to an
//! item's score (rank from 1), so an item near the top of both BM25 and the dense ranking
//! beats one at the top of only one, without calibrating BM25 scores against cosines.

use std::collections::HashMap;
use std::hash::Hash;

/// Fused scores, best first (ties keep first-seen order).
pub fn rrf<T: Eq + Hash + Clone>(rankings: &[Vec<T>], k: f32) -> Vec<(T, f32)> {
    let mut score: HashMap<T, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for ranking in rankings {
        for (rank, item) in ranking.iter().enumerate() {
            let e = score.entry(item.clone()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            e.0 += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(T, f32, usize)> = score.into_iter().map(|(t, (s, o))| (t, s, o)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(t, s, _)| (t, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_beats_one_ranking() {
        let bm25 = vec!["a", "b", "c"];
        let dense = vec!["b", "d", "a"];
        let f = rrf(&[bm25, dense], 60.0);
        assert_eq!(f[0].0, "b"); // 1/62 + 1/61
        assert_eq!(f[1].0, "a"); // 1/61 + 1/63
        assert!((f[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert_eq!(f.len(), 4);
    }
}
