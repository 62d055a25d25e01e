//! Sentence-embedding latency and quality of the bundled MiniLM embedder.
//!
//!   cargo bench -p slmgate-engine --bench embed
//!
//! Latency per sentence alone and in batches of 8 and 32 (median of 20 runs), and cosine
//! similarity of paraphrase pairs vs unrelated pairs (the separation a semantic cache or a
//! learned router relies on).

use std::path::PathBuf;
use std::time::Instant;

use slmgate_engine::SentenceEmbedder;

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn main() {
    let dir = std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slmgate/models")
        })
        .join("all-MiniLM-L6-v2");
    let e = SentenceEmbedder::load(&dir).expect("make models");
    let sentence =
        "How do I reset my password if I no longer have access to my email account?".to_string();
    let mut report = Vec::new();
    for batch in [1usize, 8, 32] {
        let inputs = vec![sentence.clone(); batch];
        e.embed(&inputs).unwrap();
        let mut ms: Vec<f64> = (0..20)
            .map(|_| {
                let t = Instant::now();
                e.embed(&inputs).unwrap();
                t.elapsed().as_secs_f64() * 1000.0 / batch as f64
            })
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        report.push(format!(
            "batch {batch}: {:.2} ms/sentence",
            ms[ms.len() / 2]
        ));
    }
    let pairs = [
        (
            "The cat sits on the mat.",
            "A cat is sitting on a mat.",
            true,
        ),
        (
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            true,
        ),
        (
            "What is the refund policy?",
            "Can I get my money back?",
            true,
        ),
        (
            "The weather is sunny today.",
            "It is a bright and sunny day.",
            true,
        ),
        (
            "The cat sits on the mat.",
            "Quarterly revenue grew by 12 percent.",
            false,
        ),
        (
            "How do I reset my password?",
            "The recipe needs two cups of flour.",
            false,
        ),
        (
            "What is the refund policy?",
            "Jupiter is the largest planet.",
            false,
        ),
        (
            "The weather is sunny today.",
            "Please send the invoice by Friday.",
            false,
        ),
    ];
    let (mut para, mut unrel) = (Vec::new(), Vec::new());
    for (a, b, same) in pairs {
        let (v, _) = e.embed(&[a.to_string(), b.to_string()]).unwrap();
        let c = cos(&v[0], &v[1]);
        if same {
            para.push(c)
        } else {
            unrel.push(c)
        }
    }
    let range = |v: &[f32]| {
        format!(
            "{:.2}–{:.2}",
            v.iter().cloned().fold(f32::MAX, f32::min),
            v.iter().cloned().fold(f32::MIN, f32::max)
        )
    };
    println!(
        "all-MiniLM-L6-v2 (candle, fp32, {} dims): {}",
        e.dimensions(),
        report.join(", ")
    );
    println!(
        "cosine: paraphrases {}, unrelated {}",
        range(&para),
        range(&unrel)
    );
}
