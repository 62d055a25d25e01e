//! The config schema. Every struct rejects unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::cost::{CostConfig, Price};
use super::env::{expand_home, resolve};
use super::govern::{
    AuditConfig, AuthConfig, ClusterConfig, GuardConfig, PiiConfig, ReviewConfig, StorageConfig,
};
use super::routes::RouteConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// Deployments by name: local GGUF models and remote LLM endpoints.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// Public model names mapped to an ordered fallback chain of deployments.
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Routed public names: tiers, policy rules, learned router, confidence cascade.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// The local sentence-embedding model behind `/v1/embeddings` (and the learned router).
    pub embeddings: Option<EmbeddingsConfig>,
    /// API keys: the admin key and whether `/v1/*` requires a key.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Where keys, the audit log and the review queue live.
    #[serde(default)]
    pub storage: StorageConfig,
    /// What replicas share besides the store: Redis for rate limits and budgets.
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Default PII policy (routes may set their own).
    #[serde(default)]
    pub pii: PiiConfig,
    /// Default injection-guard action (routes may set their own).
    #[serde(default)]
    pub guard: GuardConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    /// Price catalog and the LLM-only baseline.
    #[serde(default)]
    pub cost: CostConfig,
    /// OpenTelemetry traces (off by default).
    #[serde(default)]
    pub telemetry: super::telemetry::TelemetryConfig,
    /// RAG collections: chunking, retrieval, where the indexes live.
    #[serde(default)]
    pub knowledge: super::knowledge::KnowledgeConfig,
    /// The response cache: exact and semantic, scoped by tenant.
    #[serde(default)]
    pub cache: super::cache::CacheConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// Largest accepted request body; larger ones get 413.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Seconds a graceful shutdown waits for in-flight requests.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Most connections open at once; further clients wait in the kernel's backlog.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// A request's headers must arrive within this (slow-loris clients are cut off); an
    /// idle keep-alive connection is closed after it too.
    #[serde(default = "defaults::header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive within this (408 otherwise).
    #[serde(default = "defaults::body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// Largest request head (request line and headers); larger ones get 431.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Mark the dashboard's session cookie `Secure` (sent over HTTPS only): set it when a
    /// TLS proxy fronts the gateway.
    #[serde(default)]
    pub secure_cookie: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: defaults::listen(),
            max_body_bytes: defaults::max_body_bytes(),
            shutdown_grace_secs: defaults::shutdown_grace_secs(),
            max_connections: defaults::max_connections(),
            header_read_timeout_secs: defaults::header_read_timeout_secs(),
            body_read_timeout_secs: defaults::body_read_timeout_secs(),
            max_header_bytes: defaults::max_header_bytes(),
            secure_cookie: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelConfig {
    Local(LocalModelConfig),
    Remote(RemoteModelConfig),
}

/// A GGUF model run in-process by llama.cpp.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalModelConfig {
    pub path: String,
    /// Generation threads (default: the number of cores).
    pub threads: Option<i32>,
    /// Prompt-processing threads (default: `threads`).
    pub threads_batch: Option<i32>,
    /// Context length of one request in tokens (prompt + completion).
    #[serde(default = "defaults::context")]
    pub context: u32,
    /// Requests decoded together.
    #[serde(default = "defaults::parallel")]
    pub parallel: u32,
    /// Most tokens per decode step.
    #[serde(default = "defaults::batch")]
    pub batch: u32,
    /// Requests that may wait for a slot; beyond that, 503 with Retry-After.
    #[serde(default = "defaults::queue")]
    pub queue: usize,
    /// Jinja chat template overriding the GGUF's (inline text).
    pub chat_template: Option<String>,
    /// Layers offloaded to a GPU (CUDA builds only).
    #[serde(default)]
    pub gpu_layers: u32,
    /// KV cache element type: `f16`, `q8_0` (half the memory) or `q4_0`.
    #[serde(default)]
    pub kv_cache: KvCache,
    /// Speculative decoding: a local model (by name) with this model's vocabulary that
    /// drafts tokens for it to verify.
    pub draft: Option<String>,
    /// Most tokens drafted per step.
    #[serde(default = "super::speculative::draft_max")]
    pub draft_max: usize,
    /// Tokens drafted per step even below `draft_p_min`.
    #[serde(default)]
    pub draft_min: usize,
    /// Drafting stops at a token the draft model gives less than this probability.
    #[serde(default = "super::speculative::draft_p_min")]
    pub draft_p_min: f32,
    /// Prompt-lookup speculation for every request (`lookup = {}` for the defaults).
    pub lookup: Option<super::speculative::LookupConfig>,
    /// Cost accounting: USD per million prompt tokens (explicit price).
    #[serde(default)]
    pub input_cost_per_mtok: f64,
    /// USD per million completion tokens.
    #[serde(default)]
    pub output_cost_per_mtok: f64,
    /// Or: what the machine costs per hour (USD), from which per-token prices are derived
    /// with the two throughputs below (docs/config.md#cost).
    pub hardware_cost_per_hour: Option<f64>,
    /// Prompt tokens per second the machine sustains (prefill, measured).
    pub prompt_tokens_per_sec: Option<f64>,
    /// Completion tokens per second the machine sustains (aggregate decode, measured).
    pub completion_tokens_per_sec: Option<f64>,
    /// LoRA adapters on this model, by name; each is also served as `NAME:ADAPTER`.
    #[serde(default)]
    pub adapters: BTreeMap<String, super::adapters::AdapterConfig>,
    /// Set on the deployments `NAME:ADAPTER` the loader adds (never in a config file).
    #[serde(skip)]
    pub adapter_of: Option<super::adapters::AdapterOf>,
}

/// Element type of a local model's KV cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvCache {
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    Openai,
    Anthropic,
    Gemini,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Openai => "openai",
            Wire::Anthropic => "anthropic",
            Wire::Gemini => "gemini",
        }
    }
}

/// A remote LLM endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteModelConfig {
    pub wire: Wire,
    /// e.g. `https://api.openai.com/v1`, `https://api.anthropic.com`,
    /// `https://generativelanguage.googleapis.com`.
    pub base_url: String,
    /// Usually `${PROVIDER_API_KEY}`.
    pub api_key: Option<String>,
    /// The upstream's model name.
    pub model: String,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time allowed until the response headers (and, streaming, the first event).
    #[serde(default = "defaults::first_byte_timeout_ms")]
    pub first_byte_timeout_ms: u64,
    #[serde(default = "defaults::total_timeout_ms")]
    pub total_timeout_ms: u64,
    /// Retries on connect errors, 429 and 5xx before falling back.
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    /// Initial backoff; doubled per retry, with full jitter.
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
    /// Longest `Retry-After` honoured; a longer one moves on to the fallback at once.
    #[serde(default = "defaults::max_retry_after_ms")]
    pub max_retry_after_ms: u64,
    /// Consecutive failed requests after which the deployment cools down.
    #[serde(default = "defaults::cooldown_failures")]
    pub cooldown_failures: u32,
    #[serde(default = "defaults::cooldown_secs")]
    pub cooldown_secs: u64,
    /// Extra headers sent upstream (values may use `${VAR}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Anthropic only: default `max_tokens` when the request has none.
    #[serde(default = "defaults::anthropic_max_tokens")]
    pub default_max_tokens: u32,
    /// USD per million prompt tokens.
    #[serde(default)]
    pub input_cost_per_mtok: f64,
    /// USD per million completion tokens.
    #[serde(default)]
    pub output_cost_per_mtok: f64,
    /// USD per million prompt tokens served from the provider's prompt cache (default: the
    /// input price).
    pub cached_input_cost_per_mtok: Option<f64>,
    /// Where the data goes: `on_prem` (your own servers: allowed by `force_local`), `eu`,
    /// `us`, … (free-form label; default `remote`).
    #[serde(default = "defaults::residency")]
    pub residency: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// Public model name for `/v1/embeddings`.
    #[serde(default = "defaults::embedding_name")]
    pub name: String,
    /// Folder with `config.json`, `tokenizer.json`, `model.safetensors`.
    pub path: String,
    /// Concurrent embedding batches.
    #[serde(default = "defaults::embed_concurrency")]
    pub concurrency: usize,
}

mod defaults {
    pub fn listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub fn max_body_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub fn shutdown_grace_secs() -> u64 {
        30
    }
    pub fn max_connections() -> usize {
        1000
    }
    pub fn header_read_timeout_secs() -> u64 {
        10
    }
    pub fn body_read_timeout_secs() -> u64 {
        30
    }
    pub fn max_header_bytes() -> usize {
        64 * 1024
    }
    pub fn context() -> u32 {
        4096
    }
    pub fn parallel() -> u32 {
        4
    }
    pub fn batch() -> u32 {
        512
    }
    pub fn queue() -> usize {
        64
    }
    pub fn connect_timeout_ms() -> u64 {
        3_000
    }
    pub fn first_byte_timeout_ms() -> u64 {
        60_000
    }
    pub fn total_timeout_ms() -> u64 {
        600_000
    }
    pub fn max_retries() -> u32 {
        2
    }
    pub fn backoff_ms() -> u64 {
        200
    }
    pub fn max_retry_after_ms() -> u64 {
        10_000
    }
    pub fn cooldown_failures() -> u32 {
        3
    }
    pub fn cooldown_secs() -> u64 {
        30
    }
    pub fn anthropic_max_tokens() -> u32 {
        4096
    }
    pub fn residency() -> String {
        "remote".into()
    }
    pub fn embedding_name() -> String {
        "all-minilm-l6-v2".into()
    }
    pub fn embed_concurrency() -> usize {
        2
    }
}

impl Config {
    /// Substitutes `${VAR}` references and `~/` in every string that may hold them.
    pub(crate) fn resolve_env(&mut self) -> Result<(), (String, String)> {
        resolve("server.listen", &mut self.server.listen)?;
        resolve("storage.path", &mut self.storage.path)?;
        if let Some(u) = self.storage.url.as_mut() {
            resolve("storage.url", u)?;
        }
        if let Some(u) = self.cluster.redis_url.as_mut() {
            resolve("cluster.redis_url", u)?;
        }
        if let Some(e) = self.telemetry.otlp_endpoint.as_mut() {
            resolve("telemetry.otlp_endpoint", e)?;
        }
        self.storage.path = expand_home(&self.storage.path);
        if let Some(k) = self.auth.admin_key.as_mut() {
            resolve("auth.admin_key", k)?;
        }
        if self.auth.admin_key.as_deref() == Some("") {
            self.auth.admin_key = None;
        }
        for (name, m) in self.models.iter_mut() {
            match m {
                ModelConfig::Local(l) => {
                    resolve(&format!("models.{name}.path"), &mut l.path)?;
                    l.path = expand_home(&l.path);
                }
                ModelConfig::Remote(r) => {
                    resolve(&format!("models.{name}.base_url"), &mut r.base_url)?;
                    resolve(&format!("models.{name}.model"), &mut r.model)?;
                    if let Some(k) = r.api_key.as_mut() {
                        resolve(&format!("models.{name}.api_key"), k)?;
                    }
                    for (h, v) in r.headers.iter_mut() {
                        resolve(&format!("models.{name}.headers.{h}"), v)?;
                    }
                }
            }
        }
        for (name, r) in self.routes.iter_mut() {
            for (i, c) in r
                .domains
                .iter_mut()
                .flat_map(|d| d.classes.iter_mut())
                .enumerate()
            {
                if let Some(p) = c.examples_file.as_mut() {
                    resolve(
                        &format!("routes.{name}.domains.classes[{i}].examples_file"),
                        p,
                    )?;
                    *p = expand_home(p);
                }
            }
            if let Some(router) = r.router.as_mut() {
                resolve(&format!("routes.{name}.router.path"), &mut router.path)?;
                router.path = expand_home(&router.path);
            }
        }
        if let Some(e) = self.embeddings.as_mut() {
            resolve("embeddings.path", &mut e.path)?;
            e.path = expand_home(&e.path);
        }
        Ok(())
    }
}

impl Config {
    /// A name clients may send as `model`: a deployment, an alias, a route or the
    /// embedding model.
    pub fn is_public_name(&self, name: &str) -> bool {
        self.models.contains_key(name)
            || self.aliases.contains_key(name)
            || self.routes.contains_key(name)
            || self.embeddings.as_ref().is_some_and(|e| e.name == name)
    }
}

impl ModelConfig {
    /// Where the deployment sends data: `on_prem` for local models.
    pub fn residency(&self) -> &str {
        match self {
            ModelConfig::Local(_) => "on_prem",
            ModelConfig::Remote(r) => &r.residency,
        }
    }

    /// Whether the deployment runs on the operator's own machines.
    pub fn on_prem(&self) -> bool {
        match self {
            ModelConfig::Local(_) => true,
            ModelConfig::Remote(r) => r.residency == "on_prem",
        }
    }

    /// What the deployment's tokens cost; local models with a hardware cost get derived prices.
    pub fn price(&self) -> Price {
        match self {
            ModelConfig::Local(l) => l.price(),
            ModelConfig::Remote(r) => Price {
                input: r.input_cost_per_mtok,
                output: r.output_cost_per_mtok,
                cached_input: r
                    .cached_input_cost_per_mtok
                    .unwrap_or(r.input_cost_per_mtok),
            },
        }
    }
}

impl LocalModelConfig {
    pub fn path_buf(&self) -> PathBuf {
        PathBuf::from(&self.path)
    }

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
            Some(m) => Some(m.price()),
            None => self.cost.prices.get(name).map(|p| Price::from(*p)),
        }
    }

    /// The baseline's name and price, when one is configured.
    pub fn baseline(&self) -> Option<(&str, Price)> {
        let name = self.cost.baseline.as_deref()?;
        Some((name, self.price_of(name)?))
    }
}
