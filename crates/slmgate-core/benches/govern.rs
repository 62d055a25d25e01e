//! Governance cost per request and audit write throughput.
//!
//!   cargo bench -p slmgate-core --bench govern
//!
//! Per request (a 1 KB prompt with an e-mail and a card number, a key with rpm, tpm and a
//! budget): key lookup, rate limits, budget reserve + reconcile, PII scan, PII redaction,
//! injection guard rules, audit enqueue: `total` is that request path. `guard_model` is the
//! guard's classifier (static MiniLM vector + logistic; needs the model in $MODELS_DIR), on
//! the request path only for routes whose guard action is block or force_local (with `flag`
//! it runs beside the model call). 20 000 runs after warm-up; p50 / p99 per step.
//! Then: 100 000 audit entries through the writer (batched SQLite transactions), entries/s.

use std::path::PathBuf;
use std::time::Instant;

use slmgate_core::config::AuditConfig;
use slmgate_core::govern::audit::{AuditWriter, Entry, PiiSummary, Record};
use slmgate_core::govern::guard::Guard;
use slmgate_core::govern::key_cache::KeyCache;
use slmgate_core::govern::keys::{Budget, KeySpec, Period};
use slmgate_core::govern::limits::Limits;
use slmgate_core::govern::pii::PiiScanner;
use slmgate_core::wire::openai::ChatRequest;
use slmgate_engine::SentenceEmbedder;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn prompt_1kb() -> String {
    let base = "Hello, I am writing about my order from last week. The parcel arrived damaged and \
                the invoice does not match what I paid. Please refund the difference to my card \
                4111 1111 1111 1111 and confirm by mail to jane.roe@example.org. ";
    let mut s = String::new();
    while s.len() < 1024 {
        s.push_str(base);
    }
    s.truncate(1024);
    s
}

fn entry(i: usize) -> Entry {
    Entry {
        kind: "request",
        id: format!("req-{i}"),
        ts_ms: 1_700_000_000_000 + i as i64,
        endpoint: "chat",
        key_id: Some("key_bench".into()),
        model: "auto".into(),
        status: 200,
        prompt_tokens: 256,
        completion_tokens: 64,
        cost_usd: 0.000123,
        latency_ms: 420,
        pii: PiiSummary::default(),
        ..Default::default()
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("slmgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("bench.db");
    let keys = KeyCache::open(&db).unwrap();
    let (_, plain) = keys
        .create(KeySpec {
            team: Some("bench".into()),
            budget: Some(Budget {
                usd: 1e9,
                period: Period::Day,
            }),
            rpm: Some(u32::MAX),
            tpm: Some(u32::MAX),
            ..Default::default()
        })
        .unwrap();
    let limits = std::sync::Arc::new(Limits::default());
    let pii = PiiScanner::new(None);
    let models = std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dirs_home().join(".cache/slmgate/models"));
    let emb = SentenceEmbedder::load(&models.join("all-MiniLM-L6-v2")).ok();
    let guard = match &emb {
        Some(e) => Guard::with_embedder(e, None).unwrap(),
        None => {
            eprintln!(
                "MiniLM not found in {}: guard without classifier",
                models.display()
            );
            Guard::heuristic()
        }
    };
    let writer = AuditWriter::start(db.clone(), &AuditConfig::default()).unwrap();
    let text = prompt_1kb();
    let req: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "auto",
        "messages": [{"role": "user", "content": text}],
    }))
    .unwrap();

    let steps = [
        "key",
        "limits",
        "budget",
        "pii_scan",
        "pii_redact",
        "guard_rules",
        "audit_enqueue",
        "total",
        "guard_model",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    for i in 0..22_000 {
        let mut lap = Instant::now();
        let mark = |k: usize, lap: &mut Instant, t: &mut Vec<Vec<f64>>| {
            let now = Instant::now();
            if i >= 2_000 {
                t[k].push((now - *lap).as_secs_f64() * 1e6);
            }
            *lap = now;
        };
        let start = lap;
        let k = keys.lookup(&plain).unwrap();
        mark(0, &mut lap, &mut t);
        limits.admit(&k, 300).unwrap();
        mark(1, &mut lap, &mut t);
        let r = limits
            .reserve(&k, k.spec.budget.unwrap(), 0.001, 300, |_| 0.0)
            .unwrap();
        r.reconcile(0.0005, 300);
        mark(2, &mut lap, &mut t);
        let report = pii.scan(&req);
        assert!(!report.is_empty());
        mark(3, &mut lap, &mut t);
        let (_r, red) = pii.redact(&req);
        assert!(!red.is_empty());
        mark(4, &mut lap, &mut t);
        std::hint::black_box(guard.score(&text, None));
        mark(5, &mut lap, &mut t);
        writer.submit(Record {
            entry: entry(i),
            content: None,
            review: None,
            commit: None,
        });
        mark(6, &mut lap, &mut t);
        if i >= 2_000 {
            t[7].push(start.elapsed().as_secs_f64() * 1e6);
        }
        // The classifier (static embedding + logistic): inline only for block/force_local.
        let c = Instant::now();
        std::hint::black_box(guard.score(&text, emb.as_ref()));
        if i >= 2_000 {
            t[8].push(c.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!(
        "governance per request, 1 KB prompt ({} runs), microseconds:",
        t[0].len()
    );
    println!("{:<14} {:>9} {:>9}", "step", "p50", "p99");
    for (k, name) in steps.iter().enumerate() {
        let (p50, p99) = (pct(&mut t[k], 0.5), pct(&mut t[k], 0.99));
        println!("{name:<14} {p50:>9.1} {p99:>9.1}");
    }
    writer.shutdown();

    // Throughput: enqueue 100k, then wait until the writer has committed them all.
    let db2 = dir.join("throughput.db");
    let w = AuditWriter::start(db2.clone(), &AuditConfig::default()).unwrap();
    let n = 100_000;
    let start = Instant::now();
    for i in 0..n {
        w.submit(Record {
            entry: entry(i),
            content: None,
            review: None,
            commit: None,
        });
    }
    w.shutdown();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "audit writer: {n} entries committed in {secs:.2} s = {:.0} entries/s",
        n as f64 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn dirs_home() -> PathBuf {
    std::env::var("HOME").map(PathBuf::from).unwrap_or_default()
}
