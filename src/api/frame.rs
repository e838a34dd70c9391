//! A response frame as a list of byte chunks, so record batches read from a segment go to the
//! socket as the very `Bytes` the log handed out (one vectored write, no copy into a response
//! buffer), while everything else is encoded by kafka-protocol as usual.
//!
//! `SpliceBuf` is the buffer the encoder writes into: bytes are appended to the current chunk,
//! except a registered payload (a fetch's records), which becomes a chunk of its own. Message
//! encoders only append (the gap/seek API is used by the record batch encoder, never here).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Payloads shorter than this are copied: a separate chunk would cost more than the copy.
const SPLICE_MIN_BYTES: usize = 16 * 1024;

/// An encoded response frame: chunks to send back to back.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl Frame {
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Buf for Frame {
    fn remaining(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| &c[..])
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(self.chunks.iter()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }
}

/// What the encoder writes into; see the module comment.
#[derive(Debug)]
pub(crate) struct SpliceBuf {
    done: Frame,
    current: BytesMut,
    /// Offset of `current` in the whole frame.
    current_at: usize,
    payloads: Vec<Bytes>,
}

impl SpliceBuf {
    /// A buffer for a frame of about `size` bytes whose `payloads` (large `Bytes` fields of
    /// the response) are to be passed through rather than copied.
    pub(crate) fn new(size: usize, payloads: Vec<Bytes>) -> SpliceBuf {
        let spliced: usize = payloads
            .iter()
            .filter(|p| p.len() >= SPLICE_MIN_BYTES)
            .map(Bytes::len)
            .sum();
        SpliceBuf {
            done: Frame::default(),
            current: BytesMut::with_capacity(size.saturating_sub(spliced)),
            current_at: 0,
            payloads: payloads.into_iter().filter(|p| p.len() >= SPLICE_MIN_BYTES).collect(),
        }
    }

    fn cut(&mut self) {
        if !self.current.is_empty() {
            let chunk = self.current.split().freeze();
            self.current_at += chunk.len();
            self.done.chunks.push_back(chunk);
        }
    }

    pub(crate) fn finish(mut self) -> Frame {
        self.cut();
        self.done.len = self.current_at;
        self.done
    }
}

// SAFETY: every method delegates to the inner `BytesMut`, whose own `BufMut` implementation
// upholds the trait's contract (`chunk_mut` hands out its spare capacity, `advance_mut` marks
// bytes of it initialised); `put_slice` is overridden only to sometimes skip the copy.
#[allow(unsafe_code)]
unsafe impl BufMut for SpliceBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (cnt bytes of chunk_mut were initialised) is forwarded.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let registered = self
            .payloads
            .iter()
            .position(|p| p.as_ptr() == src.as_ptr() && p.len() == src.len());
        match registered {
            Some(i) => {
                let payload = self.payloads.swap_remove(i);
                self.cut();
                self.current_at += payload.len();
                self.done.chunks.push_back(payload);
            }
            None => self.current.extend_from_slice(src),
        }
    }
}

impl ByteBufMut for SpliceBuf {
    fn offset(&self) -> usize {
        self.current_at + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        // Only ever within the current chunk: message encoders do not seek (see module doc).
        let local = offset.saturating_sub(self.current_at);
        self.current.resize(local, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let start = r.start.saturating_sub(self.current_at);
        let end = r.end.saturating_sub(self.current_at);
        &mut self.current[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_payload_is_passed_through_and_the_rest_copied() {
        let payload = Bytes::from(vec![7u8; SPLICE_MIN_BYTES]);
        let mut buf = SpliceBuf::new(100, vec![payload.clone()]);
        buf.put_i32(5);
        buf.put_slice(&payload);
        buf.put_slice(&[1, 2, 3]);
        let mut frame = buf.finish();
        assert_eq!(frame.len(), 4 + SPLICE_MIN_BYTES + 3);
        assert_eq!(frame.chunks.len(), 3);
        assert_eq!(frame.chunks[1].as_ptr(), payload.as_ptr(), "not copied");
        let bytes = frame.copy_to_bytes(frame.remaining());
        assert_eq!(&bytes[..4], &5i32.to_be_bytes());
        assert_eq!(&bytes[bytes.len() - 3..], &[1, 2, 3]);
    }

    #[test]
    fn small_or_unregistered_slices_are_copied() {
        let small = Bytes::from_static(b"tiny");
        let mut buf = SpliceBuf::new(10, vec![small.clone()]);
        buf.put_slice(&small);
        buf.put_slice(&vec![1u8; SPLICE_MIN_BYTES]);
        assert_eq!(buf.finish().chunks.len(), 1);
    }
}
