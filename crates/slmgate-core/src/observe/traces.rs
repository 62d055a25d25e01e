//! OpenTelemetry traces (OTLP/HTTP, JSON), off unless `[telemetry] otlp_endpoint` is set.
//!
//! Spans for traces use the target [`TARGET`], which only the OTLP layer sees (logs stay as
//! they are): one server span per HTTP request (the caller's W3C `traceparent` is followed) and
//! one client span per model call following the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.*`, `gen_ai.response.*`,
//! `gen_ai.usage.input_tokens` / `output_tokens`, `error.type`).

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::TelemetryConfig;
use crate::providers::{Deployment, Provider, ProviderError};
use crate::wire::openai::{ChatRequest, ChatResponse, Usage};

/// The tracing target of spans exported as traces.
pub const TARGET: &str = "slmgate::trace";

/// The exporter pipeline: a batch exporter to `{endpoint}/v1/traces`. Keep the provider and
/// call `shutdown()` at exit to flush the last spans.
pub fn provider(cfg: &TelemetryConfig) -> Result<Option<SdkTracerProvider>, String> {
    let Some(endpoint) = cfg.endpoint() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            cfg.sample_ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(provider))
}

/// The tracing layer exporting [`TARGET`] spans through `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("slmgate"))
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() == TARGET
        }))
}

/// Whether spans are exported; a filter for the log layer to leave them out.
pub fn is_trace_span(m: &tracing::Metadata<'_>) -> bool {
    m.target() == TARGET
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The server span of one HTTP request, child of the caller's `traceparent` when sent.
pub fn server_span(method: &http::Method, path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(target: TARGET, "http",
        otel.name = %format!("{method} {path}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = %path,
        http.response.status_code = Empty,
        slmgate.request_id = Empty,
    );
    if !span.is_disabled() && headers.contains_key("traceparent") {
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
        span.set_parent(cx);
    }
    span
}

/// A client span for one model call (GenAI semantic conventions).
pub fn model_span(d: &Deployment, req: &ChatRequest) -> tracing::Span {
    let (model, server) = d.provider.upstream();
    let provider = match &d.provider {
        Provider::Local(_) => "slmgate.llama_cpp",
        Provider::OpenAi(_) => "openai",
        Provider::Anthropic(_) => "anthropic",
        Provider::Gemini(_) => "gcp.gemini",
        #[cfg(test)]
        Provider::Scripted(_) => "slmgate.scripted",
    };
    let kind = if server.is_some() {
        "client"
    } else {
        "internal"
    };
    tracing::info_span!(target: TARGET, "chat",
        otel.name = %format!("chat {model}"),
        otel.kind = kind,
        otel.status_code = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = provider,
        gen_ai.request.model = %model,
        gen_ai.request.max_tokens = req.max_output_tokens().map(i64::from),
        gen_ai.request.temperature = req.temperature.map(f64::from),
        gen_ai.request.top_p = req.top_p.map(f64::from),
        server.address = server,
        slmgate.deployment = %d.name,
        gen_ai.response.id = Empty,
        gen_ai.response.model = Empty,
        gen_ai.response.finish_reasons = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
    )
}

pub fn record_response(span: &tracing::Span, r: &ChatResponse) {
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.response.id", r.id.as_str());
    span.record("gen_ai.response.model", r.model.as_str());
    let reasons: Vec<&str> = r
        .choices
        .iter()
        .filter_map(|c| c.finish_reason.as_deref())
        .collect();
    span.record("gen_ai.response.finish_reasons", reasons.join(",").as_str());
    if let Some(u) = &r.usage {
        record_usage(span, u);
    }
}

pub fn record_usage(span: &tracing::Span, u: &Usage) {
    span.record("gen_ai.usage.input_tokens", u.prompt_tokens as i64);
    span.record("gen_ai.usage.output_tokens", u.completion_tokens as i64);
}

pub fn record_error(span: &tracing::Span, e: &ProviderError) {
    span.record("error.type", e.kind.as_str());
    span.record("otel.status_code", "ERROR");
}
