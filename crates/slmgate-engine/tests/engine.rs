//! The engine against the real SmolLM2-135M-Instruct GGUF (fetched by `make models`).
//! Set MODELS_DIR to where the models are cached (default ~/.cache/slmgate/models).

use std::path::PathBuf;
use std::sync::OnceLock;

use slmgate_engine::*;

fn models_dir() -> PathBuf {
    std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/slmgate/models")
        })
}

fn engine() -> &'static LocalEngine {
    static E: OnceLock<LocalEngine> = OnceLock::new();
    E.get_or_init(|| {
        LocalEngine::load(EngineSettings {
            path: models_dir().join("smollm2-135m-instruct-q4_1.gguf"),
            threads: 2,
            threads_batch: 2,
            context: 512,
            parallel: 4,
            batch: 256,
            queue: 8,
            chat_template: None,
            gpu_layers: 0,
            kv_cache_type: KvType::F16,
            speculation: Speculation::default(),
            adapters: Vec::new(),
        })
        .expect("load SmolLM2 (run `make models`)")
    })
}

fn greedy(user: &str, max_tokens: u32) -> GenerationRequest {
    GenerationRequest {
        messages: vec![ChatMessage::new("user", user)],
        max_tokens: Some(max_tokens),
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs a generation to its end: (text, finish reason, usage, logprobs).
fn collect(mut s: GenerationStream) -> (String, FinishReason, Usage, Vec<TokenLogprob>) {
    let mut text = String::new();
    let mut lps = Vec::new();
    loop {
        match s.blocking_next().expect("stream ended without Done") {
            GenerationEvent::Token { text: t, logprob } => {
                text.push_str(&t);
                lps.extend(logprob);
            }
            GenerationEvent::Done {
                finish_reason,
                usage,
            } => return (text, finish_reason, usage, lps),
            GenerationEvent::Error(e) => panic!("engine error: {e}"),
        }
    }
}

#[test]
fn template_matches_smollm2_format() {
    let p = engine().render(&[ChatMessage::new("user", "Hi")]).unwrap();
    // SmolLM2's Jinja template adds a default system message when none is given.
    assert!(p.starts_with("<|im_start|>system\n"), "{p:?}");
    assert!(
        p.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        "{p:?}"
    );
    let toks = engine().tokenize(&p);
    // Special tokens are parsed as single tokens, not spelled out.
    assert!(
        toks.len() < p.len() / 2,
        "{} tokens for {} bytes",
        toks.len(),
        p.len()
    );
}

#[test]
fn greedy_is_deterministic_and_answers() {
    let (a, _, usage, _) = collect(engine().generate(greedy("What is 2+2?", 24)).unwrap());
    let (b, _, _, _) = collect(engine().generate(greedy("What is 2+2?", 24)).unwrap());
    assert_eq!(a, b);
    assert!(a.contains('4'), "{a:?}");
    assert!(
        usage.prompt_tokens > 10 && usage.completion_tokens >= 1 && usage.completion_tokens <= 24
    );
}

#[test]
fn max_tokens_gives_length() {
    let (_, reason, usage, _) = collect(
        engine()
            .generate(greedy("Write a long story about a dragon.", 5))
            .unwrap(),
    );
    assert_eq!(reason, FinishReason::Length);
    assert_eq!(usage.completion_tokens, 5);
}

#[test]
fn concurrent_sequences_match_their_solo_runs() {
    let prompts = [
        "Name a color.",
        "What is 2+2?",
        "Say hello in French.",
        "Name a fruit.",
        "What is the opposite of hot?",
        "Count to three.",
    ];
    let solo: Vec<String> = prompts
        .iter()
        .map(|p| collect(engine().generate(greedy(p, 16)).unwrap()).0)
        .collect();
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| engine().generate(greedy(p, 16)).unwrap())
        .collect();
    let together: Vec<String> = streams.into_iter().map(|s| collect(s).0).collect();
    assert_eq!(solo, together);
}

#[test]
fn logprobs_are_valid() {
    let mut req = greedy("What is 2+2?", 6);
    req.logprobs = true;
    req.top_logprobs = 3;
    let (text, _, usage, lps) = collect(engine().generate(req).unwrap());
    assert_eq!(lps.len(), usage.completion_tokens as usize);
    for lp in &lps {
        assert!(lp.logprob <= 0.0);
        assert_eq!(lp.top_logprobs.len(), 3);
        // Greedy picks the most likely token.
        assert!(
            (lp.top_logprobs[0].logprob - lp.logprob).abs() < 1e-4,
            "{lp:?}"
        );
        assert!(lp.top_logprobs[0].logprob >= lp.top_logprobs[1].logprob);
    }
    let joined: String = lps.iter().map(|l| l.token.clone()).collect();
    assert!(
        joined.starts_with(text.trim_end()) || text.starts_with(joined.trim_end()),
        "{joined:?} vs {text:?}"
    );
}

#[test]
fn stop_string_ends_generation_and_is_not_emitted() {
    let (full, _, _, _) = collect(
        engine()
            .generate(greedy("Count from 1 to 10 separated by commas.", 40))
            .unwrap(),
    );
    assert!(full.contains('5'), "{full:?}");
    let mut req = greedy("Count from 1 to 10 separated by commas.", 40);
    req.stop = vec!["5".into()];
    let (text, reason, _, _) = collect(engine().generate(req).unwrap());
    assert_eq!(reason, FinishReason::Stop);
    assert!(!text.contains('5'));
    assert!(
        full.starts_with(&text),
        "{text:?} is not a prefix of {full:?}"
    );
}

#[test]
fn json_schema_grammar_is_enforced() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": false
    });
    let mut req = greedy("Give me a person as JSON.", 60);
    req.sampling.grammar = Some(grammar::json_schema_to_gbnf(&schema).unwrap());
    let (text, _, _, _) = collect(engine().generate(req).unwrap());
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert!(v["name"].is_string() && v["age"].is_i64(), "{v}");
}

#[test]
fn context_overflow_is_refused_before_queueing() {
    let long = "word ".repeat(600);
    match engine().prepare(greedy(&long, 10)) {
        Err(EngineError::ContextOverflow { limit, prompt, .. }) => {
            assert_eq!(limit, 512);
            assert!(prompt > 512);
        }
        other => panic!("expected ContextOverflow, got {:?}", other.err()),
    }
    assert!(matches!(
        engine().prepare(greedy("hi", 600)),
        Err(EngineError::ContextOverflow { .. })
    ));
}

#[test]
fn bad_grammar_is_refused() {
    let mut req = greedy("hi", 5);
    req.sampling.grammar = Some("root ::= (".into());
    assert!(matches!(
        engine().prepare(req),
        Err(EngineError::Grammar(_))
    ));
}

#[test]
fn dropped_stream_frees_its_slot() {
    // More cancelled requests than queue places: cancelled ones must not hold the queue.
    for _ in 0..24 {
        let s = engine()
            .generate(greedy("Write a very long essay about the sea.", 400))
            .unwrap();
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // All slots are free again: a fresh request completes.
    let (text, _, _, _) = collect(engine().generate(greedy("What is 2+2?", 8)).unwrap());
    assert!(!text.is_empty());
}

#[test]
fn logit_bias_bans_the_greedy_token_and_penalties_discourage_repeats() {
    let mut req = greedy("What is 2+2?", 1);
    req.logprobs = true;
    let (_, _, _, lps) = collect(engine().generate(req.clone()).unwrap());
    let first = &lps[0].token;
    let id = engine().tokenize(first).last().unwrap().0;
    req.sampling.logit_bias = vec![(id, -100.0)];
    let (_, _, _, banned) = collect(engine().generate(req).unwrap());
    assert_ne!(&banned[0].token, first);

    let text = |fp: f32| {
        let mut r = greedy("Repeat the word 'apple' ten times.", 30);
        r.sampling.frequency_penalty = fp;
        collect(engine().generate(r).unwrap()).0
    };
    let plain = text(0.0);
    let penalised = text(2.0);
    assert!(
        penalised.matches("apple").count() < plain.matches("apple").count().max(2),
        "{plain:?} vs {penalised:?}"
    );
}
