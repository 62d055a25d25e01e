//! What shadow mode adds to a shadowed request's path: the sampling decision with its policy
//! check (`pick`), the job (a copy of the request as the models saw it and of the answer),
//! and the hand-over to the route's bounded queue (`try_send`; nothing is awaited). The
//! shadow's own call runs on its worker, off the path, and is not timed here.
//!
//!   cargo bench -p slmgate-core --bench shadow
//!
//! A 1 KB prompt and a 200-word answer; 20 000 runs after warm-up; p50 / p99 in ms. The
//! queue is larger than the run, so every job is accepted (a full queue only drops faster).

use std::time::Instant;

use slmgate_core::config::Config;
use slmgate_core::learn::shadow::{answer_text, Job, Shadows};
use slmgate_core::learn::store::Side;
use slmgate_core::route::plan::may_see;
use slmgate_core::route::{RequestFacts, RouteTable};
use slmgate_core::wire::openai::{ChatRequest, ChatResponse, Message};

const RUNS: usize = 20_000;

const CONFIG: &str = r#"
[models.primary]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "big"

[models.candidate]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "small"

[routes.auto]
tiers = [{ name = "llm", models = ["primary"] }]
shadow = { models = ["candidate"], sample = 1.0, queue = 100000 }
"#;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let cfg = Config::from_toml(CONFIG, "bench").expect("bench config");
    let table = RouteTable::compile(&cfg);
    let shadows = Shadows::new(&cfg, &table);
    let prompt: String = "Please summarise the attached order history and flag anything unusual. "
        .repeat(15)
        .chars()
        .take(1024)
        .collect();
    let req = ChatRequest::new("auto", vec![Message::text("user", prompt)]);
    let facts = RequestFacts::of(&req, &[] as &[&str]);
    let response = ChatResponse::assistant(
        "chatcmpl-1".into(),
        0,
        "big".into(),
        "word ".repeat(200),
        None,
        Some("stop".into()),
        None,
    );
    let mut times = Vec::with_capacity(RUNS);
    let mut accepted = 0usize;
    for i in 0..RUNS + 2_000 {
        let t = Instant::now();
        let pick = shadows
            .pick("auto", |id| may_see(&table, "auto", &facts, id))
            .expect("sample = 1 always shadows");
        let job = Job {
            route: "auto".into(),
            request_id: format!("req-{i}"),
            key_id: Some("key_bench".into()),
            user_id: None,
            req: req.clone(),
            models: pick.models,
            primary: Side {
                model: "primary".into(),
                latency_ms: 420,
                cost_usd: 0.001,
            },
            primary_answer: answer_text(&response),
        };
        let ok = shadows.offer(job);
        let dt = t.elapsed().as_secs_f64() * 1e3;
        if i >= 2_000 {
            times.push(dt);
            accepted += ok as usize;
        }
    }
    let (p50, p99) = (pct(&mut times, 0.50), pct(&mut times, 0.99));
    println!(
        "shadow hand-over ({RUNS} runs, {accepted} accepted): p50 {p50:.4} ms, p99 {p99:.4} ms"
    );
}
