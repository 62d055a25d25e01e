//! What LoRA adapters cost: aggregate generation tokens/s of concurrent requests on the base
//! model alone, all on one adapter, and spread over several adapters (each step then decodes
//! once per adapter in use); the time to load or swap an adapter; its memory.
//!
//!   cargo bench -p slmgate-engine --bench adapters
//!   BENCH_THREADS=2 BENCH_REPS=3 BENCH_CONC=4 cargo bench -p slmgate-engine --bench adapters
//!
//! SmolLM2-135M Q4_1 with rank-8 adapters on every layer's query and down projections
//! (tests/common/lora_file.rs). Fixed-length greedy outputs (64 tokens, EOS ignored); medians of
//! BENCH_REPS runs; distinct prompts so the prefix cache never shortcuts the work.

use std::path::PathBuf;
use std::time::Instant;

use slmgate_engine::*;

#[path = "../tests/common/lora_file.rs"]
mod lora_file;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

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

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn run(engine: &LocalEngine, prompt: String, adapter: Option<String>) -> u32 {
    let mut s = engine
        .generate(GenerationRequest {
            prompt: Some(prompt),
            max_tokens: Some(64),
            sampling: SamplingParams {
                temperature: 0.0,
                ..Default::default()
            },
            ignore_eos: true,
            adapter,
            ..Default::default()
        })
        .expect("generate");
    loop {
        match s.blocking_next().expect("event") {
            GenerationEvent::Token { .. } => {}
            GenerationEvent::Done { usage, .. } => return usage.completion_tokens,
            GenerationEvent::Error(e) => panic!("{e}"),
        }
    }
}

fn main() {
    let threads: i32 = env("BENCH_THREADS", 2);
    let reps: usize = env("BENCH_REPS", 3);
    let conc: usize = env("BENCH_CONC", 4);
    let dir = std::env::temp_dir().join(format!("slmgate-lora-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let specs: Vec<AdapterSpec> = (1..=4u64)
        .map(|i| {
            let path = dir.join(format!("a{i}.gguf"));
            lora_file::write_lora(&path, i, "llama", "adapter");
            AdapterSpec {
                name: format!("a{i}"),
                path,
                scale: 1.0,
            }
        })
        .collect();
    let settings = |adapters: Vec<AdapterSpec>| EngineSettings {
        path: models_dir().join("smollm2-135m-instruct-q4_1.gguf"),
        threads,
        threads_batch: threads,
        context: 512,
        parallel: conc as u32,
        batch: 512,
        queue: 64,
        chat_template: None,
        gpu_layers: 0,
        kv_cache_type: KvType::F16,
        speculation: Speculation::default(),
        adapters,
    };
    let engine = LocalEngine::load(settings(Vec::new())).expect("load (make models)");
    run(&engine, "warm up".into(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let before = rss_kb();
    let t0 = Instant::now();
    for spec in &specs {
        rt.block_on(engine.load_adapter(spec.clone()))
            .expect("load adapter");
    }
    let load_ms = t0.elapsed().as_secs_f64() * 1e3 / specs.len() as f64;
    let added_kb = rss_kb().saturating_sub(before);
    run(&engine, "warm up".into(), None);

    // (label, the adapter of request i)
    type Pick = fn(usize) -> Option<String>;
    let cases: [(&str, Pick); 4] = [
        ("base model only", |_| None),
        ("one adapter", |_| Some("a1".into())),
        ("2 adapters", |i| Some(format!("a{}", 1 + i % 2))),
        ("base + 3 adapters", |i| {
            (i % 4 > 0).then(|| format!("a{}", i % 4))
        }),
    ];
    println!("| requests ({conc} at once, 64 tokens each) | aggregate tok/s | vs base |");
    println!("|---|---|---|");
    let mut base = 0.0;
    for (label, pick) in cases {
        let mut agg = Vec::new();
        for r in 0..reps {
            let t0 = Instant::now();
            let hs: Vec<_> = (0..conc)
                .map(|i| {
                    let e = engine.clone();
                    let a = pick(i);
                    std::thread::spawn(move || {
                        run(&e, format!("{r}-{i} {label}: write a story about {i}."), a)
                    })
                })
                .collect();
            let toks: u32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            agg.push(toks as f64 / t0.elapsed().as_secs_f64());
        }
        let m = median(agg);
        if base == 0.0 {
            base = m;
        }
        println!("| {label} | {m:.1} | {:.2}x |", m / base);
    }
    let mut swaps = Vec::new();
    for r in 0..reps.max(5) {
        let t0 = Instant::now();
        rt.block_on(engine.load_adapter(AdapterSpec {
            name: "a1".into(),
            path: specs[r % 4].path.clone(),
            scale: 1.0,
        }))
        .expect("swap");
        swaps.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let file_kb = std::fs::metadata(&specs[0].path)
        .map(|m| m.len() / 1024)
        .unwrap_or(0);
    println!();
    println!(
        "adapter file {file_kb} KiB; first load {load_ms:.1} ms each; RSS +{:.1} MiB for {} adapters",
        added_kb as f64 / 1024.0,
        specs.len()
    );
    println!(
        "swap (load one adapter while idle): median {:.1} ms over {} loads",
        median(swaps),
        reps.max(5)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
