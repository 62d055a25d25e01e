//! `slmgate route explain`: which plan a sample request gets, and why.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use slmgate_core::config::Config;
use slmgate_core::exchange::GatewayError;
use slmgate_core::ml::{embed_one, RouterModel};
use slmgate_core::route::{plan, RequestFacts, RouteTable, RouterVerdict};
use slmgate_core::wire::openai::ChatRequest;
use slmgate_engine::SentenceEmbedder;

#[derive(Subcommand)]
pub enum RouteCmd {
    /// Print the plan (tiers, rule, router score, cascade, reasons) for a request body.
    Explain {
        /// A chat-completions request body (JSON).
        #[arg(long)]
        request: PathBuf,
        /// Tags as the `x-slmgate-tags` header would carry them: k=v,k=v.
        #[arg(long)]
        tags: Option<String>,
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub fn run(cmd: RouteCmd) -> anyhow::Result<()> {
    let RouteCmd::Explain {
        request,
        tags,
        config,
    } = cmd;
    let cfg = crate::load(config.as_ref())?;
    let text = std::fs::read_to_string(&request)
        .with_context(|| format!("reading {}", request.display()))?;
    let req: ChatRequest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a chat-completions request", request.display()))?;
    let header_tags: Vec<&str> = tags.as_deref().into_iter().collect();
    let facts = RequestFacts::of(&req, &header_tags);
    let verdict = verdict(&cfg, &req, &facts)?;
    println!(
        "request: model {}, ~{} prompt tokens, tags {:?}",
        req.model, facts.prompt_tokens, facts.tags
    );
    let domain = domain_verdict(&cfg, &req)?;
    let table = RouteTable::compile(&cfg);
    match plan(&table, &req.model, &facts, verdict, domain) {
        Ok(p) => {
            println!("{}", serde_json::to_string_pretty(&p.explain(&table))?);
            println!("x-slmgate-route-reason: {}", p.reason_header());
        }
        Err(e) => {
            let r = GatewayError::Plan(e).reply();
            println!("refused: HTTP {} {}: {}", r.status, r.code, r.message);
        }
    }
    Ok(())
}

fn verdict(
    cfg: &Config,
    req: &ChatRequest,
    facts: &RequestFacts,
) -> anyhow::Result<Option<RouterVerdict>> {
    let Some(rc) = cfg.routes.get(&req.model).and_then(|r| r.router.as_ref()) else {
        return Ok(None);
    };
    let Some(text) = req.last_user_text() else {
        return Ok(None);
    };
    let m = RouterModel::load(Path::new(&rc.path))?;
    let e = cfg
        .embeddings
        .as_ref()
        .context("the router needs [embeddings]")?;
    let emb = SentenceEmbedder::load(Path::new(&e.path))?;
    let v = embed_one(&emb, m.representation, &text)?;
    let x = slmgate_core::route::router::request_features(&m, &v, &text, req, facts);
    Ok(Some(RouterVerdict {
        score: m.score(&x),
        threshold: rc.threshold.unwrap_or(m.threshold),
    }))
}

fn domain_verdict(
    cfg: &Config,
    req: &ChatRequest,
) -> anyhow::Result<Option<slmgate_core::route::domain::DomainVerdict>> {
    let Some(d) = cfg.routes.get(&req.model).and_then(|r| r.domains.as_ref()) else {
        return Ok(None);
    };
    let Some(text) = req.last_user_text() else {
        return Ok(None);
    };
    let e = cfg
        .embeddings
        .as_ref()
        .context("domain routing needs [embeddings]")?;
    let emb = SentenceEmbedder::load(Path::new(&e.path))?;
    let c = slmgate_core::route::domain::DomainClassifier::build(&emb, d)?;
    Ok(c.classify(&emb, &text)?)
}
