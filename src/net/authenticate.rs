//! The SASL phase of a connection on a SASL_PLAINTEXT or SASL_SSL listener: before anything
//! else, requests are read one at a time (no pipelining: a client waits for each answer),
//! each frame no larger than `sasl.server.max.receive.size`, handed to `api::sasl::step`,
//! and answered, until the client has authenticated or is refused.
//!
//! Owns only the loop and the close; the decisions are `security::sasl`'s, the codec `api`'s.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::info;

use crate::api::sasl::{step, AuthStep};
use crate::api::{Outcome, Session};
use crate::broker::Broker;
use crate::security::sasl::{SaslConfig, SaslServer};
use crate::wire::{read_body, read_size, Idle};

/// Most requests a connection may send before it has authenticated (ApiVersions, handshake,
/// tokens): a bound on the loop, far above what any mechanism needs.
const MAX_AUTHENTICATION_REQUESTS: usize = 16;

/// Authenticates the connection; the principal, or None when it must be closed (any answer
/// owed was written first).
pub(super) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    broker: &Arc<Broker>,
    session: &Session,
    config: Arc<SaslConfig>,
) -> Option<String> {
    let mut server = SaslServer::new(config);
    let max = broker.settings.sasl_server_max_receive_size as usize;
    let idle = Idle {
        limit: Duration::from_millis(broker.settings.connections_max_idle_ms as u64),
        busy: || false,
    };
    let peer = session.peer;
    let failure_delay = Duration::from_millis(broker.settings.connection_failed_authentication_delay_ms as u64);
    for _ in 0..MAX_AUTHENTICATION_REQUESTS {
        let frame = match read_size(stream, max, &idle).await {
            Ok(Some(size)) => read_body(stream, size, &idle).await,
            Ok(None) => return None,
            Err(e) => Err(e),
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                info!(%peer, "closing connection during SASL authentication: {e}");
                return None;
            }
        };
        match step(broker, frame, session, &mut server).await {
            AuthStep::Continue(answer) => write(stream, answer).await.ok()?,
            AuthStep::Authenticated { answer, principal } => {
                write(stream, answer).await.ok()?;
                broker
                    .metrics
                    .sasl_authentications
                    .with_label_values(&["success", server.mechanism()])
                    .inc();
                return Some(principal);
            }
            AuthStep::Refused { answer, why } => {
                broker
                    .metrics
                    .sasl_authentications
                    .with_label_values(&["failure", server.mechanism()])
                    .inc();
                info!(%peer, "closing connection: SASL authentication failed: {why}");
                if let Some(answer) = answer {
                    // As Kafka: a refused client gets its answer (and the close) only after
                    // connection.failed.authentication.delay.ms.
                    tokio::time::sleep(failure_delay).await;
                    let _ = write(stream, answer).await;
                }
                let _ = stream.shutdown().await;
                return None;
            }
        }
    }
    info!(%peer, "closing connection: no SASL authentication after {MAX_AUTHENTICATION_REQUESTS} requests");
    None
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, answer: Outcome) -> std::io::Result<()> {
    match answer {
        Outcome::Send(mut frame) => {
            stream.write_all_buf(&mut frame).await?;
            stream.flush().await
        }
        Outcome::Nothing => Ok(()),
        Outcome::Close(_) => Err(std::io::ErrorKind::InvalidData.into()),
    }
}
