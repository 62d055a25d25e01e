//! Speculative decoding against the real models: prompt lookup and a draft model give the
//! target's own greedy text, token for token, alone and in continuous batches; a seeded
//! sampled run gives the same text with and without drafts; an incompatible draft is refused
//! at load. The draft pair is SmolLM2-135M Q4_1 drafting for a Q8_0 requantization of itself
//! (made here with `slmgate_engine::quantize`, llama.cpp's quantizer).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use slmgate_engine::*;

fn models_dir() -> PathBuf {
    std::env::var("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/slmgate/models")
        })
}

fn smol() -> PathBuf {
    models_dir().join("smollm2-135m-instruct-q4_1.gguf")
}

fn gemma() -> PathBuf {
    models_dir().join("gemma3-270m-q4_k_m.gguf")
}

/// SmolLM2-135M requantized to Q8_0: a different model (its logits differ) with the same
/// vocabulary, the target of the draft pair.
fn smol_q8() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smollm2-135m-q8_0.gguf");
        if !out.is_file() {
            let part = out.with_extension(format!("{}.part", std::process::id()));
            quantize(&smol(), &part, "q8_0", true, 2).expect("requantize SmolLM2 to Q8_0");
            std::fs::rename(&part, &out).expect("rename");
        }
        out
    })
    .clone()
}

fn settings(path: PathBuf, parallel: u32, speculation: Speculation) -> EngineSettings {
    EngineSettings {
        path,
        threads: 2,
        threads_batch: 2,
        context: 1024,
        parallel,
        batch: 256,
        queue: 16,
        chat_template: None,
        gpu_layers: 0,
        kv_cache_type: KvType::F16,
        speculation,
        adapters: Vec::new(),
    }
}

fn load(path: PathBuf, parallel: u32, speculation: Speculation) -> LocalEngine {
    LocalEngine::load(settings(path, parallel, speculation)).expect("load (run `make models`)")
}

fn lookup() -> Speculation {
    Speculation {
        lookup: Some(LookupSettings::default()),
        draft: None,
    }
}

fn drafted_by_smol() -> Speculation {
    Speculation {
        lookup: None,
        draft: Some(DraftSettings::new(smol())),
    }
}

fn chat(user: &str, max_tokens: u32) -> GenerationRequest {
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

fn text(engine: &LocalEngine, req: GenerationRequest) -> String {
    let mut s = engine.generate(req).expect("generate");
    let mut out = String::new();
    loop {
        match s.blocking_next().expect("stream ended without Done") {
            GenerationEvent::Token { text, .. } => out.push_str(&text),
            GenerationEvent::Done { .. } => return out,
            GenerationEvent::Error(e) => panic!("engine error: {e}"),
        }
    }
}

fn accepted(e: &LocalEngine) -> (u64, u64) {
    (
        e.stats().spec_drafted.load(Ordering::Relaxed),
        e.stats().spec_accepted.load(Ordering::Relaxed),
    )
}

/// Prompts whose answers quote their input (where lookup drafts), and open ones.
const PROMPTS: &[&str] = &[
    "Repeat exactly: the quick brown fox jumps over the lazy dog, and the lazy dog sleeps.",
    "Context: The backup job runs every night at 02:00 and writes to /srv/backup/daily. \
     Question: When does the backup job run and where does it write? Quote the context.",
    "Copy this list: apples, pears, plums, cherries, apples, pears, plums, cherries.",
    "What is the capital of France?",
    "Write a short poem about the sea.",
];

#[test]
fn lookup_greedy_output_equals_the_target_alone() {
    let plain = load(smol(), 1, Speculation::default());
    let spec = load(smol(), 1, lookup());
    for p in PROMPTS {
        assert_eq!(text(&spec, chat(p, 64)), text(&plain, chat(p, 64)), "{p}");
    }
    let (drafted, ok) = accepted(&spec);
    assert!(ok > 0 && drafted >= ok, "drafted {drafted}, accepted {ok}");
    assert_eq!(accepted(&plain), (0, 0));
}

#[test]
fn draft_model_greedy_output_equals_the_target_alone() {
    let target = load(smol_q8(), 1, Speculation::default());
    let spec = load(smol_q8(), 1, drafted_by_smol());
    for p in PROMPTS {
        assert_eq!(text(&spec, chat(p, 48)), text(&target, chat(p, 48)), "{p}");
    }
    let (drafted, ok) = accepted(&spec);
    assert!(ok > 0 && drafted >= ok, "drafted {drafted}, accepted {ok}");
}

#[test]
fn concurrent_speculative_sequences_match_their_solo_runs() {
    for speculation in [lookup(), drafted_by_smol()] {
        let target = if speculation.draft.is_some() {
            smol_q8()
        } else {
            smol()
        };
        let e = load(target, 4, speculation);
        let solo: Vec<String> = PROMPTS.iter().map(|p| text(&e, chat(p, 40))).collect();
        let streams: Vec<_> = PROMPTS
            .iter()
            .map(|p| e.generate(chat(p, 40)).expect("generate"))
            .collect();
        let together: Vec<String> = streams
            .into_iter()
            .map(|mut s| {
                let mut out = String::new();
                loop {
                    match s.blocking_next().expect("event") {
                        GenerationEvent::Token { text, .. } => out.push_str(&text),
                        GenerationEvent::Done { .. } => break out,
                        GenerationEvent::Error(e) => panic!("{e}"),
                    }
                }
            })
            .collect();
        assert_eq!(solo, together);
    }
}

#[test]
fn seeded_sampling_is_the_same_with_and_without_drafts() {
    // Each emitted token is one draw of the request's sampler from the target's logits, with
    // or without drafts, so a seeded run gives the same text.
    let plain = load(smol(), 1, Speculation::default());
    let spec = load(smol(), 1, lookup());
    for (i, p) in PROMPTS.iter().enumerate() {
        let req = || {
            let mut r = chat(p, 48);
            r.sampling = SamplingParams {
                temperature: 0.8,
                top_p: 0.95,
                seed: Some(7 + i as u64),
                ..Default::default()
            };
            r
        };
        assert_eq!(text(&spec, req()), text(&plain, req()), "{p}");
    }
}

#[test]
fn gemma_with_prompt_lookup_equals_gemma_alone() {
    // Gemma 3's Q4_K_M weights run through llama.cpp CPU kernels that switch to four-row
    // matrix code once a step decodes four or more rows, which rounds differently: with longer
    // drafts a near-tie can flip (measured: 0.012 nats, docs/benchmarks.md). Two drafts keep
    // the verify step at three rows, where the kernels are the one-row ones.
    let plain = load(gemma(), 1, Speculation::default());
    let spec = load(
        gemma(),
        1,
        Speculation {
            lookup: Some(LookupSettings {
                n_draft: 2,
                ..Default::default()
            }),
            draft: None,
        },
    );
    let raw = |p: &str| GenerationRequest {
        prompt: Some(p.to_string()),
        max_tokens: Some(48),
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let prompts = [
        "The list: red, green, blue, red, green, blue, red, green,",
        "Debian keeps the cat pages of man in /var/cache/man. The man program writes its cat pages to",
        "Context: The backup job runs every night at 02:00 and writes to /srv/backup/daily. Question: When does the backup job run? Answer:",
    ];
    for p in prompts {
        assert_eq!(text(&spec, raw(p)), text(&plain, raw(p)), "{p}");
    }
    assert!(accepted(&spec).1 > 0);
}

#[test]
fn a_request_can_turn_speculation_off_or_on() {
    let e = load(smol(), 1, Speculation::default());
    let p = PROMPTS[0];
    let base = text(&e, chat(p, 40));
    assert_eq!(accepted(&e), (0, 0));
    let mut on = chat(p, 40);
    on.speculation = Some(SpecChoice::Lookup(LookupSettings::default()));
    assert_eq!(text(&e, on), base);
    let after_on = accepted(&e);
    assert!(after_on.1 > 0);
    let mut off = chat(p, 40);
    off.speculation = Some(SpecChoice::Off);
    assert_eq!(text(&e, off), base);
    assert_eq!(accepted(&e), after_on);
    // A draft needs a draft model.
    let mut draft = chat(p, 8);
    draft.speculation = Some(SpecChoice::Draft);
    assert!(matches!(
        e.generate(draft),
        Err(EngineError::InvalidParam(_))
    ));
    let mut bad = chat(p, 8);
    bad.speculation = Some(SpecChoice::Lookup(LookupSettings {
        ngram_max: 2,
        ngram_min: 3,
        n_draft: 8,
    }));
    assert!(matches!(e.generate(bad), Err(EngineError::InvalidParam(_))));
}

#[test]
fn an_incompatible_draft_is_refused_at_load() {
    let err = LocalEngine::load(settings(gemma(), 1, drafted_by_smol()))
        .err()
        .expect("a SmolLM2 draft for Gemma must be refused");
    let msg = err.to_string();
    assert!(msg.contains("cannot draft for this model"), "{msg}");
}
