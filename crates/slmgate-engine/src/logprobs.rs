//! Token log-probabilities from raw logits (log-softmax), in the OpenAI `logprobs` shape.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

/// The chosen token's log-probability and the `top` most likely alternatives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprob>,
}

/// log Σ exp(logits), computed stably.
pub(crate) fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    max + sum.ln()
}

/// The `k` highest logits as (token id, logprob), best first.
pub(crate) fn top_k(logits: &[f32], lse: f32, k: usize) -> Vec<(i32, f32)> {
    if k == 0 || logits.is_empty() {
        return Vec::new();
    }
    let k = k.min(logits.len());
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    idx.select_nth_unstable_by(k - 1, |&a, &b| {
        logits[b as usize].total_cmp(&logits[a as usize])
    });
    idx.truncate(k);
    idx.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.into_iter()
        .map(|i| (i as i32, logits[i as usize] - lse))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_sums_to_one() {
        let logits = [1.0f32, 2.0, 3.0, -1.0];
        let lse = log_sum_exp(&logits);
        let total: f32 = logits.iter().map(|l| (l - lse).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }

    #[test]
    fn top_k_is_sorted_and_correct() {
        let logits = [0.5f32, 3.0, -2.0, 2.0, 1.0];
        let lse = log_sum_exp(&logits);
        let top = top_k(&logits, lse, 3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert!((top[0].1 - (3.0 - lse)).abs() < 1e-6);
        assert!(top[0].1 <= 0.0);
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let logits = [1000.0f32, 999.0];
        let lse = log_sum_exp(&logits);
        assert!(lse.is_finite());
        assert!(((1000.0 - lse).exp() - 0.7310586).abs() < 1e-4);
    }
}
