//! A scripted deployment, in test builds only: each call takes the next reply of its script
//! (then the last one, forever), and every request it received is kept. The in-process tests
//! of the executor, the tiers, the cascade and the exchange run on it without model files.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::error::{FailureKind, ProviderError};
use super::ChatStream;
use crate::wire::openai::{
    completion_id, now_secs, ChatChunk, ChatRequest, ChatResponse, Delta, Usage,
};

/// What one call does.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answers with these tokens, each with its log-probability.
    Tokens(Vec<(String, f32)>),
    /// Fails before any output, like this.
    Fail(FailureKind),
    /// Streams these tokens, then breaks off like this (complete calls fail at once).
    BreakAfter(Vec<(String, f32)>, FailureKind),
    /// Never answers (the caller gives up or goes away).
    Hang,
}

impl Reply {
    /// `n` tokens `"w"` at `logprob` each.
    pub fn words(n: usize, logprob: f32) -> Self {
        Reply::Tokens((0..n).map(|i| (format!("w{i} "), logprob)).collect())
    }

    /// One answer text, as one token of log-probability 0.
    pub fn text(t: &str) -> Self {
        Reply::Tokens(vec![(t.to_string(), 0.0)])
    }
}

pub struct ScriptedProvider {
    pub name: String,
    script: Mutex<VecDeque<Reply>>,
    last: Mutex<Reply>,
    /// Prompt tokens every answer reports.
    pub prompt_tokens: u32,
    pub calls: AtomicUsize,
    /// Every request received, in order.
    pub seen: Mutex<Vec<ChatRequest>>,
}

impl ScriptedProvider {
    pub fn new(name: &str, script: Vec<Reply>) -> Self {
        let last = script.last().cloned().unwrap_or_else(|| Reply::text("ok"));
        Self {
            name: name.to_string(),
            script: Mutex::new(script.into()),
            last: Mutex::new(last),
            prompt_tokens: 10,
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn next(&self, req: &ChatRequest) -> Reply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.clone());
        let mut script = self.script.lock().unwrap_or_else(|p| p.into_inner());
        match script.pop_front() {
            Some(r) => {
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = r.clone();
                r
            }
            None => self.last.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn usage(&self, completion: usize) -> Usage {
        Usage::new(self.prompt_tokens, completion as u32)
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        match self.next(req) {
            Reply::Tokens(tokens) => {
                let text: String = tokens.iter().map(|(t, _)| t.as_str()).collect();
                let logprobs = req
                    .logprobs
                    .unwrap_or(false)
                    .then(|| json!({"content": tokens.iter().map(logprob).collect::<Vec<_>>()}));
                Ok(ChatResponse::assistant(
                    completion_id(),
                    now_secs(),
                    self.name.clone(),
                    text,
                    logprobs,
                    Some("stop".into()),
                    Some(self.usage(tokens.len())),
                ))
            }
            Reply::Fail(kind) | Reply::BreakAfter(_, kind) => Err(failure(kind)),
            Reply::Hang => std::future::pending().await,
        }
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let (tokens, broken) = match self.next(req) {
            Reply::Tokens(t) => (t, None),
            Reply::BreakAfter(t, kind) => (t, Some(kind)),
            Reply::Fail(kind) => return Err(failure(kind)),
            Reply::Hang => std::future::pending().await,
        };
        let (id, created, model) = (completion_id(), now_secs(), self.name.clone());
        let with_logprobs = req.logprobs.unwrap_or(false);
        let usage = self.usage(tokens.len());
        let mut chunks = vec![Ok(ChatChunk::new(&id, created, &model).delta(
            Delta::role("assistant"),
            None,
            None,
        ))];
        for t in &tokens {
            let lp = with_logprobs.then(|| json!({"content": [logprob(t)]}));
            chunks.push(Ok(ChatChunk::new(&id, created, &model).delta(
                Delta::content(t.0.clone()),
                lp,
                None,
            )));
        }
        match broken {
            Some(kind) => chunks.push(Err(failure(kind))),
            None => {
                chunks.push(Ok(ChatChunk::new(&id, created, &model).delta(
                    Delta::default(),
                    None,
                    Some("stop"),
                )));
                let mut u = ChatChunk::new(&id, created, &model);
                u.usage = Some(usage);
                chunks.push(Ok(u));
            }
        }
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

fn failure(kind: FailureKind) -> ProviderError {
    match kind {
        FailureKind::BadRequest => {
            ProviderError::rejected("invalid_value", Some("messages"), "scripted rejection")
        }
        kind => ProviderError::new(kind, "scripted failure"),
    }
}

/// OpenAI's logprob item: the token, and itself plus a runner-up one nat below as the top
/// alternatives.
fn logprob((token, lp): &(String, f32)) -> Value {
    json!({
        "token": token,
        "logprob": lp,
        "bytes": token.as_bytes(),
        "top_logprobs": [
            {"token": token, "logprob": lp, "bytes": token.as_bytes()},
            {"token": "?", "logprob": lp - 1.0, "bytes": [63]},
        ],
    })
}
