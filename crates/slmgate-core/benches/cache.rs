//! Response cache lookups at 100,000 entries: the exact lookup, and the semantic one when
//! every entry shares one scope (the worst case: one tenant, one route, one system prompt)
//! and when they are spread over 1,000 scopes of 100.
//!
//!   cargo bench -p slmgate-core --bench cache
//!
//! Vectors are synthetic but shaped like a FAQ workload: 384 dimensions (MiniLM), 200
//! topics, each entry its topic's direction plus noise (entries of one topic at cosine
//! ≈ 0.6–0.7 to each other). Hit probes are paraphrases of a cached entry (cosine ≈ 0.95
//! to it), miss probes new questions of a known topic. Every semantic result is checked
//! against an exact scan of the scope: "differs" counts probes whose answer (entry or
//! miss) is not the exact scan's.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest as _, Sha256};
use slmgate_core::know::cache::{Cached, Found, Probe, ResponseCache};
use slmgate_core::know::scope_index::ScopeIndex;
use slmgate_core::know::vectors::normalise;
use slmgate_core::wire::openai::ChatResponse;

const DIMS: usize = 384;
const ENTRIES: usize = 100_000;
const TOPICS: usize = 200;
const THRESHOLD: f32 = 0.92;

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIMS).map(|_| rng.random::<f32>() - 0.5).collect();
    normalise(&mut v);
    v
}

fn mix(a: &[f32], b: &[f32], wa: f32) -> Vec<f32> {
    let wb = (1.0 - wa * wa).sqrt();
    let mut v: Vec<f32> = a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect();
    normalise(&mut v);
    v
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn answer(i: usize) -> Cached {
    Cached {
        response: ChatResponse::assistant(
            format!("chatcmpl-{i}"),
            0,
            "m".into(),
            format!("answer {i}"),
            None,
            None,
            None,
        ),
        citations: Vec::new(),
        source: format!("req-{i}"),
    }
}

fn main() {
    let mut rng = StdRng::seed_from_u64(11);
    let topics: Vec<Vec<f32>> = (0..TOPICS).map(|_| unit(&mut rng)).collect();
    println!("| scopes × entries | lookup | p50 | p99 | hits | differs from exact scan |");
    println!("|---|---|---|---|---|---|");
    for scopes in [1usize, 1000] {
        let cache = ResponseCache::new(ENTRIES);
        // The entries of each scope, with an exact index of the same vectors to compare.
        let mut exact: Vec<ScopeIndex> = (0..scopes).map(|_| ScopeIndex::new(DIMS)).collect();
        let mut vectors = Vec::with_capacity(ENTRIES);
        let t = Instant::now();
        for i in 0..ENTRIES {
            let v = mix(&topics[i % TOPICS], &unit(&mut rng), 0.8);
            let s = i % scopes;
            let p = Probe {
                scope: digest(&format!("scope {s}")),
                exact: digest(&format!("question {i}")),
                question: format!("question {i}"),
                vector: Some(v.clone()),
            };
            cache.insert(&p, answer(i), Duration::from_secs(3600));
            exact[s].insert(i as u64, &v);
            vectors.push(v);
        }
        let insert_us = t.elapsed().as_secs_f64() * 1e6 / ENTRIES as f64;
        let (mut ex, mut hit_ms, mut miss_ms, mut scan_ms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut hits, mut misses_hit, mut differs, mut probes) = (0, 0, 0, 0);
        for n in 0..1200 {
            let i = rng.random_range(0..ENTRIES);
            let s = i % scopes;
            let scope = digest(&format!("scope {s}"));
            // A repeat: the exact lookup.
            let p = Probe {
                scope,
                exact: digest(&format!("question {i}")),
                question: String::new(),
                vector: None,
            };
            let t = Instant::now();
            let f = std::hint::black_box(cache.exact(&p));
            let e = t.elapsed().as_secs_f64() * 1e3;
            assert!(f.is_some());
            // A paraphrase of entry i, and a new question of its topic.
            let para = mix(&vectors[i], &unit(&mut rng), 0.95);
            let new = mix(&topics[i % TOPICS], &unit(&mut rng), 0.8);
            let mut timed = [0.0; 2];
            for (j, q) in [para, new].into_iter().enumerate() {
                let p = Probe {
                    scope,
                    exact: digest(&format!("probe {n} {j}")),
                    question: String::new(),
                    vector: Some(q.clone()),
                };
                let t = Instant::now();
                let f = std::hint::black_box(cache.similar(&p, THRESHOLD));
                timed[j] = t.elapsed().as_secs_f64() * 1e3;
                let got = f.as_ref().map(|f| match f {
                    Found::Semantic(c, _) | Found::Exact(c) => c.source.clone(),
                });
                let t = Instant::now();
                let best = exact[s].exact_best(&q);
                if j == 0 && n >= 200 {
                    scan_ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let want = best
                    .filter(|(_, sim)| *sim >= THRESHOLD)
                    .map(|(id, _)| format!("req-{id}"));
                probes += 1;
                if got != want {
                    differs += 1;
                }
                if got.is_some() {
                    if j == 0 {
                        hits += 1;
                    } else {
                        misses_hit += 1;
                    }
                }
            }
            if n >= 200 {
                ex.push(e);
                hit_ms.push(timed[0]);
                miss_ms.push(timed[1]);
            }
        }
        let per = ENTRIES / scopes;
        let row = |lookup: &str, v: &mut Vec<f64>, digits: usize, rest: &str| {
            println!(
                "| {scopes} × {per} | {lookup} | {:.digits$} ms | {:.digits$} ms | {rest} |",
                pct(v, 0.5),
                pct(v, 0.99)
            )
        };
        row("exact (repeat)", &mut ex, 4, "– | –");
        row(
            "semantic, paraphrase",
            &mut hit_ms,
            3,
            &format!("{hits}/1200 | {differs}/{probes} (both kinds)"),
        );
        row(
            "semantic, new question",
            &mut miss_ms,
            3,
            &format!("{misses_hit}/1200 |"),
        );
        row(
            "(an exact scan of the scope, for comparison)",
            &mut scan_ms,
            3,
            " |",
        );
        println!("| {scopes} × {per} | insert | {insert_us:.1} µs mean | | | |");
    }
}
