//! Executes a request against an ordered chain of deployments: the first that answers wins;
//! failures that are the deployment's fault (connect, timeout, 429, 5xx, overload) move on to
//! the next; a client error (400) ends the chain at once. Deployments that keep failing cool
//! down and are tried last. A stream is committed to a deployment at its first visible chunk;
//! a failure before that falls back silently, a failure after it reaches the client as one
//! error event.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use tracing::Instrument;

use crate::api::error::ApiError;
use crate::config::Config;
use crate::observe::metrics::Metrics;
use crate::observe::traces;
use crate::providers::{ChatStream, Deployment, ProviderError};
use crate::wire::openai::{ChatRequest, ChatResponse};

/// One call to one deployment.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deployment: String,
    pub error: Option<ProviderError>,
}

/// Which deployment answered, in which tier, after which failed attempts and escalations.
#[derive(Clone)]
pub struct Served {
    pub deployment: Arc<Deployment>,
    pub attempts: Vec<Attempt>,
    /// The plan tier that answered.
    pub tier: String,
    /// Tiers left before the one that answered, and why.
    pub escalations: Vec<Escalation>,
    /// The answering tier's confidence, when a cascade judged it.
    pub confidence: Option<f32>,
    /// Time spent waiting on models (every tier tried; for a stream, until its first
    /// visible chunk): the request's time minus this is the gateway's own overhead.
    pub upstream: std::time::Duration,
}

impl Served {
    /// Served by `deployment` after the failed `attempts`; the tier loop fills in the rest.
    pub fn new(deployment: Arc<Deployment>, attempts: Vec<Attempt>) -> Self {
        Self {
            deployment,
            attempts,
            tier: String::new(),
            escalations: Vec::new(),
            confidence: None,
            upstream: std::time::Duration::ZERO,
        }
    }
}

/// Quality- or failure-driven move from one tier to the next.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Escalation {
    pub from_tier: String,
    pub to_tier: String,
    /// `low_confidence` or `error`.
    pub cause: &'static str,
    pub deployment: Option<String>,
    pub confidence: Option<f32>,
    /// Tokens the confidence was judged on (fewer than `first_tokens` when the outcome was
    /// already certain).
    pub judged_tokens: usize,
}

impl Escalation {
    pub fn describe(&self) -> String {
        match (self.cause, self.confidence) {
            ("low_confidence", Some(c)) => format!(
                "escalated {}->{}: confidence {c:.2} over {} tokens",
                self.from_tier, self.to_tier, self.judged_tokens
            ),
            (cause, _) => format!("escalated {}->{}: {cause}", self.from_tier, self.to_tier),
        }
    }
}

pub struct Gateway {
    pub deployments: BTreeMap<String, Arc<Deployment>>,
    /// Public name → fallback chain (every model name is a route to itself).
    pub routes: BTreeMap<String, Vec<Arc<Deployment>>>,
    pub aliases: BTreeMap<String, Vec<String>>,
    metrics: Arc<Metrics>,
}

impl Gateway {
    /// Loads every deployment (local models are loaded here, which takes seconds).
    pub fn build(cfg: &Config, metrics: Arc<Metrics>) -> Result<Self, String> {
        let mut deployments = BTreeMap::new();
        for (name, m) in &cfg.models {
            let d = Deployment::build(name, m).map_err(|e| format!("model `{name}`: {e}"))?;
            deployments.insert(name.clone(), d);
        }
        let mut routes: BTreeMap<String, Vec<Arc<Deployment>>> = deployments
            .iter()
            .map(|(n, d)| (n.clone(), vec![d.clone()]))
            .collect();
        for (alias, chain) in &cfg.aliases {
            routes.insert(
                alias.clone(),
                chain
                    .iter()
                    .filter_map(|n| deployments.get(n).cloned())
                    .collect(),
            );
        }
        Ok(Self {
            deployments,
            routes,
            aliases: cfg.aliases.clone(),
            metrics,
        })
    }

    pub fn chain(&self, model: &str) -> Option<&[Arc<Deployment>]> {
        self.routes.get(model).map(Vec::as_slice)
    }

    /// The deployments named by a plan tier (names were validated at start).
    pub fn resolve(&self, names: &[String]) -> Vec<Arc<Deployment>> {
        names
            .iter()
            .filter_map(|n| self.deployments.get(n).cloned())
            .collect()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Healthy deployments first, in configured order, then those cooling down.
    fn order(chain: &[Arc<Deployment>]) -> Vec<Arc<Deployment>> {
        let (mut ok, cooling): (Vec<_>, Vec<_>) =
            chain.iter().cloned().partition(|d| !d.health.is_cooling());
        ok.extend(cooling);
        ok
    }

    fn record_failure(
        &self,
        route: &str,
        d: &Deployment,
        e: &ProviderError,
        next: Option<&Arc<Deployment>>,
    ) {
        self.metrics
            .attempts
            .with_label_values(&[&d.name, e.kind.as_str()])
            .inc();
        if e.is_deployment_fault() && d.health.record_failure() {
            self.metrics.cooldowns.with_label_values(&[&d.name]).inc();
            tracing::warn!(deployment = %d.name, "deployment cooling down after repeated failures");
        }
        if let Some(n) = next.filter(|_| e.may_fall_back()) {
            self.metrics
                .fallbacks
                .with_label_values(&[route, &d.name, &n.name])
                .inc();
            tracing::warn!(deployment = %d.name, next = %n.name, error = %e, "falling back");
        } else {
            tracing::warn!(deployment = %d.name, error = %e, "deployment failed");
        }
    }

    fn record_success(&self, d: &Deployment) {
        self.metrics
            .attempts
            .with_label_values(&[&d.name, "ok"])
            .inc();
        d.health.record_success();
    }

    fn give_up(last: Option<(String, ProviderError)>) -> ApiError {
        match last {
            Some((name, e)) => e.to_api_error(&name),
            None => ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no_deployment",
                "No deployment is configured for this model.",
            ),
        }
    }

    /// Calls a fallback chain until one deployment answers.
    pub async fn complete_chain(
        &self,
        route: &str,
        chain: &[Arc<Deployment>],
        req: &ChatRequest,
    ) -> Result<(ChatResponse, Served), (ApiError, Vec<Attempt>)> {
        let chain = Self::order(chain);
        let mut attempts = Vec::new();
        let mut last = None;
        for (i, d) in chain.iter().enumerate() {
            let span = traces::model_span(d, req);
            match d.provider.complete(req).instrument(span.clone()).await {
                Ok(resp) => {
                    traces::record_response(&span, &resp);
                    self.record_success(d);
                    return Ok((resp, Served::new(d.clone(), attempts)));
                }
                Err(e) => {
                    traces::record_error(&span, &e);
                    self.record_failure(route, d, &e, chain.get(i + 1));
                    attempts.push(Attempt {
                        deployment: d.name.clone(),
                        error: Some(e.clone()),
                    });
                    let stop = !e.may_fall_back();
                    last = Some((d.name.clone(), e));
                    if stop {
                        break;
                    }
                }
            }
        }
        Err((Self::give_up(last), attempts))
    }

    /// Returns a stream committed to one deployment: it has already yielded a visible chunk.
    pub async fn stream_chain(
        &self,
        route: &str,
        chain: &[Arc<Deployment>],
        req: &ChatRequest,
    ) -> Result<(ChatStream, Served), (ApiError, Vec<Attempt>)> {
        let chain = Self::order(chain);
        let mut attempts = Vec::new();
        let mut last = None;
        'chain: for (i, d) in chain.iter().enumerate() {
            let span = traces::model_span(d, req);
            let failed = |e: ProviderError, attempts: &mut Vec<Attempt>| {
                traces::record_error(&span, &e);
                self.record_failure(route, d, &e, chain.get(i + 1));
                attempts.push(Attempt {
                    deployment: d.name.clone(),
                    error: Some(e.clone()),
                });
                (d.name.clone(), e)
            };
            let mut s = match d.provider.stream(req).instrument(span.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    let stop = !e.may_fall_back();
                    last = Some(failed(e, &mut attempts));
                    if stop {
                        break;
                    }
                    continue;
                }
            };
            let mut head = Vec::new();
            loop {
                match s.next().await {
                    Some(Ok(chunk)) => {
                        let visible = chunk.is_substantive();
                        head.push(Ok(chunk));
                        if visible {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        let stop = !e.may_fall_back();
                        last = Some(failed(e, &mut attempts));
                        if stop {
                            break 'chain;
                        }
                        continue 'chain;
                    }
                    None => break,
                }
            }
            self.record_success(d);
            // The model span lives as long as the stream and gets its usage at the end.
            let traced = span.clone();
            let committed: ChatStream = Box::pin(futures::stream::iter(head).chain(s).inspect(
                move |item| match item {
                    Ok(c) => {
                        if let Some(u) = &c.usage {
                            traces::record_usage(&traced, u);
                        }
                    }
                    Err(e) => traces::record_error(&traced, e),
                },
            ));
            return Ok((committed, Served::new(d.clone(), attempts)));
        }
        Err((Self::give_up(last), attempts))
    }
}
