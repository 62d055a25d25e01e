//! `slmgate cascade signals`: the local model answers reference-labelled questions with its
//! own logprobs; each confidence signal over the first N tokens (and the whole answer) is
//! scored by how well it separates right answers from wrong ones (AUROC).

use std::path::{Path, PathBuf};

use anyhow::Context;
use slmgate_core::route::confidence::{alternatives_needed, confidence, TokenStat};
use slmgate_core::route::verifier::{auroc, SIGNALS};
use slmgate_engine::{ChatMessage, GenerationEvent, GenerationRequest, SamplingParams};

const WINDOWS: [usize; 4] = [4, 8, 16, 0];

struct Answer {
    text: String,
    tokens: Vec<TokenStat>,
    kind: String,
    right: bool,
}

/// The reference appears in the answer as a whole word (case-insensitive).
pub fn is_right(answer: &str, reference: &str) -> bool {
    let a = answer.to_lowercase();
    let r = reference.to_lowercase();
    a.match_indices(&r).any(|(i, _)| {
        let before = a[..i].chars().next_back();
        let after = a[i + r.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
    })
}

pub fn run(
    data: &Path,
    model: Option<&str>,
    config: Option<&PathBuf>,
    max_tokens: u32,
) -> anyhow::Result<()> {
    let cfg = crate::load(config)?;
    let (name, provider) = crate::local_model(&cfg, model)?;
    let queue = provider.engine.settings().queue;
    let text =
        std::fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
    let rows: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("each line must be a JSON object")?;
    let alts = SIGNALS
        .iter()
        .map(|s| alternatives_needed(*s))
        .max()
        .unwrap_or(0);
    let t = std::time::Instant::now();
    let mut answers = Vec::with_capacity(rows.len());
    // Submit in groups no larger than the engine's queue, then drain each stream.
    for group in rows.chunks(queue.clamp(1, 32)) {
        let mut streams = Vec::new();
        for r in group {
            let prompt = r["prompt"].as_str().context("a line has no prompt")?;
            let req = GenerationRequest {
                messages: vec![ChatMessage::new("user", prompt)],
                max_tokens: Some(max_tokens),
                sampling: SamplingParams {
                    temperature: 0.0,
                    ..Default::default()
                },
                logprobs: true,
                top_logprobs: alts,
                ..Default::default()
            };
            streams.push(provider.engine.generate(req)?);
        }
        for (mut s, r) in streams.into_iter().zip(group) {
            let mut text = String::new();
            let mut tokens = Vec::new();
            while let Some(ev) = s.blocking_next() {
                match ev {
                    GenerationEvent::Token { text: t, logprob } => {
                        text.push_str(&t);
                        if let Some(l) = logprob {
                            tokens.push(TokenStat {
                                logprob: l.logprob,
                                top: l.top_logprobs.iter().map(|x| x.logprob).collect(),
                            });
                        }
                    }
                    GenerationEvent::Done { .. } => break,
                    GenerationEvent::Error(e) => return Err(e.into()),
                }
            }
            let reference = r["reference"].as_str().context("a line has no reference")?;
            answers.push(Answer {
                right: is_right(&text, reference),
                kind: r["tags"]["kind"].as_str().unwrap_or("-").to_string(),
                text,
                tokens,
            });
        }
    }
    let right = answers.iter().filter(|a| a.right).count();
    println!(
        "{name} answered {} questions in {:.1} s: {right} right ({:.1} %)",
        answers.len(),
        t.elapsed().as_secs_f64(),
        100.0 * right as f64 / answers.len().max(1) as f64
    );
    let mut kinds: Vec<&str> = answers.iter().map(|a| a.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let of: Vec<&Answer> = answers.iter().filter(|a| a.kind == k).collect();
        let r = of.iter().filter(|a| a.right).count();
        println!("  {k}: {r}/{} right", of.len());
    }
    println!("\nAUROC (right vs wrong) of each signal over the first N answer tokens:");
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8}",
        "signal", "N=4", "N=8", "N=16", "whole"
    );
    let good: Vec<bool> = answers.iter().map(|a| a.right).collect();
    for signal in SIGNALS {
        let cells: Vec<String> = WINDOWS
            .iter()
            .map(|&w| {
                let conf: Vec<f32> = answers
                    .iter()
                    .map(|a| {
                        let t = if w > 0 && a.tokens.len() > w {
                            &a.tokens[..w]
                        } else {
                            &a.tokens[..]
                        };
                        confidence(signal, t).unwrap_or(f32::NEG_INFINITY)
                    })
                    .collect();
                auroc(&conf, &good)
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or("n/a".into())
            })
            .collect();
        println!(
            "{:<14} {:>8} {:>8} {:>8} {:>8}",
            signal.as_str(),
            cells[0],
            cells[1],
            cells[2],
            cells[3]
        );
    }
    if let Some(a) = answers.iter().find(|a| !a.right) {
        println!(
            "\n(an example of a wrong answer: {:?})",
            a.text.chars().take(80).collect::<String>()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_right;

    #[test]
    fn whole_word_reference() {
        assert!(is_right("The capital of France is Paris.", "Paris"));
        assert!(is_right("42", "42"));
        assert!(!is_right("142", "42"));
        assert!(!is_right("Parisian food", "Paris"));
        assert!(is_right("It's 7 + 5 = 12!", "12"));
    }
}
