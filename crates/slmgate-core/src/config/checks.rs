//! Small checks shared by the config validators.

use super::govern::PII_TYPES;

/// A config error: the field and what is wrong with it.
pub(crate) type Invalid = (String, String);

pub(crate) fn bad(field: impl Into<String>, msg: impl Into<String>) -> Invalid {
    (field.into(), msg.into())
}

pub(crate) fn check_pii_types(field: &str, types: &[String]) -> Result<(), Invalid> {
    match types
        .iter()
        .find(|t| t.as_str() != "*" && !PII_TYPES.contains(&t.as_str()))
    {
        Some(t) => Err(bad(
            field,
            format!("unknown PII type {t:?}; known: {}", PII_TYPES.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Names of models, aliases and routes.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            "names may use letters, digits and - _ . : / (at most 128)",
        ))
    }
}
