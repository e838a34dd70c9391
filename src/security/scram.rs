//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 on the broker (RFC 5802, RFC 7677), as Kafka's
//! `ScramSaslServer`, `ScramFormatter` and `ScramMessages` do them: the credential a password
//! turns into (salt, stored key, server key, iterations), the messages of the exchange with
//! Kafka's grammar, and the exchange itself as a pure state machine.
//!
//! Pure: the caller supplies the credentials (from the metadata image) and the server nonce
//! (from the system's random source), so the exchange is tested with RFC vectors. It never
//! reads a socket or the metadata log. Secrets are compared in constant time and never logged.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;

/// Kafka's bounds on a credential's iterations (`ScramMechanism`, `ScramControlManager`).
pub(crate) const MIN_ITERATIONS: i32 = 4096;
pub(crate) const MAX_ITERATIONS: i32 = 16384;

/// The two SCRAM mechanisms Kafka has, with the type codes of its admin API and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub(crate) const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The `mechanism` code of AlterUserScramCredentials and of the records (0 is UNKNOWN).
    pub(crate) fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub(crate) fn from_type_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.type_code() == code)
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_algorithm(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data).as_ref().to_vec()
    }

    /// RFC 5802's `Hi(password, salt, i)`: PBKDF2 with this HMAC, one block long.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let mut out = vec![0; self.digest_algorithm().output_len()];
        // Iterations are at least 1 wherever a credential is made (checked by the callers).
        let rounds = std::num::NonZeroU32::new(iterations.max(1) as u32).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2_algorithm(), rounds, salt, password, &mut out);
        out
    }

    /// The credential a salted password gives (what the controller stores; Kafka's
    /// `ScramFormatter.generateCredential`).
    pub(crate) fn credential(self, salt: &[u8], salted_password: &[u8], iterations: i32) -> ScramCredential {
        let client_key = self.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: self.hash(&client_key),
            server_key: self.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// Whether `n` is within Kafka's iteration bounds; Kafka's message when it is not.
    pub(crate) fn check_iterations(n: i32) -> Result<(), &'static str> {
        if n < MIN_ITERATIONS {
            Err("Too few iterations")
        } else if n > MAX_ITERATIONS {
            Err("Too many iterations")
        } else {
            Ok(())
        }
    }
}

/// What the broker keeps of a user's password for one mechanism (Kafka's `ScramCredential`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ScramCredential {
    pub(crate) salt: Vec<u8>,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
    pub(crate) iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys (as Kafka's `ScramCredentialValue.toString`).
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why an exchange failed. `Invalid` carries a reason for the broker's log only: the client
/// is told Kafka's generic words, so it cannot learn which users exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScramError {
    /// Kafka's `SaslException`: the client gets the generic message.
    Invalid(String),
    /// Kafka's `SaslAuthenticationException`: the client gets this message.
    Refused(String),
}

/// Where the exchange finds a user's credential.
pub(crate) trait CredentialSource {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// What a client message leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScramStep {
    /// Send this server-first message and wait for the client's final one.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send the server-final message.
    Complete { user: String, server_final: Vec<u8> },
}

/// Kafka's `SUPPORTED_EXTENSIONS`: delegation tokens. Sluice has none, so a client asking for
/// token authentication names a token that does not exist.
const TOKEN_AUTH: &str = "tokenauth";

#[derive(Debug)]
enum State {
    ReceiveClientFirst,
    ReceiveClientFinal(Box<FirstSeen>),
    Complete,
    Failed,
}

/// What the final message is checked against.
#[derive(Debug)]
struct FirstSeen {
    user: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

/// One connection's SCRAM exchange (Kafka's `ScramSaslServer`).
#[derive(Debug)]
pub(crate) struct ScramExchange {
    mechanism: ScramMechanism,
    server_nonce: String,
    state: State,
}

impl ScramExchange {
    /// `server_nonce` must be fresh and unpredictable (printable ASCII without ',').
    pub(crate) fn new(mechanism: ScramMechanism, server_nonce: String) -> ScramExchange {
        ScramExchange {
            mechanism,
            server_nonce,
            state: State::ReceiveClientFirst,
        }
    }

    pub(crate) fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Evaluates one client message. Any error ends the exchange.
    pub(crate) fn evaluate(&mut self, message: &[u8], source: &dyn CredentialSource) -> Result<ScramStep, ScramError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let result = match state {
            State::ReceiveClientFirst => self.client_first(message, source),
            State::ReceiveClientFinal(seen) => self.client_final(message, *seen),
            State::Complete | State::Failed => Err(ScramError::Invalid(format!(
                "Unexpected challenge in Sasl server state {state:?}"
            ))),
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn client_first(&mut self, message: &[u8], source: &dyn CredentialSource) -> Result<ScramStep, ScramError> {
        let first = ClientFirst::parse(message)?;
        let user = username(&first.sasl_name)
            .ok_or_else(|| ScramError::Invalid("Authentication failed: Credentials could not be obtained".into()))?;
        let token_auth = first
            .extensions
            .iter()
            .any(|(k, v)| k == TOKEN_AUTH && v.eq_ignore_ascii_case("true"));
        if token_auth {
            return Err(ScramError::Invalid(format!(
                "Token Authentication failed: Invalid tokenId : {user}"
            )));
        }
        let credential = source
            .credential(&user, self.mechanism)
            .ok_or_else(|| ScramError::Invalid("Authentication failed: Invalid user credentials".into()))?;
        if !first.authzid.is_empty() && first.authzid != user {
            return Err(ScramError::Refused(
                "Authentication failed: Client requested an authorization id that is different from username".into(),
            ));
        }
        if credential.iterations < MIN_ITERATIONS {
            return Err(ScramError::Invalid(format!(
                "Iterations {} is less than the minimum {MIN_ITERATIONS} for {}",
                credential.iterations,
                self.mechanism.name()
            )));
        }
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let challenge = server_first.clone().into_bytes();
        self.state = State::ReceiveClientFinal(Box::new(FirstSeen {
            user,
            client_first_bare: first.bare,
            server_first,
            nonce,
            credential,
        }));
        Ok(ScramStep::Challenge(challenge))
    }

    fn client_final(&mut self, message: &[u8], seen: FirstSeen) -> Result<ScramStep, ScramError> {
        let last = ClientFinal::parse(message)?;
        // Kafka checks the suffix; the whole nonce is what RFC 5802 asks, and the same for
        // every client that follows it.
        if last.nonce != seen.nonce {
            return Err(ScramError::Invalid(
                "Invalid client nonce in the final client message.".into(),
            ));
        }
        let auth_message = format!(
            "{},{},{}",
            seen.client_first_bare, seen.server_first, last.without_proof
        );
        let m = self.mechanism;
        let client_signature = m.hmac(&seen.credential.stored_key, auth_message.as_bytes());
        if client_signature.len() != last.proof.len() {
            return Err(ScramError::Invalid("Invalid client credentials".into()));
        }
        let client_key: Vec<u8> = client_signature.iter().zip(&last.proof).map(|(a, b)| a ^ b).collect();
        if !bool::from(m.hash(&client_key).ct_eq(&seen.credential.stored_key)) {
            return Err(ScramError::Invalid("Invalid client credentials".into()));
        }
        let server_signature = m.hmac(&seen.credential.server_key, auth_message.as_bytes());
        self.state = State::Complete;
        Ok(ScramStep::Complete {
            user: seen.user,
            server_final: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
        })
    }
}

/// `n` bytes from the system's CSPRNG (nonces, salts); None only if the OS refuses.
pub(crate) fn random_bytes(n: usize) -> Option<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0; n];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes)
}

/// A fresh server nonce: 144 random bits as base64 (printable, no ',').
pub(crate) fn random_nonce() -> Option<String> {
    random_bytes(18).map(|b| BASE64.encode(b))
}

/// Kafka's `ScramFormatter.username`: `=2C` is ',' and `=3D` is '='; any other '=' is invalid.
pub(crate) fn username(sasl_name: &str) -> Option<String> {
    let commas = sasl_name.replace("=2C", ",");
    if commas.replace("=3D", "").contains('=') {
        return None;
    }
    Some(commas.replace("=3D", "="))
}

/// The client-first message (`n,[a=authzid],n=saslname,r=nonce[,ext=value]*`).
#[derive(Debug)]
struct ClientFirst {
    authzid: String,
    sasl_name: String,
    nonce: String,
    extensions: Vec<(String, String)>,
    /// The message without its GS2 header: part of the signed auth message.
    bare: String,
}

fn malformed(what: &str, message: &str) -> ScramError {
    ScramError::Invalid(format!("Invalid SCRAM {what} message format: {message}"))
}

/// Kafka's character classes (`ScramMessages`).
fn is_value_char(c: char) -> bool {
    ('\x01'..='\x7f').contains(&c) && c != ','
}

fn is_printable(c: char) -> bool {
    ('\x21'..='\x7e').contains(&c) && c != ','
}

fn is_sasl_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_value_char) && {
        // '=' only as =2C or =3D.
        let mut rest = s;
        loop {
            match rest.find('=') {
                None => break true,
                Some(i) if rest[i..].starts_with("=2C") || rest[i..].starts_with("=3D") => rest = &rest[i + 3..],
                Some(_) => break false,
            }
        }
    }
}

fn is_base64(s: &str) -> bool {
    s.len().is_multiple_of(4) && BASE64.decode(s).is_ok()
}

/// `,k=v` extensions (k alphabetic, v a VALUE).
fn parse_extensions<'a>(parts: impl Iterator<Item = &'a str>) -> Option<Vec<(String, String)>> {
    parts
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            let ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphabetic()) && !v.is_empty();
            ok.then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

impl ClientFirst {
    fn parse(bytes: &[u8]) -> Result<ClientFirst, ScramError> {
        let text = String::from_utf8_lossy(bytes);
        let bad = || malformed("client first", &text);
        if std::str::from_utf8(bytes).is_err() {
            return Err(bad());
        }
        // GS2 header: no channel binding ("n"), an optional authzid.
        let rest = text.strip_prefix("n,").ok_or_else(bad)?;
        let (authzid, rest) = match rest.strip_prefix("a=") {
            Some(r) => {
                let (a, r) = r.split_once(',').ok_or_else(bad)?;
                if !is_sasl_name(a) {
                    return Err(bad());
                }
                (a.to_string(), r)
            }
            None => ("".to_string(), rest.strip_prefix(',').ok_or_else(bad)?),
        };
        // Kafka's grammar allows a reserved `m=` here; RFC 5802 says a server must then fail.
        let mut parts = rest.split(',');
        let sasl_name = parts.next().and_then(|p| p.strip_prefix("n=")).ok_or_else(bad)?;
        let nonce = parts.next().and_then(|p| p.strip_prefix("r=")).ok_or_else(bad)?;
        if !is_sasl_name(sasl_name) || nonce.is_empty() || !nonce.chars().all(is_printable) {
            return Err(bad());
        }
        let extensions = parse_extensions(parts).ok_or_else(bad)?;
        Ok(ClientFirst {
            authzid,
            sasl_name: sasl_name.to_string(),
            nonce: nonce.to_string(),
            extensions,
            bare: rest.to_string(),
        })
    }
}

/// The client-final message (`c=binding,r=nonce[,ext=value]*,p=proof`).
#[derive(Debug)]
struct ClientFinal {
    nonce: String,
    proof: Vec<u8>,
    /// Everything before `,p=`: part of the signed auth message.
    without_proof: String,
}

impl ClientFinal {
    fn parse(bytes: &[u8]) -> Result<ClientFinal, ScramError> {
        let text = String::from_utf8_lossy(bytes);
        let bad = || malformed("client final", &text);
        if std::str::from_utf8(bytes).is_err() {
            return Err(bad());
        }
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(bad)?;
        let mut parts = without_proof.split(',');
        let binding = parts.next().and_then(|p| p.strip_prefix("c=")).ok_or_else(bad)?;
        let nonce = parts.next().and_then(|p| p.strip_prefix("r=")).ok_or_else(bad)?;
        if !is_base64(binding) || !is_base64(proof) || nonce.is_empty() || !nonce.chars().all(is_printable) {
            return Err(bad());
        }
        parse_extensions(parts).ok_or_else(bad)?;
        Ok(ClientFinal {
            nonce: nonce.to_string(),
            proof: BASE64.decode(proof).map_err(|_| bad())?,
            without_proof: without_proof.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Users(BTreeMap<(String, ScramMechanism), ScramCredential>);

    impl CredentialSource for Users {
        fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
            self.0.get(&(user.to_string(), mechanism)).cloned()
        }
    }

    fn users(m: ScramMechanism, user: &str, password: &str, salt_b64: &str, iterations: i32) -> Users {
        let salt = BASE64.decode(salt_b64).unwrap();
        let salted = m.salted_password(password.as_bytes(), &salt, iterations);
        let mut map = BTreeMap::new();
        map.insert((user.to_string(), m), m.credential(&salt, &salted, iterations));
        Users(map)
    }

    /// RFC 7677 section 3: user "user", password "pencil".
    const RFC7677_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const RFC7677_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC7677_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    fn rfc7677() -> (ScramExchange, Users) {
        let exchange = ScramExchange::new(ScramMechanism::Sha256, RFC7677_SERVER_NONCE.into());
        (
            exchange,
            users(ScramMechanism::Sha256, "user", "pencil", RFC7677_SALT, 4096),
        )
    }

    #[test]
    fn rfc7677_sha256_vector_authenticates_and_signs() {
        let (mut ex, users) = rfc7677();
        let first = ex.evaluate(RFC7677_FIRST.as_bytes(), &users).unwrap();
        assert_eq!(
            first,
            ScramStep::Challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()
            )
        );
        let done = ex.evaluate(RFC7677_FINAL.as_bytes(), &users).unwrap();
        assert_eq!(
            done,
            ScramStep::Complete {
                user: "user".into(),
                server_final: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
            }
        );
        // Nothing more is accepted once complete.
        assert!(ex.evaluate(RFC7677_FINAL.as_bytes(), &users).is_err());
    }

    /// Computed independently with Python's hashlib/hmac (no RFC vector exists for SHA-512).
    #[test]
    fn sha512_exchange_matches_an_independent_computation() {
        let m = ScramMechanism::Sha512;
        let users = users(m, "alice", "alice-secret", "c2FsdHNhbHRzYWx0", 4096);
        let mut ex = ScramExchange::new(m, "srvnonce".into());
        ex.evaluate(b"n,,n=alice,r=clinonce", &users).unwrap();
        let done = ex.evaluate(SHA512_FINAL.as_bytes(), &users).unwrap();
        assert_eq!(
            done,
            ScramStep::Complete {
                user: "alice".into(),
                server_final: SHA512_SERVER_FINAL.as_bytes().to_vec(),
            }
        );
    }

    const SHA512_FINAL: &str = "c=biws,r=clinoncesrvnonce,p=atqx7pyRi2hgJLOy9yhrUtMYEEODeFlCzZuNWXrIdoncjUfp8S6UzSvbwobnIz69I2U1HE1HfkOdl+v0vBv9gw==";
    const SHA512_SERVER_FINAL: &str =
        "v=ETTMdhy3F/xrSZHDTAZj05QPWzkOv/Asz4RvXrKJtPJqDN7JZQRT5SUs5GATdMkkscHtt00aWeT/Jq756X56ow==";

    #[test]
    fn wrong_password_is_invalid_credentials() {
        let (mut ex, _) = rfc7677();
        let wrong = users(ScramMechanism::Sha256, "user", "pencil2", RFC7677_SALT, 4096);
        ex.evaluate(RFC7677_FIRST.as_bytes(), &wrong).unwrap();
        assert_eq!(
            ex.evaluate(RFC7677_FINAL.as_bytes(), &wrong),
            Err(ScramError::Invalid("Invalid client credentials".into()))
        );
    }

    #[test]
    fn unknown_user_and_other_mechanism_fail_at_the_first_message() {
        let (_, users) = rfc7677();
        let mut ex = ScramExchange::new(ScramMechanism::Sha256, "n".into());
        assert!(matches!(
            ex.evaluate(b"n,,n=nobody,r=abc", &users),
            Err(ScramError::Invalid(_))
        ));
        let mut ex = ScramExchange::new(ScramMechanism::Sha512, "n".into());
        assert!(matches!(
            ex.evaluate(b"n,,n=user,r=abc", &users),
            Err(ScramError::Invalid(_))
        ));
    }

    #[test]
    fn a_changed_nonce_in_the_final_message_fails() {
        let (mut ex, users) = rfc7677();
        ex.evaluate(RFC7677_FIRST.as_bytes(), &users).unwrap();
        let tampered = RFC7677_FINAL.replace("k0,p=", "k1,p=");
        assert_eq!(
            ex.evaluate(tampered.as_bytes(), &users),
            Err(ScramError::Invalid(
                "Invalid client nonce in the final client message.".into()
            ))
        );
    }

    #[test]
    fn a_foreign_authzid_is_refused_with_kafkas_message() {
        let (mut ex, users) = rfc7677();
        assert_eq!(
            ex.evaluate(b"n,a=admin,n=user,r=abc", &users),
            Err(ScramError::Refused(
                "Authentication failed: Client requested an authorization id that is different from username".into()
            ))
        );
        let (mut ex, users) = rfc7677();
        assert!(ex.evaluate(b"n,a=user,n=user,r=abc", &users).is_ok());
    }

    #[test]
    fn token_authentication_fails_without_delegation_tokens() {
        let (mut ex, users) = rfc7677();
        assert_eq!(
            ex.evaluate(b"n,,n=user,r=abc,tokenauth=true", &users),
            Err(ScramError::Invalid(
                "Token Authentication failed: Invalid tokenId : user".into()
            ))
        );
        // Other extensions are ignored, as Kafka does.
        let (mut ex, users) = rfc7677();
        assert!(ex.evaluate(b"n,,n=user,r=abc,foo=bar", &users).is_ok());
    }

    #[test]
    fn too_few_stored_iterations_fail() {
        let users = users(ScramMechanism::Sha256, "user", "pencil", RFC7677_SALT, 4095);
        let mut ex = ScramExchange::new(ScramMechanism::Sha256, "n".into());
        assert_eq!(
            ex.evaluate(b"n,,n=user,r=abc", &users),
            Err(ScramError::Invalid(
                "Iterations 4095 is less than the minimum 4096 for SCRAM-SHA-256".into()
            ))
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        for first in [
            &b""[..],
            b"y,,n=user,r=abc",
            b"n,,n=user",
            b"n,,r=abc,n=user",
            b"n,,n=us=er,r=abc",
            b"n,,n=user,r=a,b",
            b"n,,n=user,r=abc,1=2",
            b"n,,n=\xff,r=abc",
        ] {
            let (mut ex, users) = rfc7677();
            assert!(
                matches!(ex.evaluate(first, &users), Err(ScramError::Invalid(_))),
                "{first:?}"
            );
        }
        for last in ["", "c=biws,p=AAAA", "c=b!ws,r=x,p=AAAA", "c=biws,r=x,p=not base64"] {
            let (mut ex, users) = rfc7677();
            ex.evaluate(RFC7677_FIRST.as_bytes(), &users).unwrap();
            assert!(
                matches!(ex.evaluate(last.as_bytes(), &users), Err(ScramError::Invalid(_))),
                "{last}"
            );
        }
    }

    #[test]
    fn sasl_names_decode_escapes_as_kafka() {
        assert_eq!(username("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(username("a=4Fb"), None);
        assert!(is_sasl_name("a=2Cb") && !is_sasl_name("a=b") && !is_sasl_name(""));
    }

    #[test]
    fn mechanisms_codes_names_and_iteration_bounds() {
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
            assert_eq!(ScramMechanism::from_type_code(m.type_code()), Some(m));
        }
        assert_eq!(ScramMechanism::from_type_code(0), None);
        assert_eq!(ScramMechanism::check_iterations(4095), Err("Too few iterations"));
        assert_eq!(ScramMechanism::check_iterations(16385), Err("Too many iterations"));
        assert!(ScramMechanism::check_iterations(4096).is_ok() && ScramMechanism::check_iterations(16384).is_ok());
        let c = ScramMechanism::Sha256.credential(b"s", b"k", 4096);
        assert!(!format!("{c:?}").contains("stored_key"));
    }
}
