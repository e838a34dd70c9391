//! The principal of a client that presented a certificate on an SSL listener, as Kafka builds
//! it: the certificate's subject printed as Java's `X500Principal.getName()` does (RFC 2253),
//! then `ssl.principal.mapping.rules` (Kafka's SslPrincipalMapper) applied to it, `User:` in
//! front.
//!
//! Pure: certificate bytes and strings in, a name or a typed error out. The certificate is read
//! with x509-parser (no hand-written DER); rules are run with the `regex` crate, which covers
//! Kafka's Java patterns except backreferences and look-around (such a rule is refused at start).
//! Never touches sockets, settings files or the metadata log.

use std::fmt;

use regex::{Captures, Regex};
use x509_parser::asn1_rs::{Any, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Why a certificate yields no principal, or a rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PrincipalError {
    #[error("the client certificate cannot be read: {0}")]
    Certificate(String),
    #[error("invalid rule: {0}")]
    InvalidRule(String),
    #[error("no rules apply to {0}")]
    NoMatchingRule(String),
    #[error("bad replacement in rule {rule}: {why}")]
    Replacement { rule: String, why: &'static str },
}

/// Attribute types Java prints by keyword in RFC 2253 form; every other type is printed as its
/// dotted OID with the value as `#` and the hex of its DER (e.g. emailAddress).
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of a DER certificate as `X500Principal.getName()` prints it.
pub(crate) fn subject_dn(certificate_der: &[u8]) -> Result<String, PrincipalError> {
    let (_, cert) =
        X509Certificate::from_der(certificate_der).map_err(|e| PrincipalError::Certificate(e.to_string()))?;
    Ok(rfc2253(cert.subject()))
}

/// RFC 2253: RDNs last to first, comma-separated; the values of a multi-valued RDN joined with
/// `+` in their encoded order (Java sorts them only in its canonical form).
pub(crate) fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute(ava: &AttributeTypeAndValue<'_>) -> String {
    let oid = ava.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, string_value(ava.attr_value())) {
        (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
        (k, _) => format!("{}=#{}", k.unwrap_or(&oid), hex(&der_of(ava.attr_value()))),
    }
}

/// The value as text when Java treats its type as a string (in `getName()`'s RFC 2253 form):
/// PrintableString, IA5String, UTF8String, T61String, GeneralString, BMPString.
fn string_value(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag() {
        Tag::PrintableString | Tag::Ia5String | Tag::Utf8String => std::str::from_utf8(data).ok().map(str::to_string),
        Tag::T61String | Tag::GeneralString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString if data.len().is_multiple_of(2) => {
            let units: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 section 2.4 as Java applies it: `,=+<>#;"\` escaped wherever they are, spaces
/// escaped at either end, NUL as `\00`.
fn escape(value: &str) -> String {
    let lead = value.len() - value.trim_start_matches(' ').len();
    let trail = value.trim_end_matches(' ').len();
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in value.char_indices() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i < lead || i >= trail => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// The value's whole DER (tag, length, contents), for the `#hex` form.
fn der_of(value: &Any<'_>) -> Vec<u8> {
    let mut out = value
        .header
        .raw_tag()
        .map_or_else(|| vec![value.tag().0 as u8], <[u8]>::to_vec);
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value.data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One rule, as Kafka's RULE_PATTERN reads it: `DEFAULT`, or `RULE:pattern/replacement/[LU]`
/// (a `/` inside either part escaped as `\/`), or a leftover that makes the rule invalid.
const RULE: &str = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Map {
        /// As written, for messages.
        source: String,
        /// Searched for (and replaced) anywhere, as Java's `replaceAll`.
        pattern: Regex,
        /// The pattern anchored at both ends: a rule applies only when it matches the whole DN.
        whole: Regex,
        replacement: String,
        case: Case,
    },
}

/// `ssl.principal.mapping.rules`: rules tried in order, the first that matches wins.
#[derive(Debug, Clone)]
pub(crate) struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl SslPrincipalMapper {
    /// Splits and parses the rules as Kafka does: comma-separated with spaces around them
    /// ignored, empty entries skipped; any other text is an invalid rule.
    pub(crate) fn parse(rules: &str) -> Result<SslPrincipalMapper, PrincipalError> {
        let splitter = Regex::new(&format!(r"\s*({RULE})\s*(,\s*|$)")).expect("the rule splitter is a valid regex");
        let parser = Regex::new(&format!(r"\A(?:{RULE})")).expect("the rule parser is a valid regex");
        let mut parsed = Vec::new();
        for found in splitter.captures_iter(rules.trim()) {
            let text = found.get(1).map_or("", |m| m.as_str());
            let caps = parser
                .captures(text)
                .filter(|c| c.get(0).is_some_and(|m| m.end() == text.len()))
                .ok_or_else(|| PrincipalError::InvalidRule(text.to_string()))?;
            if caps.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let (Some(p), Some(r)) = (caps.get(2), caps.get(4)) {
                let compile =
                    |re: String| Regex::new(&re).map_err(|e| PrincipalError::InvalidRule(format!("{text}: {e}")));
                parsed.push(Rule::Map {
                    source: p.as_str().to_string(),
                    pattern: compile(p.as_str().to_string())?,
                    whole: compile(format!(r"\A(?:{})\z", p.as_str()))?,
                    replacement: r.as_str().to_string(),
                    case: match caps.get(6).map(|m| m.as_str()) {
                        Some("L") => Case::Lower,
                        Some("U") => Case::Upper,
                        _ => Case::Keep,
                    },
                });
            }
        }
        Ok(SslPrincipalMapper { rules: parsed })
    }

    /// The principal name of a DN: the first rule that applies.
    pub(crate) fn name(&self, dn: &str) -> Result<String, PrincipalError> {
        for rule in &self.rules {
            if let Some(name) = rule.apply(dn)? {
                return Ok(name);
            }
        }
        Err(PrincipalError::NoMatchingRule(dn.to_string()))
    }
}

impl Rule {
    fn apply(&self, dn: &str) -> Result<Option<String>, PrincipalError> {
        let Rule::Map {
            source,
            pattern,
            whole,
            replacement,
            case,
        } = self
        else {
            return Ok(Some(dn.to_string()));
        };
        if !whole.is_match(dn) {
            return Ok(None);
        }
        let replaced = replace_all(pattern, dn, replacement).map_err(|why| PrincipalError::Replacement {
            rule: source.clone(),
            why,
        })?;
        Ok(Some(match case {
            Case::Keep => replaced,
            Case::Lower => replaced.to_lowercase(),
            Case::Upper => replaced.to_uppercase(),
        }))
    }
}

/// Java's `String.replaceAll`: every match replaced, including an empty match right after a
/// non-empty one (so `.*` replaces "abc" twice, as Java does).
fn replace_all(pattern: &Regex, text: &str, replacement: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(text.len());
    let (mut from, mut copied) = (0, 0);
    while from <= text.len() {
        let Some(caps) = pattern.captures_at(text, from) else {
            break;
        };
        let m = caps.get(0).expect("group 0 is the match");
        out.push_str(&text[copied..m.start()]);
        expand(&caps, replacement, &mut out)?;
        copied = m.end();
        from = match m.is_empty() {
            true => text[m.end()..]
                .chars()
                .next()
                .map_or(text.len() + 1, |c| m.end() + c.len_utf8()),
            false => m.end(),
        };
    }
    out.push_str(&text[copied.min(text.len())..]);
    Ok(out)
}

/// Java's replacement syntax: `\x` is a literal x, `$n` a group (more digits taken while the
/// number stays a group), `${name}` a named group. A `$n` past the last group is literal text
/// when the pattern has groups (Kafka escapes those before calling Java); with no groups at
/// all it is an error, as in Java.
fn expand(caps: &Captures<'_>, replacement: &str, out: &mut String) -> Result<(), &'static str> {
    let groups = caps.len() - 1;
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or("a trailing \\ escapes nothing")?),
            '$' => match chars.peek().copied() {
                Some('{') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    out.push_str(caps.name(&name).ok_or("${name} names no group")?.as_str());
                }
                Some(d) if d.is_ascii_digit() => {
                    let mut group = d.to_digit(10).unwrap_or(0) as usize;
                    if group > groups {
                        if groups == 0 {
                            return Err("$n with a pattern that has no groups");
                        }
                        out.push('$');
                        continue;
                    }
                    chars.next();
                    while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + next as usize;
                        if longer > groups {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    out.push_str(caps.get(group).map_or("", |m| m.as_str()));
                }
                _ => return Err("$ is followed by neither a group number nor {name}"),
            },
            _ => out.push(c),
        }
    }
    Ok(())
}

/// Kafka's own rendering of its rules (SslPrincipalMapper's toString), to compare splitting.
impl fmt::Display for SslPrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| match r {
                Rule::Default => "DEFAULT".to_string(),
                Rule::Map {
                    source,
                    replacement,
                    case,
                    ..
                } => {
                    let case = match case {
                        Case::Keep => "",
                        Case::Lower => "/L",
                        Case::Upper => "/U",
                    };
                    format!("RULE:{source}/{replacement}{case}")
                }
            })
            .collect();
        write!(f, "[{}]", rules.join(", "))
    }
}

#[cfg(test)]
mod tests;
