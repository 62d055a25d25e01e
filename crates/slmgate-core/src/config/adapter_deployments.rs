//! Each LoRA adapter of a local model is served as a deployment of its own, `x:legal`, on the
//! base model's engine (one copy of the weights). The expansion happens before validation, so
//! routes, aliases, tiers, rules, domains, key model lists, prices and residency treat
//! `x:legal` like any `[models.*]` entry.

use std::collections::BTreeMap;

use super::adapters::AdapterOf;
use super::checks::{bad, Invalid};
use super::env::{expand_home, resolve};
use super::types::{Config, ModelConfig};

/// The deployment name of `base`'s adapter `adapter`.
fn deployment_name(base: &str, adapter: &str) -> String {
    format!("{base}:{adapter}")
}

impl Config {
    /// Resolves `${VAR}` and `~/` in adapter paths and adds a deployment `base:adapter` for
    /// every adapter of every local model.
    pub(crate) fn expand_adapters(&mut self) -> Result<(), Invalid> {
        let mut added: BTreeMap<String, ModelConfig> = BTreeMap::new();
        for (base, m) in self.models.iter_mut() {
            let ModelConfig::Local(l) = m else { continue };
            if l.adapter_of.is_some() {
                continue;
            }
            for (name, a) in l.adapters.iter_mut() {
                let field = format!("models.{base}.adapters.{name}");
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !ok {
                    return Err(bad(
                        field,
                        "adapter names may use letters, digits and - _ . (at most 64)",
                    ));
                }
                resolve(&format!("{field}.path"), &mut a.path)?;
                a.path = expand_home(&a.path);
                if !std::path::Path::new(&a.path).is_file() {
                    return Err(bad(
                        format!("{field}.path"),
                        format!("no file at {}; point it at a LoRA adapter GGUF", a.path),
                    ));
                }
                if !(a.scale.is_finite() && (-16.0..=16.0).contains(&a.scale)) {
                    return Err(bad(format!("{field}.scale"), "must be between -16 and 16"));
                }
            }
            for name in l.adapters.keys() {
                let mut copy = l.clone();
                copy.adapters = BTreeMap::new();
                copy.adapter_of = Some(AdapterOf {
                    base: base.clone(),
                    adapter: name.clone(),
                });
                added.insert(deployment_name(base, name), ModelConfig::Local(copy));
            }
        }
        for (name, m) in added {
            if self.models.contains_key(&name) {
                return Err(bad(
                    format!("models.{name}"),
                    "this name is also an adapter's deployment (base:adapter); rename one of them",
                ));
            }
            self.models.insert(name, m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ModelConfig};

    fn cfg(adapters: &str) -> Result<Config, String> {
        let dir = std::env::temp_dir().join(format!("slmgate-adapters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("m.gguf");
        let lora = dir.join("legal.gguf");
        std::fs::write(&model, b"GGUF").unwrap();
        std::fs::write(&lora, b"GGUF").unwrap();
        let text = format!(
            r#"
[models.m]
type = "local"
path = "{}"
adapters = {}
[routes.legal]
tiers = [{{ name = "local", models = ["m:legal"] }}]
"#,
            model.display(),
            adapters.replace("LORA", &lora.display().to_string())
        );
        Config::from_toml(&text, "test").map_err(|e| e.to_string())
    }

    #[test]
    fn an_adapter_is_a_deployment_on_its_base() {
        let c = cfg(r#"{ legal = "LORA" }"#).unwrap();
        let Some(ModelConfig::Local(l)) = c.models.get("m:legal") else {
            panic!("no m:legal deployment");
        };
        let of = l.adapter_of.as_ref().unwrap();
        assert_eq!((of.base.as_str(), of.adapter.as_str()), ("m", "legal"));
        assert!(l.adapters.is_empty());
        let Some(ModelConfig::Local(base)) = c.models.get("m") else {
            panic!()
        };
        assert_eq!(base.adapters["legal"].scale, 1.0);
        let c = cfg(r#"{ legal = { path = "LORA", scale = 0.5 } }"#).unwrap();
        let Some(ModelConfig::Local(base)) = c.models.get("m") else {
            panic!()
        };
        assert_eq!(base.adapters["legal"].scale, 0.5);
    }

    #[test]
    fn bad_adapters_name_the_field() {
        let e = cfg(r#"{ legal = "/nonexistent/x.gguf" }"#).unwrap_err();
        assert!(e.contains("models.m.adapters.legal.path"), "{e}");
        let e = cfg(r#"{ legal = { path = "LORA", scale = 99.0 } }"#).unwrap_err();
        assert!(e.contains("models.m.adapters.legal.scale"), "{e}");
        let e = cfg(r#"{ legal = { path = "LORA", rank = 8 } }"#).unwrap_err();
        assert!(e.contains("rank"), "{e}");
        let e = cfg(r#"{ "le:gal" = "LORA" }"#).unwrap_err();
        assert!(e.contains("adapter names"), "{e}");
    }
}
