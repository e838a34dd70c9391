//! The broker-to-broker Kafka client: one connection to another broker's listener, carrying
//! the requests brokers send each other (a follower's Fetch to its leader, ListOffsets when it
//! fell out of range). Requests and responses are encoded by the kafka-protocol crate; a
//! response frame is read through the same bounded reader as client requests (`wire`), so a
//! misbehaving peer cannot make this broker allocate more than it sent, nor hang it.
//!
//! Owns: the socket and the correlation ids. Must never: retry on its own (the caller decides,
//! with its back-off), or keep a connection after an error (it is dropped and reopened).

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::wire::{connect, read_body, read_size, Idle};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame from the peer: {0}")]
    Frame(String),
    #[error("cannot encode or decode: {0}")]
    Codec(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answer to another request (correlation id {got}, expected {expected})")]
    Mismatch { got: i32, expected: i32 },
}

/// One connection to a peer broker, opened on first use and dropped on any error.
#[derive(Debug)]
pub(crate) struct PeerClient {
    addr: String,
    client_id: StrBytes,
    stream: Option<TcpStream>,
    next_correlation_id: i32,
    /// Largest response frame accepted (a fetch response is bounded by what was asked for).
    max_response_bytes: usize,
}

impl PeerClient {
    pub(crate) fn new(addr: String, client_id: String, max_response_bytes: usize) -> PeerClient {
        PeerClient {
            addr,
            client_id: StrBytes::from_string(client_id),
            stream: None,
            next_correlation_id: 0,
            max_response_bytes,
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` at `version` and waits at most `timeout` for its response.
    pub(crate) async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let result = tokio::time::timeout(timeout, self.exchange(version, request)).await;
        let result = result.unwrap_or(Err(PeerError::Timeout(timeout)));
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response, PeerError> {
        self.connect_if_needed().await?;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let correlation_id = self.next_correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let frame = encode_request(&header, request, version)?;
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| PeerError::Frame("no connection".into()))?;
        stream.write_all(&frame).await?;
        let idle = Idle {
            limit: Duration::MAX,
            busy: || false,
        };
        let size = read_size(stream, self.max_response_bytes, &idle)
            .await
            .map_err(|e| PeerError::Frame(e.to_string()))?
            .ok_or_else(|| PeerError::Frame("connection closed".into()))?;
        let mut body = read_body(stream, size, &idle)
            .await
            .map_err(|e| PeerError::Frame(e.to_string()))?;
        let response_header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| PeerError::Codec(e.to_string()))?;
        if response_header.correlation_id != correlation_id {
            return Err(PeerError::Mismatch {
                got: response_header.correlation_id,
                expected: correlation_id,
            });
        }
        R::Response::decode(&mut body, version).map_err(|e| PeerError::Codec(e.to_string()))
    }

    async fn connect_if_needed(&mut self) -> Result<(), PeerError> {
        if self.stream.is_some() {
            return Ok(());
        }
        let stream = connect(&self.addr, CONNECT_TIMEOUT)
            .await
            .map_err(|source| PeerError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        self.stream = Some(stream);
        Ok(())
    }
}

fn encode_request<R: Request>(header: &RequestHeader, request: &R, version: i16) -> Result<BytesMut, PeerError> {
    let codec = |e: anyhow::Error| PeerError::Codec(e.to_string());
    let header_version = R::header_version(version);
    let size = header.compute_size(header_version).map_err(codec)? + request.compute_size(version).map_err(codec)?;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(i32::try_from(size).map_err(|e| PeerError::Codec(e.to_string()))?);
    header.encode(&mut frame, header_version).map_err(codec)?;
    request.encode(&mut frame, version).map_err(codec)?;
    Ok(frame)
}
