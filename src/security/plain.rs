//! SASL/PLAIN (RFC 4616) on the broker: the users and passwords of `sasl.plain.users`, and the
//! check of a client's `authzid NUL authcid NUL passwd` token against them, with Kafka's
//! messages. Passwords are compared in constant time.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::sasl::SaslError;

/// The users allowed to authenticate with PLAIN.
#[derive(Clone, Default)]
pub(crate) struct PlainUsers {
    passwords: BTreeMap<String, String>,
}

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("PlainUsers")
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PlainUsers {
    /// `user:password` pairs, comma separated (a password may hold ':' but not ',').
    pub(crate) fn parse(s: &str) -> Result<PlainUsers, String> {
        let mut passwords = BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((user, password)) = pair.split_once(':') else {
                return Err("expected user:password pairs, comma separated".into());
            };
            if user.is_empty() || password.is_empty() {
                return Err("a user name and a password may not be empty".into());
            }
            if passwords.insert(user.to_string(), password.to_string()).is_some() {
                return Err(format!("user {user} is listed twice"));
            }
        }
        Ok(PlainUsers { passwords })
    }

    /// The user a PLAIN token authenticates, or why it does not (Kafka's `PlainSaslServer`).
    pub(crate) fn authenticate(&self, token: &[u8]) -> Result<String, SaslError> {
        let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
        let [authzid, user, password] = parts[..] else {
            return Err(SaslError::AuthenticationFailed(
                "Invalid SASL/PLAIN response: expected 3 tokens".into(),
            ));
        };
        let (Ok(authzid), Ok(user)) = (std::str::from_utf8(authzid), std::str::from_utf8(user)) else {
            return Err(SaslError::AuthenticationFailed(
                "Invalid SASL/PLAIN response: not UTF-8".into(),
            ));
        };
        if user.is_empty() {
            return Err(SaslError::AuthenticationFailed(
                "Authentication failed: username not specified".into(),
            ));
        }
        if password.is_empty() {
            return Err(SaslError::AuthenticationFailed(
                "Authentication failed: password not specified".into(),
            ));
        }
        let known = self.passwords.get(user).map(String::as_bytes);
        // Compared even for an unknown user, so the time taken does not tell which users exist.
        let expected = known.unwrap_or(b"\0unknown user");
        if known.is_none() || !bool::from(expected.ct_eq(password)) {
            return Err(SaslError::AuthenticationFailed(
                "Authentication failed: Invalid username or password".into(),
            ));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(SaslError::AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username".into(),
            ));
        }
        Ok(user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> PlainUsers {
        PlainUsers::parse("alice:alice-secret, bob:b:c").unwrap()
    }

    #[test]
    fn right_password_authenticates_the_user() {
        assert_eq!(users().authenticate(b"\0alice\0alice-secret").unwrap(), "alice");
        assert_eq!(users().authenticate(b"bob\0bob\0b:c").unwrap(), "bob");
    }

    #[test]
    fn wrong_password_unknown_user_and_foreign_authzid_fail() {
        let failed = |t: &[u8]| matches!(users().authenticate(t), Err(SaslError::AuthenticationFailed(_)));
        assert!(failed(b"\0alice\0wrong"));
        assert!(failed(b"\0mallory\0alice-secret"));
        assert!(failed(b"bob\0alice\0alice-secret"));
        assert!(failed(b"\0alice\0"));
        assert!(failed(b"\0\0x"));
        assert!(failed(b"alice-secret"));
        assert!(failed(b"\0alice\0alice-secret\0"));
    }

    #[test]
    fn user_list_must_be_pairs_without_repeats() {
        assert!(PlainUsers::parse("alice").is_err());
        assert!(PlainUsers::parse(":x").is_err());
        assert!(PlainUsers::parse("a:x,a:y").is_err());
        assert!(PlainUsers::parse("").unwrap().passwords.is_empty());
        assert!(!format!("{:?}", users()).contains("secret"));
    }
}
