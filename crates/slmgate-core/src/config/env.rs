//! `${VAR}` / `${VAR:-default}` substitution and `~/` expansion in config strings.

/// Replaces `${VAR}` and `${VAR:-default}` with values from `lookup`. A referenced variable
/// that is unset and has no default is an error naming it.
pub fn interpolate(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {s:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{expr}}}` is not a valid environment reference"
            ));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                "environment variable {name} is not set; export it or write `${{{name}:-default}}`"
            ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands a leading `~/` to `$HOME/`.
/// `expand_home` as a path.
pub fn expand_home_path(s: &str) -> std::path::PathBuf {
    expand_home(s).into()
}

pub fn expand_home(s: &str) -> String {
    match (s.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => s.to_string(),
    }
}

/// Resolves one config string in place; errors carry the field path.
pub(crate) fn resolve(field: &str, value: &mut String) -> Result<(), (String, String)> {
    let lookup = |k: &str| std::env::var(k).ok();
    *value = interpolate(value, &lookup).map_err(|m| (field.to_string(), m))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "KEY" => Some("sk-123".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_defaults() {
        assert_eq!(interpolate("Bearer ${KEY}", &env).unwrap(), "Bearer sk-123");
        assert_eq!(interpolate("${NOPE:-x}/y", &env).unwrap(), "x/y");
        assert_eq!(interpolate("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate("plain", &env).unwrap(), "plain");
    }

    #[test]
    fn missing_variable_is_named() {
        let e = interpolate("${OPENAI_API_KEY}", &env).unwrap_err();
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
    }

    #[test]
    fn malformed_reference() {
        assert!(interpolate("${KEY", &env).is_err());
        assert!(interpolate("${A B}", &env).is_err());
    }
}
