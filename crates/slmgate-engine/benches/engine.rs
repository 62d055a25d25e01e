//! Engine throughput, the way `llama-bench` measures it, plus batching scaling.
//!
//!   cargo bench -p slmgate-engine --bench engine            (both models)
//!   BENCH_MODELS=smollm2 BENCH_THREADS=2 BENCH_REPS=3 cargo bench -p slmgate-engine --bench engine
//!
//! - pp: prompt processing of ~512 tokens in one request (max_tokens=1), tokens/s;
//! - tg: generation of 128 tokens after a short prompt, tokens/s (first token excluded);
//! - batch: aggregate generation tokens/s with 1, 4 and 8 concurrent greedy requests.
//!
//! Every repetition uses a distinct prompt so the prefix cache never shortcuts the work.
//! Prints a markdown table; medians of BENCH_REPS runs.

use std::path::PathBuf;
use std::time::Instant;

use slmgate_engine::*;

fn models_dir() -> PathBuf {
    std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slmgate/models")
        })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(engine: &LocalEngine, prompt: String, max_tokens: u32) -> (Vec<Instant>, Usage) {
    let mut s = engine
        .generate(GenerationRequest {
            prompt: Some(prompt),
            max_tokens: Some(max_tokens),
            sampling: SamplingParams {
                temperature: 0.0,
                ..Default::default()
            },
            // Fixed-length outputs, as llama-bench and llama-batched-bench measure them.
            ignore_eos: true,
            ..Default::default()
        })
        .expect("generate");
    let mut times = Vec::new();
    loop {
        match s.blocking_next().expect("event") {
            GenerationEvent::Token { .. } => times.push(Instant::now()),
            GenerationEvent::Done { usage, .. } => return (times, usage),
            GenerationEvent::Error(e) => panic!("{e}"),
        }
    }
}

fn main() {
    let threads: i32 = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let which = std::env::var("BENCH_MODELS").unwrap_or_else(|_| "smollm2,gemma3".into());
    let models = [
        (
            "smollm2",
            "SmolLM2-135M Q4_1",
            "smollm2-135m-instruct-q4_1.gguf",
        ),
        ("gemma3", "Gemma3-270M Q4_K_M", "gemma3-270m-q4_k_m.gguf"),
    ];
    println!("| model | threads | pp tok/s (~512) | tg tok/s (128) | batch 1 | batch 4 | batch 8 | 8 vs 1 |");
    println!("|---|---|---|---|---|---|---|---|");
    for (key, label, file) in models {
        if !which.split(',').any(|w| w == key) {
            continue;
        }
        let engine = LocalEngine::load(EngineSettings {
            path: models_dir().join(file),
            threads,
            threads_batch: threads,
            context: 1024,
            parallel: std::env::var("BENCH_PARALLEL")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(8),
            batch: 512,
            queue: 64,
            chat_template: None,
            gpu_layers: 0,
            kv_cache_type: std::env::var("BENCH_KV")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            speculation: Speculation::default(),
            adapters: Vec::new(),
        })
        .expect("load model (make models)");
        let filler =
            "The quick brown fox jumps over the lazy dog while the cat watches from the fence. ";
        // Warm-up.
        run(&engine, format!("warm {}", filler.repeat(4)), 4);

        let mut pp = Vec::new();
        for r in 0..reps {
            let mut prompt = format!("{r} ");
            while engine.tokenize(&prompt).len() < 500 {
                prompt.push_str(filler);
            }
            let t0 = Instant::now();
            let (times, usage) = run(&engine, prompt, 1);
            pp.push(usage.prompt_tokens as f64 / (times[0] - t0).as_secs_f64());
        }
        let mut tg = Vec::new();
        for r in 0..reps {
            let (times, _) = run(&engine, format!("{r} Once upon a time"), 129);
            let n = times.len() - 1;
            tg.push(n as f64 / (times[n] - times[0]).as_secs_f64());
        }
        let mut batch = Vec::new();
        for conc in [1usize, 4, 8] {
            let mut agg = Vec::new();
            for r in 0..reps {
                let t0 = Instant::now();
                let handles: Vec<_> = (0..conc)
                    .map(|i| {
                        let e = engine.clone();
                        std::thread::spawn(move || {
                            run(
                                &e,
                                format!("{r}-{i} Write a story about the number {i}."),
                                64,
                            )
                        })
                    })
                    .collect();
                let toks: u32 = handles
                    .into_iter()
                    .map(|h| h.join().unwrap().1.completion_tokens)
                    .sum();
                agg.push(toks as f64 / t0.elapsed().as_secs_f64());
            }
            batch.push(median(agg));
        }
        println!(
            "| {label} | {threads} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}x |",
            median(pp),
            median(tg),
            batch[0],
            batch[1],
            batch[2],
            batch[2] / batch[0]
        );
    }
}
