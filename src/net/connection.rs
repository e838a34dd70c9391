//! One client connection: a reader that decodes and dispatches frames one by one (so appends
//! happen in request order) and a writer that sends the responses in that same order, even
//! when an earlier one (a long-poll fetch) finishes later.
//!
//! What a connection may hold is bounded: at most `queued.max.requests` requests in flight
//! (past that the reader waits, which stops reading the socket: back-pressure to the client),
//! each charged against the broker-wide request memory ([`RequestMemory`]) for the bytes that
//! arrived, as they arrive, until its response is written, and no more than
//! `connections.max.idle.ms` of silence while nothing is in flight. A request that declares a
//! large size and sends little holds only what it sent: it cannot starve the others.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::authenticate::authenticate;
use super::server::SecuredListener;
use super::stream::{self, Transport};
use crate::api::{self, Outcome, Pending, Session};
use crate::broker::Broker;
use crate::wire::{read_size, Body, FrameError, Idle};

const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Least a request is charged against the request memory, whatever its size: what a parked
/// request costs beyond its frame (its decoded form, its waker, its response), so a flood of
/// tiny long polls is bounded as surely as a few huge produces.
const MIN_REQUEST_CHARGE_BYTES: usize = 1024;

/// `queued.max.request.bytes`: the bytes of requests the whole broker holds, from reading
/// their size until their response is written. A connection whose next request does not fit
/// waits (its socket is not read) until others finish. Unbounded when the setting is -1.
#[derive(Debug, Clone)]
pub(crate) struct RequestMemory {
    pool: Option<Arc<Semaphore>>,
    total: usize,
}

impl RequestMemory {
    pub(crate) fn new(max_bytes: i64) -> RequestMemory {
        let total = usize::try_from(max_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        RequestMemory {
            pool: (max_bytes >= 0).then(|| Arc::new(Semaphore::new(total))),
            total,
        }
    }

    /// Adds `bytes` to what `held` charges, waiting until they fit; a request's charge never
    /// passes the whole pool (one request as large as the pool still goes through, alone).
    async fn charge(&self, held: &mut Option<OwnedSemaphorePermit>, bytes: usize) {
        let Some(pool) = self.pool.as_ref() else {
            return;
        };
        let already = held.as_ref().map_or(0, |p| p.num_permits());
        let more = bytes.min(self.total.saturating_sub(already));
        if more == 0 {
            return;
        }
        let permits = u32::try_from(more).unwrap_or(u32::MAX);
        if let Ok(p) = pool.clone().acquire_many_owned(permits).await {
            match held {
                Some(h) => h.merge(p),
                None => *held = Some(p),
            }
        }
    }
}

/// A dispatched request on its way to the writer, with what it holds of the request memory.
struct InFlight {
    response: Pending,
    _charge: Option<OwnedSemaphorePermit>,
}

/// Serves one accepted socket: the TLS handshake on a TLS listener, then [`serve`].
pub(super) async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<SecuredListener>,
    broker: Arc<Broker>,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    let metrics = broker.metrics.clone();
    metrics.connections_open.inc();
    debug!(%peer, listener = %listener.endpoint.name, "connection opened");
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    match &listener.tls {
        None => {
            serve(
                stream,
                peer,
                &listener,
                Session::ANONYMOUS.into(),
                broker,
                memory,
                shutdown,
            )
            .await
        }
        Some(acceptor) => match stream::accept_tls(acceptor, stream).await {
            Ok(tls) => match stream::certificate_principal(&tls, listener.ssl_principal.as_deref()) {
                Ok(principal) => {
                    debug!(%peer, %principal, "authenticated over TLS");
                    serve(tls, peer, &listener, principal, broker, memory, shutdown).await
                }
                // Kafka closes the connection too when no mapping rule applies to the DN.
                Err(e) => info!(%peer, "closing connection: SSL authentication failed: {e}"),
            },
            // A plaintext client on a TLS port, a certificate the client refused, a timeout.
            Err(e) => info!(%peer, "closing connection: TLS handshake failed: {e}"),
        },
    }
    metrics.connections_open.dec();
    debug!(%peer, "connection closed");
}

/// Serves one connection over its stream: SASL authentication first on a SASL listener (its
/// identity replaces `principal`, the TLS one), then requests until either side closes.
#[allow(clippy::too_many_arguments)] // The connection's parts, handed over once.
async fn serve<S: Transport>(
    mut stream: S,
    peer: SocketAddr,
    listener: &SecuredListener,
    principal: Arc<str>,
    broker: Arc<Broker>,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    let mut session = Session {
        peer,
        endpoint: Some(listener.endpoint.clone()),
        principal,
        append_order: Default::default(),
        throttle: Default::default(),
    };
    if let Some(sasl) = &listener.sasl {
        let authenticated = tokio::select! {
            _ = shutdown.cancelled() => None,
            p = authenticate(&mut stream, &broker, &session, sasl.clone()) => p,
        };
        let Some(principal) = authenticated else {
            return;
        };
        debug!(%peer, %principal, "authenticated");
        session.principal = principal.into();
    }
    let (read_half, write_half) = stream.into_halves();
    let (tx, rx) = mpsc::channel::<InFlight>(broker.settings.queued_max_requests as usize);
    // Requests dispatched and not yet answered on the wire: a connection waiting for them is
    // not idle.
    let in_flight = Arc::new(AtomicUsize::new(0));
    // Cancelled by the writer when it can no longer write, so the reader stops too.
    let closed = CancellationToken::new();
    let reader = read_loop(
        BufReader::with_capacity(READ_BUFFER_BYTES, read_half),
        &session,
        &broker,
        memory,
        tx,
        &in_flight,
        &shutdown,
        &closed,
    );
    let writer = write_loop(write_half, peer, rx, &in_flight, &closed);
    tokio::join!(reader, writer);
    debug!(%peer, principal = %session.principal, "session ended");
}

#[allow(clippy::too_many_arguments)] // The connection's parts, handed over once.
async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    session: &Session,
    broker: &Arc<Broker>,
    memory: RequestMemory,
    tx: mpsc::Sender<InFlight>,
    in_flight: &AtomicUsize,
    shutdown: &CancellationToken,
    closed: &CancellationToken,
) {
    let peer = session.peer;
    let max = broker.settings.socket_request_max_bytes as usize;
    let idle = Idle {
        limit: Duration::from_millis(broker.settings.connections_max_idle_ms as u64),
        busy: || in_flight.load(Ordering::Relaxed) > 0,
    };
    let read_one = async |reader: &mut BufReader<_>| -> Result<Option<InFlight>, FrameError> {
        // A client over its quota is muted (Kafka's throttled channel): its next request waits.
        let muted_ms = session.throttle.remaining_ms(crate::clock::now_ms().max(0) as u64);
        if muted_ms > 0 {
            tokio::time::sleep(Duration::from_millis(muted_ms)).await;
        }
        let Some(size) = read_size(reader, max, &idle).await? else {
            return Ok(None);
        };
        // A request is charged at least the minimum from its first byte (what it costs parked),
        // then every byte beyond it as it arrives.
        let mut charge = None;
        memory.charge(&mut charge, MIN_REQUEST_CHARGE_BYTES).await;
        let mut body = Body::new(size);
        let mut arrived = 0;
        while !body.is_complete() {
            arrived += body.read_some(reader, &idle).await?;
            let held = charge.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
            memory.charge(&mut charge, arrived.saturating_sub(held)).await;
        }
        let frame = body.finish();
        broker.metrics.bytes_in.inc_by(size as u64 + 4);
        match api::dispatch(broker, frame, session) {
            Ok(response) => Ok(Some(InFlight {
                response,
                _charge: charge,
            })),
            Err(e) => {
                info!(%peer, "closing connection: {e}");
                Ok(None)
            }
        }
    };
    loop {
        let next = tokio::select! {
            biased;
            _ = closed.cancelled() => return,
            _ = shutdown.cancelled() => return,
            r = read_one(&mut reader) => r,
        };
        let request = match next {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                info!(%peer, "closing connection: {e}");
                return;
            }
        };
        in_flight.fetch_add(1, Ordering::Relaxed);
        if tx.send(request).await.is_err() {
            return;
        }
    }
}

/// Writes responses in request order; returns when the reader is done and all are written.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<InFlight>,
    in_flight: &AtomicUsize,
    closed: &CancellationToken,
) {
    while let Some(request) = rx.recv().await {
        let outcome = request.response.await;
        in_flight.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            Outcome::Send(mut frame) => {
                // One vectored write of the frame's chunks (header, record batches as read).
                // The flush is free on a plain socket; TLS may hold the last record until it.
                if let Err(e) = writer.write_all_buf(&mut frame).await.and(writer.flush().await) {
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
