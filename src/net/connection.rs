//! One client connection: a reader that decodes and dispatches frames one by one (so appends
//! happen in request order) and a writer that sends the responses in that same order, even
//! when an earlier one (a long-poll fetch) finishes later.
//!
//! At most `queued.max.requests` responses may be outstanding; past that the reader waits,
//! which stops reading the socket (back-pressure to the client).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::frame::read_frame;
use crate::api::{self, Outcome, Pending};
use crate::broker::Broker;

const READ_BUFFER_BYTES: usize = 64 * 1024;

pub(super) async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, shutdown: CancellationToken) {
    let metrics = broker.metrics.clone();
    metrics.connections_open.inc();
    debug!(%peer, "connection opened");
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Pending>(broker.settings.queued_max_requests as usize);
    // Cancelled by the writer when it can no longer write, so the reader stops too.
    let closed = CancellationToken::new();
    let reader = read_loop(
        BufReader::with_capacity(READ_BUFFER_BYTES, read_half),
        peer,
        &broker,
        tx,
        &shutdown,
        &closed,
    );
    let writer = write_loop(write_half, peer, rx, &closed);
    tokio::join!(reader, writer);
    metrics.connections_open.dec();
    debug!(%peer, "connection closed");
}

async fn read_loop(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    peer: SocketAddr,
    broker: &Arc<Broker>,
    tx: mpsc::Sender<Pending>,
    shutdown: &CancellationToken,
    closed: &CancellationToken,
) {
    let max = broker.settings.socket_request_max_bytes as usize;
    loop {
        let frame = tokio::select! {
            biased;
            _ = closed.cancelled() => return,
            _ = shutdown.cancelled() => return,
            f = read_frame(&mut reader, max) => f,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                info!(%peer, "closing connection: {e}");
                return;
            }
        };
        broker.metrics.bytes_in.inc_by(frame.len() as u64 + 4);
        match api::dispatch(broker, frame, peer) {
            Ok(pending) => {
                if tx.send(pending).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                info!(%peer, "closing connection: {e}");
                return;
            }
        }
    }
}

/// Writes responses in request order; returns when the reader is done and all are written.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Pending>,
    closed: &CancellationToken,
) {
    while let Some(pending) = rx.recv().await {
        match pending.await {
            Outcome::Send(mut frame) => {
                // One vectored write of the frame's chunks (header, record batches as read).
                if let Err(e) = writer.write_all_buf(&mut frame).await {
                    debug!(%peer, error = %e, "write failed");
                    break;
                }
            }
            Outcome::Nothing => {}
            Outcome::Close(why) => {
                warn!(%peer, "closing connection: {why}");
                break;
            }
        }
    }
    closed.cancel();
    let _ = writer.shutdown().await;
}
