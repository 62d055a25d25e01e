//! Semantic checks after parsing: values in range, references that resolve, files that exist.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use super::checks::{bad, check_name, check_pii_types, Invalid};
use super::types::{Config, LocalModelConfig, ModelConfig};

pub(crate) fn validate(cfg: &Config) -> Result<(), Invalid> {
    cfg.server.listen.parse::<SocketAddr>().map_err(|_| {
        bad(
            "server.listen",
            format!(
                "{:?} is not an address like 127.0.0.1:8080",
                cfg.server.listen
            ),
        )
    })?;
    if cfg.server.max_body_bytes < 1024 {
        return Err(bad("server.max_body_bytes", "must be at least 1024"));
    }
    if cfg.models.is_empty() {
        return Err(bad(
            "models",
            "no models configured; add a [models.NAME] table",
        ));
    }
    for (name, m) in &cfg.models {
        check_name(&format!("models.{name}"), name)?;
        let f = |k: &str| format!("models.{name}.{k}");
        match m {
            ModelConfig::Local(l) => {
                if !Path::new(&l.path).is_file() {
                    return Err(bad(
                        f("path"),
                        format!(
                            "no file at {}; run `make models` or point it at a GGUF file",
                            l.path
                        ),
                    ));
                }
                if let Some(t) = l.threads {
                    if t < 1 {
                        return Err(bad(f("threads"), "must be at least 1"));
                    }
                }
                if let Some(t) = l.threads_batch {
                    if t < 1 {
                        return Err(bad(f("threads_batch"), "must be at least 1"));
                    }
                }
                if l.context < 64 {
                    return Err(bad(f("context"), "must be at least 64 tokens"));
                }
                if l.parallel < 1 || l.parallel > 256 {
                    return Err(bad(f("parallel"), "must be between 1 and 256"));
                }
                if l.batch < l.parallel {
                    return Err(bad(
                        f("batch"),
                        format!("must be at least `parallel` ({})", l.parallel),
                    ));
                }
                if l.queue < 1 {
                    return Err(bad(f("queue"), "must be at least 1"));
                }
                check_speculation(cfg, name, l)?;
            }
            ModelConfig::Remote(r) => {
                let url = reqwest::Url::parse(&r.base_url).map_err(|e| {
                    bad(f("base_url"), format!("{:?} is not a URL: {e}", r.base_url))
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(bad(f("base_url"), "must start with http:// or https://"));
                }
                if r.model.trim().is_empty() {
                    return Err(bad(f("model"), "the upstream model name is empty"));
                }
                if r.connect_timeout_ms == 0
                    || r.first_byte_timeout_ms == 0
                    || r.total_timeout_ms == 0
                {
                    return Err(bad(f("*_timeout_ms"), "timeouts must be greater than 0"));
                }
                if r.first_byte_timeout_ms > r.total_timeout_ms {
                    return Err(bad(
                        f("first_byte_timeout_ms"),
                        "must not exceed total_timeout_ms",
                    ));
                }
                if r.max_retries > 10 {
                    return Err(bad(f("max_retries"), "at most 10"));
                }
                for (h, v) in &r.headers {
                    http::HeaderName::from_bytes(h.as_bytes())
                        .map_err(|_| bad(f(&format!("headers.{h}")), "not a valid header name"))?;
                    http::HeaderValue::from_str(v)
                        .map_err(|_| bad(f(&format!("headers.{h}")), "not a valid header value"))?;
                }
            }
        }
    }
    let mut public: HashSet<&str> = cfg.models.keys().map(|s| s.as_str()).collect();
    for (alias, chain) in &cfg.aliases {
        check_name(&format!("aliases.{alias}"), alias)?;
        if !public.insert(alias.as_str()) {
            return Err(bad(
                format!("aliases.{alias}"),
                "an alias cannot have the name of a model",
            ));
        }
        if chain.is_empty() {
            return Err(bad(
                format!("aliases.{alias}"),
                "the fallback chain is empty",
            ));
        }
        for d in chain {
            if !cfg.models.contains_key(d) {
                return Err(bad(
                    format!("aliases.{alias}"),
                    format!("unknown model {d:?}; the chain may only name [models.*] entries"),
                ));
            }
        }
    }
    for (name, r) in &cfg.routes {
        check_name(&format!("routes.{name}"), name)?;
        if !public.insert(name.as_str()) {
            return Err(bad(
                format!("routes.{name}"),
                "a route cannot have the name of a model or alias",
            ));
        }
        super::validate_routes::validate_route(cfg, name, r)?;
    }
    if let Some(e) = &cfg.embeddings {
        if public.contains(e.name.as_str()) {
            return Err(bad(
                "embeddings.name",
                "clashes with a chat model or alias name",
            ));
        }
        if !Path::new(&e.path).join("model.safetensors").is_file() {
            return Err(bad(
                "embeddings.path",
                format!("{} holds no model.safetensors; run `make models`", e.path),
            ));
        }
        if e.concurrency < 1 {
            return Err(bad("embeddings.concurrency", "must be at least 1"));
        }
    }
    validate_governance(cfg)?;
    if let Some(e) = cfg.telemetry.endpoint() {
        let ok = reqwest::Url::parse(e).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(bad(
                "telemetry.otlp_endpoint",
                format!("{e:?} is not an http(s) URL like http://127.0.0.1:4318"),
            ));
        }
    }
    if !(0.0..=1.0).contains(&cfg.telemetry.sample_ratio) {
        return Err(bad("telemetry.sample_ratio", "must be between 0 and 1"));
    }
    validate_cost(cfg)
}

fn validate_governance(cfg: &Config) -> Result<(), Invalid> {
    if cfg.auth.enabled && cfg.auth.admin_key.is_none() {
        return Err(bad(
            "auth.admin_key",
            "auth is enabled but there is no admin key to create API keys with; set admin_key = \"${SLMGATE_ADMIN_KEY}\"",
        ));
    }
    if cfg.auth.admin_key.as_ref().is_some_and(|k| k.len() < 16) {
        return Err(bad("auth.admin_key", "must be at least 16 characters"));
    }
    let srv = &cfg.server;
    if srv.max_connections == 0 {
        return Err(bad("server.max_connections", "must be at least 1"));
    }
    if srv.header_read_timeout_secs == 0 {
        return Err(bad("server.header_read_timeout_secs", "must be at least 1"));
    }
    if srv.body_read_timeout_secs == 0 {
        return Err(bad("server.body_read_timeout_secs", "must be at least 1"));
    }
    if !(8192..=16 << 20).contains(&srv.max_header_bytes) {
        return Err(bad(
            "server.max_header_bytes",
            "must be between 8192 and 16777216",
        ));
    }
    if cfg.storage.path.trim().is_empty() {
        return Err(bad("storage.path", "must name a file"));
    }
    if cfg.storage.backend == super::govern::StorageBackend::Postgres {
        match cfg.storage.url.as_deref() {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {}
            Some(_) => {
                return Err(bad(
                    "storage.url",
                    "must be a postgres:// URL (postgres://user:pass@host:5432/db)",
                ))
            }
            None => {
                return Err(bad(
                    "storage.url",
                    "backend = \"postgres\" needs a connection URL, e.g. \"${DATABASE_URL}\"",
                ))
            }
        }
        if !(1..=256).contains(&cfg.storage.pool_size) {
            return Err(bad("storage.pool_size", "must be between 1 and 256"));
        }
        let url = cfg.storage.url.as_deref().unwrap_or_default();
        let verifies = ["require", "verify-ca", "verify-full"]
            .iter()
            .any(|m| url.contains(&format!("sslmode={m}")));
        if cfg.storage.ca_file.is_some() && !verifies {
            return Err(bad(
                "storage.ca_file",
                "is used only to verify the server: add ?sslmode=verify-full to the URL",
            ));
        }
    }
    if let Some(u) = &cfg.cluster.redis_url {
        if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
            return Err(bad("cluster.redis_url", "must be a redis:// URL"));
        }
    }
    if cfg.cluster.redis_ca_file.is_some()
        && !cfg
            .cluster
            .redis_url
            .as_deref()
            .is_some_and(|u| u.starts_with("rediss://"))
    {
        return Err(bad(
            "cluster.redis_ca_file",
            "is used only for TLS: make the URL rediss://",
        ));
    }
    if cfg.cluster.redis_timeout_ms == 0 || cfg.cluster.reservation_ttl_secs == 0 {
        return Err(bad(
            "cluster",
            "redis_timeout_ms and reservation_ttl_secs must be above 0",
        ));
    }
    if cfg.audit.flush_interval_ms == 0 || cfg.audit.flush_interval_ms > 60_000 {
        return Err(bad(
            "audit.flush_interval_ms",
            "must be between 1 and 60000",
        ));
    }
    if let Some(types) = &cfg.pii.types {
        check_pii_types("pii.types", types)?;
    }
    if !(0.0..=1.0).contains(&cfg.guard.threshold) {
        return Err(bad("guard.threshold", "must be between 0 and 1"));
    }
    if !(0.0..=1.0).contains(&cfg.review.sample) {
        return Err(bad(
            "review.sample",
            "must be between 0 and 1 (a share, e.g. 0.05)",
        ));
    }
    validate_knowledge(&cfg.knowledge)?;
    validate_cache(cfg)
}

fn validate_cache(cfg: &Config) -> Result<(), Invalid> {
    let c = &cfg.cache;
    if c.max_entries == 0 {
        return Err(bad("cache.max_entries", "must be at least 1"));
    }
    if c.enabled && c.semantic && cfg.embeddings.is_none() {
        return Err(bad(
            "cache",
            "the semantic cache needs the embedding model: configure [embeddings], or set semantic = false",
        ));
    }
    let mut thresholds = vec![("cache.semantic_threshold".to_string(), c.semantic_threshold)];
    for (name, r) in &cfg.routes {
        if let Some(t) = r.cache.as_ref().and_then(|c| c.semantic_threshold) {
            thresholds.push((format!("routes.{name}.cache.semantic_threshold"), t));
        }
        let semantic = r
            .cache
            .as_ref()
            .and_then(|x| x.semantic)
            .unwrap_or(c.semantic);
        let on = r
            .cache
            .as_ref()
            .and_then(|x| x.enabled)
            .unwrap_or(c.enabled);
        if on && semantic && cfg.embeddings.is_none() {
            return Err(bad(
                format!("routes.{name}.cache"),
                "the semantic cache needs the embedding model: configure [embeddings], or set semantic = false",
            ));
        }
    }
    for (field, t) in thresholds {
        if !(0.0..=1.0).contains(&t) {
            return Err(bad(field, "must be a cosine similarity between 0 and 1"));
        }
    }
    Ok(())
}

fn validate_knowledge(k: &super::KnowledgeConfig) -> Result<(), Invalid> {
    if !(16..=4096).contains(&k.chunk_words) {
        return Err(bad("knowledge.chunk_words", "must be between 16 and 4096"));
    }
    if k.overlap_words >= k.chunk_words {
        return Err(bad(
            "knowledge.overlap_words",
            "must be smaller than chunk_words",
        ));
    }
    if k.max_file_bytes < 1024 {
        return Err(bad("knowledge.max_file_bytes", "must be at least 1024"));
    }
    if k.max_line_bytes < 256 {
        return Err(bad("knowledge.max_line_bytes", "must be at least 256"));
    }
    if k.rrf_k.is_nan() || k.rrf_k <= 0.0 {
        return Err(bad("knowledge.rrf_k", "must be a number > 0 (60 is usual)"));
    }
    if !(-1.0..=1.0).contains(&k.min_similarity) {
        return Err(bad(
            "knowledge.min_similarity",
            "must be a cosine similarity between -1 and 1",
        ));
    }
    Ok(())
}

fn validate_cost(cfg: &Config) -> Result<(), Invalid> {
    let bad = |f: String, m: &str| Err((f, m.to_string()));
    for (name, p) in &cfg.cost.prices {
        let f = |k: &str| format!("cost.prices.{name}.{k}");
        for (k, v) in [
            ("input_per_mtok", Some(p.input_per_mtok)),
            ("output_per_mtok", Some(p.output_per_mtok)),
            ("cached_input_per_mtok", p.cached_input_per_mtok),
        ] {
            if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                return bad(f(k), "must be a number >= 0 (USD per million tokens)");
            }
        }
    }
    if let Some(b) = &cfg.cost.baseline {
        if cfg.price_of(b).is_none() {
            return bad(
                "cost.baseline".into(),
                "names neither a [models.*] deployment nor a [cost.prices.*] entry",
            );
        }
    }
    for (name, m) in &cfg.models {
        let f = |k: &str| format!("models.{name}.{k}");
        if let ModelConfig::Local(l) = m {
            if let Some(h) = l.hardware_cost_per_hour {
                if !(h >= 0.0 && h.is_finite()) {
                    return bad(f("hardware_cost_per_hour"), "must be a number >= 0 (USD)");
                }
                if l.input_cost_per_mtok != 0.0 || l.output_cost_per_mtok != 0.0 {
                    return bad(
                        f("hardware_cost_per_hour"),
                        "set either hardware_cost_per_hour or input/output_cost_per_mtok, not both",
                    );
                }
                for (k, v) in [
                    ("prompt_tokens_per_sec", l.prompt_tokens_per_sec),
                    ("completion_tokens_per_sec", l.completion_tokens_per_sec),
                ] {
                    if !v.is_some_and(|v| v > 0.0 && v.is_finite()) {
                        return bad(
                            f(k),
                            "hardware_cost_per_hour needs the throughput measured on that hardware (tokens/s > 0; see docs/benchmarks.md)",
                        );
                    }
                }
            }
        }
        let p = m.price();
        if ![p.input, p.output, p.cached_input]
            .iter()
            .all(|v| *v >= 0.0 && v.is_finite())
        {
            return bad(f("input_cost_per_mtok"), "prices must be numbers >= 0");
        }
    }
    Ok(())
}

/// `draft` names another local model; the draft and lookup settings are in range. (Whether
/// the draft's vocabulary matches is checked when the models load.)
fn check_speculation(cfg: &Config, name: &str, l: &LocalModelConfig) -> Result<(), Invalid> {
    let f = |k: &str| format!("models.{name}.{k}");
    if let Some(d) = &l.draft {
        match cfg.models.get(d) {
            _ if d == name => return Err(bad(f("draft"), "a model cannot draft for itself")),
            Some(ModelConfig::Local(_)) => {}
            Some(ModelConfig::Remote(_)) => {
                return Err(bad(
                    f("draft"),
                    format!("`{d}` is a remote model; a draft model must be local"),
                ))
            }
            None => {
                return Err(bad(
                    f("draft"),
                    format!(
                        "names no configured model `{d}`; add [models.{d}] with type = \"local\""
                    ),
                ))
            }
        }
        if !(1..=64).contains(&l.draft_max) {
            return Err(bad(f("draft_max"), "must be between 1 and 64"));
        }
        if l.draft_min > l.draft_max {
            return Err(bad(f("draft_min"), "must be at most draft_max"));
        }
        if !(0.0..=1.0).contains(&l.draft_p_min) {
            return Err(bad(f("draft_p_min"), "must be between 0 and 1"));
        }
    }
    if let Some(lk) = &l.lookup {
        lk.check().map_err(|(k, m)| bad(f(k), m))?;
    }
    Ok(())
}
