//! SaslHandshake and SaslAuthenticate: the requests of a connection that is still
//! authenticating on a SASL listener (decoded here, judged by [`SaslServer`]), and Kafka's
//! ILLEGAL_SASL_STATE answer to either once a connection is authenticated or on a listener
//! without SASL.
//!
//! Knows the request and response bodies, nothing of sockets: the network layer reads the
//! frames, writes what [`step`] returns and closes the connection when told to.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{decode, dispatch, finish, parse, versions, Ctx, Outcome, Parsed, Session};
use crate::broker::Broker;
use crate::metadata::MetadataImage;
use crate::security::sasl::{SaslError, SaslServer, SaslStep, ScramContext};
use crate::security::scram::{self, CredentialSource, ScramCredential, ScramMechanism};

/// What the connection does after one request of the SASL exchange.
#[derive(Debug)]
pub(crate) enum AuthStep {
    /// Write the answer and read the next request.
    Continue(Outcome),
    /// Write the answer; the connection is now `principal`.
    Authenticated { answer: Outcome, principal: String },
    /// Write the answer if there is one, then close the connection.
    Refused { answer: Option<Outcome>, why: String },
}

fn refused(answer: Option<Outcome>, why: impl ToString) -> AuthStep {
    AuthStep::Refused {
        answer,
        why: why.to_string(),
    }
}

/// Runs one request frame of a connection that has not authenticated yet.
pub(crate) async fn step(broker: &Arc<Broker>, frame: Bytes, session: &Session, server: &mut SaslServer) -> AuthStep {
    let raw_key = frame.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]]));
    let api = raw_key.and_then(|k| ApiKey::try_from(k).ok());
    match api {
        Some(ApiKey::ApiVersions) => {
            // An unsupported version gets the KIP-511 answer and may be retried (Kafka stays in
            // its first state then); a served one counts as the connection's ApiVersions.
            let version = frame.get(2..4).map(|v| i16::from_be_bytes([v[0], v[1]]));
            let served = versions::supported(ApiKey::ApiVersions)
                .zip(version)
                .is_some_and(|(range, v)| range.min <= v && v <= range.max);
            if served {
                if let Err(e) = server.api_versions() {
                    return refused(None, e);
                }
            }
            match dispatch(broker, frame, session) {
                Ok(pending) => AuthStep::Continue(pending.await),
                Err(e) => refused(None, e),
            }
        }
        Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => match parse(broker, frame, session) {
            Ok(Parsed::Request(ctx, body)) => exchange(&ctx, body, server),
            Ok(Parsed::Answered(pending)) => AuthStep::Continue(pending.await),
            Err(e) => refused(None, e),
        },
        Some(other) => refused(None, server.unexpected(versions::name(other))),
        None => refused(None, server.unexpected(&format!("{raw_key:?}"))),
    }
}

/// A SaslHandshake or SaslAuthenticate before authentication is done.
fn exchange(ctx: &Ctx, mut body: Bytes, server: &mut SaslServer) -> AuthStep {
    match ctx.api {
        ApiKey::SaslHandshake => {
            let request: SaslHandshakeRequest = match decode(&mut body, ctx.version) {
                Ok(r) => r,
                Err(e) => return refused(None, e),
            };
            handshake(ctx, request, server)
        }
        _ => {
            let request: SaslAuthenticateRequest = match decode(&mut body, ctx.version) {
                Ok(r) => r,
                Err(e) => return refused(None, e),
            };
            authenticate(ctx, request, server)
        }
    }
}

fn handshake(ctx: &Ctx, request: SaslHandshakeRequest, server: &mut SaslServer) -> AuthStep {
    let result = server.handshake(request.mechanism.as_str());
    let mechanisms = server
        .enabled_mechanisms()
        .iter()
        .map(|m| StrBytes::from_string(m.clone()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    match result {
        Ok(()) => AuthStep::Continue(finish(ctx, &response)),
        // Kafka answers with the enabled mechanisms, then closes.
        Err(e @ SaslError::UnsupportedMechanism(_)) => {
            let answer = finish(ctx, &response.with_error_code(ctx.code(&e)));
            refused(Some(answer), e)
        }
        Err(e) => refused(None, e),
    }
}

/// SCRAM's view of this node's metadata: the credentials as last applied.
struct ImageCredentials(Arc<MetadataImage>);

impl CredentialSource for ImageCredentials {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.0.scram_credentials().credential(user, mechanism)
    }
}

impl ScramContext for ImageCredentials {
    fn server_nonce(&self) -> Option<String> {
        scram::random_nonce()
    }
}

fn authenticate(ctx: &Ctx, request: SaslAuthenticateRequest, server: &mut SaslServer) -> AuthStep {
    let credentials = ImageCredentials(ctx.broker.metadata.image());
    match server.authenticate(&request.auth_bytes, &credentials) {
        Ok(SaslStep::Challenge(bytes)) => AuthStep::Continue(finish(
            ctx,
            &SaslAuthenticateResponse::default().with_auth_bytes(bytes.into()),
        )),
        Ok(SaslStep::Complete { user, answer }) => AuthStep::Authenticated {
            answer: finish(ctx, &SaslAuthenticateResponse::default().with_auth_bytes(answer.into())),
            principal: format!("User:{user}"),
        },
        // Kafka answers with the reason, then closes.
        Err(e @ SaslError::AuthenticationFailed(_)) => {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ctx.code(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string())));
            refused(Some(finish(ctx, &response)), e)
        }
        Err(e) => refused(None, e),
    }
}

/// Kafka's answer to a SaslHandshake on an authenticated connection, or on a listener
/// without SASL.
pub(super) fn after_authentication_handshake() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

/// Kafka's answer to a SaslAuthenticate on an authenticated connection (re-authentication,
/// KIP-368, is not done), or on a listener without SASL.
pub(super) fn after_authentication_authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        )))
}
