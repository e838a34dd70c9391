//! Reading one size-prefixed request frame, with the size limit enforced before allocating.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub(super) enum FrameError {
    #[error("request frame of {size} bytes is over socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: usize },
    #[error("request frame with negative size {0}")]
    Negative(i32),
    #[error("connection closed in the middle of a request frame")]
    Truncated,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the next frame. `Ok(None)` is a clean close between frames.
pub(super) async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Option<Bytes>, FrameError> {
    let mut size_buf = [0u8; 4];
    match reader.read_exact(&mut size_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size_buf);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size: size as i64, max });
    }
    // Filled with read_buf rather than zeroed and read_exact'd: no pass over the memory twice.
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let want = (size - buf.len()) as u64;
        if (&mut *reader).take(want).read_buf(&mut buf).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
