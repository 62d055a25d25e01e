//! The response cache: an exact lookup, then a semantic one, inside a hard scope.
//!
//! The scope is a digest of everything but the question: the tenant (the key's team, or the
//! key), the requested model or route, the sampling parameters, the tools, the `user` and
//! `metadata`, and every message before the last user message (the system prompt
//! included). Entries are only ever compared within one scope, so a hit cannot cross
//! tenants, models, system prompts or sampling settings, whatever the similarity. The exact
//! key adds the last user message; the semantic lookup compares its embedding with the
//! scope's entries by cosine similarity ([`ScopeIndex`]: exact up to 4,096 entries, sign
//! codes then exact scores beyond). Bounded by entry count (least recently used go
//! first) and by age.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest as _, Sha256};

use super::context::Citation;
use super::scope_index::ScopeIndex;
use super::vectors::normalise;
use crate::wire::openai::{ChatChunk, ChatRequest, ChatResponse, Delta};
use crate::wire::tools::ToolCallDelta;

pub type Digest = [u8; 32];

/// Where a request would be cached, and what its question is.
#[derive(Debug, Clone)]
pub struct Probe {
    pub scope: Digest,
    pub exact: Digest,
    /// The last user message's text (what the semantic lookup embeds).
    pub question: String,
    /// Its embedding (unit length), once computed.
    pub vector: Option<Vec<f32>>,
}

impl Probe {
    /// `None` when the request cannot be cached: its last message is not the user's (a
    /// tool result, an assistant prefill), or it asks for several choices.
    pub fn of(tenant: &str, req: &ChatRequest) -> Option<Self> {
        let last = req.messages.last()?;
        if last.role != "user" || req.n.is_some_and(|n| n > 1) {
            return None;
        }
        let question = last.content.as_ref()?.as_text()?;
        let mut v = serde_json::to_value(req).ok()?;
        let obj = v.as_object_mut()?;
        let messages = obj.remove("messages")?;
        obj.remove("stream");
        obj.remove("stream_options");
        let history = match messages {
            serde_json::Value::Array(mut m) => {
                m.pop();
                m
            }
            _ => return None,
        };
        let mut h = Sha256::new();
        h.update(tenant.as_bytes());
        h.update([0]);
        h.update(v.to_string().as_bytes());
        h.update([0]);
        h.update(serde_json::Value::Array(history).to_string().as_bytes());
        let scope: Digest = h.finalize().into();
        let mut e = Sha256::new();
        e.update(scope);
        e.update(serde_json::to_string(last).ok()?.as_bytes());
        Some(Self {
            scope,
            exact: e.finalize().into(),
            question,
            vector: None,
        })
    }
}

/// A cached answer.
#[derive(Debug, Clone)]
pub struct Cached {
    pub response: ChatResponse,
    pub citations: Vec<Citation>,
    /// The request id that produced it.
    pub source: String,
}

impl Cached {
    /// The answer as a stream: the role, the text in word-sized pieces, each tool call
    /// whole, then the finish reason and the usage.
    pub fn chunks(&self, id: &str, created: u64) -> Vec<ChatChunk> {
        let r = &self.response;
        let new = || ChatChunk::new(id, created, &r.model);
        let mut out = vec![new().delta(Delta::role("assistant"), None, None)];
        let Some(choice) = r.choices.first() else {
            return out;
        };
        if let Some(text) = choice.message.content.as_deref() {
            let mut piece = String::new();
            for (i, w) in text.split_inclusive(' ').enumerate() {
                piece.push_str(w);
                if i % 4 == 3 {
                    out.push(new().delta(Delta::content(std::mem::take(&mut piece)), None, None));
                }
            }
            if !piece.is_empty() {
                out.push(new().delta(Delta::content(piece), None, None));
            }
        }
        if let Some(calls) = &choice.message.tool_calls {
            let deltas = calls
                .iter()
                .enumerate()
                .map(|(i, c)| ToolCallDelta::whole(i as u32, c))
                .collect();
            out.push(new().delta(Delta::calls(deltas), None, None));
        }
        let finish = choice.finish_reason.as_deref().unwrap_or("stop");
        out.push(new().delta(Delta::default(), None, Some(finish)));
        if let Some(u) = r.usage {
            let mut c = new();
            c.usage = Some(u);
            out.push(c);
        }
        out
    }
}

/// How a lookup was answered.
#[derive(Debug, Clone)]
pub enum Found {
    Exact(Arc<Cached>),
    Semantic(Arc<Cached>, f32),
}

impl Found {
    pub fn cached(&self) -> &Arc<Cached> {
        match self {
            Found::Exact(c) | Found::Semantic(c, _) => c,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Found::Exact(_) => "exact",
            Found::Semantic(..) => "semantic",
        }
    }
    pub fn similarity(&self) -> Option<f32> {
        match self {
            Found::Exact(_) => None,
            Found::Semantic(_, s) => Some(*s),
        }
    }
}

struct Entry {
    scope: Digest,
    exact: Digest,
    cached: Arc<Cached>,
    expires: Instant,
}

struct Inner {
    lru: LruCache<u64, Entry>,
    exact: HashMap<Digest, u64>,
    /// The question embeddings of each scope's entries.
    scopes: HashMap<Digest, ScopeIndex>,
    next: u64,
}

impl Inner {
    fn unlink(&mut self, id: u64, e: &Entry) {
        if self.exact.get(&e.exact) == Some(&id) {
            self.exact.remove(&e.exact);
        }
        if let Some(ix) = self.scopes.get_mut(&e.scope) {
            ix.remove(id);
            if ix.is_empty() {
                self.scopes.remove(&e.scope);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(e) = self.lru.pop(&id) {
            self.unlink(id, &e);
        }
    }
}

pub struct ResponseCache {
    inner: Mutex<Inner>,
}

impl ResponseCache {
    pub fn new(max_entries: usize) -> Self {
        let cap = NonZeroUsize::new(max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::new(cap),
                exact: HashMap::new(),
                scopes: HashMap::new(),
                next: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry of exactly this request, if fresh.
    pub fn exact(&self, p: &Probe) -> Option<Found> {
        let mut g = self.lock();
        let id = *g.exact.get(&p.exact)?;
        let now = Instant::now();
        match g.lru.get(&id) {
            Some(e) if e.expires > now => Some(Found::Exact(e.cached.clone())),
            Some(_) => {
                g.remove(id);
                None
            }
            None => None,
        }
    }

    /// The most similar fresh entry of the probe's scope at or above `threshold`.
    pub fn similar(&self, p: &Probe, threshold: f32) -> Option<Found> {
        let q = p.vector.as_ref()?;
        let mut g = self.lock();
        let candidates = g.scopes.get(&p.scope)?.similar(q, threshold);
        let now = Instant::now();
        let mut best = None;
        let mut stale = Vec::new();
        for (id, s) in candidates {
            match g.lru.peek(&id) {
                Some(e) if e.expires > now => {
                    best = Some((id, s));
                    break;
                }
                Some(_) => stale.push(id),
                None => {}
            }
        }
        for id in stale {
            g.remove(id);
        }
        let (id, s) = best?;
        let e = g.lru.get(&id)?;
        Some(Found::Semantic(e.cached.clone(), s))
    }

    /// Caches an answer under the probe for `ttl`.
    pub fn insert(&self, p: &Probe, cached: Cached, ttl: Duration) {
        let mut vector = p.vector.clone();
        if let Some(v) = vector.as_mut() {
            normalise(v);
        }
        let mut g = self.lock();
        if let Some(old) = g.exact.get(&p.exact).copied() {
            g.remove(old);
        }
        let id = g.next;
        g.next += 1;
        let e = Entry {
            scope: p.scope,
            exact: p.exact,
            cached: Arc::new(cached),
            expires: Instant::now() + ttl,
        };
        if let Some((old_id, old)) = g.lru.push(id, e) {
            if old_id != id {
                g.unlink(old_id, &old);
            }
        }
        g.exact.insert(p.exact, id);
        if let Some(v) = &vector {
            g.scopes
                .entry(p.scope)
                .or_insert_with(|| ScopeIndex::new(v.len()))
                .insert(id, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: serde_json::Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn cached(text: &str) -> Cached {
        Cached {
            response: ChatResponse::assistant(
                "id".into(),
                0,
                "m".into(),
                text.into(),
                None,
                None,
                None,
            ),
            citations: Vec::new(),
            source: "req-1".into(),
        }
    }

    fn ask(model: &str, q: &str) -> ChatRequest {
        req(json!({"model": model, "temperature": 0,
                   "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}]}))
    }

    #[test]
    fn scope_separates_tenants_models_prompts_and_sampling() {
        let a = Probe::of("team:a", &ask("m", "hi")).unwrap();
        assert_eq!(
            a.scope,
            Probe::of("team:a", &ask("m", "other")).unwrap().scope
        );
        assert_ne!(
            a.exact,
            Probe::of("team:a", &ask("m", "other")).unwrap().exact
        );
        assert_ne!(a.scope, Probe::of("team:b", &ask("m", "hi")).unwrap().scope);
        assert_ne!(
            a.scope,
            Probe::of("team:a", &ask("m2", "hi")).unwrap().scope
        );
        let mut hot = ask("m", "hi");
        hot.temperature = Some(0.9);
        assert_ne!(a.scope, Probe::of("team:a", &hot).unwrap().scope);
        let mut sys = ask("m", "hi");
        sys.messages[0] = crate::wire::openai::Message::text("system", "Be long.");
        assert_ne!(a.scope, Probe::of("team:a", &sys).unwrap().scope);
        // Streaming or not is the same answer.
        let mut s = ask("m", "hi");
        s.stream = Some(true);
        assert_eq!(a.exact, Probe::of("team:a", &s).unwrap().exact);
        // Not cacheable: several choices, or a last message that is not the user's.
        let mut n = ask("m", "hi");
        n.n = Some(2);
        assert!(Probe::of("t", &n).is_none());
        let tool = req(
            json!({"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}]}),
        );
        assert!(Probe::of("t", &tool).is_none());
    }

    #[test]
    fn a_cached_answer_replays_as_the_same_text() {
        let mut c = cached("one two three four five six");
        c.response.usage = Some(crate::wire::openai::Usage::new(3, 6));
        let chunks = c.chunks("chatcmpl-x", 1);
        let text: String = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(text, "one two three four five six");
        assert!(chunks.len() >= 4);
        assert_eq!(
            chunks[0].choices[0].delta.role.as_deref(),
            Some("assistant")
        );
        assert_eq!(chunks.last().unwrap().usage.unwrap().completion_tokens, 6);
    }

    #[test]
    fn exact_semantic_ttl_and_lru() {
        let c = ResponseCache::new(2);
        let mut p = Probe::of("t", &ask("m", "How do I reset my password?")).unwrap();
        p.vector = Some(vec![1.0, 0.0]);
        c.insert(&p, cached("Use the portal."), Duration::from_secs(60));
        assert!(matches!(c.exact(&p), Some(Found::Exact(_))));
        let mut near = Probe::of("t", &ask("m", "How can I reset my password?")).unwrap();
        near.vector = Some(vec![0.96, 0.28]);
        assert!(c.exact(&near).is_none());
        let f = c.similar(&near, 0.9).unwrap();
        assert!((f.similarity().unwrap() - 0.96).abs() < 1e-3);
        assert!(c.similar(&near, 0.97).is_none());
        // Another tenant's identical question never sees it.
        let mut other = Probe::of("u", &ask("m", "How do I reset my password?")).unwrap();
        other.vector = Some(vec![1.0, 0.0]);
        assert!(c.exact(&other).is_none() && c.similar(&other, 0.0).is_none());
        // Expired entries are misses.
        let mut old = Probe::of("t", &ask("m", "old")).unwrap();
        old.vector = Some(vec![0.0, 1.0]);
        c.insert(&old, cached("x"), Duration::ZERO);
        assert!(c.exact(&old).is_none());
        // Size bound: the least recently used goes.
        let q3 = Probe::of("t", &ask("m", "three")).unwrap();
        let q4 = Probe::of("t", &ask("m", "four")).unwrap();
        c.insert(&q3, cached("3"), Duration::from_secs(60));
        assert!(c.exact(&p).is_some()); // p is now more recent than q3
        c.insert(&q4, cached("4"), Duration::from_secs(60));
        assert_eq!(c.len(), 2);
        assert!(c.exact(&q3).is_none() && c.exact(&p).is_some() && c.exact(&q4).is_some());
    }
}
