//! The hybrid default: with `OPENAI_API_KEY` (or else `ANTHROPIC_API_KEY`) set, the embedded
//! config serves `auto` as local SmolLM2 first with a confidence cascade to that provider;
//! without a key, the local model alone. `OPENAI_BASE_URL` / `OPENAI_MODEL` (and the
//! `ANTHROPIC_` pair) point it at another server or model.

/// The alias the embedded config ships with; the hybrid route replaces it.
const LOCAL_ONLY: &str = "[aliases]\nauto = [\"smollm2\"]\n";

/// The embedded config text for this environment.
pub fn default_text(base: &str, env: impl Fn(&str) -> Option<String>) -> String {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let remote = if set("OPENAI_API_KEY") {
        r#"[models.frontier]
type = "remote"
wire = "openai"
base_url = "${OPENAI_BASE_URL:-https://api.openai.com/v1}"
api_key = "${OPENAI_API_KEY}"
model = "${OPENAI_MODEL:-gpt-4o-mini}"
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.60
"#
    } else if set("ANTHROPIC_API_KEY") {
        r#"[models.frontier]
type = "remote"
wire = "anthropic"
base_url = "${ANTHROPIC_BASE_URL:-https://api.anthropic.com}"
api_key = "${ANTHROPIC_API_KEY}"
model = "${ANTHROPIC_MODEL:-claude-haiku-4-5}"
input_cost_per_mtok = 1.00
output_cost_per_mtok = 5.00
"#
    } else {
        return base.to_string();
    };
    let route = format!(
        "{remote}\n# The hybrid default: SmolLM2 answers, and escalates what it is unsure of.\n\
         [routes.auto]\n\
         tiers = [{{ name = \"local\", models = [\"smollm2\"] }}, {{ name = \"frontier\", models = [\"frontier\"] }}]\n\
         cascade = {{ signal = \"mean_logprob\", threshold = -0.6, first_tokens = 16 }}\n"
    );
    base.replacen(LOCAL_ONLY, &route, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DEFAULT_CONFIG};

    /// The OpenAI variant with its key variable renamed to one this test sets.
    fn text_for_test(anthropic_text: &str) -> String {
        anthropic_text.replace("${ANTHROPIC_API_KEY}", "${SLMGATE_HYBRID_TEST_KEY}")
    }

    fn with(vars: &[(&str, &str)]) -> String {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        default_text(DEFAULT_CONFIG, |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn no_key_is_the_local_default() {
        assert_eq!(with(&[]), DEFAULT_CONFIG);
        assert_eq!(with(&[("OPENAI_API_KEY", " ")]), DEFAULT_CONFIG);
    }

    #[test]
    fn a_key_makes_auto_a_cascade_to_that_provider() {
        let text = with(&[("OPENAI_API_KEY", "sk-x")]);
        assert!(DEFAULT_CONFIG.contains(LOCAL_ONLY));
        assert!(!text.contains(LOCAL_ONLY));
        let cfg: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(cfg["models"]["frontier"]["wire"].as_str(), Some("openai"));
        assert!(cfg["routes"]["auto"]["cascade"].is_table());
        let text = with(&[("ANTHROPIC_API_KEY", "sk-ant")]);
        let cfg: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            cfg["models"]["frontier"]["wire"].as_str(),
            Some("anthropic")
        );
        std::env::set_var("SLMGATE_HYBRID_TEST_KEY", "sk-x");
        let text = text_for_test(&text);
        Config::from_toml(&text, "t").unwrap();
    }
}
