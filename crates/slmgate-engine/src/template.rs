//! Chat templates: the model's own Jinja template from GGUF metadata, rendered with minijinja.
//!
//! llama.cpp's built-in template matcher is not Jinja (for SmolLM2 it drops the default system
//! message the real template adds), so we render the template text ourselves; with
//! `parse_special` tokenization the token ids then match the reference tokenizer.

use minijinja::{context, Environment, ErrorKind};
use serde::Serialize;

use crate::EngineError;

/// One chat message with plain-text content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// ChatML, used when a model ships no template and its architecture has no known format.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Gemma's turn format (the base Gemma 3 GGUF ships without a template).
const GEMMA: &str = "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else 'user' %}{% if message['role'] == 'system' %}{{ '<start_of_turn>user\n' + message['content'] + '<end_of_turn>\n' }}{% else %}{{ '<start_of_turn>' + role + '\n' + message['content'] + '<end_of_turn>\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

/// A compiled chat template plus the special-token strings it may reference.
pub struct ChatTemplate {
    env: Environment<'static>,
    pub bos_token: String,
    pub eos_token: String,
    /// Where the template came from: `gguf`, `config`, or a built-in fallback name.
    pub source: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .finish()
    }
}

impl ChatTemplate {
    /// `override_text` (from config) wins, then the GGUF template, then a fallback chosen by
    /// architecture.
    pub fn new(
        override_text: Option<&str>,
        gguf_text: Option<&str>,
        architecture: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self, EngineError> {
        let (text, source) = match (override_text, gguf_text) {
            (Some(t), _) => (t.to_string(), "config".to_string()),
            (None, Some(t)) if !t.trim().is_empty() => (t.to_string(), "gguf".to_string()),
            _ if architecture.starts_with("gemma") => (GEMMA.to_string(), "builtin:gemma".into()),
            _ => (CHATML.to_string(), "builtin:chatml".to_string()),
        };
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_function("strftime_now", |fmt: String| -> String {
            // Templates use this for "today's date" lines; a fixed UTC clock is enough.
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let days = secs / 86_400;
            let (y, m, d) = civil_from_days(days as i64);
            fmt.replace("%Y", &format!("{y:04}"))
                .replace("%m", &format!("{m:02}"))
                .replace("%d", &format!("{d:02}"))
        });
        env.add_template_owned("chat", text)
            .map_err(|e| EngineError::Template(format!("cannot compile ({source}): {e}")))?;
        Ok(Self {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            source,
        })
    }

    /// Renders the conversation, ending with the assistant turn's opening.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| EngineError::Template(e.to_string()))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        })
        .map_err(|e| EngineError::Template(format!("{e}")))
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders() {
        let t = ChatTemplate::new(None, None, "llama", "<s>", "</s>").unwrap();
        let out = t.render(&[ChatMessage::new("user", "Hi")]).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn gemma_fallback_has_one_bos_and_model_turn() {
        let t = ChatTemplate::new(None, None, "gemma3", "<bos>", "<eos>").unwrap();
        let out = t
            .render(&[
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "Hi"),
            ])
            .unwrap();
        assert!(out.starts_with("<bos><start_of_turn>user\nBe brief."));
        assert!(out.ends_with("<start_of_turn>model\n"));
        assert_eq!(out.matches("<bos>").count(), 1);
    }

    #[test]
    fn python_methods_work_in_templates() {
        let t = ChatTemplate::new(
            Some("{% for m in messages %}{{ m['content'].strip().upper() }}{% endfor %}"),
            None,
            "llama",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "  hi ")]).unwrap(),
            "HI"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new(
            Some("{{ raise_exception('no system role') }}"),
            None,
            "x",
            "",
            "",
        )
        .unwrap();
        let err = t.render(&[]).unwrap_err();
        assert!(err.to_string().contains("no system role"));
    }

    #[test]
    fn civil_date() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
