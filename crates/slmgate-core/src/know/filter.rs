//! Attribute filters of a vector store search, as OpenAI defines them: a comparison
//! `{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key", "value"}` or a compound
//! `{"type": "and"|"or", "filters": [...]}` over a file's attributes.

use serde_json::Value;

use super::KnowError;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare { op: Op, key: String, value: Value },
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

fn bad(m: impl Into<String>) -> KnowError {
    KnowError::Invalid(format!("filters: {}", m.into()))
}

impl Filter {
    pub fn parse(v: &Value) -> Result<Self, KnowError> {
        Self::parse_at(v, 0)
    }

    fn parse_at(v: &Value, depth: usize) -> Result<Self, KnowError> {
        if depth > 16 {
            return Err(bad("nested more than 16 deep"));
        }
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("each filter needs a string `type`"))?;
        let op = match ty {
            "and" | "or" => {
                let list = v
                    .get("filters")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad(format!("`{ty}` needs a `filters` array")))?;
                let inner = list
                    .iter()
                    .map(|f| Self::parse_at(f, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if ty == "and" {
                    Filter::And(inner)
                } else {
                    Filter::Or(inner)
                });
            }
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "nin" => Op::Nin,
            other => {
                return Err(bad(format!(
                    "unknown type {other:?}; use eq, ne, gt, gte, lt, lte, in, nin, and, or"
                )))
            }
        };
        let key = v
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("`{ty}` needs a string `key`")))?;
        let value = v
            .get("value")
            .cloned()
            .ok_or_else(|| bad(format!("`{ty}` needs a `value`")))?;
        let list = matches!(op, Op::In | Op::Nin);
        if list != value.is_array() {
            return Err(bad(format!(
                "`{ty}` compares with {}",
                if list {
                    "an array"
                } else {
                    "a string, number or boolean"
                }
            )));
        }
        Ok(Filter::Compare {
            op,
            key: key.to_string(),
            value,
        })
    }

    /// Whether a file with these attributes passes (a missing key passes only `ne`/`nin`).
    pub fn holds(&self, attrs: &Value) -> bool {
        match self {
            Filter::And(f) => f.iter().all(|f| f.holds(attrs)),
            Filter::Or(f) => f.iter().any(|f| f.holds(attrs)),
            Filter::Compare { op, key, value } => {
                let Some(a) = attrs.get(key) else {
                    return matches!(op, Op::Ne | Op::Nin);
                };
                match op {
                    Op::Eq => same(a, value),
                    Op::Ne => !same(a, value),
                    Op::In => value
                        .as_array()
                        .is_some_and(|l| l.iter().any(|v| same(a, v))),
                    Op::Nin => !value
                        .as_array()
                        .is_some_and(|l| l.iter().any(|v| same(a, v))),
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte => match order(a, value) {
                        Some(o) => match op {
                            Op::Gt => o.is_gt(),
                            Op::Gte => o.is_ge(),
                            Op::Lt => o.is_lt(),
                            _ => o.is_le(),
                        },
                        None => false,
                    },
                }
            }
        }
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparisons_and_compounds() {
        let attrs = json!({"lang": "en", "year": 2024, "public": true});
        let f = |v: Value| Filter::parse(&v).unwrap().holds(&attrs);
        assert!(f(json!({"type": "eq", "key": "lang", "value": "en"})));
        assert!(!f(json!({"type": "eq", "key": "lang", "value": "de"})));
        assert!(f(json!({"type": "gte", "key": "year", "value": 2024.0})));
        assert!(!f(json!({"type": "lt", "key": "year", "value": 2000})));
        assert!(f(json!({"type": "ne", "key": "missing", "value": 1})));
        assert!(!f(json!({"type": "eq", "key": "missing", "value": 1})));
        assert!(f(
            json!({"type": "in", "key": "lang", "value": ["de", "en"]})
        ));
        assert!(f(json!({"type": "and", "filters": [
            {"type": "eq", "key": "public", "value": true},
            {"type": "or", "filters": [
                {"type": "eq", "key": "lang", "value": "fr"},
                {"type": "gt", "key": "year", "value": 2020}]}]})));
    }

    #[test]
    fn malformed_filters_say_what_is_wrong() {
        for (v, says) in [
            (json!({"key": "a", "value": 1}), "type"),
            (
                json!({"type": "like", "key": "a", "value": 1}),
                "unknown type",
            ),
            (json!({"type": "eq", "value": 1}), "key"),
            (json!({"type": "in", "key": "a", "value": 1}), "array"),
            (json!({"type": "and"}), "filters"),
        ] {
            let e = Filter::parse(&v).unwrap_err().to_string();
            assert!(e.contains(says), "{v}: {e}");
        }
    }
}
