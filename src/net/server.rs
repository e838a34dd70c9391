//! Accepting connections, with `max.connections` enforced at accept.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::connection::{self, RequestMemory};
use crate::broker::Broker;

/// Accepts connections until `shutdown`; each runs as its own task on `tracker`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let max = broker.settings.max_connections as i64;
    let memory = RequestMemory::new(broker.settings.queued_max_request_bytes);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                if broker.metrics.connections_open.get() >= max {
                    debug!(%peer, max, "connection refused: max.connections reached");
                    broker.metrics.connections_rejected.inc();
                    continue;
                }
                tracker.spawn(connection::serve(
                    stream,
                    peer,
                    broker.clone(),
                    memory.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning, and keep serving the open ones.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
