//! The question embeddings of one cache scope, and the lookup of those most similar to a
//! new question.
//!
//! Up to [`EXACT_MAX`] entries the lookup is an exact cosine scan. Beyond that each entry
//! also keeps a sign code (one bit per dimension: is the component positive), the
//! [`CANDIDATES`] entries nearest the question's code by Hamming distance are picked
//! (a few machine words per entry, so 100,000 entries scan in a fraction of a
//! millisecond), and only those are scored exactly. For unit vectors the expected
//! Hamming distance is `dims × angle / π`, so a cached question at cosine ≥ 0.9 lies
//! about 55 of 384 bits away and an unrelated one about 150–190: the near ones are
//! among the candidates unless more than [`CANDIDATES`] entries are nearly as close
//! (docs/benchmarks.md measures how often the result differs from the exact scan).

use std::collections::HashMap;

use super::vectors::Vectors;

/// Scopes up to this many entries are scanned exactly.
pub const EXACT_MAX: usize = 4096;
/// Entries scored exactly after the sign-code scan in larger scopes.
pub const CANDIDATES: usize = 64;

pub struct ScopeIndex {
    vectors: Vectors,
    words: usize,
    codes: Vec<u64>,
    ids: Vec<u64>,
    pos: HashMap<u64, usize>,
}

fn code_into(v: &[f32], out: &mut Vec<u64>, words: usize) {
    let start = out.len();
    out.resize(start + words, 0);
    for (i, x) in v.iter().enumerate() {
        if *x > 0.0 {
            out[start + i / 64] |= 1 << (i % 64);
        }
    }
}

impl ScopeIndex {
    pub fn new(dims: usize) -> Self {
        Self {
            vectors: Vectors::new(dims),
            words: dims.div_ceil(64),
            codes: Vec::new(),
            ids: Vec::new(),
            pos: HashMap::new(),
        }
    }

    pub fn dims(&self) -> usize {
        self.vectors.dims()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds entry `id` with its (unit) vector; a vector of other dimensions is refused.
    pub fn insert(&mut self, id: u64, v: &[f32]) -> bool {
        if v.len() != self.dims() || self.pos.contains_key(&id) {
            return false;
        }
        self.pos.insert(id, self.ids.len());
        self.ids.push(id);
        self.vectors.push(v);
        code_into(v, &mut self.codes, self.words);
        true
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let Some(i) = self.pos.remove(&id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        self.ids.swap_remove(i);
        self.vectors.swap_remove(i);
        if i != last {
            let w = self.words;
            self.codes.copy_within(last * w..(last + 1) * w, i * w);
            self.pos.insert(self.ids[i], i);
        }
        self.codes.truncate(last * self.words);
        true
    }

    /// Entries at or above `threshold` cosine similarity to the unit vector `q`, most
    /// similar first.
    pub fn similar(&self, q: &[f32], threshold: f32) -> Vec<(u64, f32)> {
        if q.len() != self.dims() || self.is_empty() {
            return Vec::new();
        }
        let positions: Vec<usize> = if self.len() <= EXACT_MAX {
            (0..self.len()).collect()
        } else {
            self.nearest_codes(q)
        };
        let mut out: Vec<(u64, f32)> = positions
            .into_iter()
            .map(|i| (self.ids[i], self.vectors.similarity(i, q)))
            .filter(|(_, s)| *s >= threshold)
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The positions of the [`CANDIDATES`] codes nearest `q`'s.
    fn nearest_codes(&self, q: &[f32]) -> Vec<usize> {
        let mut qc = Vec::with_capacity(self.words);
        code_into(q, &mut qc, self.words);
        let mut d: Vec<(u32, usize)> = self
            .codes
            .chunks_exact(self.words)
            .enumerate()
            .map(|(i, c)| {
                let h = c
                    .iter()
                    .zip(&qc)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum::<u32>();
                (h, i)
            })
            .collect();
        let k = CANDIDATES.min(d.len());
        d.select_nth_unstable(k - 1);
        d.truncate(k);
        d.into_iter().map(|(_, i)| i).collect()
    }

    /// The most similar entry by an exact scan, whatever the scope's size (what
    /// [`ScopeIndex::similar`] is compared with in tests and the benchmark).
    pub fn exact_best(&self, q: &[f32]) -> Option<(u64, f32)> {
        (0..self.len())
            .map(|i| (self.ids[i], self.vectors.similarity(i, q)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::know::vectors::normalise;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn unit(rng: &mut StdRng, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims).map(|_| rng.random::<f32>() - 0.5).collect();
        normalise(&mut v);
        v
    }

    /// `v` moved towards a random direction so that its cosine with `v` is about `cos`.
    fn near(rng: &mut StdRng, v: &[f32], cos: f32) -> Vec<f32> {
        let r = unit(rng, v.len());
        let s = (1.0 - cos * cos).sqrt();
        let mut out: Vec<f32> = v.iter().zip(&r).map(|(a, b)| cos * a + s * b).collect();
        normalise(&mut out);
        out
    }

    #[test]
    fn small_scopes_are_exact_and_removal_keeps_positions() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut ix = ScopeIndex::new(16);
        let vs: Vec<Vec<f32>> = (0..10).map(|_| unit(&mut rng, 16)).collect();
        for (i, v) in vs.iter().enumerate() {
            assert!(ix.insert(i as u64, v));
        }
        assert!(!ix.insert(3, &vs[0]), "an id is indexed once");
        assert!(!ix.insert(99, &[1.0; 8]), "other dimensions are refused");
        let got = ix.similar(&vs[4], 0.99);
        assert_eq!(got[0].0, 4);
        assert!(ix.remove(4) && !ix.remove(4));
        assert!(ix.similar(&vs[4], 0.99).is_empty());
        // The entry moved into the removed one's place is still found.
        assert_eq!(ix.similar(&vs[9], 0.99)[0].0, 9);
        assert_eq!(ix.len(), 9);
    }

    #[test]
    fn large_scopes_find_what_the_exact_scan_finds() {
        let mut rng = StdRng::seed_from_u64(2);
        let dims = 384;
        let mut ix = ScopeIndex::new(dims);
        let mut planted = Vec::new();
        for id in 0..(EXACT_MAX as u64 * 3) {
            let v = unit(&mut rng, dims);
            if id % 97 == 0 {
                planted.push((id, near(&mut rng, &v, 0.93)));
            }
            ix.insert(id, &v);
        }
        for (id, q) in &planted {
            let got = ix.similar(q, 0.9);
            assert_eq!(got.first().map(|g| g.0), Some(*id));
            assert_eq!(ix.exact_best(q).map(|g| g.0), Some(*id));
        }
        // Removing from a large scope keeps the codes in step.
        let (id, q) = planted[0].clone();
        assert!(ix.remove(id));
        assert!(ix.similar(&q, 0.9).is_empty());
        assert_eq!(ix.similar(&planted[1].1, 0.9)[0].0, planted[1].0);
    }
}
