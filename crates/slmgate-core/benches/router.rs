//! Learned-router decision latency: embed the prompt with the local MiniLM, then score.
//!
//!   cargo bench -p slmgate-core --bench router
//!
//! Prompts of 64, 128 and 256 tokens (MiniLM tokens), 60 runs each after warm-up; p50 and p99
//! of the whole decision, and of the classifier alone (logistic and MLP).

use std::path::PathBuf;
use std::time::Instant;

use slmgate_core::ml::model::{Learner, RequestShape, RouterModel, FORMAT};
use slmgate_engine::SentenceEmbedder;

fn router(learner: Learner, inputs: usize) -> RouterModel {
    let hidden = if learner == Learner::Mlp { 32 } else { 0 };
    let w = |n: usize| {
        (0..n)
            .map(|i| ((i * 7919) % 101) as f32 / 1000.0 - 0.05)
            .collect::<Vec<_>>()
    };
    RouterModel {
        format: FORMAT.into(),
        learner,
        weak: "w".into(),
        strong: "s".into(),
        embedding: "all-minilm-l6-v2".into(),
        representation: Default::default(),
        embedding_dims: inputs - 1,
        tag_features: vec![],
        system_buckets: 0,
        tag_prior: None,
        mean: vec![0.0; inputs],
        scale: vec![1.0; inputs],
        hidden,
        w1: w(hidden * inputs),
        b1: vec![0.0; hidden],
        w2: w(if hidden > 0 { hidden } else { inputs }),
        b2: 0.0,
        l2: 0.0,
        threshold: 0.5,
        threshold_note: String::new(),
        trained_examples: 0,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slmgate/models")
        })
        .join("all-MiniLM-L6-v2");
    let e = SentenceEmbedder::load(&dir).expect("run `make models` first");
    let words = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. ";
    for learner in [Learner::Logistic, Learner::Mlp] {
        let m = router(learner, e.dimensions() + 1);
        let x = vec![0.01f32; e.dimensions() + 1];
        let mut us: Vec<f64> = (0..10_000)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(m.score(std::hint::black_box(&x)));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        println!(
            "classifier {:<8}: p50 {:.2} us, p99 {:.2} us",
            learner.as_str(),
            pct(&mut us, 0.5),
            pct(&mut us, 0.99)
        );
    }
    let m = router(Learner::Mlp, e.dimensions() + 1);
    for target in [64usize, 128, 256] {
        let mut text = String::new();
        while e.count_tokens(&[text.clone()]).unwrap()[0] < target {
            text.push_str(words);
        }
        let n = e.count_tokens(&[text.clone()]).unwrap()[0].min(e.max_tokens());
        let decide = || {
            let (v, _) = e.embed_truncated(std::slice::from_ref(&text)).unwrap();
            let x = m.features_of(
                &v[0],
                &RequestShape {
                    prompt_chars: text.len(),
                    ..Default::default()
                },
            );
            m.score(&x)
        };
        for _ in 0..5 {
            decide();
        }
        let mut ms: Vec<f64> = (0..60)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(decide());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!(
            "decision (contextual), {n:>3}-token prompt: p50 {:.2} ms, p99 {:.2} ms",
            pct(&mut ms, 0.5),
            pct(&mut ms, 0.99)
        );
        let fast = || {
            let v = e.embed_static(&text).unwrap();
            let x = m.features_of(
                &v,
                &RequestShape {
                    prompt_chars: text.len(),
                    ..Default::default()
                },
            );
            m.score(&x)
        };
        fast();
        let mut ms: Vec<f64> = (0..500)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(fast());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!(
            "decision (static),     {n:>3}-token prompt: p50 {:.3} ms, p99 {:.3} ms",
            pct(&mut ms, 0.5),
            pct(&mut ms, 0.99)
        );
    }
}
