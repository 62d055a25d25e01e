//! `[cost]`: the price catalog and the LLM-only baseline every request's savings are measured
//! against. Deployed models carry their own prices in `[models.*]`; the catalog prices models
//! you do not deploy (the baseline, `slmgate plan`).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    /// What every request is compared with: a `[models.*]` deployment or a `[cost.prices.*]`
    /// entry. Without it, baseline cost and savings are not computed.
    pub baseline: Option<String>,
    /// Prices of models by name, USD per million tokens.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceEntry>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Prompt tokens the provider served from its prompt cache (default: `input_per_mtok`).
    pub cached_input_per_mtok: Option<f64>,
}

/// USD per million tokens, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cached_input: f64,
}

impl Price {
    /// USD for one call: `cached` of the `prompt` tokens at the cached-input price.
    pub fn cost(&self, prompt: u64, cached: u64, completion: u64) -> f64 {
        let cached = cached.min(prompt);
        ((prompt - cached) as f64 * self.input
            + cached as f64 * self.cached_input
            + completion as f64 * self.output)
            / 1e6
    }
}

impl From<PriceEntry> for Price {
    fn from(p: PriceEntry) -> Self {
        Price {
            input: p.input_per_mtok,
            output: p.output_per_mtok,
            cached_input: p.cached_input_per_mtok.unwrap_or(p.input_per_mtok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LocalModelConfig;

    #[test]
    fn hardware_cost_becomes_a_per_token_price() {
        // $0.36/h at 100 prompt tok/s and 10 completion tok/s:
        // input 0.36 / 360000 × 1e6 = $1/Mtok, output $10/Mtok.
        let l: LocalModelConfig = toml::from_str(
            "path = \"x\"\nhardware_cost_per_hour = 0.36\nprompt_tokens_per_sec = 100\ncompletion_tokens_per_sec = 10",
        )
        .unwrap();
        let p = l.price();
        assert!((p.input - 1.0).abs() < 1e-9, "{p:?}");
        assert!((p.output - 10.0).abs() < 1e-9, "{p:?}");
        // 1000 prompt + 100 completion tokens = $0.001 + $0.001.
        assert!((p.cost(1000, 0, 100) - 0.002).abs() < 1e-12);
    }

    #[test]
    fn cached_prompt_tokens_use_the_cached_price() {
        let p = Price::from(PriceEntry {
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
            cached_input_per_mtok: Some(1.25),
        });
        // 1000 prompt of which 400 cached, 200 completion:
        // 600 × 2.5 + 400 × 1.25 + 200 × 10 = 1500 + 500 + 2000 = 4000 µ$ = $0.004.
        assert!((p.cost(1000, 400, 200) - 0.004).abs() < 1e-12);
        // More cached than prompt tokens (a provider bug) never makes a negative cost.
        assert!(p.cost(10, 50, 0) >= 0.0);
    }
}
