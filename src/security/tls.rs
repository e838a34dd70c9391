//! The TLS server configuration of SSL and SASL_SSL listeners, from Kafka's PEM settings:
//! `ssl.keystore.location` (one PEM file with the private key and the certificate chain) or
//! `ssl.keystore.certificate.chain` + `ssl.keystore.key` (the PEM text itself), the CA
//! certificates clients are checked against (`ssl.truststore.location` /
//! `ssl.truststore.certificates`) and `ssl.client.auth` (none, requested, required).
//!
//! rustls with the `ring` provider; TLS 1.2 and 1.3. Reads the files once, at start.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::Settings;

/// A TLS setting that cannot be used; the broker refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub(crate) struct TlsError {
    setting: &'static str,
    reason: String,
}

fn bad(setting: &'static str, reason: impl ToString) -> TlsError {
    TlsError {
        setting,
        reason: reason.to_string(),
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub(crate) fn parse(s: &str) -> Result<ClientAuth, String> {
        match s.trim() {
            "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err("expected none, requested or required".into()),
        }
    }
}

/// The acceptor every TLS listener of this node shares.
pub(crate) fn acceptor(settings: &Settings) -> Result<TlsAcceptor, TlsError> {
    // rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange; it is
    // kept for now because aws-lc-rs needs cmake and minutes of C build (see README, Security).
    #[allow(deprecated)]
    let provider = Arc::new(ring::default_provider());
    let (chain, key) = keystore(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("ssl.enabled.protocols", e))?;
    let auth = ClientAuth::parse(&settings.ssl_client_auth).map_err(|e| bad("ssl.client.auth", e))?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let roots = truststore(settings)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| bad("ssl.truststore.location", e))?)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad("ssl.keystore.location", e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate chain and private key, from the keystore file or the inline PEM settings.
fn keystore(settings: &Settings) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (chain_pem, key_pem, setting) = match (
        &settings.ssl_keystore_location,
        &settings.ssl_keystore_certificate_chain,
        &settings.ssl_keystore_key,
    ) {
        (Some(path), None, None) => {
            let pem = std::fs::read(path).map_err(|e| bad("ssl.keystore.location", format!("{path}: {e}")))?;
            (pem.clone(), pem, "ssl.keystore.location")
        }
        (None, Some(chain), Some(key)) => (
            chain.as_bytes().to_vec(),
            key.as_bytes().to_vec(),
            "ssl.keystore.certificate.chain",
        ),
        _ => {
            return Err(bad(
                "ssl.keystore.location",
                "set either it, or both ssl.keystore.certificate.chain and ssl.keystore.key",
            ))
        }
    };
    let chain = certificates(&chain_pem).map_err(|e| bad(setting, e))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad(setting, format!("no unencrypted PEM private key ({e})")))?;
    Ok((chain, key))
}

/// The CA certificates client certificates are checked against.
fn truststore(settings: &Settings) -> Result<RootCertStore, TlsError> {
    let (pem, setting) = match (&settings.ssl_truststore_location, &settings.ssl_truststore_certificates) {
        (Some(path), None) => (
            std::fs::read(path).map_err(|e| bad("ssl.truststore.location", format!("{path}: {e}")))?,
            "ssl.truststore.location",
        ),
        (None, Some(certs)) => (certs.as_bytes().to_vec(), "ssl.truststore.certificates"),
        _ => {
            return Err(bad(
                "ssl.truststore.location",
                "ssl.client.auth needs exactly one of it and ssl.truststore.certificates",
            ))
        }
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(&pem).map_err(|e| bad(setting, e))? {
        roots.add(cert).map_err(|e| bad(setting, e))?;
    }
    Ok(roots)
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))?;
    match certs.is_empty() {
        true => Err("no PEM certificate found".into()),
        false => Ok(certs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_values_are_kafkas() {
        assert_eq!(ClientAuth::parse("required").unwrap(), ClientAuth::Required);
        assert_eq!(ClientAuth::parse("requested").unwrap(), ClientAuth::Requested);
        assert_eq!(ClientAuth::parse("none").unwrap(), ClientAuth::None);
        assert!(ClientAuth::parse("REQUIRED").is_err());
    }

    #[test]
    fn a_keystore_without_key_or_certificate_is_refused_with_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "nothing here").unwrap();
        let settings = crate::config::load(None, &[format!("ssl.keystore.location={}", path.display())]).unwrap();
        let err = acceptor(&settings).err().unwrap().to_string();
        assert!(err.starts_with("ssl.keystore.location"), "{err}");
        let none = crate::config::load(None, &[]).unwrap();
        assert!(acceptor(&none).is_err());
    }
}
