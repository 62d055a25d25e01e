//! An answer's confidence from its own token log-probabilities (OpenAI `logprobs.content`
//! entries). Higher is more confident for every signal.

use serde_json::Value;

use crate::config::ConfidenceSignal;

/// One generated token: its log-probability and those of the top alternatives (best first).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStat {
    pub logprob: f32,
    pub top: Vec<f32>,
}

impl TokenStat {
    /// Reads the entries of an OpenAI `logprobs` value (`{"content": [...]}`).
    pub fn from_logprobs(v: &Value) -> Vec<TokenStat> {
        let Some(items) = v.get("content").and_then(Value::as_array) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|t| {
                let lp = t.get("logprob")?.as_f64()? as f32;
                let top = t
                    .get("top_logprobs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.get("logprob")?.as_f64().map(|f| f as f32))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(TokenStat { logprob: lp, top })
            })
            .collect()
    }
}

/// Alternatives the cascade asks the engine for, per token, for a signal.
pub fn alternatives_needed(signal: ConfidenceSignal) -> u8 {
    match signal {
        ConfidenceSignal::MeanLogprob | ConfidenceSignal::MinLogprob => 0,
        ConfidenceSignal::MeanMargin => 2,
        ConfidenceSignal::NegEntropy => 5,
    }
}

/// The confidence of a token sequence; `None` when there are no tokens to judge.
pub fn confidence(signal: ConfidenceSignal, tokens: &[TokenStat]) -> Option<f32> {
    if tokens.is_empty() {
        return None;
    }
    let n = tokens.len() as f32;
    Some(match signal {
        ConfidenceSignal::MeanLogprob => tokens.iter().map(|t| t.logprob).sum::<f32>() / n,
        ConfidenceSignal::MinLogprob => tokens
            .iter()
            .map(|t| t.logprob)
            .fold(f32::INFINITY, f32::min),
        ConfidenceSignal::MeanMargin => {
            tokens
                .iter()
                .map(|t| match (t.top.first(), t.top.get(1)) {
                    (Some(a), Some(b)) => a - b,
                    // No runner-up reported: the chosen token's log-odds against all others.
                    _ => t.logprob - (1.0 - t.logprob.exp()).max(1e-6).ln(),
                })
                .sum::<f32>()
                / n
        }
        ConfidenceSignal::NegEntropy => {
            -tokens
                .iter()
                .map(|t| {
                    let probs: Vec<f32> = if t.top.is_empty() {
                        vec![t.logprob.exp()]
                    } else {
                        t.top.iter().map(|l| l.exp()).collect()
                    };
                    // Entropy over the reported alternatives plus the remaining mass as one
                    // outcome: a lower bound on the full entropy.
                    let rest = (1.0 - probs.iter().sum::<f32>()).max(0.0);
                    probs
                        .iter()
                        .chain(std::iter::once(&rest))
                        .filter(|p| **p > 0.0)
                        .map(|p| -p * p.ln())
                        .sum::<f32>()
                })
                .sum::<f32>()
                / n
        }
    })
}

/// Whether the confidence over `n` tokens is already certain to end below `threshold`, from
/// the first tokens alone: log-probabilities and negative entropies are never positive, so the
/// sum so far divided by `n` bounds the final mean from above (also when the answer ends
/// sooner), and a minimum only falls. Lets the cascade escalate before `n` tokens. The margin
/// has no such bound.
pub fn certainly_below(
    signal: ConfidenceSignal,
    tokens: &[TokenStat],
    n: usize,
    threshold: f32,
) -> bool {
    if tokens.is_empty() || n == 0 {
        return false;
    }
    match signal {
        ConfidenceSignal::MeanLogprob => {
            tokens.iter().map(|t| t.logprob.min(0.0)).sum::<f32>() / (n.max(tokens.len()) as f32)
                < threshold
        }
        ConfidenceSignal::MinLogprob => tokens.iter().any(|t| t.logprob < threshold),
        ConfidenceSignal::NegEntropy => {
            let partial = confidence(signal, tokens).unwrap_or(0.0) * tokens.len() as f32;
            partial / (n.max(tokens.len()) as f32) < threshold
        }
        ConfidenceSignal::MeanMargin => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(lp: f32, top: &[f32]) -> TokenStat {
        TokenStat {
            logprob: lp,
            top: top.to_vec(),
        }
    }

    #[test]
    fn signals_by_hand() {
        let toks = [tok(-0.1, &[-0.1, -2.5]), tok(-1.0, &[-0.5, -1.0])];
        let c = |s| confidence(s, &toks).unwrap();
        assert!((c(ConfidenceSignal::MeanLogprob) - -0.55).abs() < 1e-6);
        assert!((c(ConfidenceSignal::MinLogprob) - -1.0).abs() < 1e-6);
        assert!((c(ConfidenceSignal::MeanMargin) - (2.4 + 0.5) / 2.0).abs() < 1e-6);
        assert_eq!(confidence(ConfidenceSignal::MeanLogprob, &[]), None);
    }

    #[test]
    fn a_certain_token_has_zero_entropy_and_a_coin_flip_ln2() {
        let certain = [tok(0.0, &[0.0])];
        assert!(
            confidence(ConfidenceSignal::NegEntropy, &certain)
                .unwrap()
                .abs()
                < 1e-6
        );
        let half = 0.5f32.ln();
        let coin = [tok(half, &[half, half])];
        let e = confidence(ConfidenceSignal::NegEntropy, &coin).unwrap();
        assert!((e + std::f32::consts::LN_2).abs() < 1e-5, "{e}");
    }

    #[test]
    fn early_escalation_is_exact() {
        // Two tokens of an answer judged over 4: sum -3.0 / 4 = -0.75 < -0.5 whatever follows.
        let toks = [tok(-1.0, &[]), tok(-2.0, &[])];
        assert!(certainly_below(
            ConfidenceSignal::MeanLogprob,
            &toks,
            4,
            -0.5
        ));
        assert!(!certainly_below(
            ConfidenceSignal::MeanLogprob,
            &toks,
            4,
            -1.0
        ));
        assert!(certainly_below(
            ConfidenceSignal::MinLogprob,
            &toks,
            4,
            -1.5
        ));
        assert!(!certainly_below(
            ConfidenceSignal::MeanMargin,
            &toks,
            4,
            100.0
        ));
        // Whatever the remaining tokens are, the final mean is at most the bound.
        for rest in [0.0f32, -0.1, -5.0] {
            let mut all = toks.to_vec();
            all.extend([tok(rest, &[]), tok(rest, &[])]);
            assert!(confidence(ConfidenceSignal::MeanLogprob, &all).unwrap() < -0.5);
            assert!(confidence(ConfidenceSignal::MeanLogprob, &all[..3]).unwrap() < -0.5);
        }
    }

    #[test]
    fn reads_the_openai_shape() {
        let v = serde_json::json!({"content": [
            {"token": "a", "logprob": -0.25, "bytes": [97], "top_logprobs": [
                {"token": "a", "logprob": -0.25, "bytes": [97]},
                {"token": "b", "logprob": -1.5, "bytes": [98]}]},
            {"token": "c", "logprob": -3.0, "bytes": [99], "top_logprobs": []}
        ]});
        let t = TokenStat::from_logprobs(&v);
        assert_eq!(t, vec![tok(-0.25, &[-0.25, -1.5]), tok(-3.0, &[])]);
    }
}
