//! The broker side of one connection's SASL exchange (KIP-152 framing: SaslHandshake v1, then
//! SaslAuthenticate), as a pure state machine the connection drives: Kafka's
//! `SaslServerAuthenticator` states and its refusals, without any I/O.
//!
//! Kafka's order: an optional ApiVersions first, then SaslHandshake naming an enabled mechanism,
//! then SaslAuthenticate tokens until the mechanism is done. Anything else is an illegal state
//! and the connection is closed without an answer.

use std::sync::Arc;

use super::plain::PlainUsers;
use super::scram::{CredentialSource, ScramError, ScramExchange, ScramMechanism, ScramStep};

pub(crate) const PLAIN: &str = "PLAIN";
/// The mechanisms this broker can serve.
pub(crate) const SUPPORTED_MECHANISMS: &[&str] = &[PLAIN, "SCRAM-SHA-256", "SCRAM-SHA-512"];

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

#[derive(Debug)]
enum Stage {
    /// Kafka's HANDSHAKE_OR_VERSIONS_REQUEST, or HANDSHAKE_REQUEST once ApiVersions was seen.
    Handshake {
        versions_seen: bool,
    },
    /// PLAIN is chosen; waiting for its token.
    Plain,
    /// A SCRAM mechanism is chosen; its exchange starts with the first token.
    Scram(ScramMechanism),
    /// The SCRAM exchange is under way.
    ScramExchange(Box<ScramExchange>),
    Done,
}

/// What a SaslAuthenticate token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslStep {
    /// Answer with these bytes and wait for the next token.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; answer with these bytes (empty for PLAIN).
    Complete { user: String, answer: Vec<u8> },
}

/// Where a SCRAM exchange gets credentials and fresh server nonces.
pub(crate) trait ScramContext: CredentialSource {
    /// None only when the system has no randomness to give.
    fn server_nonce(&self) -> Option<String>;
}

/// One connection's SASL state.
#[derive(Debug)]
pub(crate) struct SaslServer {
    config: Arc<SaslConfig>,
    stage: Stage,
    mechanism: &'static str,
}

impl SaslServer {
    pub(crate) fn new(config: Arc<SaslConfig>) -> SaslServer {
        SaslServer {
            config,
            stage: Stage::Handshake { versions_seen: false },
            mechanism: "",
        }
    }

    /// The mechanism the handshake chose ("" before it), for metrics.
    pub(crate) fn mechanism(&self) -> &str {
        self.mechanism
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
        (self.stage, self.mechanism) = match ScramMechanism::from_name(mechanism) {
            Some(m) => (Stage::Scram(m), m.name()),
            None => (Stage::Plain, PLAIN),
        };
        Ok(())
    }

    /// A SaslAuthenticate token: PLAIN completes in one; SCRAM takes two, the first answered
    /// with a challenge.
    pub(crate) fn authenticate(&mut self, token: &[u8], scram: &dyn ScramContext) -> Result<SaslStep, SaslError> {
        let stage = std::mem::replace(&mut self.stage, Stage::Done);
        match stage {
            Stage::Plain => {
                let user = self.config.plain.authenticate(token)?;
                Ok(SaslStep::Complete {
                    user,
                    answer: Vec::new(),
                })
            }
            Stage::Scram(m) => {
                let nonce = scram.server_nonce().ok_or_else(|| {
                    SaslError::AuthenticationFailed("Authentication failed: Credentials could not be obtained".into())
                })?;
                self.scram(ScramExchange::new(m, nonce), token, scram)
            }
            Stage::ScramExchange(exchange) => self.scram(*exchange, token, scram),
            other => {
                self.stage = other;
                Err(self.unexpected("SASL_AUTHENTICATE"))
            }
        }
    }

    fn scram(
        &mut self,
        mut exchange: ScramExchange,
        token: &[u8],
        scram: &dyn ScramContext,
    ) -> Result<SaslStep, SaslError> {
        match exchange.evaluate(token, scram) {
            Ok(ScramStep::Challenge(bytes)) => {
                self.stage = Stage::ScramExchange(Box::new(exchange));
                Ok(SaslStep::Challenge(bytes))
            }
            Ok(ScramStep::Complete { user, server_final }) => Ok(SaslStep::Complete {
                user,
                answer: server_final,
            }),
            Err(ScramError::Refused(message)) => Err(SaslError::AuthenticationFailed(message)),
            // Kafka's words for a SaslException: nothing that tells which users exist.
            Err(ScramError::Invalid(reason)) => {
                tracing::debug!(
                    reason,
                    mechanism = exchange.mechanism().name(),
                    "SCRAM authentication failed"
                );
                Err(SaslError::AuthenticationFailed(format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                    exchange.mechanism().name()
                )))
            }
        }
    }

    /// Any other request before authentication is done (Kafka's message).
    pub(crate) fn unexpected(&self, api: &str) -> SaslError {
        let during = match self.stage {
            Stage::Handshake { .. } => "SASL handshake",
            _ => "SASL authentication",
        };
        SaslError::IllegalState(format!("Unexpected Kafka request of type {api} during {during}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SaslServer {
        SaslServer::new(Arc::new(SaslConfig {
            mechanisms: vec![PLAIN.into(), "SCRAM-SHA-256".into()],
            plain: PlainUsers::parse("alice:pw").unwrap(),
        }))
    }

    /// bob's SCRAM-SHA-256 credential for "bob-pw", and a fixed server nonce.
    struct Scram;

    impl CredentialSource for Scram {
        fn credential(&self, user: &str, m: ScramMechanism) -> Option<crate::security::scram::ScramCredential> {
            let salted = m.salted_password(b"bob-pw", b"salt", 4096);
            (user == "bob").then(|| m.credential(b"salt", &salted, 4096))
        }
    }

    impl ScramContext for Scram {
        fn server_nonce(&self) -> Option<String> {
            Some("server".into())
        }
    }

    fn plain_user(step: Result<SaslStep, SaslError>) -> String {
        match step {
            Ok(SaslStep::Complete { user, answer }) if answer.is_empty() => user,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn versions_handshake_then_token_authenticates() {
        let mut s = server();
        s.api_versions().unwrap();
        s.handshake("PLAIN").unwrap();
        assert_eq!(plain_user(s.authenticate(b"\0alice\0pw", &Scram)), "alice");
    }

    #[test]
    fn handshake_without_api_versions_is_fine() {
        let mut s = server();
        s.handshake("PLAIN").unwrap();
        assert_eq!(plain_user(s.authenticate(b"\0alice\0pw", &Scram)), "alice");
    }

    #[test]
    fn scram_takes_a_challenge_then_completes_and_then_refuses_more_tokens() {
        let mut s = server();
        s.handshake("SCRAM-SHA-256").unwrap();
        let Ok(SaslStep::Challenge(first)) = s.authenticate(b"n,,n=bob,r=client", &Scram) else {
            panic!("no challenge")
        };
        assert!(String::from_utf8(first)
            .unwrap()
            .starts_with("r=clientserver,s=c2FsdA==,i=4096"));
        // A wrong proof: Kafka's generic words.
        assert_eq!(
            s.authenticate(b"c=biws,r=clientserver,p=AAAA", &Scram),
            Err(SaslError::AuthenticationFailed(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
                    .into()
            ))
        );
        assert!(matches!(
            s.authenticate(b"c=biws,r=clientserver,p=AAAA", &Scram),
            Err(SaslError::IllegalState(_))
        ));
    }

    #[test]
    fn a_mechanism_not_enabled_is_refused_even_if_supported() {
        let mut s = server();
        assert_eq!(
            s.handshake("SCRAM-SHA-512"),
            Err(SaslError::UnsupportedMechanism("SCRAM-SHA-512".into()))
        );
    }

    #[test]
    fn unsupported_mechanism_is_refused() {
        let mut s = server();
        assert_eq!(
            s.handshake("GSSAPI"),
            Err(SaslError::UnsupportedMechanism("GSSAPI".into()))
        );
    }

    #[test]
    fn requests_out_of_order_are_illegal_states() {
        let mut s = server();
        assert!(matches!(
            s.authenticate(b"\0alice\0pw", &Scram),
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
            s.authenticate(b"\0alice\0nope", &Scram),
            Err(SaslError::AuthenticationFailed(_))
        ));
    }
}
