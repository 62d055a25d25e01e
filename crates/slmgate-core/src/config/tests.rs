use super::*;

fn model_file() -> String {
    // Any existing file passes the `path` check; the test binary itself is one.
    std::env::current_exe().unwrap().display().to_string()
}

fn parse(extra: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "[models.m]\ntype = \"local\"\npath = \"{}\"\n{extra}",
        model_file()
    );
    Config::from_toml(&text, "test.toml")
}

#[test]
fn defaults_apply() {
    let c = parse("").unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    match &c.models["m"] {
        ModelConfig::Local(l) => {
            assert_eq!(
                (l.context, l.parallel, l.batch, l.queue),
                (4096, 4, 512, 64)
            );
        }
        _ => panic!("local"),
    }
}

#[test]
fn unknown_key_in_a_model_is_named() {
    let e = parse("thredas = 2\n").unwrap_err().to_string();
    assert!(e.contains("models.m") && e.contains("thredas"), "{e}");
}

#[test]
fn unknown_top_level_key_is_named() {
    let e = parse("[sever]\nlisten = \"x\"\n").unwrap_err().to_string();
    assert!(e.contains("sever"), "{e}");
}

#[test]
fn remote_defaults_and_env() {
    std::env::set_var("SLMGATE_TEST_KEY", "k-1");
    let c = parse("[models.r]\ntype = \"remote\"\nwire = \"anthropic\"\nbase_url = \"https://api.anthropic.com\"\nmodel = \"claude\"\napi_key = \"${SLMGATE_TEST_KEY}\"\n").unwrap();
    match &c.models["r"] {
        ModelConfig::Remote(r) => {
            assert_eq!(r.api_key.as_deref(), Some("k-1"));
            assert_eq!(r.wire, Wire::Anthropic);
            assert_eq!(r.max_retries, 2);
        }
        _ => panic!("remote"),
    }
}

#[test]
fn alias_rules() {
    assert!(parse("[aliases]\nauto = [\"m\"]\n").is_ok());
    let e = parse("[aliases]\nm = [\"m\"]\n").unwrap_err().to_string();
    assert!(e.contains("aliases.m"), "{e}");
    let e = parse("[aliases]\nauto = []\n").unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn timeouts_must_be_consistent() {
    let e = parse("[models.r]\ntype = \"remote\"\nwire = \"openai\"\nbase_url = \"http://x\"\nmodel = \"g\"\nfirst_byte_timeout_ms = 10\ntotal_timeout_ms = 5\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("first_byte_timeout_ms"), "{e}");
}

#[test]
fn embedded_default_parses_when_models_exist() {
    // The embedded file must at least be valid TOML of the right shape.
    let r = Config::embedded_default();
    if let Err(e) = &r {
        let msg = e.to_string();
        assert!(
            msg.contains("path"),
            "only a missing model file may fail here: {msg}"
        );
    }
}

#[test]
fn a_postgres_ca_file_needs_a_verifying_sslmode() {
    let store = |url: &str, ca: &str| {
        parse(&format!(
            "[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\n{ca}"
        ))
    };
    let e = store("postgres://u@h/db", "ca_file = \"/etc/ca.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("storage.ca_file") && e.contains("sslmode=verify-full"),
        "{e}"
    );
    let c = store(
        "postgres://u@h/db?sslmode=verify-full",
        "ca_file = \"/etc/ca.pem\"\n",
    )
    .unwrap();
    assert_eq!(c.storage.ca_file.as_deref(), Some("/etc/ca.pem"));
    assert!(store("postgres://u@h/db?sslmode=disable", "").is_ok());
    let e = store("mysql://u@h/db", "").unwrap_err().to_string();
    assert!(e.contains("storage.url"), "{e}");
}

#[test]
fn a_redis_ca_file_needs_rediss() {
    let e = parse("[cluster]\nredis_url = \"redis://h:6379\"\nredis_ca_file = \"/etc/ca.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cluster.redis_ca_file") && e.contains("rediss://"),
        "{e}"
    );
    let c = parse("[cluster]\nredis_url = \"rediss://h:6380\"\nredis_ca_file = \"/etc/ca.pem\"\n")
        .unwrap();
    assert_eq!(c.cluster.redis_ca_file.as_deref(), Some("/etc/ca.pem"));
}
