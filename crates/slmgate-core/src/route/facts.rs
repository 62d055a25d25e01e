//! What routing knows about a request before any model runs: its tags (the OpenAI
//! `metadata` object, then the `x-slmgate-tags` header), its estimated size, and what
//! governance adds on the way (the key, PII types found, on-premises-only and residency).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::wire::openai::ChatRequest;

/// What routing knows about a request before any model runs.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// From the OpenAI `metadata` object and the `x-slmgate-tags` header.
    pub tags: BTreeMap<String, String>,
    /// Estimated prompt tokens (characters / 4).
    pub prompt_tokens: u32,
    /// The request's `max_tokens`, if any (worst-case cost uses 4096 when absent).
    pub max_tokens: Option<u32>,
    /// The API key's id and team (none when auth is off).
    pub key: Option<String>,
    pub team: Option<String>,
    /// PII types found in the messages.
    pub pii: Vec<String>,
    /// Why only on-premises models may serve (PII or guard policy), if they must.
    pub force_local: Option<String>,
    /// Residency labels the key allows (none: anywhere).
    pub residency: Option<Vec<String>>,
}

impl RequestFacts {
    /// Tags from the request's `metadata`, then from `x-slmgate-tags: k=v, k=v` header
    /// values (the header wins).
    pub fn of(req: &ChatRequest, header_tags: &[impl AsRef<str>]) -> Self {
        let mut facts = RequestFacts {
            prompt_tokens: estimate_tokens(req),
            max_tokens: req.max_output_tokens(),
            ..Default::default()
        };
        if let Some(Value::Object(m)) = req.extra.get("metadata") {
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                facts.tags.insert(k.clone(), v);
            }
        }
        for text in header_tags {
            for pair in text.as_ref().split(',') {
                if let Some((k, v)) = pair.split_once('=') {
                    facts
                        .tags
                        .insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
        facts
    }
}

/// Characters / 4: a tokenizer-free estimate, good enough for policy thresholds and cost caps.
fn estimate_tokens(req: &ChatRequest) -> u32 {
    let chars: usize = req
        .messages
        .iter()
        .map(|m| m.content.as_ref().map_or(0, |c| c.text_chars()))
        .sum();
    (chars / 4) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tags_override_metadata() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "m",
            "messages": [{"role": "user", "content": "abcdefgh"}],
            "metadata": {"privacy": "low", "team": "x", "n": 3, "gone": null},
        }))
        .unwrap();
        let f = RequestFacts::of(&req, &["privacy = high, tier=premium", "broken"]);
        assert_eq!(f.tags["privacy"], "high");
        assert_eq!(f.tags["tier"], "premium");
        assert_eq!(f.tags["n"], "3");
        assert!(!f.tags.contains_key("gone"));
        assert_eq!(f.prompt_tokens, 3, "8 characters / 4 + 1");
    }
}
