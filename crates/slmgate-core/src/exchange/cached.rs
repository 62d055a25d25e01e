//! The exchange's side of the response cache: what the lookup step found, replaying a hit
//! (as a whole answer or a stream, at zero cost, with the saving against the baseline
//! counted), and caching a miss's answer once it is complete.

use std::time::Duration;

use futures::stream;

use super::{Answer, AnswerStream, Exchange, GatewayError, Outcome, ServedMeta};
use crate::govern::audit::CacheSummary;
use crate::govern::cost::{baseline_cost, RequestCost};
use crate::know::cache::{Cached, Found, Probe};
use crate::observe::metrics::Ledger;
use crate::wire::openai::{ChatChunk, ChatResponse, Usage};

/// What the cache step decided for this request.
#[derive(Default)]
pub(super) enum CacheState {
    /// The route is not cached.
    #[default]
    Off,
    /// The client asked to skip the cache (`x-slmgate-cache: off`).
    Bypass,
    /// Not found: cache the answer under this probe for this long.
    Miss(Box<Probe>, Duration),
    Hit(Found),
}

impl CacheState {
    /// The `x-slmgate-cache` response header.
    pub(super) fn header(&self) -> Option<&'static str> {
        match self {
            CacheState::Off => None,
            CacheState::Bypass => Some("bypass"),
            CacheState::Miss(..) => Some("miss"),
            CacheState::Hit(_) => Some("hit"),
        }
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Exchange {
    /// Answers from the cache: nothing is called, nothing charged; the ledger books the
    /// answer at zero under tier `cache` with what the baseline would have cost.
    pub(super) fn replay(mut self, found: Found) -> Result<Outcome, GatewayError> {
        let c = found.cached().clone();
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let created = now_s();
        let mut response = c.response.clone();
        response.id = id.clone();
        response.created = created;
        if !c.citations.is_empty() {
            self.citations = c.citations.clone();
            if let Ok(v) = serde_json::to_value(&c.citations) {
                response.extra.insert("citations".into(), v);
            }
        }
        let u = response.usage.unwrap_or_default();
        self.usage = Some(u);
        let cost = RequestCost {
            actual: 0.0,
            baseline: baseline_cost(&self.st.table, &u),
        };
        if let Some(k) = self.who.key() {
            // No model tokens were spent: the tpm estimate is given back.
            self.st
                .governance
                .limits
                .settle_tokens(&k.id, self.est_tokens, 0);
        }
        self.ticket.cached(CacheSummary {
            kind: found.kind(),
            similarity: found.similarity(),
            source: c.source.clone(),
        });
        self.ticket.usage(&u, cost);
        let route = self.req.model.clone();
        let key = self
            .who
            .key()
            .map(|k| k.id.clone())
            .unwrap_or_else(|| "anonymous".into());
        let m = &self.st.metrics;
        m.ledger(
            &Ledger {
                route: &route,
                model: "cache",
                tier: "cache",
                key: &key,
            },
            0.0,
            cost.baseline,
            &u,
        );
        m.cache_lookups
            .with_label_values(&[
                route.as_str(),
                if found.similarity().is_some() {
                    "hit_semantic"
                } else {
                    "hit_exact"
                },
            ])
            .inc();
        self.deployment = Some("cache".into());
        let reason = match found.similarity() {
            Some(s) => format!("cache hit: semantic (similarity {s:.3}) of {}", c.source),
            None => format!("cache hit: exact of {}", c.source),
        };
        let meta = ServedMeta {
            deployment: "cache".into(),
            provider: "cache",
            attempts: 0,
            fallback_from: None,
            tier: "cache".into(),
            reason,
            escalations: 0,
            confidence: None,
            citations: self.citations.iter().map(|c| c.chunk_id.clone()).collect(),
            cache: Some("hit"),
            rollout: self.rollout.as_ref().map(|a| a.arm.as_str()),
        };
        let stream = self.req.is_stream();
        self.finish(200, None);
        if stream {
            let chunks: Vec<Result<ChatChunk, GatewayError>> =
                c.chunks(&id, created).into_iter().map(Ok).collect();
            return Ok(Outcome::Stream(AnswerStream::new(
                meta,
                Box::pin(stream::iter(chunks)),
            )));
        }
        Ok(Outcome::Answer(Answer {
            response,
            meta,
            cost,
        }))
    }

    /// Caches a miss's complete answer (with the passages it cited).
    pub(super) fn remember(&mut self, response: &ChatResponse) {
        let CacheState::Miss(probe, ttl) = &self.cache else {
            return;
        };
        let ok = response
            .choices
            .first()
            .is_some_and(|c| c.finish_reason.as_deref() != Some("error"));
        if !ok {
            return;
        }
        let cached = Cached {
            response: response.clone(),
            citations: self.citations.clone(),
            source: self.request_id.clone(),
        };
        if let Some(c) = self.st.shared_cache.clone() {
            // Written off the answer's path; a failed write only loses the entry.
            let (p, entry, ttl) = ((**probe).clone(), cached.clone(), *ttl);
            let write = move || {
                if let Err(e) = c.insert(&p, &entry, ttl) {
                    tracing::warn!(error = %e, "shared cache write failed");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => drop(h.spawn_blocking(write)),
                Err(_) => write(),
            }
        }
        self.st.cache.insert(probe, cached, *ttl);
    }
}

/// A stream's answer as it goes by, to cache once it ends (not a stream of tool calls or
/// logprobs: those are cached from whole answers only).
#[derive(Default)]
pub(super) struct StreamCapture {
    text: String,
    finish: Option<String>,
    usage: Option<Usage>,
    model: String,
    uncacheable: bool,
}

impl StreamCapture {
    pub(super) fn chunk(&mut self, c: &ChatChunk) {
        if self.model.is_empty() {
            self.model = c.model.clone();
        }
        for ch in &c.choices {
            if let Some(t) = &ch.delta.content {
                self.text.push_str(t);
            }
            if ch.delta.tool_calls.is_some() || ch.logprobs.is_some() || ch.index > 0 {
                self.uncacheable = true;
            }
            if let Some(f) = &ch.finish_reason {
                self.finish = Some(f.clone());
            }
        }
        if c.usage.is_some() {
            self.usage = c.usage;
        }
    }

    pub(super) fn response(self) -> Option<ChatResponse> {
        if self.uncacheable || self.finish.is_none() {
            return None;
        }
        Some(ChatResponse::assistant(
            String::new(),
            0,
            self.model,
            self.text,
            None,
            self.finish,
            self.usage,
        ))
    }
}
