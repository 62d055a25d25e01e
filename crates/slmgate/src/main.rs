//! `slmgate`: the command line. Errors reach the user through `anyhow` here only.

mod cascade_cmd;
mod cascade_signals;
mod distill_cmd;
mod govern_cmd;
mod guard_cmd;
mod plan_cmd;
mod rag_cmd;
mod report_cmd;
mod retrain;
mod rollout_cmd;
mod route_cmd;
mod router_cmd;
mod router_publish;
mod shadow_cmd;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slmgate_core::config::Config;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "slmgate",
    version,
    about = "SLM-first hybrid LLM gateway: small models in-process, remote LLMs as escalation tiers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI- and Anthropic-compatible HTTP API.
    Serve {
        /// Config file (default: the embedded slmgate.toml).
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Override server.listen (e.g. 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Log as JSON lines.
        #[arg(long)]
        json_logs: bool,
    },
    /// Validate a config file and print what it defines.
    Check {
        #[arg(long, short, env = "SLMGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the embedded default config.
    DefaultConfig,
    /// The learned router: train, cross-validate, calibrate.
    #[command(subcommand)]
    Router(router_cmd::RouterCmd),
    /// Routing plans: explain which tiers a request gets and why.
    #[command(subcommand)]
    Route(route_cmd::RouteCmd),
    /// The confidence cascade: evaluate its signals on labelled responses.
    #[command(subcommand)]
    Cascade(cascade_cmd::CascadeCmd),
    /// Virtual API keys: create, list, revoke.
    #[command(subcommand)]
    Keys(govern_cmd::KeysCmd),
    /// The hash-chained audit log: verify, export, forget a data subject.
    #[command(subcommand)]
    Audit(govern_cmd::AuditCmd),
    /// The human-review queue: export verdicts as router training data.
    #[command(subcommand)]
    Review(govern_cmd::ReviewCmd),
    /// The injection guard: measure it on a labelled set.
    #[command(subcommand)]
    Guard(guard_cmd::GuardCmd),
    /// The PII detector: measure it on a labelled corpus.
    #[command(subcommand)]
    Pii(govern_cmd::PiiCmd),
    /// Cost, savings, escalation, latency and quality from the audit log.
    Report(report_cmd::ReportArgs),
    /// Which deployment pattern fits a workload, and what it costs a month.
    Plan(plan_cmd::PlanArgs),
    /// Requantize a GGUF model with llama.cpp's quantizer (e.g. a Q8_0 copy of a Q4_1 file).
    Quantize {
        /// The GGUF file to read.
        input: PathBuf,
        /// The GGUF file to write.
        output: PathBuf,
        /// Output type: f16, bf16, q8_0, q6_k, q5_k_m, q4_k_m, q4_1 or q4_0.
        #[arg(long = "type", default_value = "q8_0")]
        ftype: String,
        /// Accept an input that is already quantized (its values are dequantized first).
        #[arg(long)]
        allow_requantize: bool,
        /// Threads (default: the number of cores).
        #[arg(long)]
        threads: Option<i32>,
    },
    /// RAG collections: ingest documents, list, search, delete.
    #[command(subcommand)]
    Rag(rag_cmd::RagCmd),
    /// Shadow mode: how shadow models agreed with the routes they shadowed.
    #[command(subcommand)]
    Shadow(shadow_cmd::ShadowCmd),
    /// Distillation: export a teacher's answers as fine-tuning data.
    #[command(subcommand)]
    Distill(distill_cmd::DistillCmd),
    /// A/B rollouts: set a route's candidate and share, roll back, show.
    #[command(subcommand)]
    Rollout(rollout_cmd::RolloutCmd),
}

/// The config file given, or the embedded default.
pub(crate) fn load(config: Option<&PathBuf>) -> anyhow::Result<Config> {
    let cfg = match config {
        Some(p) => Config::from_file(p),
        None => Config::embedded_default(),
    };
    cfg.map_err(anyhow::Error::from)
}

/// Loads the local model `name` of the config (the first local one when `None`).
pub(crate) fn local_model(
    cfg: &Config,
    name: Option<&str>,
) -> anyhow::Result<(String, slmgate_core::providers::local::LocalProvider)> {
    let (n, local) = cfg
        .models
        .iter()
        .find_map(|(n, m)| match m {
            slmgate_core::config::ModelConfig::Local(l) if name.is_none_or(|w| w == n) => {
                Some((n.clone(), l.clone()))
            }
            _ => None,
        })
        .with_context(|| format!("no local model {} in the config", name.unwrap_or("(any)")))?;
    let draft = local.draft.as_ref().and_then(|d| match cfg.models.get(d) {
        Some(slmgate_core::config::ModelConfig::Local(dl)) => Some(dl.path_buf()),
        _ => None,
    });
    let provider = slmgate_core::providers::local::LocalProvider::load(&n, &local, draft)
        .map_err(anyhow::Error::msg)?;
    Ok((n, provider))
}

/// Logs to stderr (`SLMGATE_LOG` filter), and traces over OTLP when `[telemetry]` sets an
/// endpoint; returns the trace pipeline to flush at exit.
fn init_logs(
    json: bool,
    telemetry: &slmgate_core::config::TelemetryConfig,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use slmgate_core::observe::traces;
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let logs = fmt.with_filter(filter.and(filter_fn(|m| !traces::is_trace_span(m))));
    let provider = traces::provider(telemetry).map_err(anyhow::Error::msg)?;
    // Without an endpoint there is no trace layer at all: spans nobody exports cost nothing.
    match provider.as_ref().map(traces::layer) {
        Some(otel) => tracing_subscriber::registry().with(logs).with(otel).init(),
        None => tracing_subscriber::registry().with(logs).init(),
    }
    Ok(provider)
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            json_logs,
        } => {
            let mut cfg = load(config.as_ref())?;
            let traces = init_logs(json_logs, &cfg.telemetry)?;
            if let Some(e) = cfg.telemetry.endpoint() {
                tracing::info!(endpoint = %e, "exporting traces over OTLP/HTTP");
            }
            if let Some(l) = listen {
                cfg.server.listen = l;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            let served = rt.block_on(slmgate_core::server::serve(cfg));
            if let Some(p) = traces {
                // Flushes the spans still batched.
                let _ = p.shutdown();
            }
            served?;
            Ok(())
        }
        Command::Check { config } => {
            let cfg = load(config.as_ref())?;
            println!(
                "config ok: {} models, {} aliases, {} routes",
                cfg.models.len(),
                cfg.aliases.len(),
                cfg.routes.len()
            );
            for (name, m) in &cfg.models {
                match m {
                    slmgate_core::config::ModelConfig::Local(l) => {
                        println!("  model {name}: local {}", l.path)
                    }
                    slmgate_core::config::ModelConfig::Remote(r) => {
                        println!(
                            "  model {name}: {} {} ({})",
                            r.wire.as_str(),
                            r.base_url,
                            r.model
                        )
                    }
                }
            }
            for (a, chain) in &cfg.aliases {
                println!("  alias {a}: {}", chain.join(" -> "));
            }
            for (name, r) in &cfg.routes {
                let tiers: Vec<String> = r
                    .tiers
                    .iter()
                    .map(|t| format!("{} [{}]", t.name, t.models.join(", ")))
                    .collect();
                println!(
                    "  route {name}: {} ({} rules{}{})",
                    tiers.join(" -> "),
                    r.rules.len(),
                    if r.router.is_some() { ", router" } else { "" },
                    if r.cascade.is_some() { ", cascade" } else { "" }
                );
            }
            Ok(())
        }
        Command::Router(cmd) => router_cmd::run(cmd),
        Command::Route(cmd) => route_cmd::run(cmd),
        Command::Cascade(cmd) => cascade_cmd::run(cmd),
        Command::Keys(cmd) => govern_cmd::keys(cmd),
        Command::Audit(cmd) => govern_cmd::audit(cmd),
        Command::Review(cmd) => govern_cmd::review(cmd),
        Command::Pii(cmd) => govern_cmd::pii(cmd),
        Command::Guard(cmd) => guard_cmd::run(cmd),
        Command::Report(a) => report_cmd::run(a),
        Command::Plan(a) => plan_cmd::run(a),
        Command::Rag(cmd) => rag_cmd::run(cmd),
        Command::Shadow(cmd) => shadow_cmd::run(cmd),
        Command::Distill(cmd) => distill_cmd::run(cmd),
        Command::Rollout(cmd) => rollout_cmd::run(cmd),
        Command::Quantize {
            input,
            output,
            ftype,
            allow_requantize,
            threads,
        } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, |n| n.get() as i32)
            });
            slmgate_engine::quantize(&input, &output, &ftype, allow_requantize, threads)?;
            println!("wrote {} ({ftype})", output.display());
            Ok(())
        }
        Command::DefaultConfig => {
            print!("{}", slmgate_core::config::DEFAULT_CONFIG);
            Ok(())
        }
    }
}
