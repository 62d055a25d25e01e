//! LoRA adapters of a local model: `[models.x] adapters = { legal = "legal.gguf" }` or
//! `{ legal = { path = "legal.gguf", scale = 0.8 } }` (`adapter_deployments` turns each into
//! a deployment `x:legal`).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// One adapter: its GGUF file and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    pub path: String,
    /// Multiplies the adapter's trained scaling (`alpha / rank`); 1.0 by default.
    pub scale: f32,
}

/// The table form of an adapter.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterTable {
    path: String,
    #[serde(default = "one")]
    scale: f32,
}

fn one() -> f32 {
    1.0
}

impl<'de> Deserialize<'de> for AdapterConfig {
    /// A path string, or a table `{ path, scale }`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AdapterConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a GGUF adapter path, or a table { path = \"...\", scale = 1.0 }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AdapterConfig, E> {
                Ok(AdapterConfig {
                    path: s.to_string(),
                    scale: 1.0,
                })
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<AdapterConfig, M::Error> {
                let t = AdapterTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                Ok(AdapterConfig {
                    path: t.path,
                    scale: t.scale,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Marks a deployment expanded from a base model's `adapters`: served by the base's engine
/// with this adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterOf {
    /// The base deployment's name.
    pub base: String,
    /// The adapter's name in the base's `adapters`.
    pub adapter: String,
}
