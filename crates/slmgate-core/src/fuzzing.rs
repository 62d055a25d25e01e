//! Entry points for `cargo fuzz` (`fuzz/fuzz_targets/`, one per function) and for replaying
//! the kept corpora in `cargo test` (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`).
//! Each takes arbitrary bytes and must not panic, abort or hang; where a property holds for
//! every input (restore(redact(x)) == x) it asserts it.

use std::sync::OnceLock;

use crate::config::Config;
use crate::govern::pii::{PiiScanner, Redactions, StreamRestorer};
use crate::providers::anthropic::{AnthropicEvents, Step};
use crate::providers::local::tool_output::ToolOutput;
use crate::providers::local::tools::call_grammar;
use crate::providers::sse::SseDecoder;
use crate::wire::anthropic::MessagesRequest;
use crate::wire::completions::CompletionRequest;
use crate::wire::gemini::GenerateResponse;
use crate::wire::openai::{ChatChunk, ChatRequest};
use crate::wire::responses::ResponsesRequest;
use crate::wire::tools::{check_tools, FunctionDef, Tool, ToolMode};

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target by name: what `fuzz/fuzz_targets/<name>.rs` calls.
pub const TARGETS: &[(&str, Target)] = &[
    ("openai_request", openai_request),
    ("anthropic_request", anthropic_request),
    ("responses_request", responses_request),
    ("completions_request", completions_request),
    ("sse_stream", sse_stream),
    ("config", config),
    ("pii_roundtrip", pii_roundtrip),
    ("tool_output", tool_output),
    ("tool_grammar", tool_grammar),
    ("audit_verify", audit_verify),
];

/// A chat-completions body: parsed, validated, its tools checked.
pub fn openai_request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<ChatRequest>(data) {
        let _ = req.validate();
        let _ = check_tools(req.tools.as_deref(), req.tool_choice.as_ref());
        let _ = req.last_user_text();
    }
}

/// A Messages body: parsed, its roles checked, translated, the translation validated.
pub fn anthropic_request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<MessagesRequest>(data) {
        let _ = req.validate_roles();
        let _ = req.to_openai().validate();
    }
}

/// A Responses body: its input items turned into messages and the canonical request.
pub fn responses_request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<ResponsesRequest>(data) {
        if let Ok(input) = req.input_messages() {
            if let Ok(chat) = req.to_chat(Vec::new(), input) {
                let _ = chat.validate();
            }
        }
    }
}

/// A legacy completions body.
pub fn completions_request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<CompletionRequest>(data) {
        if let Ok(chat) = req.to_chat() {
            let _ = chat.validate();
        }
    }
}

/// An upstream event stream cut into pieces at the points the first bytes choose, each
/// event's data read as an OpenAI chunk (or the error quoting it), a Gemini response, and
/// through the Anthropic wire's event translation.
pub fn sse_stream(data: &[u8]) {
    let (cuts, body) = data.split_at(data.len().min(4));
    let mut dec = SseDecoder::default();
    let mut anthropic = Some(AnthropicEvents::new("m"));
    let mut at = 0;
    let mut pieces = cuts
        .iter()
        .map(|c| usize::from(*c))
        .chain(std::iter::repeat(body.len()));
    while at < body.len() {
        let n = pieces
            .next()
            .unwrap_or(body.len())
            .clamp(1, body.len() - at);
        let Ok(events) = dec.push(&body[at..at + n]) else {
            return;
        };
        for ev in events {
            if serde_json::from_str::<ChatChunk>(&ev.data).is_err() {
                let _ = crate::providers::openai::not_a_chunk(&ev.data);
            }
            let _ = serde_json::from_str::<GenerateResponse>(&ev.data);
            // The Anthropic wire's translation, event by event, until the stream would end.
            if let Some(a) = anthropic.as_mut() {
                if !matches!(a.event(&ev.data), Step::Chunks(_)) {
                    anthropic = None;
                }
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&ev.data) {
                let _ = v["type"].as_str();
            }
        }
        at += n;
    }
    let _ = dec.pending();
}

/// A config file.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml(text, "fuzz");
    }
}

/// Redact, then restore (whole and as a stream cut every few bytes): the text comes back
/// exactly, and no found value is left in the redacted text.
pub fn pii_roundtrip(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static SCANNER: OnceLock<PiiScanner> = OnceLock::new();
    let scanner = SCANNER.get_or_init(|| PiiScanner::new(None));
    let findings = scanner.detect(text);
    let mut r = Redactions::default();
    r.reserve(text);
    let redacted = r.redact(text, &findings);
    assert_eq!(r.restore(&redacted), text, "restore(redact(x)) == x");
    let mut stream = StreamRestorer::new(r);
    let mut out = String::new();
    let mut rest = redacted.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(3);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        out.push_str(&stream.push(&rest[..cut]));
        rest = &rest[cut..];
    }
    out.push_str(&stream.finish());
    assert_eq!(out, text, "streamed restore == x");
}

/// A local model's output with tool calls, fed in pieces.
pub fn tool_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut out = ToolOutput::new();
    let mut rest: &str = &text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(7);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        if out.push(&rest[..cut]).is_err() {
            return;
        }
        rest = &rest[cut..];
    }
    let _ = out.finish();
}

/// A tool's parameters schema down the path a request takes: checked as a definition, then
/// turned into the call grammar by llama.cpp's converter (C++ behind FFI: a throw must come
/// back as an error, never abort the process). Input that is not JSON becomes a string
/// schema's `pattern` (the converter's regex translation).
pub fn tool_grammar(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => v,
        Err(_) => {
            serde_json::json!({"type": "object", "properties": {"p": {"type": "string", "pattern": text}}})
        }
    };
    let _ = slmgate_engine::grammar::json_schema_text_to_gbnf(&params.to_string());
    let tools = vec![Tool {
        kind: "function".into(),
        function: FunctionDef {
            name: "f".into(),
            description: None,
            parameters: Some(params),
            strict: None,
        },
    }];
    if let Ok(mode) = check_tools(Some(&tools), None) {
        let _ = call_grammar(&tools, &mode, false);
        let _ = call_grammar(&tools, &ToolMode::Required, true);
    }
}

/// A valid audit database with bytes overwritten where the input says (3 bytes per patch:
/// a 16-bit position scaled to the file, the new byte), then verified.
pub fn audit_verify(data: &[u8]) {
    let image = audit_image();
    let mut file = image.to_vec();
    for p in data.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([p[0], p[1]])) * file.len() / 65_536;
        file[at] = p[2];
    }
    let path = std::env::temp_dir().join(format!("slmgate-fuzz-audit-{}.db", std::process::id()));
    if std::fs::write(&path, &file).is_err() {
        return;
    }
    if let Ok(conn) = rusqlite::Connection::open(&path) {
        let _ = crate::govern::audit::verify(&conn);
    }
    let _ = std::fs::remove_file(&path);
}

/// A small audit log (20 entries, half with content, one erasure), as file bytes.
fn audit_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        use crate::govern::audit::{Entry, Record, StoredContent};
        let path =
            std::env::temp_dir().join(format!("slmgate-fuzz-image-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let build = || -> Result<Vec<u8>, crate::govern::GovernError> {
            let mut conn = crate::govern::db::open(&path)?;
            let recs: Vec<Record> = (0..20)
                .map(|i| Record {
                    entry: Entry {
                        kind: "request",
                        id: format!("req-{i}"),
                        ts_ms: 1_700_000_000_000 + i,
                        key_id: Some(format!("key_{}", i % 3)),
                        model: "auto".into(),
                        status: 200,
                        cost_usd: 0.001,
                        ..Default::default()
                    },
                    content: (i % 2 == 0).then(|| StoredContent {
                        messages: serde_json::json!([{"role": "user", "content": format!("q{i}")}]),
                        answer: format!("a{i}"),
                    }),
                    review: None,
                    commit: None,
                })
                .collect();
            crate::govern::audit::store::append(&mut conn, &recs)?;
            crate::govern::audit::forget(&mut conn, "key_1")?;
            // One file, no WAL beside it.
            conn.pragma_update(None, "journal_mode", "DELETE")?;
            drop(conn);
            std::fs::read(&path).map_err(|e| crate::govern::GovernError::Store(e.to_string()))
        };
        let image = build().unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        image
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every kept input (the corpora and the crashes fuzzing found, now fixed) still runs
    /// clean through its target.
    #[test]
    fn kept_fuzz_inputs_run_clean() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut ran = 0;
        for (name, target) in super::TARGETS {
            for dir in ["corpus", "regressions"] {
                let Ok(files) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for f in files.flatten() {
                    let data = std::fs::read(f.path()).expect("readable input");
                    target(&data);
                    ran += 1;
                }
            }
        }
        assert!(
            ran >= super::TARGETS.len(),
            "the corpora are in fuzz/corpus ({ran} inputs ran)"
        );
    }

    #[test]
    fn the_audit_image_is_a_valid_log() {
        let image = super::audit_image();
        assert!(image.len() > 4096);
        // Untouched, it verifies.
        let path =
            std::env::temp_dir().join(format!("slmgate-image-check-{}.db", std::process::id()));
        std::fs::write(&path, image).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let v = crate::govern::audit::verify(&conn).unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.entries, 21);
        let _ = std::fs::remove_file(&path);
    }
}
