//! Executes a [`Plan`]: tier by tier, each a fallback chain. Between tiers the plan's cascade
//! judges the answer's confidence from its own token logprobs over the first N tokens (held
//! back from the client until then); below the threshold the decode is cancelled and the next
//! tier answers instead. A tier whose whole chain fails moves on to the next tier too, recorded
//! with cause `error`. The client only ever sees one answer.

use std::future::Future;

use futures::StreamExt;

use super::confidence::{alternatives_needed, certainly_below, confidence, TokenStat};
use super::executor::{Attempt, Escalation, ExecError, Failure, Gateway, Served};
use super::plan::{CascadePlan, Plan};
use super::verifier::verifier_confidence;
use crate::providers::collect::collect;
use crate::providers::local::to_generation;
use crate::providers::{ChatStream, DeploymentId, Provider, ProviderError};
use crate::wire::openai::{ChatChunk, ChatRequest, ChatResponse};

/// How the answering tier hands its answer on: whole ([`Whole`]) or as a stream committed
/// to one deployment ([`Streamed`]). The tier loop is the same for both.
trait Delivery {
    type Answer: Send;

    /// Calls a tier's fallback chain when no cascade judges it.
    fn call<'a>(
        gw: &'a Gateway,
        route: &'a str,
        chain: &'a [DeploymentId],
        req: &'a ChatRequest,
    ) -> impl Future<Output = Result<(Self::Answer, Served), Failure>> + Send + 'a;

    /// An answer the cascade kept, as the client asked for it.
    fn accept<'a>(
        s: ChatStream,
        served: Served,
        req: &'a ChatRequest,
    ) -> impl Future<Output = Result<(Self::Answer, Served), Failure>> + Send + 'a;
}

struct Whole;
struct Streamed;

impl Delivery for Whole {
    type Answer = ChatResponse;

    fn call<'a>(
        gw: &'a Gateway,
        route: &'a str,
        chain: &'a [DeploymentId],
        req: &'a ChatRequest,
    ) -> impl Future<Output = Result<(ChatResponse, Served), Failure>> + Send + 'a {
        gw.complete_chain(route, chain, req)
    }

    async fn accept(
        s: ChatStream,
        mut served: Served,
        req: &ChatRequest,
    ) -> Result<(ChatResponse, Served), Failure> {
        match timed(&mut served.upstream, collect(s)).await {
            Ok(mut resp) => {
                strip_logprobs_response(&mut resp, req);
                Ok((resp, served))
            }
            Err(e) => Err(Failure::new(&served.deployment.name, e, served.attempts)),
        }
    }
}

impl Delivery for Streamed {
    type Answer = ChatStream;

    fn call<'a>(
        gw: &'a Gateway,
        route: &'a str,
        chain: &'a [DeploymentId],
        req: &'a ChatRequest,
    ) -> impl Future<Output = Result<(ChatStream, Served), Failure>> + Send + 'a {
        gw.stream_chain(route, chain, req)
    }

    async fn accept(
        s: ChatStream,
        served: Served,
        req: &ChatRequest,
    ) -> Result<(ChatStream, Served), Failure> {
        Ok((strip_logprobs_stream(s, req), served))
    }
}

impl Gateway {
    /// Runs a plan to one complete answer.
    pub async fn complete(
        &self,
        plan: &Plan,
        req: &ChatRequest,
    ) -> Result<(ChatResponse, Served), Failure> {
        self.run::<Whole>(plan, req).await
    }

    /// Runs a plan to one stream, committed to one deployment of one tier.
    pub async fn stream(
        &self,
        plan: &Plan,
        req: &ChatRequest,
    ) -> Result<(ChatStream, Served), Failure> {
        self.run::<Streamed>(plan, req).await
    }

    /// The tier loop: each tier's chain answers; between tiers the cascade judges; a failed
    /// tier or a low-confidence answer moves on to the next tier.
    async fn run<D: Delivery>(
        &self,
        plan: &Plan,
        req: &ChatRequest,
    ) -> Result<(D::Answer, Served), Failure> {
        let mut escalations = Vec::new();
        let mut attempts = Vec::new();
        let mut last_err = None;
        let mut upstream = std::time::Duration::ZERO;
        for (i, tier) in plan.tiers.iter().enumerate() {
            let tier_start = std::time::Instant::now();
            let chain = &tier.models;
            let next = plan.tiers.get(i + 1).map(|t| t.name.clone());
            let judged = plan.cascade.as_ref().filter(|_| next.is_some());
            let result = match judged {
                None => D::call(self, &plan.route, chain, req).await,
                Some(c) => match self.judged_stream(&plan.route, chain, req, c).await {
                    Ok(Judged::Accept(s, mut served, conf)) => {
                        served.confidence = conf;
                        D::accept(s, served, req).await
                    }
                    Ok(Judged::Escalate(served, conf, judged_tokens)) => {
                        self.escalated(
                            plan,
                            &mut escalations,
                            &tier.name,
                            next.as_deref(),
                            Some(&served.deployment.name),
                            conf.map(|c| (c, judged_tokens)),
                        );
                        attempts.extend(served.attempts);
                        upstream += tier_start.elapsed();
                        continue;
                    }
                    Err(f) => Err(f),
                },
            };
            upstream += tier_start.elapsed();
            match result {
                Ok((answer, mut served)) => {
                    served.upstream = upstream;
                    attempts.append(&mut served.attempts);
                    served.attempts = attempts;
                    served.tier = tier.name.clone();
                    served.escalations = escalations;
                    return Ok((answer, served));
                }
                Err(f) => {
                    attempts.extend(f.attempts);
                    if !f.error.may_escalate() || next.is_none() {
                        return Err(Failure {
                            error: f.error,
                            attempts,
                        });
                    }
                    self.escalated(
                        plan,
                        &mut escalations,
                        &tier.name,
                        next.as_deref(),
                        None,
                        None,
                    );
                    last_err = Some(f.error);
                }
            }
        }
        Err(Failure {
            error: last_err.unwrap_or(ExecError::NoDeployment),
            attempts,
        })
    }

    fn escalated(
        &self,
        plan: &Plan,
        escalations: &mut Vec<Escalation>,
        from: &str,
        to: Option<&str>,
        deployment: Option<&str>,
        judged: Option<(f32, usize)>,
    ) {
        let cause = if deployment.is_some() {
            "low_confidence"
        } else {
            "error"
        };
        let to = to.unwrap_or_default();
        self.metrics()
            .escalations
            .with_label_values(&[&plan.route, from, to, cause])
            .inc();
        let conf = judged.map(|j| j.0);
        tracing::info!(route = %plan.route, from, to, cause, confidence = ?conf, "escalating");
        escalations.push(Escalation {
            from_tier: from.to_string(),
            to_tier: to.to_string(),
            cause,
            deployment: deployment.map(str::to_string),
            confidence: conf,
            judged_tokens: judged.map(|j| j.1).unwrap_or(0),
        });
    }

    /// Streams from a chain with logprobs on, holds the first `first_tokens` tokens, and
    /// judges them. On escalation the stream is dropped, which cancels a local decode.
    async fn judged_stream(
        &self,
        route: &str,
        chain: &[DeploymentId],
        req: &ChatRequest,
        c: &CascadePlan,
    ) -> Result<Judged, Failure> {
        let mut probe = req.clone();
        probe.logprobs = Some(true);
        let alts = alternatives_needed(c.signal).max(req.top_logprobs.unwrap_or(0));
        probe.top_logprobs = (alts > 0).then_some(alts);
        let (mut s, served) = match self.stream_chain(route, chain, &probe).await {
            Ok(x) => x,
            // A server that rejects the logprobs the cascade added (not the client's request):
            // ask again as the client did; the verifier, if any, judges the answer.
            Err(mut f) if f.error.is_rejection() && !req.logprobs.unwrap_or(false) => {
                tracing::debug!(route, error = ?f.error, "tier rejected logprobs; judging without them");
                match self.stream_chain(route, chain, req).await {
                    Ok((s, mut served)) => {
                        f.attempts.append(&mut served.attempts);
                        served.attempts = f.attempts;
                        (s, served)
                    }
                    Err(mut more) => {
                        f.attempts.append(&mut more.attempts);
                        more.attempts = f.attempts;
                        return Err(more);
                    }
                }
            }
            Err(f) => return Err(f),
        };
        let mut held: Vec<Result<ChatChunk, ProviderError>> = Vec::new();
        let mut stats = Vec::new();
        // Content chunks stand in for tokens when a tier reports no logprobs.
        let mut pieces = 0usize;
        let mut ended = false;
        while c.first_tokens == 0 || stats.len().max(pieces) < c.first_tokens as usize {
            match s.next().await {
                Some(Ok(chunk)) => {
                    for ch in &chunk.choices {
                        if let Some(lp) = &ch.logprobs {
                            stats.extend(TokenStat::from_logprobs(lp));
                        }
                        if ch.delta.content.as_deref().is_some_and(|t| !t.is_empty()) {
                            pieces += 1;
                        }
                    }
                    held.push(Ok(chunk));
                    if certainly_below(c.signal, &stats, c.first_tokens as usize, c.threshold) {
                        // The decision cannot change: escalate without waiting for N tokens.
                        break;
                    }
                }
                Some(Err(e)) => {
                    // Nothing reached the client yet: treat as this tier failing.
                    let mut attempts = served.attempts;
                    attempts.push(Attempt {
                        deployment: served.deployment.name.clone(),
                        error: Some(e.clone()),
                    });
                    return Err(Failure::new(&served.deployment.name, e, attempts));
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let mut conf = confidence(c.signal, &stats);
        if conf.is_none() {
            if let Some(v) = c.verifier {
                conf = self.verify(v, req, &held, c).await;
            }
        }
        if conf.is_some_and(|v| v < c.threshold) {
            return Ok(Judged::Escalate(served, conf, stats.len().max(pieces)));
        }
        let rest: ChatStream = if ended {
            Box::pin(futures::stream::empty())
        } else {
            s
        };
        Ok(Judged::Accept(
            Box::pin(futures::stream::iter(held).chain(rest)),
            served,
            conf,
        ))
    }
}

impl Gateway {
    /// The local verifier's confidence in an answer's held beginning (teacher forcing).
    async fn verify(
        &self,
        verifier: DeploymentId,
        req: &ChatRequest,
        held: &[Result<ChatChunk, ProviderError>],
        c: &CascadePlan,
    ) -> Option<f32> {
        let d = self.deployment(verifier)?;
        let Provider::Local(l) = &d.provider else {
            return None;
        };
        let name = d.name.as_str();
        let text: String = held
            .iter()
            .flatten()
            .flat_map(|chunk| chunk.choices.iter())
            .filter_map(|ch| ch.delta.content.as_deref())
            .collect();
        let messages = to_generation(req).ok()?.messages;
        let engine = l.engine.clone();
        let context = engine.settings().context;
        let scored = tokio::task::spawn_blocking(move || {
            engine.score_answers(&[(messages, text)], context, |_| {})
        })
        .await;
        match scored {
            Ok(Ok(mut v)) => verifier_confidence(c.signal, &v.pop()?, 0),
            Ok(Err(e)) => {
                tracing::warn!(verifier = name, error = %e, "verifier failed; keeping the answer");
                None
            }
            Err(_) => None,
        }
    }
}

/// Awaits `f`, adding the time it took to `clock`.
async fn timed<T>(clock: &mut std::time::Duration, f: impl std::future::Future<Output = T>) -> T {
    let t = std::time::Instant::now();
    let out = f.await;
    *clock += t.elapsed();
    out
}

enum Judged {
    Accept(ChatStream, Served, Option<f32>),
    Escalate(Served, Option<f32>, usize),
}

/// Gives the client the logprobs it asked for, no more: none if it asked for none, and at
/// most its `top_logprobs` alternatives (the cascade may have asked the tier for more).
fn fit_logprobs(logprobs: &mut Option<serde_json::Value>, req: &ChatRequest) {
    if !req.logprobs.unwrap_or(false) {
        *logprobs = None;
        return;
    }
    let keep = req.top_logprobs.unwrap_or(0) as usize;
    let items = logprobs
        .as_mut()
        .and_then(|l| l.get_mut("content"))
        .and_then(|c| c.as_array_mut());
    for item in items.into_iter().flatten() {
        if let Some(top) = item.get_mut("top_logprobs").and_then(|t| t.as_array_mut()) {
            top.truncate(keep);
        }
    }
}

fn strip_logprobs_response(resp: &mut ChatResponse, req: &ChatRequest) {
    for c in resp.choices.iter_mut() {
        fit_logprobs(&mut c.logprobs, req);
    }
}

fn strip_logprobs_stream(s: ChatStream, req: &ChatRequest) -> ChatStream {
    let req = req.clone();
    Box::pin(s.filter_map(move |item| {
        let out = match item {
            Ok(mut chunk) => {
                let had = chunk.choices.iter().any(|c| c.logprobs.is_some());
                for c in chunk.choices.iter_mut() {
                    fit_logprobs(&mut c.logprobs, &req);
                }
                // A chunk that carried only logprobs the client did not ask for: drop it.
                let emptied = had && chunk.choices.iter().all(|c| c.logprobs.is_none());
                if emptied
                    && !chunk.is_substantive()
                    && chunk.usage.is_none()
                    && chunk.choices.iter().all(|c| c.delta.role.is_none())
                {
                    None
                } else {
                    Some(Ok(chunk))
                }
            }
            Err(e) => Some(Err(e)),
        };
        async move { out }
    }))
}
