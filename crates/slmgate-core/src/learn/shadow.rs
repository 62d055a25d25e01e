//! Shadow mode: a route's `shadow = { models = [...], sample = 0.1 }` has a sampled share of
//! its answered requests answered again by other deployments, after the client has its
//! answer. The exchange offers a [`Job`] to the route's bounded queue (never waiting: a full
//! queue drops the job and counts it); the route's workers call each shadow model, compare
//! its answer with the route's ([`agreement`]), and store a row (`shadow_answers`) with both
//! sides' latency and cost, and the texts as `[audit] content` allows.
//!
//! A shadow sees what the route's models saw (the redacted copy, the retrieved passages),
//! and only where the route's data may go: residency, on-premises-only (PII or guard
//! policy, a matched rule), and, under `pii = "redact"`, no off-premises shadow for a
//! request that was not redacted. Shadow calls are not charged to the key's budget.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::store::Side;
use crate::config::Config;
use crate::providers::DeploymentId;
use crate::route::RouteTable;
use crate::wire::openai::{ChatRequest, ChatResponse};

/// A shadowed request, as the exchange hands it over once the client has its answer.
pub struct Job {
    pub route: String,
    pub request_id: String,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    /// What the route's models saw (made non-streaming here).
    pub req: ChatRequest,
    /// The shadow models this request may go to.
    pub models: Vec<DeploymentId>,
    pub primary: Side,
    pub primary_answer: String,
}

/// A route's share and shadow models, decided per request.
#[derive(Debug, Clone)]
pub struct Pick {
    pub sample: f64,
    pub models: Vec<DeploymentId>,
}

struct RouteShadow {
    sample: f64,
    models: Vec<DeploymentId>,
    concurrency: usize,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
}

/// Every route's shadow queue.
#[derive(Default)]
pub struct Shadows {
    routes: HashMap<String, RouteShadow>,
}

impl Shadows {
    pub fn new(cfg: &Config, table: &RouteTable) -> Self {
        let routes = cfg
            .routes
            .iter()
            .filter_map(|(name, r)| {
                let s = r.shadow.as_ref()?;
                let (tx, rx) = mpsc::channel(s.queue.max(1));
                Some((
                    name.clone(),
                    RouteShadow {
                        sample: s.sample,
                        models: s.models.iter().filter_map(|m| table.id(m)).collect(),
                        concurrency: s.concurrency.max(1),
                        tx,
                        rx: Mutex::new(Some(rx)),
                    },
                ))
            })
            .collect();
        Self { routes }
    }

    /// Whether this request of `route` is shadowed (a coin flip at the route's share), and
    /// by which of its shadow models `may_see` allows.
    pub fn pick(&self, route: &str, may_see: impl Fn(DeploymentId) -> bool) -> Option<Pick> {
        let r = self.routes.get(route)?;
        if r.sample <= 0.0 || (r.sample < 1.0 && rand::random::<f64>() >= r.sample) {
            return None;
        }
        Some(Pick {
            sample: r.sample,
            models: r.models.iter().copied().filter(|m| may_see(*m)).collect(),
        })
    }

    /// The shadow models of `route` (for counting those `pick` left out).
    pub fn models(&self, route: &str) -> &[DeploymentId] {
        self.routes.get(route).map(|r| &r.models[..]).unwrap_or(&[])
    }

    /// Queues a job without waiting; false when the route's queue is full (the job is
    /// dropped) or the route has no shadow.
    pub fn offer(&self, job: Job) -> bool {
        self.routes
            .get(&job.route)
            .is_some_and(|r| r.tx.try_send(job).is_ok())
    }

    /// The queues' receiving ends, once (the exchange layer starts the workers on them):
    /// route, workers to run, and the receiver.
    pub fn take_receivers(&self) -> Vec<(String, usize, mpsc::Receiver<Job>)> {
        self.routes
            .iter()
            .filter_map(|(name, r)| {
                let rx = r.rx.lock().unwrap_or_else(|p| p.into_inner()).take()?;
                Some((name.clone(), r.concurrency, rx))
            })
            .collect()
    }

    /// The route's shadow share (for the rows' `sample`).
    pub fn sample(&self, route: &str) -> f64 {
        self.routes.get(route).map(|r| r.sample).unwrap_or(1.0)
    }
}

/// The answer's text: its content, or its tool calls as JSON (compared field by field).
pub fn answer_text(r: &ChatResponse) -> String {
    let Some(m) = r.choices.first().map(|c| &c.message) else {
        return String::new();
    };
    match (&m.content, &m.tool_calls) {
        (Some(t), _) if !t.is_empty() => t.clone(),
        (_, Some(calls)) => serde_json::to_string(
            &calls
                .iter()
                .map(|c| {
                    let args: serde_json::Value = serde_json::from_str(&c.function.arguments)
                        .unwrap_or_else(|_| c.function.arguments.clone().into());
                    serde_json::json!({"name": c.function.name, "arguments": args})
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default(),
        _ => String::new(),
    }
}
