//! Deployments: a named model behind one provider — the in-process engine or a remote wire
//! client. Enum dispatch; each provider turns a canonical [`ChatRequest`] into a
//! [`ChatResponse`] or a stream of [`ChatChunk`]s.

pub mod anthropic;
pub mod collect;
pub mod error;
pub mod gemini;
pub mod health;
pub mod http;
pub mod local;
pub mod openai;
#[cfg(test)]
pub mod scripted;
pub mod sse;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

pub use error::{FailureKind, ProviderError, Rejection};
use health::Health;

use crate::config::{ModelConfig, RemoteModelConfig, Wire};
use crate::wire::openai::{ChatChunk, ChatRequest, ChatResponse};

/// Canonical chunks as a provider streams them. A final chunk with `usage` and no choices
/// carries token counts; the API layer forwards it only when the client asked.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

pub enum Provider {
    Local(local::LocalProvider),
    OpenAi(openai::OpenAiProvider),
    Anthropic(anthropic::AnthropicProvider),
    Gemini(gemini::GeminiProvider),
    /// Test builds only: replies from a script.
    #[cfg(test)]
    Scripted(scripted::ScriptedProvider),
}

impl Provider {
    /// The model name the provider is asked for (a local model: its deployment name) and the
    /// server it runs on (`None` in-process).
    pub fn upstream(&self) -> (&str, Option<&str>) {
        match self {
            Provider::Local(l) => (&l.name, None),
            Provider::OpenAi(p) => (&p.http.cfg.model, Some(&p.http.cfg.base_url)),
            Provider::Anthropic(p) => (&p.http.cfg.model, Some(&p.http.cfg.base_url)),
            Provider::Gemini(p) => (&p.http.cfg.model, Some(&p.http.cfg.base_url)),
            #[cfg(test)]
            Provider::Scripted(p) => (&p.name, None),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Provider::Local(_) => "local",
            Provider::OpenAi(_) => "openai",
            Provider::Anthropic(_) => "anthropic",
            Provider::Gemini(_) => "gemini",
            #[cfg(test)]
            Provider::Scripted(_) => "scripted",
        }
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        match self {
            Provider::Local(p) => p.complete(req).await,
            Provider::OpenAi(p) => p.complete(req).await,
            Provider::Anthropic(p) => p.complete(req).await,
            Provider::Gemini(p) => p.complete(req).await,
            #[cfg(test)]
            Provider::Scripted(p) => p.complete(req).await,
        }
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ProviderError> {
        match self {
            Provider::Local(p) => p.stream(req),
            Provider::OpenAi(p) => p.stream(req).await,
            Provider::Anthropic(p) => p.stream(req).await,
            Provider::Gemini(p) => p.stream(req).await,
            #[cfg(test)]
            Provider::Scripted(p) => p.stream(req).await,
        }
    }
}

/// A deployment's number: its index in the gateway's list (and the route table's), in the
/// config's name order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId(pub usize);

/// A named model the gateway can call, with its health.
pub struct Deployment {
    pub id: DeploymentId,
    pub name: String,
    pub provider: Provider,
    pub health: Health,
}

impl Deployment {
    /// Builds a deployment; local models are loaded here (blocking).
    /// `draft`: the GGUF file of a local model's draft model (`[models.x] draft`).
    pub fn build(
        id: DeploymentId,
        name: &str,
        cfg: &ModelConfig,
        draft: Option<std::path::PathBuf>,
    ) -> Result<Arc<Self>, String> {
        let (provider, health) = match cfg {
            ModelConfig::Local(l) => (
                Provider::Local(local::LocalProvider::load(name, l, draft)?),
                // A local model does not "cool down": its failures are per request.
                Health::new(0, Duration::ZERO),
            ),
            ModelConfig::Remote(r) => (
                remote(r)?,
                Health::new(r.cooldown_failures, Duration::from_secs(r.cooldown_secs)),
            ),
        };
        Ok(Arc::new(Self {
            id,
            name: name.to_string(),
            provider,
            health,
        }))
    }
}

impl Deployment {
    /// The deployment `name` of `base`'s LoRA adapter `adapter`: the base's engine, that
    /// adapter on every request.
    pub fn adapter(
        id: DeploymentId,
        name: &str,
        base: &Deployment,
        adapter: &str,
    ) -> Result<Arc<Self>, String> {
        let Provider::Local(l) = &base.provider else {
            return Err(format!("`{}` is not a local model", base.name));
        };
        Ok(Arc::new(Self {
            id,
            name: name.to_string(),
            provider: Provider::Local(l.with_adapter(name, adapter)),
            health: Health::new(0, Duration::ZERO),
        }))
    }
}

#[cfg(test)]
impl Deployment {
    /// A scripted deployment (test builds only), healthy unless `cooldown_failures` say
    /// otherwise.
    pub fn scripted(
        id: DeploymentId,
        p: scripted::ScriptedProvider,
        cooldown_failures: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            name: p.name.clone(),
            provider: Provider::Scripted(p),
            health: Health::new(cooldown_failures, Duration::from_secs(30)),
        })
    }
}

fn remote(r: &RemoteModelConfig) -> Result<Provider, String> {
    let http = http::RemoteHttp::new(r.clone())?;
    Ok(match r.wire {
        Wire::Openai => Provider::OpenAi(openai::OpenAiProvider::new(http)?),
        Wire::Anthropic => Provider::Anthropic(anthropic::AnthropicProvider::new(http)?),
        Wire::Gemini => Provider::Gemini(gemini::GeminiProvider::new(http)?),
    })
}
