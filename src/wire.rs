//! Reading one size-prefixed frame from a peer (a Kafka client, or another node on the
//! controller listener): the size limit enforced before anything is held, memory that grows
//! only with the bytes that arrived, and an idle deadline on every read.
//!
//! A frame's buffer grows as its bytes come in (doubling from 64 KiB), so a client that
//! declares 100 MiB and sends ten bytes holds ten bytes' worth, not 100 MiB (a slow-loris
//! connection costs what it sent). Each read waits at most `connections.max.idle.ms`; the
//! caller decides whether a quiet connection is idle (nothing in flight) or just waiting for
//! its own long polls.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// First allocation for a frame body; it doubles as bytes arrive.
const FIRST_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("request frame of {size} bytes is over socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: usize },
    #[error("request frame with negative size {0}")]
    Negative(i32),
    #[error("connection closed in the middle of a request frame")]
    Truncated,
    #[error("no bytes for connections.max.idle.ms ({0} ms) with nothing in flight")]
    Idle(u128),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects to a peer (another node's controller listener, another broker) within `timeout`,
/// with Nagle off: the peers' messages are requests waiting for answers.
pub(crate) async fn connect(addr: &str, timeout: Duration) -> std::io::Result<tokio::net::TcpStream> {
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(connected) => connected?,
        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The size prefix of the next frame, checked against `max`; `Ok(None)` is a clean close
/// between frames.
pub(crate) async fn read_size<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle: &Idle<impl Fn() -> bool>,
) -> Result<Option<usize>, FrameError> {
    let mut size_buf = BytesMut::with_capacity(4);
    while size_buf.len() < 4 {
        let want = 4 - size_buf.len();
        if idle.read(reader, &mut size_buf, want).await? == 0 {
            return if size_buf.is_empty() {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
    }
    let size = i32::from_be_bytes([size_buf[0], size_buf[1], size_buf[2], size_buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size: size as i64, max });
    }
    Ok(Some(size))
}

/// The `size` bytes of a frame body, read into a buffer that grows with what arrived.
pub(crate) async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    size: usize,
    idle: &Idle<impl Fn() -> bool>,
) -> Result<Bytes, FrameError> {
    let mut body = Body::new(size);
    while !body.is_complete() {
        body.read_some(reader, idle).await?;
    }
    Ok(body.finish())
}

/// A frame body being read: a buffer that grows with what arrived (doubling from 64 KiB,
/// never past the declared size). Read piece by piece by a caller that accounts for memory
/// as it arrives (the connection charges what was received, never what was only declared).
#[derive(Debug)]
pub(crate) struct Body {
    buf: BytesMut,
    size: usize,
}

impl Body {
    pub(crate) fn new(size: usize) -> Body {
        Body {
            buf: BytesMut::with_capacity(size.min(FIRST_CHUNK_BYTES)),
            size,
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.buf.len() >= self.size
    }

    /// One read; returns how many bytes it brought (end of stream first is an error).
    pub(crate) async fn read_some<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        idle: &Idle<impl Fn() -> bool>,
    ) -> Result<usize, FrameError> {
        if self.buf.len() == self.buf.capacity() {
            let len = self.buf.len();
            self.buf.reserve((self.size - len).min(len.max(FIRST_CHUNK_BYTES)));
        }
        let want = (self.size - self.buf.len()).min(self.buf.capacity() - self.buf.len());
        match idle.read(reader, &mut self.buf, want).await? {
            0 => Err(FrameError::Truncated),
            n => Ok(n),
        }
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// The idle deadline of one connection: `connections.max.idle.ms` per read, waived while
/// `busy` says the client is waiting for responses of its own (a long poll, a join).
#[derive(Debug)]
pub(crate) struct Idle<B> {
    pub(crate) limit: Duration,
    pub(crate) busy: B,
}

impl<B: Fn() -> bool> Idle<B> {
    /// One read of at most `want` bytes into `buf`'s spare capacity; 0 at end of stream.
    async fn read<R: AsyncRead + Unpin>(
        &self,
        reader: &mut R,
        buf: &mut BytesMut,
        want: usize,
    ) -> Result<usize, FrameError> {
        loop {
            // `read_buf` is cancel-safe: a timed-out read has taken no bytes.
            let mut limited = (&mut *reader).take(want as u64);
            match tokio::time::timeout(self.limit, limited.read_buf(buf)).await {
                Ok(n) => return Ok(n?),
                Err(_) if (self.busy)() => continue,
                Err(_) => return Err(FrameError::Idle(self.limit.as_millis())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never_busy() -> Idle<fn() -> bool> {
        Idle {
            limit: Duration::from_secs(5),
            busy: || false,
        }
    }

    async fn read_frame(r: &mut &[u8], max: usize) -> Result<Option<Bytes>, FrameError> {
        let idle = never_busy();
        match read_size(r, max, &idle).await? {
            Some(size) => Ok(Some(read_body(r, size, &idle).await?)),
            None => Ok(None),
        }
    }

    #[tokio::test]
    async fn reads_frames_back_to_back_and_eof_between_them() {
        let data: Vec<u8> = [&[0, 0, 0, 2, 7, 8][..], &[0, 0, 0, 0]].concat();
        let mut r = &data[..];
        assert_eq!(&read_frame(&mut r, 100).await.unwrap().unwrap()[..], &[7, 8]);
        assert!(read_frame(&mut r, 100).await.unwrap().unwrap().is_empty());
        assert!(read_frame(&mut r, 100).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_negative_and_truncated_frames_are_errors() {
        let mut r: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            read_frame(&mut r, 255).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut r, 255).await, Err(FrameError::Negative(-1))));
        let mut r: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(matches!(read_frame(&mut r, 255).await, Err(FrameError::Truncated)));
        let mut r: &[u8] = &[0, 0];
        assert!(matches!(read_frame(&mut r, 255).await, Err(FrameError::Truncated)));
    }

    #[tokio::test]
    async fn a_large_frame_arrives_whole_through_a_growing_buffer() {
        let size = 5 * FIRST_CHUNK_BYTES + 17;
        let mut data = (size as i32).to_be_bytes().to_vec();
        data.extend((0..size).map(|i| i as u8));
        let mut r = &data[..];
        let frame = read_frame(&mut r, 1 << 30).await.unwrap().unwrap();
        assert_eq!(frame.len(), size);
        assert!(frame.iter().enumerate().all(|(i, b)| *b == i as u8));
    }

    #[tokio::test]
    async fn a_declared_size_that_never_arrives_holds_only_what_came() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, &[1, 0, 0, 0, 9, 9, 9])
            .await
            .unwrap();
        let idle = Idle {
            limit: Duration::from_millis(100),
            busy: || false,
        };
        let size = read_size(&mut server, usize::MAX, &idle).await.unwrap().unwrap();
        assert_eq!(size, 1 << 24);
        assert!(matches!(
            read_body(&mut server, size, &idle).await,
            Err(FrameError::Idle(100))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_connection_waiting_for_its_own_responses_is_not_idle() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let busy = std::sync::atomic::AtomicBool::new(true);
        let idle = Idle {
            limit: Duration::from_millis(100),
            busy: || busy.load(std::sync::atomic::Ordering::Relaxed),
        };
        let writer = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            tokio::io::AsyncWriteExt::write_all(&mut client, &[0, 0, 0, 1, 42])
                .await
                .unwrap();
        };
        let (size, ()) = tokio::join!(read_size(&mut server, 100, &idle), writer);
        assert_eq!(size.unwrap(), Some(1));
    }
}
