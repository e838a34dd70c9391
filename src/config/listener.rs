//! `listeners` / `advertised.listeners` entries: `NAME://host:port`, as in Kafka.

use std::fmt;

/// One listener: a name (PLAINTEXT, or a controller listener's name), a host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// Parses one `NAME://host:port` entry; `host` may be empty (all interfaces) or `[v6]`.
    pub fn parse(s: &str) -> Result<Listener, String> {
        let (name, rest) = s
            .split_once("://")
            .ok_or_else(|| "expected NAME://host:port".to_string())?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| "expected NAME://host:port".to_string())?;
        let port: u16 = port.parse().map_err(|_| format!("bad port '{port}'"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad listener name '{name}'"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        })
    }

    /// Parses a comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<Listener>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Listener::parse)
            .collect()
    }

    /// The address to bind: an empty host means every interface.
    pub fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() { "0.0.0.0" } else { &self.host };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plaintext_listener() {
        let l = Listener::parse("PLAINTEXT://127.0.0.1:9092").unwrap();
        assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 9092));
        assert_eq!(l.bind_addr(), "127.0.0.1:9092");
    }

    #[test]
    fn rejects_missing_port_and_name() {
        assert!(Listener::parse("PLAINTEXT://localhost").is_err());
        assert!(Listener::parse("localhost:9093").is_err());
        assert!(Listener::parse("BAD-NAME://localhost:9093").is_err());
    }
}
