//! The broker side of one connection's SASL exchange (KIP-152 framing: SaslHandshake v1, then
//! SaslAuthenticate), as a pure state machine the connection drives: Kafka's
//! `SaslServerAuthenticator` states and its refusals, without any I/O.
//!
//! Kafka's order: an optional ApiVersions first, then SaslHandshake naming an enabled mechanism,
//! then SaslAuthenticate tokens until the mechanism is done. Anything else is an illegal state
//! and the connection is closed without an answer.

use std::sync::Arc;

use super::plain::PlainUsers;

pub(crate) const PLAIN: &str = "PLAIN";
/// The mechanisms this broker can serve.
pub(crate) const SUPPORTED_MECHANISMS: &[&str] = &[PLAIN];

/// Why a SASL exchange fails; each closes the connection (see `error.rs` for the codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// SaslHandshake named a mechanism this listener does not enable: answered with the
    /// enabled ones, then closed.
    #[error("Unsupported SASL mechanism {0}")]
    UnsupportedMechanism(String),
    /// A request out of order: closed without an answer.
    #[error("{0}")]
    IllegalState(String),
    /// Wrong credentials: answered with this message, then closed.
    #[error("{0}")]
    AuthenticationFailed(String),
}

/// What a SASL listener accepts: the enabled mechanisms and their credentials.
#[derive(Debug)]
pub(crate) struct SaslConfig {
    pub(crate) mechanisms: Vec<String>,
    pub(crate) plain: PlainUsers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Kafka's HANDSHAKE_OR_VERSIONS_REQUEST, or HANDSHAKE_REQUEST once ApiVersions was seen.
    Handshake {
        versions_seen: bool,
    },
    /// A mechanism is chosen; waiting for its token.
    Authenticate,
    Done,
}

/// One connection's SASL state.
#[derive(Debug)]
pub(crate) struct SaslServer {
    config: Arc<SaslConfig>,
    stage: Stage,
}

impl SaslServer {
    pub(crate) fn new(config: Arc<SaslConfig>) -> SaslServer {
        SaslServer {
            config,
            stage: Stage::Handshake { versions_seen: false },
        }
    }

    pub(crate) fn enabled_mechanisms(&self) -> &[String] {
        &self.config.mechanisms
    }

    /// An ApiVersions request: allowed once, before the handshake.
    pub(crate) fn api_versions(&mut self) -> Result<(), SaslError> {
        match self.stage {
            Stage::Handshake { versions_seen: false } => {
                self.stage = Stage::Handshake { versions_seen: true };
                Ok(())
            }
            _ => Err(self.unexpected("API_VERSIONS")),
        }
    }

    /// A SaslHandshake naming `mechanism`.
    pub(crate) fn handshake(&mut self, mechanism: &str) -> Result<(), SaslError> {
        if !matches!(self.stage, Stage::Handshake { .. }) {
            return Err(self.unexpected("SASL_HANDSHAKE"));
        }
        if !self.config.mechanisms.iter().any(|m| m == mechanism) {
            return Err(SaslError::UnsupportedMechanism(mechanism.to_string()));
        }
        self.stage = Stage::Authenticate;
        Ok(())
    }

    /// A SaslAuthenticate token; PLAIN completes in one, returning the authenticated user.
    pub(crate) fn authenticate(&mut self, token: &[u8]) -> Result<String, SaslError> {
        if self.stage != Stage::Authenticate {
            return Err(self.unexpected("SASL_AUTHENTICATE"));
        }
        let user = self.config.plain.authenticate(token)?;
        self.stage = Stage::Done;
        Ok(user)
    }

    /// Any other request before authentication is done (Kafka's message).
    pub(crate) fn unexpected(&self, api: &str) -> SaslError {
        let during = match self.stage {
            Stage::Handshake { .. } => "SASL handshake",
            Stage::Authenticate | Stage::Done => "SASL authentication",
        };
        SaslError::IllegalState(format!("Unexpected Kafka request of type {api} during {during}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SaslServer {
        SaslServer::new(Arc::new(SaslConfig {
            mechanisms: vec![PLAIN.into()],
            plain: PlainUsers::parse("alice:pw").unwrap(),
        }))
    }

    #[test]
    fn versions_handshake_then_token_authenticates() {
        let mut s = server();
        s.api_versions().unwrap();
        s.handshake("PLAIN").unwrap();
        assert_eq!(s.authenticate(b"\0alice\0pw").unwrap(), "alice");
    }

    #[test]
    fn handshake_without_api_versions_is_fine() {
        let mut s = server();
        s.handshake("PLAIN").unwrap();
        assert_eq!(s.authenticate(b"\0alice\0pw").unwrap(), "alice");
    }

    #[test]
    fn unsupported_mechanism_is_refused() {
        let mut s = server();
        assert_eq!(
            s.handshake("SCRAM-SHA-256"),
            Err(SaslError::UnsupportedMechanism("SCRAM-SHA-256".into()))
        );
    }

    #[test]
    fn requests_out_of_order_are_illegal_states() {
        let mut s = server();
        assert!(matches!(
            s.authenticate(b"\0alice\0pw"),
            Err(SaslError::IllegalState(_))
        ));
        let mut s = server();
        s.api_versions().unwrap();
        assert!(matches!(s.api_versions(), Err(SaslError::IllegalState(_))));
        s.handshake("PLAIN").unwrap();
        assert!(matches!(s.handshake("PLAIN"), Err(SaslError::IllegalState(_))));
        assert!(matches!(s.api_versions(), Err(SaslError::IllegalState(_))));
    }

    #[test]
    fn wrong_password_fails_authentication() {
        let mut s = server();
        s.handshake("PLAIN").unwrap();
        assert!(matches!(
            s.authenticate(b"\0alice\0nope"),
            Err(SaslError::AuthenticationFailed(_))
        ));
    }
}
