//! In-process PII detection: regular expressions find candidates, validators confirm them
//! (Luhn for cards, mod-97 for IBANs, address parsing for IPv6, area rules for SSNs).

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

/// Every type the detector knows (the config's vocabulary).
pub const TYPES: &[&str] = crate::config::PII_TYPES;

/// One finding: the type and the byte range in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
}

struct Pattern {
    kind: &'static str,
    re: Regex,
    valid: fn(&str) -> bool,
}

/// Every pattern in one set: one pass over the text says which patterns match at all, and
/// only those run to find where.
fn pattern_set() -> &'static RegexSet {
    static S: OnceLock<RegexSet> = OnceLock::new();
    S.get_or_init(|| {
        RegexSet::new(patterns().iter().map(|p| p.re.as_str()))
            .expect("built-in PII patterns compile as a set")
    })
}

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let p = |kind, re: &str, valid: fn(&str) -> bool| Pattern {
            kind,
            re: Regex::new(re).expect("built-in PII pattern compiles"),
            valid,
        };
        vec![
            // Secrets first: a key may contain digits that look like a phone number.
            p("secret", r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)?", any),
            p("secret", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", any),
            p("secret", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", any),
            p("secret", r"\bsk-[A-Za-z0-9_-]{20,}", any),
            p("secret", r"\bxox[abprs]-[A-Za-z0-9-]{10,}", any),
            p("secret", r"\bAIza[0-9A-Za-z_-]{35}\b", any),
            p("secret", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", any),
            p("secret", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{20,}=*", any),
            p("secret", r#"(?i)\b(?:aws_secret_access_key|secret_key|api_key|password|passwd)\s*[:=]\s*["']?[^\s"']{8,}"#, any),
            p("email", r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b", any),
            p("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", iban_ok),
            p("card", r"\b\d(?:[ -]?\d){12,18}\b", card_ok),
            p("ssn", r"\b\d{3}-\d{2}-\d{4}\b", ssn_ok),
            p("ipv6", r"(?i)(?:^|[^0-9a-z:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(?:$|[^0-9a-z:])", ipv6_ok),
            p("ipv4", r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b", ipv4_ok),
            // International: +CC then 6-14 more digits in groups.
            p("phone", r"\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,6}\b", phone_ok),
            // North America: (415) 555-0123, 415-555-0123, 415.555.0123.
            p("phone", r"(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b", any),
            // Europe, national: 030 1234567, 07700 900123, 06 12 34 56 78.
            p("phone", r"\b0[1-9]\d{1,3}[\s/-]\d{3,4}[\s-]?\d{3,4}\b|\b0[1-9](?:[\s.]\d{2}){4}\b", phone_ok),
        ]
    })
}

fn any(_: &str) -> bool {
    true
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// Luhn checksum and a known card-network prefix (a random 16-digit order number passes
/// Luhn one time in ten; the prefix rule removes most of those).
pub fn card_ok(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let prefix: u32 = d[..4].iter().fold(0, |a, x| a * 10 + x);
    let p2 = prefix / 100;
    let network = d[0] == 4
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&prefix)
        || p2 == 34
        || p2 == 37
        || prefix == 6011
        || p2 == 65
        || (644..=649).contains(&(prefix / 10))
        || p2 == 35
        || p2 == 36
        || p2 == 38
        || (300..=305).contains(&(prefix / 10))
        || p2 == 62;
    if !network {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    matches!(sum % 10, 0)
}

/// IBAN: country length table and ISO 7064 mod-97 = 1.
pub fn iban_ok(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let len = match &s[..2] {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "NL" => 18,
        "AT" | "EE" | "LU" | "LT" | "SI" | "KZ" | "XK" | "BA" => 20,
        "CH" | "HR" | "LV" | "LI" => 21,
        "BG" | "DE" | "GB" | "IE" | "ME" | "RS" | "BH" | "CR" | "GE" => 22,
        "AE" | "IL" | "TL" => 23,
        "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" => 28,
        "BR" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" => 31,
        _ => return false,
    };
    if s.len() != len {
        return false;
    }
    let rearranged = s[4..].chars().chain(s[..4].chars());
    let mut rem: u64 = 0;
    for c in rearranged {
        let v = match c {
            '0'..='9' => c as u64 - '0' as u64,
            'A'..='Z' => c as u64 - 'A' as u64 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// US SSN rules: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub fn ssn_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [area, group, serial] = parts[..] else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Loopback and "this host" addresses identify no one.
fn ipv4_ok(s: &str) -> bool {
    !s.starts_with("0.") && !s.starts_with("127.")
}

fn ipv6_ok(s: &str) -> bool {
    if s == "::1" || s == "::" {
        return false;
    }
    let hex = s.chars().filter(|c| c.is_ascii_hexdigit()).count();
    hex >= 3
        && (s.contains("::") || s.matches(':').count() == 7)
        && s.parse::<std::net::Ipv6Addr>().is_ok()
}

fn phone_ok(s: &str) -> bool {
    (8..=15).contains(&digits(s).len())
}

/// Four dotted numbers after "version", "release", "build" or "firmware" are a version.
fn looks_like_version(before: &str) -> bool {
    let from = before
        .char_indices()
        .rev()
        .nth(29)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let w = before[from..].to_ascii_lowercase();
    ["version", "release", "build", "firmware"]
        .iter()
        .any(|k| w.contains(k))
}

/// Finds PII in `text`, keeping the first of overlapping findings (patterns are ordered by
/// priority) and only the `enabled` types.
pub fn detect(text: &str, enabled: &[&'static str]) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    let hits = pattern_set().matches(text);
    if !hits.matched_any() {
        return found;
    }
    for (i, p) in patterns().iter().enumerate() {
        if !hits.matched(i) || !enabled.contains(&p.kind) {
            continue;
        }
        for caps in p.re.captures_iter(text) {
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                continue;
            };
            if !(p.valid)(m.as_str()) {
                continue;
            }
            let start = m.start();
            // Secrets end at a word character: "token=abc123." keeps its full stop.
            let end = if p.kind == "secret" {
                start
                    + m.as_str()
                        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']'])
                        .len()
            } else {
                m.end()
            };
            if p.kind == "ipv4" && looks_like_version(&text[..start]) {
                continue;
            }
            if found.iter().any(|f| start < f.end && f.start < end) {
                continue;
            }
            found.push(Finding {
                kind: p.kind,
                start,
                end,
            });
        }
    }
    found.sort_by_key(|f| f.start);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        detect(text, TYPES)
            .into_iter()
            .map(|f| (f.kind, text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn validators() {
        assert!(card_ok("4111 1111 1111 1111"));
        assert!(!card_ok("4111 1111 1111 1112"));
        assert!(!card_ok("1234 5678 9012 3452"), "no network prefix");
        assert!(iban_ok("DE89 3704 0044 0532 0130 00"));
        assert!(iban_ok("GB82WEST12345698765432"));
        assert!(!iban_ok("DE89 3704 0044 0532 0130 01"));
        assert!(ssn_ok("123-45-6789"));
        assert!(!ssn_ok("666-45-6789"));
        assert!(!ssn_ok("123-00-6789"));
    }

    #[test]
    fn finds_each_type() {
        let t = "Mail jane.doe@example.com or call +44 20 7946 0958; card 4111-1111-1111-1111, \
                 IBAN DE89370400440532013000, SSN 123-45-6789, host 192.168.1.20, v6 2001:db8::8a2e:370:7334, \
                 key AKIAIOSFODNN7EXAMPLE.";
        let k: Vec<&str> = kinds(t).iter().map(|(k, _)| *k).collect();
        assert_eq!(
            k,
            ["email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "secret"]
        );
    }

    #[test]
    fn hard_negatives() {
        for t in [
            "Order #1234567890123456 shipped on 2024-03-15.",
            "Upgrade to version 2.14.3 before 12:30:45 today.",
            "Invoice INV-2023-000123, total 1,234.56 EUR.",
            "The ratio is 3.14159 and the build id is 20240315.1.",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }
}
