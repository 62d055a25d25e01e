//! Executes a request against an ordered chain of deployments: the first that answers wins;
//! failures that are the deployment's fault (connect, timeout, 429, 5xx, overload) move on to
//! the next; a client error (400) ends the chain at once. Deployments that keep failing cool
//! down and are tried last. A stream is committed to a deployment at its first visible chunk;
//! a failure before that falls back silently, a failure after it reaches the client as one
//! error event.

use std::sync::Arc;

use futures::StreamExt;
use tracing::Instrument;

use crate::config::Config;
use crate::observe::metrics::Metrics;
use crate::observe::traces;
use crate::providers::{ChatStream, Deployment, DeploymentId, ProviderError};
use crate::wire::openai::{ChatRequest, ChatResponse};

use super::table::RouteTable;

/// Why no deployment answered.
#[derive(Debug, Clone)]
pub enum ExecError {
    /// The last deployment tried failed like this.
    Provider {
        deployment: String,
        error: ProviderError,
    },
    /// The plan named no deployment to try.
    NoDeployment,
}

impl ExecError {
    /// Worth moving on to the next tier: the deployment's fault, not the request's.
    pub fn may_escalate(&self) -> bool {
        match self {
            ExecError::Provider { error, .. } => error.may_escalate(),
            ExecError::NoDeployment => true,
        }
    }

    /// The deployment refused the request itself (a 4xx, or what a local model cannot do).
    pub fn is_rejection(&self) -> bool {
        matches!(self, ExecError::Provider { error, .. } if error.kind == crate::providers::FailureKind::BadRequest)
    }
}

/// A run that ended without an answer: why, and every call made on the way.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: ExecError,
    pub attempts: Vec<Attempt>,
}

impl Failure {
    pub fn new(deployment: &str, error: ProviderError, attempts: Vec<Attempt>) -> Self {
        Self {
            error: ExecError::Provider {
                deployment: deployment.to_string(),
                error,
            },
            attempts,
        }
    }
}

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
    pub tier: std::sync::Arc<str>,
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
            tier: std::sync::Arc::from(""),
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

/// The deployments, loaded, and the fallback logic over them.
pub struct Gateway {
    /// By [`DeploymentId`]: the route table's order.
    pub deployments: Vec<Arc<Deployment>>,
    metrics: Arc<Metrics>,
}

impl Gateway {
    /// Loads every deployment (local models are loaded here, which takes seconds).
    pub fn build(cfg: &Config, table: &RouteTable, metrics: Arc<Metrics>) -> Result<Self, String> {
        let mut deployments: Vec<Option<Arc<Deployment>>> = vec![None; table.deployments().len()];
        // Base models first: an adapter's deployment (`base:adapter`) runs on its base's engine.
        let mut order: Vec<usize> = (0..deployments.len()).collect();
        let adapter_of = |i: usize| match cfg.models.get(&table.deployments()[i].name) {
            Some(crate::config::ModelConfig::Local(l)) => l.adapter_of.clone(),
            _ => None,
        };
        order.sort_by_key(|&i| adapter_of(i).is_some());
        for i in order {
            let spec = &table.deployments()[i];
            let m = cfg
                .models
                .get(&spec.name)
                .ok_or_else(|| format!("model `{}` is not configured", spec.name))?;
            if let Some(of) = adapter_of(i) {
                let base = table
                    .id(&of.base)
                    .and_then(|b| deployments[b.0].clone())
                    .ok_or_else(|| {
                        format!(
                            "model `{}`: its base `{}` is not loaded",
                            spec.name, of.base
                        )
                    })?;
                deployments[i] = Some(Deployment::adapter(
                    DeploymentId(i),
                    &spec.name,
                    &base,
                    &of.adapter,
                )?);
                continue;
            }
            // A draft model is another local model's file, loaded again in this model's
            // engine (the weights are shared through the page cache).
            let draft = match m {
                crate::config::ModelConfig::Local(l) => {
                    l.draft.as_ref().and_then(|d| match cfg.models.get(d) {
                        Some(crate::config::ModelConfig::Local(dl)) => Some(dl.path_buf()),
                        _ => None,
                    })
                }
                _ => None,
            };
            let d = Deployment::build(DeploymentId(i), &spec.name, m, draft)
                .map_err(|e| format!("model `{}`: {e}", spec.name))?;
            deployments[i] = Some(d);
        }
        Ok(Self::from_deployments(
            deployments.into_iter().flatten().collect(),
            metrics,
        ))
    }

    /// A gateway over deployments already built (numbered in order).
    pub fn from_deployments(deployments: Vec<Arc<Deployment>>, metrics: Arc<Metrics>) -> Self {
        Self {
            deployments,
            metrics,
        }
    }

    pub fn deployment(&self, id: DeploymentId) -> Option<&Arc<Deployment>> {
        self.deployments.get(id.0)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A tier's chain: healthy deployments first, in configured order, then those cooling
    /// down.
    fn order(&self, chain: &[DeploymentId]) -> Vec<Arc<Deployment>> {
        let (mut ok, cooling): (Vec<_>, Vec<_>) = chain
            .iter()
            .filter_map(|id| self.deployment(*id).cloned())
            .partition(|d| !d.health.is_cooling());
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

    fn give_up(last: Option<(String, ProviderError)>, attempts: Vec<Attempt>) -> Failure {
        match last {
            Some((name, e)) => Failure::new(&name, e, attempts),
            None => Failure {
                error: ExecError::NoDeployment,
                attempts,
            },
        }
    }

    /// Calls a fallback chain until one deployment answers.
    pub async fn complete_chain(
        &self,
        route: &str,
        chain: &[DeploymentId],
        req: &ChatRequest,
    ) -> Result<(ChatResponse, Served), Failure> {
        let chain = self.order(chain);
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
        Err(Self::give_up(last, attempts))
    }

    /// Returns a stream committed to one deployment: it has already yielded a visible chunk.
    pub async fn stream_chain(
        &self,
        route: &str,
        chain: &[DeploymentId],
        req: &ChatRequest,
    ) -> Result<(ChatStream, Served), Failure> {
        let chain = self.order(chain);
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
        Err(Self::give_up(last, attempts))
    }
}
