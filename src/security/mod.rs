//! Listener security: which protocol each listener speaks (`listener.security.protocol.map`),
//! the TLS server configuration of SSL and SASL_SSL listeners, and the SASL server exchange
//! (mechanisms, credentials) of SASL_PLAINTEXT and SASL_SSL listeners, and the principal of a
//! client certificate (`ssl.principal.mapping.rules`).
//!
//! Pure policy and credentials: it never reads or writes a socket (the network layer drives
//! the TLS handshake and the SASL frames) and never touches topics or the metadata log.

pub(crate) mod plain;
pub(crate) mod sasl;
pub(crate) mod scram;
pub(crate) mod ssl_principal;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::fmt;

/// Kafka's security protocols, one per listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Result<SecurityProtocol, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            other => Err(format!("unknown security protocol '{other}'")),
        }
    }

    /// Whether the connection is wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the client must authenticate with SASL before any other request.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        })
    }
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL` pairs, comma separated.
pub fn parse_protocol_map(s: &str) -> Result<BTreeMap<String, SecurityProtocol>, String> {
    let mut map = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, protocol) = pair
            .split_once(':')
            .ok_or_else(|| format!("'{pair}' is not NAME:PROTOCOL"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("'{pair}' has no listener name"));
        }
        if map
            .insert(name.to_string(), SecurityProtocol::parse(protocol)?)
            .is_some()
        {
            return Err(format!("listener {name} is mapped twice"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_map_parses_kafka_default_and_custom_names() {
        let m = parse_protocol_map("PLAINTEXT:PLAINTEXT,SSL:SSL, CLIENTS:SASL_SSL ,INTERNAL:plaintext").unwrap();
        assert_eq!(m["CLIENTS"], SecurityProtocol::SaslSsl);
        assert_eq!(m["INTERNAL"], SecurityProtocol::Plaintext);
        assert_eq!(m["SSL"], SecurityProtocol::Ssl);
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::Ssl.uses_sasl() && !SecurityProtocol::SaslPlaintext.uses_tls());
    }

    #[test]
    fn protocol_map_refuses_unknown_protocols_and_duplicates() {
        assert!(parse_protocol_map("A:GSSAPI").is_err());
        assert!(parse_protocol_map("A").is_err());
        assert!(parse_protocol_map("A:SSL,A:PLAINTEXT").is_err());
        assert!(parse_protocol_map(":SSL").is_err());
    }
}
