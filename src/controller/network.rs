//! The controller's wire: Raft RPCs and forwarded controller commands between nodes, over TCP
//! on the controller listener. Each message is a u32 big-endian length and a JSON body; one
//! request is answered before the next is read on a connection.
//!
//! JSON rather than the Kafka protocol because openraft's messages are its own (serde-derived)
//! types; the metadata log is small, so the encoding cost does not matter.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::commands::{Command, CommandError, Reply};
use super::contacts::{self, Contacts};
use super::{Controller, TypeConfig};
use crate::clock::now_ms;
use crate::wire::{read_body, FrameError, Idle};

type NodeId = u64;

/// Larger frames are refused: a snapshot chunk is a few MiB at most.
const MAX_FRAME: u32 = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Command(Command),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Command(Result<Reply, CommandError>),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(u32),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered with the wrong kind of message")]
    Mismatch,
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, message: &T) -> Result<(), WireError> {
    let body = serde_json::to_vec(message)?;
    let len = u32::try_from(body.len()).map_err(|_| WireError::TooLarge(u32::MAX))?;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    Ok(())
}

/// Reads one message; its buffer grows with the bytes that arrive (a peer that declares 64 MiB
/// and stalls holds what it sent), and a peer silent for `idle` is dropped.
async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream, idle: Duration) -> Result<T, WireError> {
    let len = match tokio::time::timeout(idle, stream.read_u32()).await {
        Ok(len) => len?,
        Err(_) => return Err(WireError::Timeout(idle)),
    };
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let idle = Idle {
        limit: idle,
        busy: || false,
    };
    let body = read_body(stream, len as usize, &idle).await.map_err(|e| match e {
        FrameError::Io(e) => WireError::Io(e),
        other => WireError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            other.to_string(),
        )),
    })?;
    Ok(serde_json::from_slice(&body)?)
}

/// Whether `body` decodes as a message of the controller listener (for the fuzz target).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_request(body: &[u8]) -> bool {
    serde_json::from_slice::<Request>(body).is_ok()
}

/// One connection to a peer, opened on first use and dropped on any error (reopened next call).
#[derive(Debug)]
pub(crate) struct Connection {
    addr: String,
    stream: Option<TcpStream>,
}

impl Connection {
    pub(crate) fn new(addr: String) -> Connection {
        Connection { addr, stream: None }
    }

    pub(crate) async fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, WireError> {
        let result = tokio::time::timeout(timeout, self.exchange(request)).await;
        let result = result.unwrap_or(Err(WireError::Timeout(timeout)));
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, request: &Request) -> Result<Response, WireError> {
        if self.stream.is_none() {
            let stream = crate::wire::connect(&self.addr, CONNECT_TIMEOUT)
                .await
                .map_err(|source| WireError::Connect {
                    addr: self.addr.clone(),
                    source,
                })?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().ok_or(WireError::Mismatch)?;
        write_frame(stream, request).await?;
        // `call` bounds the whole exchange; the idle limit here only needs to exceed it.
        read_frame(stream, Duration::MAX).await
    }
}

/// Makes openraft's per-peer clients, which record when each peer answered (`contacts`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Network {
    pub(crate) contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            conn: Connection::new(node.addr.clone()),
            contacts: self.contacts.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct PeerClient {
    target: NodeId,
    conn: Connection,
    contacts: Arc<Contacts>,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;
/// Picks the expected answer out of a response (None: the peer answered something else).
type Unpack<T, E> = fn(Response) -> Option<Result<T, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn send<T, E>(&mut self, request: Request, option: &RPCOption, unpack: Unpack<T, E>) -> RpcResult<T, E>
    where
        E: std::error::Error,
    {
        match self.conn.call(&request, option.hard_ttl()).await {
            Ok(response) => match unpack(response) {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(RPCError::RemoteError(openraft::error::RemoteError::new(self.target, e))),
                None => Err(RPCError::Network(NetworkError::new(&WireError::Mismatch))),
            },
            // A peer that is down: openraft backs off instead of retrying at full speed.
            Err(e @ WireError::Connect { .. }) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let (log_end, sent_end) = (self.contacts.log_end(), contacts::sent_end(&rpc));
        let answer = self
            .send(Request::Append(rpc), &option, |r| match r {
                Response::Append(v) => Some(v),
                _ => None,
            })
            .await;
        if let Ok(response) = &answer {
            let held = contacts::held_after(sent_end, response);
            self.contacts.answered(self.target, held, log_end, now_ms());
        }
        answer
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.send(Request::Snapshot(rpc), &option, |r| match r {
            Response::Snapshot(v) => Some(v),
            _ => None,
        })
        .await
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        self.send(Request::Vote(rpc), &option, |r| match r {
            Response::Vote(v) => Some(v),
            _ => None,
        })
        .await
    }
}

/// Serves the controller listener until shutdown: Raft RPCs go to the local Raft node,
/// commands to the local controller (which refuses them unless it is the active one).
pub(crate) async fn serve(listener: TcpListener, controller: Arc<Controller>, shutdown: CancellationToken) {
    // `max.connections` holds for this listener too: every connection is a task and a buffer.
    let slots = Arc::new(Semaphore::new(controller.settings.max_connections as usize));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    debug!(%peer, "controller connection refused: max.connections reached");
                    continue;
                };
                let controller = controller.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        r = serve_connection(stream, &controller) => match r {
                            // Not a Sluice peer (or a broken one): say so once, keep serving the rest.
                            Err(e @ (WireError::Decode(_) | WireError::TooLarge(_))) => {
                                warn!(%peer, error = %e, "controller listener: bad message, connection closed");
                            }
                            Err(e) => debug!(%peer, error = %e, "controller connection closed"),
                            Ok(()) => {}
                        }
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, controller: &Controller) -> Result<(), WireError> {
    let idle = Duration::from_millis(controller.settings.connections_max_idle_ms as u64);
    stream.set_nodelay(true)?;
    loop {
        let request: Request = match read_frame(&mut stream, idle).await {
            Ok(r) => r,
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let raft = &controller.raft;
        let response = match request {
            Request::Append(rpc) => Response::Append(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
            Request::Snapshot(rpc) => Response::Snapshot(raft.install_snapshot(rpc).await),
            Request::Command(c) => Response::Command(controller.execute(c).await),
        };
        write_frame(&mut stream, &response).await?;
    }
}
