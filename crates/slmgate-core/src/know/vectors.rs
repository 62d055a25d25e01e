//! Dense retrieval: exact cosine similarity over a collection's unit-length vectors, held in
//! one contiguous array. It never misses a neighbour; its cost grows with the collection
//! (docs/benchmarks.md: `cargo bench -p slmgate-core --bench knowledge`). No approximate
//! (HNSW) index yet.

pub struct Vectors {
    dims: usize,
    data: Vec<f32>,
}

pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

impl Vectors {
    pub fn new(dims: usize) -> Self {
        Self {
            dims,
            data: Vec::new(),
        }
    }

    /// Appends a vector (normalised here); its position is the count before.
    pub fn push(&mut self, v: &[f32]) {
        let start = self.data.len();
        self.data.extend_from_slice(v);
        self.data.resize(start + self.dims, 0.0);
        normalise(&mut self.data[start..]);
    }

    /// Removes entry `i`, moving the last entry into its place.
    pub fn swap_remove(&mut self, i: usize) {
        let last = self.len() - 1;
        if i != last {
            let (head, tail) = self.data.split_at_mut(last * self.dims);
            head[i * self.dims..(i + 1) * self.dims].copy_from_slice(&tail[..self.dims]);
        }
        self.data.truncate(last * self.dims);
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dims.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Cosine similarity of entry `i` with the unit query `q`.
    pub fn similarity(&self, i: usize, q: &[f32]) -> f32 {
        dot(&self.data[i * self.dims..(i + 1) * self.dims], q)
    }

    /// The `k` most similar entries that `keep` allows, best first.
    pub fn nearest(&self, q: &[f32], k: usize, keep: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
        let mut all: Vec<(usize, f32)> = (0..self.len())
            .filter(|i| keep(*i))
            .map(|i| (i, self.similarity(i, q)))
            .collect();
        let k = k.min(all.len());
        if k == 0 {
            return Vec::new();
        }
        all.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        all.truncate(k);
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all
    }
}

/// A dot product in eight independent lanes, which the compiler turns into SIMD (a plain
/// `zip().sum()` must add in order and stays scalar).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_is_exact_and_filtered() {
        let mut v = Vectors::new(2);
        v.push(&[1.0, 0.0]);
        v.push(&[0.0, 3.0]);
        v.push(&[1.0, 1.0]);
        let mut q = vec![2.0, 0.1];
        normalise(&mut q);
        let got = v.nearest(&q, 2, |_| true);
        assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 2]);
        assert!((got[0].1 - 0.9988).abs() < 1e-3);
        let got = v.nearest(&q, 5, |i| i != 0);
        assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn swap_remove_moves_the_last_entry() {
        let mut v = Vectors::new(2);
        v.push(&[1.0, 0.0]);
        v.push(&[0.0, 1.0]);
        v.push(&[-1.0, 0.0]);
        v.swap_remove(0);
        assert_eq!(v.len(), 2);
        assert_eq!(v.similarity(0, &[-1.0, 0.0]), 1.0);
        assert_eq!(v.similarity(1, &[0.0, 1.0]), 1.0);
        v.swap_remove(1);
        v.swap_remove(0);
        assert!(v.is_empty());
    }

    #[test]
    fn the_lane_dot_product_equals_the_plain_one() {
        for n in [1usize, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "{n}");
        }
    }
}
