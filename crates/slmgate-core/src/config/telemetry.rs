//! `[telemetry]`: OpenTelemetry traces over OTLP (off unless an endpoint is set).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL, e.g. `http://127.0.0.1:4318` (spans are POSTed to
    /// `/v1/traces` as JSON). Empty or absent: no traces.
    pub otlp_endpoint: Option<String>,
    #[serde(default = "default_service")]
    pub service_name: String,
    /// Share of requests traced (parent-based: a caller's sampled `traceparent` is followed).
    #[serde(default = "default_ratio")]
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service(),
            sample_ratio: default_ratio(),
        }
    }
}

impl TelemetryConfig {
    pub fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }
}

fn default_service() -> String {
    "slmgate".into()
}

fn default_ratio() -> f64 {
    1.0
}
