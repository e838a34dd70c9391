//! SASL listeners end to end, in-process: Kafka's order (ApiVersions, SaslHandshake v1,
//! SaslAuthenticate), its refusals, and the endpoint a client is told for this node.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// A broker with a PLAINTEXT listener and a SASL_PLAINTEXT one (users alice and bob), and a
/// client connected to the SASL one.
async fn sasl_broker() -> (TestBroker, Client, u16) {
    let broker = TestBroker::start(&[
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.plain.users=alice:alice-secret,bob:bob-secret",
    ])
    .await;
    let sasl = broker.server.as_ref().unwrap().kafka_addrs[1];
    (broker, Client::connect(sasl).await, sasl.port())
}

async fn handshake(c: &mut Client, mechanism: &'static str) -> SaslHandshakeResponse {
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    c.send(1, &req).await
}

async fn authenticate(c: &mut Client, token: &'static [u8]) -> SaslAuthenticateResponse {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(token));
    c.send(2, &req).await
}

#[tokio::test]
async fn plain_authenticated_client_is_served_and_told_the_sasl_endpoint() {
    let (_broker, mut c, port) = sasl_broker().await;
    assert_eq!(c.send(3, &ApiVersionsRequest::default()).await.error_code, 0);
    let hs = handshake(&mut c, "PLAIN").await;
    assert_eq!(hs.error_code, 0);
    assert_eq!(hs.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    assert_eq!(authenticate(&mut c, b"\0alice\0alice-secret").await.error_code, 0);
    let md = c.send(12, &MetadataRequest::default()).await;
    assert_eq!(
        md.brokers.iter().map(|b| b.port).collect::<Vec<_>>(),
        vec![i32::from(port)]
    );
    // Re-authentication is not served: Kafka's answer once authenticated.
    let again = authenticate(&mut c, b"\0alice\0alice-secret").await;
    assert_eq!(again.error_code, ResponseError::IllegalSaslState.code());
}

#[tokio::test]
async fn wrong_password_is_answered_then_closed() {
    let (_broker, mut c, _) = sasl_broker().await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    let asked = std::time::Instant::now();
    let resp = authenticate(&mut c, b"\0alice\0bob-secret").await;
    // connection.failed.authentication.delay.ms (100 by default) before the answer.
    assert!(asked.elapsed() >= std::time::Duration::from_millis(100));
    assert_eq!(resp.error_code, ResponseError::SaslAuthenticationFailed.code());
    assert_eq!(
        resp.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn unsupported_mechanism_is_answered_with_the_enabled_ones_then_closed() {
    let (_broker, mut c, _) = sasl_broker().await;
    let hs = handshake(&mut c, "SCRAM-SHA-512").await;
    assert_eq!(hs.error_code, ResponseError::UnsupportedSaslMechanism.code());
    assert_eq!(hs.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn a_request_before_authentication_closes_the_connection() {
    let (_broker, mut c, _) = sasl_broker().await;
    let frame = c.frame(12, &MetadataRequest::default());
    c.send_raw(&frame).await;
    assert!(c.is_closed().await);
    let (_broker, mut c, _) = sasl_broker().await;
    let frame = c.frame(2, &SaslAuthenticateRequest::default());
    c.send_raw(&frame).await;
    assert!(c.is_closed().await, "a token before the handshake is an illegal state");
}

#[tokio::test]
async fn the_plaintext_listener_answers_sasl_requests_with_illegal_state() {
    let (broker, _, _) = sasl_broker().await;
    let mut c = broker.client().await;
    assert_eq!(
        handshake(&mut c, "PLAIN").await.error_code,
        ResponseError::IllegalSaslState.code()
    );
    let md = c.send(12, &MetadataRequest::default()).await;
    assert_eq!(md.brokers[0].port, i32::from(broker.addr.port()));
}
