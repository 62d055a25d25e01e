//! In-process tests of the exchange on scripted deployments: real governance (SQLite store,
//! audit writer, limits), real routing, no model files and no network. Each test writes a
//! config with remote models that are never called: every deployment is a
//! [`ScriptedProvider`] whose replies the test chooses.

mod admission;
mod budgets;
mod cascade;
mod durability;
mod fallback;
mod learning;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};

use super::{shadow_worker, Answer, Endpoint, Exchange, GatewayError, Inbound, Outcome};
use crate::config::{Config, ModelConfig};
use crate::govern::keys::KeySpec;
use crate::govern::{db, Principal};
use crate::providers::scripted::{Reply, ScriptedProvider};
use crate::providers::{Deployment, DeploymentId, Provider};
use crate::route::{Classifiers, Gateway};
use crate::state::{AppState, Loaded};
use crate::wire::openai::ChatRequest;

/// A remote deployment block that is never called (the harness scripts it). `extra` are
/// more TOML lines (prices, residency, cooldown).
pub(super) fn model(name: &str, extra: &str) -> String {
    format!(
        "[models.{name}]\ntype = \"remote\"\nwire = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"{name}\"\n{extra}\n"
    )
}

/// Route `auto` over two scripted deployments, each `(name, extra TOML lines)`: tier `local`
/// is the first, tier `cloud` the second; `route_extra` adds route keys (cascade, rules, ...).
pub(super) fn two_tiers(first: (&str, &str), second: (&str, &str), route_extra: &str) -> String {
    format!(
        "{}{}[routes.auto]\ntiers = [{{ name = \"local\", models = [\"{}\"] }}, {{ name = \"cloud\", models = [\"{}\"] }}]\n{route_extra}\n",
        model(first.0, first.1),
        model(second.0, second.1),
        first.0,
        second.0,
    )
}

pub(super) struct Harness {
    pub st: Arc<AppState>,
    pub dir: PathBuf,
}

impl Harness {
    /// The gateway of `config` (plus a temporary store), its deployments scripted.
    pub fn new(config: &str, scripts: Vec<(&str, Vec<Reply>)>) -> Self {
        let h = Self::loading(config);
        h.load(scripts);
        h
    }

    /// Like `new`, but the models have not loaded yet.
    pub fn loading(config: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "slmgate-exchange-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut text = format!(
            "{config}\n[storage]\npath = \"{}\"\n",
            dir.join("gw.db").display()
        );
        if !config.contains("[audit]") {
            text.push_str("[audit]\nflush_interval_ms = 1\n");
        }
        let cfg = Config::from_toml(&text, "test").expect("test config is valid");
        Self {
            st: AppState::new(cfg).expect("store opens"),
            dir,
        }
    }

    fn load(&self, scripts: Vec<(&str, Vec<Reply>)>) {
        let mut scripts: HashMap<&str, Vec<Reply>> = scripts.into_iter().collect();
        let deployments = self
            .st
            .table
            .deployments()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let cooldown = match self.st.config.models.get(&d.name) {
                    Some(ModelConfig::Remote(r)) => r.cooldown_failures,
                    _ => 0,
                };
                let script = scripts.remove(d.name.as_str()).unwrap_or_default();
                Deployment::scripted(
                    DeploymentId(i),
                    ScriptedProvider::new(&d.name, script),
                    cooldown,
                )
            })
            .collect();
        self.st.install(Loaded {
            gateway: Gateway::from_deployments(deployments, self.st.metrics.clone()),
            classifiers: Classifiers::default(),
        });
    }

    /// The scripted deployment `name`.
    pub fn provider(&self, name: &str) -> &ScriptedProvider {
        let l = self.st.loaded().expect("loaded");
        let d = l
            .gateway
            .deployments
            .iter()
            .find(|d| d.name == name)
            .expect("a deployment of that name");
        match &d.provider {
            Provider::Scripted(p) => p,
            _ => panic!("not scripted"),
        }
    }

    /// An API key with `spec`, as the auth middleware would resolve it.
    pub fn key(&self, spec: KeySpec) -> Principal {
        let (rec, _plaintext) = self.st.governance.keys.create(spec).expect("key created");
        Principal::Key(Arc::new(rec))
    }

    /// Runs one chat-completions body through an exchange.
    pub async fn chat(&self, who: &Principal, body: Value) -> Result<Outcome, GatewayError> {
        let req: ChatRequest = serde_json::from_value(body).expect("a chat request");
        let inbound = Inbound {
            request_id: format!("req-{}", uuid::Uuid::new_v4().simple()),
            endpoint: Endpoint::Chat,
            who: who.clone(),
            header_tags: Vec::new(),
            cache_off: false,
        };
        Exchange::open(&self.st, inbound, req).run().await
    }

    /// Runs one body that must come back as a whole answer.
    pub async fn answer(&self, who: &Principal, body: Value) -> Answer {
        match self.chat(who, body).await {
            Ok(Outcome::Answer(a)) => a,
            Ok(Outcome::Stream(_)) => panic!("a stream, not a whole answer"),
            Err(e) => panic!("refused: {e}"),
        }
    }

    /// Every audit entry so far (the writer is flushed and stopped: call last).
    pub fn audit(&self) -> Vec<Value> {
        self.st.governance.audit.shutdown();
        let conn = db::open(&self.dir.join("gw.db")).expect("store");
        let mut out = Vec::new();
        crate::govern::audit::export(&conn, false, 0, &mut out).expect("export");
        let v = crate::govern::audit::verify(&conn).expect("verify");
        assert!(v.ok(), "the chain verifies: {:?}", v.problems);
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json")["entry"].clone())
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.st.governance.audit.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A one-message request body.
pub(super) fn body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 32})
}

/// The answer's text: a whole answer's, or a stream's chunks joined (and the error that
/// ended it, if one did).
pub(super) async fn text(o: Outcome) -> (String, Option<GatewayError>) {
    match o {
        Outcome::Answer(a) => (
            a.response.choices[0]
                .message
                .content
                .clone()
                .unwrap_or_default(),
            None,
        ),
        Outcome::Stream(mut s) => {
            let mut out = String::new();
            while let Some(item) = s.next().await {
                match item {
                    Ok(c) => {
                        for ch in &c.choices {
                            out.push_str(ch.delta.content.as_deref().unwrap_or(""));
                        }
                    }
                    Err(e) => return (out, Some(e)),
                }
            }
            (out, None)
        }
    }
}

/// An error's status and code.
pub(super) fn status(e: &GatewayError) -> (u16, &'static str) {
    let r = e.reply();
    (r.status, r.code)
}
