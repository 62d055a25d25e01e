//! `slmgate plan`: the SLM-first decision framework as a function. A workload and stated
//! assumptions in; the recommended deployment pattern, the rule that fired, and the monthly cost
//! of LLM-only vs hybrid vs on-prem SLM out — every assumption listed.

mod costs;
mod render;
mod rules;

pub use costs::{monthly_costs, Costs};
pub use render::render;
pub use rules::{recommend, Pattern, Recommendation};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// General-purpose tasks.
    General,
    /// A narrow domain with its own vocabulary (legal, medical, a product).
    Specialised,
    /// Answers grounded in the organisation's documents.
    Documents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    Public,
    Internal,
    /// The data must not leave the organisation's machines.
    Restricted,
}

macro_rules! from_str_enum {
    ($t:ty, $($s:literal => $v:expr),+) => {
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($v),)+
                    _ => Err(format!("{s:?}: expected one of {}", [$($s),+].join(", "))),
                }
            }
        }
    };
}
from_str_enum!(Domain, "general" => Domain::General, "specialised" => Domain::Specialised,
    "specialized" => Domain::Specialised, "documents" => Domain::Documents);
from_str_enum!(Privacy, "public" => Privacy::Public, "internal" => Privacy::Internal,
    "restricted" => Privacy::Restricted);

#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub monthly_tokens: f64,
    /// Share of the tokens that are input (prompt) tokens.
    pub input_share: f64,
    /// Share of requests an SLM handles well (classification, extraction, FAQ, routing).
    pub routine_share: f64,
    pub domain: Domain,
    /// p50 answer time the application needs, ms.
    pub latency_target_ms: Option<f64>,
    pub privacy: Privacy,
}

#[derive(Debug, Clone, Serialize)]
pub struct Assumptions {
    pub llm_name: String,
    /// USD per million input / output tokens.
    pub llm_input_per_mtok: f64,
    pub llm_output_per_mtok: f64,
    /// Typical time to a complete answer from the LLM API, ms.
    pub llm_latency_ms: f64,
    /// One SLM machine: USD per hour and the throughput measured on it.
    pub node_cost_per_hour: f64,
    pub node_prompt_tps: f64,
    pub node_completion_tps: f64,
    pub hours_per_month: f64,
    /// Peak load over average load (machines are sized for the peak).
    pub peak_factor: f64,
    /// Share of routine requests a confidence cascade still escalates (false alarms).
    pub routine_escalation: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            llm_name: "gpt-4o".into(),
            llm_input_per_mtok: 2.5,
            llm_output_per_mtok: 10.0,
            llm_latency_ms: 800.0,
            node_cost_per_hour: 0.10,
            node_prompt_tps: 290.0,
            node_completion_tps: 190.0,
            hours_per_month: 730.0,
            peak_factor: 3.0,
            routine_escalation: 0.10,
        }
    }
}

/// `100M`, `5m`, `2.5B`, `750k`, `1e6` → tokens.
pub fn parse_tokens(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        Some('b') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v * mult),
        _ => Err(format!(
            "{s:?}: expected a token count like 100M, 750k or 2.5B"
        )),
    }
}

/// `3:1` (input:output) → the input share 0.75.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?}: expected input:output, e.g. 3:1");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b): (f64, f64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a < 0.0 || b < 0.0 || a + b <= 0.0 {
        return Err(bad());
    }
    Ok(a / (a + b))
}

#[cfg(test)]
mod tests;
