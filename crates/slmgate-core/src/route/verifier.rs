//! Confidence signals of an answer scored by a local model (teacher forcing): the local SLM as
//! verifier of a tier that reports no logprobs, and the measure behind `slmgate cascade eval`.

use slmgate_engine::TokenScore;

use crate::config::ConfidenceSignal;

pub const SIGNALS: [ConfidenceSignal; 4] = [
    ConfidenceSignal::MeanLogprob,
    ConfidenceSignal::MinLogprob,
    ConfidenceSignal::MeanMargin,
    ConfidenceSignal::NegEntropy,
];

/// Confidence of an answer over its first `first` tokens (0 = all); higher is more confident.
/// The margin is signed: the answer's token against the best other token.
pub fn verifier_confidence(
    signal: ConfidenceSignal,
    scores: &[TokenScore],
    first: usize,
) -> Option<f32> {
    let s = if first > 0 && scores.len() > first {
        &scores[..first]
    } else {
        scores
    };
    if s.is_empty() {
        return None;
    }
    let n = s.len() as f32;
    Some(match signal {
        ConfidenceSignal::MeanLogprob => s.iter().map(|t| t.logprob).sum::<f32>() / n,
        ConfidenceSignal::MinLogprob => s.iter().map(|t| t.logprob).fold(f32::INFINITY, f32::min),
        ConfidenceSignal::MeanMargin => {
            s.iter()
                .map(|t| {
                    let is_top = t.logprob >= t.top - 1e-6;
                    if is_top {
                        t.logprob - t.second
                    } else {
                        t.logprob - t.top
                    }
                })
                .sum::<f32>()
                / n
        }
        ConfidenceSignal::NegEntropy => -s.iter().map(|t| t.entropy).sum::<f32>() / n,
    })
}

/// Area under the ROC curve of `conf` separating `good` from bad (ties count half).
pub fn auroc(conf: &[f32], good: &[bool]) -> Option<f64> {
    let pos: Vec<f32> = conf
        .iter()
        .zip(good)
        .filter(|(_, g)| **g)
        .map(|(c, _)| *c)
        .collect();
    let neg: Vec<f32> = conf
        .iter()
        .zip(good)
        .filter(|(_, g)| !**g)
        .map(|(c, _)| *c)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0f64;
    for p in &pos {
        for q in &neg {
            wins += if p > q {
                1.0
            } else if p == q {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(logprob: f32, top: f32, second: f32, entropy: f32) -> TokenScore {
        TokenScore {
            logprob,
            top,
            second,
            entropy,
        }
    }

    #[test]
    fn signals_by_hand() {
        let s = [t(-0.1, -0.1, -2.0, 0.5), t(-3.0, -0.5, -1.0, 1.5)];
        let c = |sig| verifier_confidence(sig, &s, 0).unwrap();
        assert!((c(ConfidenceSignal::MeanLogprob) + 1.55).abs() < 1e-6);
        assert!((c(ConfidenceSignal::MinLogprob) + 3.0).abs() < 1e-6);
        // (−0.1 − −2.0) and (−3.0 − −0.5): (1.9 − 2.5) / 2
        assert!((c(ConfidenceSignal::MeanMargin) + 0.3).abs() < 1e-6);
        assert!((c(ConfidenceSignal::NegEntropy) + 1.0).abs() < 1e-6);
        assert!(
            (verifier_confidence(ConfidenceSignal::MeanLogprob, &s, 1).unwrap() + 0.1).abs() < 1e-6
        );
    }

    #[test]
    fn auroc_by_hand() {
        assert_eq!(auroc(&[0.9, 0.8, 0.1], &[true, true, false]), Some(1.0));
        assert_eq!(auroc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(auroc(&[0.5], &[true]), None);
    }
}
