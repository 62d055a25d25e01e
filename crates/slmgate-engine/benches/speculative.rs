//! Speculative decoding: decode speed with and without drafts on the same greedy requests.
//!
//!   cargo bench -p slmgate-engine --bench speculative
//!   BENCH_THREADS=2 BENCH_CONCURRENCY=1 cargo bench -p slmgate-engine --bench speculative
//!   BENCH_CASES=1,2 cargo bench -p slmgate-engine --bench speculative      (rows 1 and 2 only)
//!
//! Workloads (greedy, natural length up to 128 tokens, the same text with and without drafts,
//! which the bench checks and reports):
//! - rag: answers from a context passage of real Debian documentation (tests/data/rag/debian),
//!   asked to quote it; where prompt lookup is meant to help;
//! - open: short open questions, where there is nothing to copy.
//!
//! Rows: SmolLM2-135M Q4_1 and Gemma 3 270M Q4_K_M with prompt lookup; the draft pair
//! (SmolLM2 Q4_1 drafting for a Q8_0 requantization of itself, made here with
//! `slmgate_engine::quantize` under bench/out/). Decode tok/s counts from the first token to
//! the last, so prefill is left out; acceptance = drafts accepted / drafted; tokens/step = 1 +
//! accepted / verify steps.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use slmgate_engine::*;

fn models_dir() -> PathBuf {
    std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slmgate/models")
        })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Context passages: the sections of two Debian docs, 40–200 words each.
fn passages() -> Vec<String> {
    let mut out = Vec::new();
    for f in [
        "procps-bugs.md",
        "zstd-TESTING.md",
        "python3-yaml-README.md",
    ] {
        let text = std::fs::read_to_string(root().join("tests/data/rag/debian").join(f))
            .expect("tests/data/rag/debian");
        for block in text.split("\n\n") {
            let words = block.split_whitespace().count();
            if (40..=200).contains(&words) {
                out.push(block.trim().to_string());
            }
        }
    }
    out
}

fn rag_prompts(n: usize) -> Vec<String> {
    passages()
        .into_iter()
        .take(n)
        .map(|p| {
            format!("Context:\n{p}\n\nQuestion: What does the context say? Answer by quoting it.")
        })
        .collect()
}

fn open_prompts(n: usize) -> Vec<String> {
    [
        "Write a short poem about the sea.",
        "Why is the sky blue?",
        "Give three tips for learning to cook.",
        "What is a good name for a cat?",
        "Explain what a compiler does.",
        "Describe a sunny day at the beach.",
        "What are the benefits of walking?",
        "Tell me about the planet Mars.",
    ]
    .iter()
    .take(n)
    .map(|s| s.to_string())
    .collect()
}

struct Run {
    texts: Vec<String>,
    tokens: usize,
    decode_secs: f64,
}

/// The prompts, `conc` at a time; chat template unless `raw` (Gemma is a base model).
fn run(e: &LocalEngine, prompts: &[String], raw: bool, conc: usize) -> Run {
    let mut texts = vec![String::new(); prompts.len()];
    let (mut tokens, mut decode_secs) = (0, 0.0);
    for (c, chunk) in prompts.chunks(conc).enumerate() {
        let handles: Vec<_> = chunk
            .iter()
            .map(|p| {
                let req = GenerationRequest {
                    messages: if raw {
                        vec![]
                    } else {
                        vec![ChatMessage::new("user", p)]
                    },
                    prompt: raw.then(|| p.clone()),
                    max_tokens: Some(128),
                    sampling: SamplingParams {
                        temperature: 0.0,
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let mut s = e.generate(req).expect("generate");
                std::thread::spawn(move || {
                    let mut text = String::new();
                    let mut times = Vec::new();
                    loop {
                        match s.blocking_next().expect("event") {
                            GenerationEvent::Token { text: t, .. } => {
                                times.push(Instant::now());
                                text.push_str(&t);
                            }
                            GenerationEvent::Done { .. } => break,
                            GenerationEvent::Error(e) => panic!("{e}"),
                        }
                    }
                    (text, times)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // Aggregate decode: from the chunk's first token to its last.
        let first = results.iter().filter_map(|(_, t)| t.first()).min();
        let last = results.iter().filter_map(|(_, t)| t.last()).max();
        if let (Some(a), Some(b)) = (first, last) {
            decode_secs += (*b - *a).as_secs_f64();
        }
        for (i, (text, times)) in results.into_iter().enumerate() {
            tokens += times.len().saturating_sub(1);
            texts[c * conc + i] = text;
        }
    }
    Run {
        texts,
        tokens,
        decode_secs,
    }
}

fn load(path: PathBuf, threads: i32, conc: u32, speculation: Speculation) -> LocalEngine {
    LocalEngine::load(EngineSettings {
        path,
        threads,
        threads_batch: threads,
        context: 2048,
        parallel: conc,
        batch: 512,
        queue: 64,
        chat_template: None,
        gpu_layers: 0,
        kv_cache_type: KvType::F16,
        speculation,
        adapters: Vec::new(),
    })
    .expect("load model (make models)")
}

fn q8_target() -> PathBuf {
    let out = root().join("bench/out/smollm2-135m-q8_0.gguf");
    if !out.is_file() {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        quantize(
            &models_dir().join("smollm2-135m-instruct-q4_1.gguf"),
            &out,
            "q8_0",
            true,
            2,
        )
        .expect("requantize");
    }
    out
}

/// One row of the table.
struct Case {
    target: &'static str,
    path: PathBuf,
    how: &'static str,
    spec: Speculation,
    workload: &'static str,
    prompts: Vec<String>,
    raw: bool,
}

fn main() {
    let threads: i32 = env_or("BENCH_THREADS", 2);
    let conc: usize = env_or("BENCH_CONCURRENCY", 1);
    let n: usize = env_or("BENCH_PROMPTS", 8);
    let smol = models_dir().join("smollm2-135m-instruct-q4_1.gguf");
    let gemma = models_dir().join("gemma3-270m-q4_k_m.gguf");
    let lookup = |n_draft| Speculation {
        lookup: Some(LookupSettings {
            n_draft,
            ..Default::default()
        }),
        draft: None,
    };
    let draft = |n_max| Speculation {
        lookup: None,
        draft: Some(DraftSettings {
            n_max,
            ..DraftSettings::new(smol.clone())
        }),
    };
    let rag = rag_prompts(n);
    let open = open_prompts(n);
    // Gemma 3 270M is a base model: the passage, then the start of a quoting answer.
    let rag_raw: Vec<String> = passages()
        .into_iter()
        .take(n)
        .map(|p| format!("{p}\n\nThe passage above, quoted word for word:\n"))
        .collect();
    let case = |target, path: &PathBuf, how, spec, workload, prompts: &[String], raw| Case {
        target,
        path: path.clone(),
        how,
        spec,
        workload,
        prompts: prompts.to_vec(),
        raw,
    };
    let q8 = q8_target();
    let cases = vec![
        case(
            "SmolLM2-135M Q4_1",
            &smol,
            "lookup n_draft=4",
            lookup(4),
            "rag",
            &rag,
            false,
        ),
        case(
            "SmolLM2-135M Q4_1",
            &smol,
            "lookup n_draft=8",
            lookup(8),
            "rag",
            &rag,
            false,
        ),
        case(
            "SmolLM2-135M Q4_1",
            &smol,
            "lookup n_draft=8",
            lookup(8),
            "open",
            &open,
            false,
        ),
        case(
            "Gemma3-270M Q4_K_M",
            &gemma,
            "lookup n_draft=8",
            lookup(8),
            "rag",
            &rag_raw,
            true,
        ),
        case(
            "SmolLM2 Q8_0 ← Q4_1 draft",
            &q8,
            "draft n_max=8",
            draft(8),
            "rag",
            &rag,
            false,
        ),
        case(
            "SmolLM2 Q8_0 ← Q4_1 draft",
            &q8,
            "draft n_max=8",
            draft(8),
            "open",
            &open,
            false,
        ),
    ];
    println!("| target | speculation | workload | conc | plain tok/s | spec tok/s | speed-up | acceptance | tokens/step | same text |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::var("BENCH_CASES").ok();
    for (i, c) in cases.into_iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|k| k == (i + 1).to_string()))
        {
            continue;
        }
        let Case {
            target: label,
            path,
            how,
            spec,
            workload,
            prompts,
            raw,
        } = c;
        let prompts = &prompts[..];
        let plain_e = load(path.clone(), threads, conc as u32, Speculation::default());
        run(&plain_e, &prompts[..1], raw, 1); // warm-up
        let plain = run(&plain_e, prompts, raw, conc);
        drop(plain_e);
        let spec_e = load(path, threads, conc as u32, spec);
        run(&spec_e, &prompts[..1], raw, 1);
        let st = spec_e.stats();
        let (s0, d0, a0) = (
            st.spec_steps.load(Ordering::Relaxed),
            st.spec_drafted.load(Ordering::Relaxed),
            st.spec_accepted.load(Ordering::Relaxed),
        );
        let sp = run(&spec_e, prompts, raw, conc);
        let steps = st.spec_steps.load(Ordering::Relaxed) - s0;
        let drafted = st.spec_drafted.load(Ordering::Relaxed) - d0;
        let accepted = st.spec_accepted.load(Ordering::Relaxed) - a0;
        let same = plain
            .texts
            .iter()
            .zip(&sp.texts)
            .filter(|(a, b)| a == b)
            .count();
        let tps = |r: &Run| r.tokens as f64 / r.decode_secs.max(1e-9);
        println!(
            "| {label} | {how} | {workload} | {conc} | {:.1} | {:.1} | {:.2}× | {:.0} % | {:.2} | {same}/{} |",
            tps(&plain),
            tps(&sp),
            tps(&sp) / tps(&plain),
            100.0 * accepted as f64 / drafted.max(1) as f64,
            1.0 + accepted as f64 / steps.max(1) as f64,
            prompts.len()
        );
    }
}
