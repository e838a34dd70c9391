//! The byte streams a connection runs over, behind one trait: a plain `TcpStream` (split into
//! its owned halves, so the writer keeps its vectored writes of record batches straight from
//! the log's memory, as before) or a TLS stream over one (split with a lock between the halves;
//! TLS copies every byte through the cipher anyway).
//!
//! Measured (bench/README.md, "TLS: a partial run"): the lock between the TLS halves is never
//! contended, as a connection's reader and writer run in one task; the writer sends full
//! 16 KiB TLS records, 64 KiB per `writev`; rustls reads the socket 4 KiB at a time, and a
//! 64 KiB buffer under it cut those reads 3.6-fold without changing CPU or throughput, so
//! there is none (it would cost 64 KiB per connection).
//!
//! Owns the TLS handshake of an accepted socket, bounded in time, and the principal of the
//! client certificate it brought; never reads a Kafka frame.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::api::Session;
use crate::security::ssl_principal::{subject_dn, PrincipalError, SslPrincipalMapper};

/// Longest a client may take to finish its TLS handshake.
pub(super) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's stream, before and after it is split into a reader and a writer.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    type Read: AsyncRead + Unpin + Send + 'static;
    type Write: AsyncWrite + Unpin + Send + 'static;
    fn into_halves(self) -> (Self::Read, Self::Write);
}

impl Transport for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;
    fn into_halves(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

impl Transport for TlsStream<TcpStream> {
    type Read = ReadHalf<TlsStream<TcpStream>>;
    type Write = WriteHalf<TlsStream<TcpStream>>;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// Kafka's principal on an SSL listener: `User:` and the client certificate's subject DN
/// through `ssl.principal.mapping.rules`; ANONYMOUS when the client sent no certificate
/// (`ssl.client.auth=requested` or `none`) or the listener maps none (SASL_SSL, where the SASL
/// identity is the principal).
pub(super) fn certificate_principal(
    tls: &TlsStream<TcpStream>,
    mapper: Option<&SslPrincipalMapper>,
) -> Result<Arc<str>, PrincipalError> {
    let leaf = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first());
    let (Some(leaf), Some(mapper)) = (leaf, mapper) else {
        return Ok(Session::ANONYMOUS.into());
    };
    let dn = subject_dn(leaf)?;
    Ok(format!("User:{}", mapper.name(&dn)?).into())
}

/// Runs the server side of the TLS handshake, within [`TLS_HANDSHAKE_TIMEOUT`].
pub(super) async fn accept_tls(acceptor: &TlsAcceptor, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(accepted) => accepted,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
