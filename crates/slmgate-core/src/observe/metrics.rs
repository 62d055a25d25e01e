//! Prometheus metrics. Counters are updated on the request path (lock-free atomics);
//! engine gauges (queue depth, active sequences) are sampled at scrape time.

use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::wire::openai::Usage;

/// The labels of the cost ledger's series.
pub struct Ledger<'a> {
    /// The public name requested (route, alias or model).
    pub route: &'a str,
    /// The deployment that answered.
    pub model: &'a str,
    pub tier: &'a str,
    /// The API key id (`anonymous` without one).
    pub key: &'a str,
}

pub struct Metrics {
    registry: Registry,
    /// Finished requests by public model (route), serving deployment and HTTP status.
    pub requests: IntCounterVec,
    /// Tokens by deployment and kind (prompt | completion).
    pub tokens: IntCounterVec,
    /// Total request latency by route and deployment.
    pub latency: HistogramVec,
    /// Time to first content token (streaming) by deployment.
    pub ttft: HistogramVec,
    /// Errors returned to clients by error code.
    pub errors: IntCounterVec,
    /// Calls to deployments by outcome (`ok` or a failure kind).
    pub attempts: IntCounterVec,
    /// Fallbacks from one deployment to the next.
    pub fallbacks: IntCounterVec,
    /// Cooldowns started per deployment.
    pub cooldowns: IntCounterVec,
    /// Routing plans by route, first tier and matched rule (`none` when no rule matched).
    pub route_decisions: IntCounterVec,
    /// Moves from one tier to the next by cause (`low_confidence` | `error`).
    pub escalations: IntCounterVec,
    /// Answers by route and the tier that gave them.
    pub served_tier: IntCounterVec,
    /// Learned-router scores.
    pub router_score: HistogramVec,
    /// RAG retrievals by route and result (`hit`: passages went into the prompt; `none`).
    pub retrievals: IntCounterVec,
    /// Response-cache lookups by route and result (`hit_exact`, `hit_semantic`, `miss`).
    pub cache_lookups: IntCounterVec,
    /// Entries in the response cache.
    pub cache_entries: IntGaugeVec,
    /// Shadow requests by route, shadow model and outcome (`ok`, `error`, `dropped`: the
    /// queue was full, `skipped`: policy kept the request from that model).
    pub shadow_requests: IntCounterVec,
    /// Agreement scores of shadow answers with the route's answers.
    pub shadow_agreement: HistogramVec,
    pub pii_findings: IntCounterVec,
    pub guard_hits: IntCounterVec,
    /// Streams the client abandoned before the end.
    pub cancelled: IntCounterVec,
    /// Answered requests, their cost, their baseline cost and the savings, by route, model,
    /// tier and key.
    pub answers: IntCounterVec,
    /// Their tokens, by `kind` (prompt | completion) too.
    pub answer_tokens: IntCounterVec,
    pub cost_usd: CounterVec,
    pub baseline_cost_usd: CounterVec,
    /// Baseline minus actual, summed (a gauge: an escalated request can cost more than the
    /// baseline, so the sum may go down).
    pub savings_usd: GaugeVec,
    /// Request time minus time waiting on models, by route.
    pub overhead: HistogramVec,
    /// Requests refused before any model was called, by kind (auth, rate_limit, budget,
    /// pii, guard, residency, policy, invalid_request, overload).
    pub rejections: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub active_sequences: IntGaugeVec,
    /// Speculative decoding, by deployment: verify steps that had drafts, tokens drafted,
    /// drafts accepted (acceptance = accepted / drafted; tokens per step = 1 + accepted /
    /// steps). Sampled from the engine's counters at each scrape.
    pub spec_steps: IntCounterVec,
    pub spec_drafted: IntCounterVec,
    pub spec_accepted: IntCounterVec,
    /// LoRA adapter loads while serving (a changed file, the admin API), by deployment,
    /// adapter and outcome (`ok`, `error`).
    pub adapter_loads: IntCounterVec,
    /// Redis (`[cluster] redis_url`): reachable at the last call (1/0), failed calls by
    /// operation, and each call's round trip (admit, reserve, settle, adjust, ping).
    pub redis_up: IntGauge,
    pub redis_errors: IntCounterVec,
    pub redis_seconds: HistogramVec,
    pub in_flight: IntGauge,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

const LEDGER_LABELS: &[&str] = &["route", "model", "tier", "key"];

const OVERHEAD_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The rejection kind of an error code, when the code is a refusal by policy or validation.
pub fn rejection_kind(code: &str) -> Option<&'static str> {
    Some(match code {
        "missing_api_key" | "invalid_api_key" | "revoked_api_key" | "model_not_allowed"
        | "invalid_admin_key" => "auth",
        "rate_limit_exceeded" => "rate_limit",
        "budget_exceeded" | "budget_unavailable" => "budget",
        "rate_limit_unavailable" => "rate_limit",
        "pii_blocked" => "pii",
        "prompt_injection" => "guard",
        "no_allowed_model" => "residency",
        "route_denied" => "policy",
        "model_overloaded" | "shutting_down" => "overload",
        "invalid_request"
        | "invalid_json"
        | "invalid_body"
        | "invalid_value"
        | "request_too_large"
        | "model_not_found"
        | "context_length_exceeded" => "invalid_request",
        _ => return None,
    })
}

impl Metrics {
    /// Adds one answered request to the cost ledger series: what it cost, and what the
    /// baseline would have (none without one).
    pub fn ledger(&self, l: &Ledger, cost: f64, baseline: Option<f64>, u: &Usage) {
        let labels = [l.route, l.model, l.tier, l.key];
        self.answers.with_label_values(&labels).inc();
        for (kind, n) in [
            ("prompt", u.prompt_tokens),
            ("completion", u.completion_tokens),
        ] {
            self.answer_tokens
                .with_label_values(&[l.route, l.model, l.tier, l.key, kind])
                .inc_by(n as u64);
        }
        self.cost_usd.with_label_values(&labels).inc_by(cost);
        if let Some(b) = baseline {
            self.baseline_cost_usd.with_label_values(&labels).inc_by(b);
            self.savings_usd.with_label_values(&labels).add(b - cost);
        }
    }

    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let hist = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let fcounter = |name: &str, help: &str| {
            let c = CounterVec::new(Opts::new(name, help), LEDGER_LABELS).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let savings_usd = GaugeVec::new(
            Opts::new(
                "slmgate_savings_usd",
                "Baseline cost minus actual cost, summed since start (USD)",
            ),
            LEDGER_LABELS,
        )
        .expect("valid metric");
        registry
            .register(Box::new(savings_usd.clone()))
            .expect("unique metric");
        let overhead = HistogramVec::new(
            HistogramOpts::new(
                "slmgate_gateway_overhead_seconds",
                "Request time minus time waiting on models",
            )
            .buckets(OVERHEAD_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(overhead.clone()))
            .expect("unique metric");
        let in_flight = IntGauge::new("slmgate_in_flight_requests", "Requests being served now")
            .expect("valid metric");
        registry
            .register(Box::new(in_flight.clone()))
            .expect("unique metric");
        let redis_up = IntGauge::new(
            "slmgate_redis_up",
            "Redis ([cluster] redis_url) answered the last call: 1, or not: 0",
        )
        .expect("valid metric");
        registry
            .register(Box::new(redis_up.clone()))
            .expect("unique metric");
        let redis_seconds = HistogramVec::new(
            HistogramOpts::new(
                "slmgate_redis_seconds",
                "Round trip of one Redis call (a Lua script or a ping), by operation",
            )
            .buckets(OVERHEAD_BUCKETS.to_vec()),
            &["op"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(redis_seconds.clone()))
            .expect("unique metric");
        Self {
            requests: counter(
                "slmgate_requests_total",
                "Finished chat requests",
                &["route", "deployment", "status"],
            ),
            tokens: counter(
                "slmgate_tokens_total",
                "Tokens processed",
                &["deployment", "kind"],
            ),
            latency: hist(
                "slmgate_request_duration_seconds",
                "Request latency",
                &["route", "deployment"],
            ),
            ttft: hist(
                "slmgate_time_to_first_token_seconds",
                "Time to first streamed token",
                &["deployment"],
            ),
            errors: counter("slmgate_errors_total", "Error responses by code", &["code"]),
            attempts: counter(
                "slmgate_deployment_attempts_total",
                "Calls to deployments by outcome",
                &["deployment", "outcome"],
            ),
            fallbacks: counter(
                "slmgate_fallbacks_total",
                "Fallbacks between deployments",
                &["route", "from", "to"],
            ),
            cooldowns: counter(
                "slmgate_deployment_cooldowns_total",
                "Cooldowns started",
                &["deployment"],
            ),
            route_decisions: counter(
                "slmgate_route_decisions_total",
                "Routing plans by first tier and matched rule",
                &["route", "first_tier", "rule"],
            ),
            cache_lookups: counter(
                "slmgate_cache_lookups_total",
                "Response-cache lookups by route and result (hit_exact, hit_semantic, miss)",
                &["route", "result"],
            ),
            cache_entries: gauge(
                "slmgate_cache_entries",
                "Entries in the response cache",
                &[],
            ),
            shadow_requests: counter(
                "slmgate_shadow_requests_total",
                "Shadow requests by route, shadow model and outcome (ok, error, dropped, skipped)",
                &["route", "model", "outcome"],
            ),
            shadow_agreement: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "slmgate_shadow_agreement",
                        "Agreement of shadow answers with the route's answers (0 to 1)",
                    )
                    .buckets(
                        (1..10)
                            .map(|i| i as f64 / 10.0)
                            .chain([0.95, 0.99])
                            .collect(),
                    ),
                    &["route", "model"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("unique metric");
                h
            },
            retrievals: counter(
                "slmgate_retrievals_total",
                "RAG retrievals by route and result (hit: passages went into the prompt)",
                &["route", "result"],
            ),
            escalations: counter(
                "slmgate_escalations_total",
                "Escalations between tiers",
                &["route", "from", "to", "cause"],
            ),
            served_tier: counter(
                "slmgate_served_tier_total",
                "Answers by the tier that gave them",
                &["route", "tier"],
            ),
            pii_findings: counter(
                "slmgate_pii_findings_total",
                "Requests with PII, by type and the policy applied",
                &["type", "policy"],
            ),
            guard_hits: counter(
                "slmgate_guard_hits_total",
                "Requests the injection guard scored as attacks, by action",
                &["action"],
            ),
            router_score: {
                let h = HistogramVec::new(
                    HistogramOpts::new("slmgate_router_score", "Learned-router scores")
                        .buckets((1..10).map(|i| i as f64 / 10.0).collect()),
                    &["route"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("unique metric");
                h
            },
            cancelled: counter(
                "slmgate_cancelled_total",
                "Streams abandoned by the client",
                &["deployment"],
            ),
            answers: counter(
                "slmgate_answers_total",
                "Answered requests in the cost ledger",
                LEDGER_LABELS,
            ),
            answer_tokens: counter(
                "slmgate_answer_tokens_total",
                "Tokens of answered requests in the cost ledger",
                &["route", "model", "tier", "key", "kind"],
            ),
            cost_usd: fcounter("slmgate_cost_usd_total", "What requests cost (USD)"),
            baseline_cost_usd: fcounter(
                "slmgate_baseline_cost_usd_total",
                "What the [cost] baseline model would have cost for the same tokens (USD)",
            ),
            savings_usd,
            overhead,
            rejections: counter(
                "slmgate_rejections_total",
                "Requests refused before any model was called, by kind",
                &["kind"],
            ),
            queue_depth: gauge(
                "slmgate_queue_depth",
                "Requests waiting for a local engine slot",
                &["deployment"],
            ),
            active_sequences: gauge(
                "slmgate_active_sequences",
                "Sequences decoding in a local engine",
                &["deployment"],
            ),
            spec_steps: counter(
                "slmgate_speculative_steps_total",
                "Decode steps of a local engine that verified drafted tokens",
                &["deployment"],
            ),
            spec_drafted: counter(
                "slmgate_speculative_draft_tokens_total",
                "Tokens drafted by prompt lookup or a draft model",
                &["deployment"],
            ),
            spec_accepted: counter(
                "slmgate_speculative_accepted_tokens_total",
                "Drafted tokens the target model accepted",
                &["deployment"],
            ),
            adapter_loads: counter(
                "slmgate_adapter_loads_total",
                "LoRA adapters loaded or swapped while serving",
                &["deployment", "adapter", "outcome"],
            ),
            redis_up,
            redis_errors: counter(
                "slmgate_redis_errors_total",
                "Redis calls that failed or timed out, by operation",
                &["op"],
            ),
            redis_seconds,
            in_flight,
            registry,
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
