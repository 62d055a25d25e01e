//! `[routes.NAME]`: a public model name served by ordered tiers, restricted by policy rules,
//! started by a learned router and escalated by a confidence cascade.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ml::Representation;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Tiers, cheapest first. Each tier is a fallback chain of `[models.*]` entries.
    pub tiers: Vec<TierConfig>,
    /// Policy rules; the first whose `match` holds applies its actions.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Learned router: picks the first tier before generation.
    pub router: Option<RouterConfig>,
    /// Confidence cascade: escalates a tier's low-confidence answer to the next tier.
    pub cascade: Option<CascadeConfig>,
    /// Domain routing: a nearest-centroid classifier over prompt embeddings picks a domain tier.
    pub domains: Option<DomainsConfig>,
    /// PII policy of this route (default: `[pii] policy`).
    pub pii: Option<crate::config::PiiPolicy>,
    /// Injection-guard action of this route (default: `[guard] action`).
    pub guard: Option<crate::config::GuardAction>,
    /// Where this route's data may go: residency labels (`on_prem`, `eu`, ...); models
    /// elsewhere are never planned.
    pub residency: Option<Vec<String>>,
    /// Retrieval-augmented generation: chunks of a collection go into the prompt, and the
    /// answer cites them.
    pub rag: Option<crate::config::RagRouteConfig>,
    /// This route's response cache (default: `[cache]`).
    pub cache: Option<crate::config::RouteCacheConfig>,
    /// Shadow mode: other deployments answer a sampled share of the route's requests off the
    /// response path; their agreement with the route's answers is stored.
    pub shadow: Option<crate::config::ShadowConfig>,
    /// A/B rollout: a sticky share of requests goes to a candidate route version.
    pub rollout: Option<crate::config::RolloutConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainsConfig {
    /// Below this cosine similarity to the nearest domain, every domain tier is skipped (the
    /// request escalates to the general tiers).
    #[serde(default = "default_floor")]
    pub floor: f32,
    /// `static` (mean token vectors, microseconds) or `contextual` (MiniLM, milliseconds).
    #[serde(default = "default_representation")]
    pub representation: Representation,
    pub classes: Vec<DomainClass>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainClass {
    pub name: String,
    /// The tier (usually a domain-tuned SLM) that serves this domain.
    pub tier: String,
    /// Example prompts of the domain.
    #[serde(default)]
    pub examples: Vec<String>,
    /// A file with more examples, one per line.
    pub examples_file: Option<String>,
}

fn default_floor() -> f32 {
    0.3
}

fn default_representation() -> Representation {
    Representation::Static
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    pub name: String,
    /// Deployments tried in order when one fails (errors, timeouts, overload).
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// Conditions, all of which must hold; an empty match always holds.
    #[serde(default, rename = "match")]
    pub when: RuleMatch,
    /// Keep only these tiers.
    pub allow_tiers: Option<Vec<String>>,
    /// Drop these tiers.
    #[serde(default)]
    pub deny_tiers: Vec<String>,
    /// Keep only on-premises deployments (local models, remote ones labelled `on_prem`).
    #[serde(default)]
    pub force_local: bool,
    /// Serve with exactly this deployment.
    pub pin_model: Option<String>,
    /// Drop deployments whose worst-case cost for the request exceeds this (USD).
    pub max_cost_usd: Option<f64>,
    /// Refuse the request (403) with this message.
    pub deny: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// Request tags (the OpenAI `metadata` object or the `x-slmgate-tags` header). A value is
    /// matched exactly, `*` matches any value, and `<N`, `<=N`, `>N`, `>=N` compare numbers.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Estimated prompt tokens (characters / 4) at least this many.
    pub min_prompt_tokens: Option<u32>,
    /// Estimated prompt tokens at most this many.
    pub max_prompt_tokens: Option<u32>,
    /// The request's API key id is one of these.
    #[serde(default)]
    pub keys: Vec<String>,
    /// The key's team is one of these.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The prompt contains PII of one of these types (`*`: any type).
    #[serde(default)]
    pub pii: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// A router file written by `slmgate router train`; reloaded when it changes.
    pub path: String,
    /// Scores at or above this start at `strong_tier` (default: the file's calibrated one).
    pub threshold: Option<f32>,
    /// The tier a high score starts at (default: the last tier).
    pub strong_tier: Option<String>,
    /// N-tier starts: tier name → the score from which a request starts at that tier (the
    /// latest tier whose score it reaches wins; below every one, the first tier). Replaces
    /// `threshold`/`strong_tier`; `slmgate router calibrate --tier-shares` prints them.
    #[serde(default)]
    pub starts: BTreeMap<String, f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceSignal {
    /// Mean token log-probability.
    MeanLogprob,
    /// Lowest token log-probability.
    MinLogprob,
    /// Mean gap between the chosen token's and the runner-up's log-probability.
    MeanMargin,
    /// Negative mean entropy over the top alternatives.
    NegEntropy,
}

impl ConfidenceSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfidenceSignal::MeanLogprob => "mean_logprob",
            ConfidenceSignal::MinLogprob => "min_logprob",
            ConfidenceSignal::MeanMargin => "mean_margin",
            ConfidenceSignal::NegEntropy => "neg_entropy",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeConfig {
    #[serde(default = "default_signal")]
    pub signal: ConfidenceSignal,
    /// Confidence below this escalates to the next tier.
    pub threshold: f32,
    /// Decide after this many tokens (held back from a streaming client until then);
    /// 0 waits for the whole answer.
    #[serde(default = "default_first_tokens")]
    pub first_tokens: u32,
    /// A local model that judges answers of tiers that report no logprobs (teacher-forced
    /// logprobs of their first `first_tokens` chunks). Without it such answers are kept.
    pub verifier: Option<String>,
    /// Combine the route's router score with the confidence (`slmgate cascade calibrate`
    /// prints it): escalate when `router_weight·z(router) − confidence_weight·z(confidence)`
    /// reaches `threshold`, each z standardised with the given mean and deviation.
    pub combine: Option<CombineConfig>,
}

/// The cascade's combination of the router's prior with the answer's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CombineConfig {
    #[serde(default = "one")]
    pub router_weight: f32,
    #[serde(default = "one")]
    pub confidence_weight: f32,
    pub router_mean: f32,
    pub router_std: f32,
    pub confidence_mean: f32,
    pub confidence_std: f32,
    /// The combined score at or above which the answer escalates.
    pub threshold: f32,
}

fn one() -> f32 {
    1.0
}

impl CombineConfig {
    /// Standardisation and threshold from observed (router score, confidence) pairs — no
    /// labels: each side's mean and deviation, and the combined score above which
    /// `escalate_share` of these requests escalate. `None` with fewer than 2 pairs or a side
    /// that never varies.
    pub fn fit(
        pairs: &[(f64, f64)],
        router_weight: f32,
        confidence_weight: f32,
        escalate_share: f64,
    ) -> Option<Self> {
        let n = pairs.len();
        if n < 2 {
            return None;
        }
        let stats = |v: Vec<f64>| {
            let m = v.iter().sum::<f64>() / n as f64;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64).sqrt();
            (m, sd)
        };
        let (rm, rs) = stats(pairs.iter().map(|p| p.0).collect());
        let (cm, cs) = stats(pairs.iter().map(|p| p.1).collect());
        if rs < 1e-9 || cs < 1e-9 {
            return None;
        }
        let mut c = Self {
            router_weight,
            confidence_weight,
            router_mean: rm as f32,
            router_std: rs as f32,
            confidence_mean: cm as f32,
            confidence_std: cs as f32,
            threshold: 0.0,
        };
        let mut z: Vec<f64> = pairs
            .iter()
            .map(|(r, k)| c.score(*r as f32, *k as f32) as f64)
            .collect();
        z.sort_by(|a, b| b.total_cmp(a));
        let k = (escalate_share.clamp(0.0, 1.0) * n as f64).round() as usize;
        c.threshold = if k == 0 {
            (z[0] + 1e-3) as f32
        } else {
            z[k - 1] as f32
        };
        Some(c)
    }

    /// The combined score (higher: escalate): `w_r·z(router) − w_c·z(confidence)`.
    pub fn score(&self, router_score: f32, confidence: f32) -> f32 {
        self.router_weight * (router_score - self.router_mean) / self.router_std
            - self.confidence_weight * (confidence - self.confidence_mean) / self.confidence_std
    }

    /// The confidence below which an answer escalates, given the request's router score:
    /// the combined rule `w_r·(r − μ_r)/σ_r − w_c·(c − μ_c)/σ_c ≥ θ` solved for `c`.
    pub fn confidence_threshold(&self, router_score: f32) -> f32 {
        let zr = (router_score - self.router_mean) / self.router_std;
        self.confidence_mean
            + self.confidence_std / self.confidence_weight
                * (self.router_weight * zr - self.threshold)
    }
}

fn default_signal() -> ConfidenceSignal {
    ConfidenceSignal::MeanLogprob
}

fn default_first_tokens() -> u32 {
    16
}
