//! `[cost]`: the price catalog and the LLM-only baseline every request's savings are measured
//! against. Deployed models carry their own prices in `[models.*]`; the catalog prices models
//! you do not deploy (the baseline, `slmgate plan`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::types::{Config, LocalModelConfig, ModelConfig};

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

impl LocalModelConfig {
    /// Explicit prices, or prices derived from the hardware's cost per hour and the throughput
    /// measured on it: USD/Mtok = cost_per_hour / (3600 × tokens_per_second) × 10⁶, for prompt
    /// tokens (prefill rate) and completion tokens (decode rate) separately.
    pub fn price(&self) -> Price {
        let per_mtok = |tps: Option<f64>| -> Option<f64> {
            let h = self.hardware_cost_per_hour?;
            let t = tps.filter(|t| *t > 0.0)?;
            Some(h / (3600.0 * t) * 1e6)
        };
        let input = per_mtok(self.prompt_tokens_per_sec).unwrap_or(self.input_cost_per_mtok);
        let output = per_mtok(self.completion_tokens_per_sec).unwrap_or(self.output_cost_per_mtok);
        Price {
            input,
            output,
            cached_input: input,
        }
    }
}

impl Config {
    /// The price of a deployment or catalog entry by name.
    pub fn price_of(&self, name: &str) -> Option<Price> {
        match self.models.get(name) {
            Some(ModelConfig::Local(l)) => Some(l.price()),
            Some(ModelConfig::Remote(r)) => Some(Price {
                input: r.input_cost_per_mtok,
                output: r.output_cost_per_mtok,
                cached_input: r
                    .cached_input_cost_per_mtok
                    .unwrap_or(r.input_cost_per_mtok),
            }),
            None => self.cost.prices.get(name).map(|p| Price::from(*p)),
        }
    }

    /// The baseline's name and price, when one is configured.
    pub fn baseline(&self) -> Option<(&str, Price)> {
        let name = self.cost.baseline.as_deref()?;
        Some((name, self.price_of(name)?))
    }
}

pub(crate) fn validate_cost(cfg: &Config) -> Result<(), (String, String)> {
    let bad = |f: String, m: &str| Err((f, m.to_string()));
    for (name, p) in &cfg.cost.prices {
        let f = |k: &str| format!("cost.prices.{name}.{k}");
        for (k, v) in [
            ("input_per_mtok", Some(p.input_per_mtok)),
            ("output_per_mtok", Some(p.output_per_mtok)),
            ("cached_input_per_mtok", p.cached_input_per_mtok),
        ] {
            if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                return bad(f(k), "must be a number >= 0 (USD per million tokens)");
            }
        }
    }
    if let Some(b) = &cfg.cost.baseline {
        if cfg.price_of(b).is_none() {
            return bad(
                "cost.baseline".into(),
                "names neither a [models.*] deployment nor a [cost.prices.*] entry",
            );
        }
    }
    for (name, m) in &cfg.models {
        let f = |k: &str| format!("models.{name}.{k}");
        if let ModelConfig::Local(l) = m {
            if let Some(h) = l.hardware_cost_per_hour {
                if !(h >= 0.0 && h.is_finite()) {
                    return bad(f("hardware_cost_per_hour"), "must be a number >= 0 (USD)");
                }
                if l.input_cost_per_mtok != 0.0 || l.output_cost_per_mtok != 0.0 {
                    return bad(
                        f("hardware_cost_per_hour"),
                        "set either hardware_cost_per_hour or input/output_cost_per_mtok, not both",
                    );
                }
                for (k, v) in [
                    ("prompt_tokens_per_sec", l.prompt_tokens_per_sec),
                    ("completion_tokens_per_sec", l.completion_tokens_per_sec),
                ] {
                    if !v.is_some_and(|v| v > 0.0 && v.is_finite()) {
                        return bad(
                            f(k),
                            "hardware_cost_per_hour needs the throughput measured on that hardware (tokens/s > 0; see docs/benchmarks.md)",
                        );
                    }
                }
            }
        }
        let p = m.price();
        if ![p.input, p.output, p.cached_input]
            .iter()
            .all(|v| *v >= 0.0 && v.is_finite())
        {
            return bad(f("input_cost_per_mtok"), "prices must be numbers >= 0");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
