//! Finding a record by timestamp inside one stored batch, streaming: the only place the broker
//! looks inside a batch (ListOffsets by time), so the only place it reads records.
//!
//! Owns: the walk over a records section. Each record is `length, attributes, timestampDelta,
//! offsetDelta, key, value, headers` (Kafka's v2 record); only the three leading varints are
//! read, the rest of each record is skipped by its length. The section is read through a
//! bounded decompressor (`compression`), so neither the expanded bytes nor the records are
//! ever held: memory stays at a codec's window whatever the batch claims. kafka-protocol's
//! record decoder builds every record in memory (a 6 KB zstd batch of 9 million empty records
//! took 1.6 GB through it), which is why this walk exists.

use std::io::{self, BufReader, Read};

use bytes::Bytes;

use super::batch::{BatchHeader, HEADER_BYTES};
use super::compression::{self, EXPANSION_MAX};
use super::error::LogError;

/// A batch that holds the first record at or after a timestamp, to be looked into (without
/// the log's lock: the bytes are the batch's own).
#[derive(Debug, Clone)]
pub(crate) struct BatchToSearch {
    pub(crate) header: BatchHeader,
    pub(crate) batch: Bytes,
}

/// (offset, timestamp) of the first record of `found.batch` whose timestamp is >= `timestamp`.
/// A batch that expands past its bound, or whose records end early, is answered at batch level
/// (its first offset and max timestamp), as a LogAppendTime batch is.
pub(crate) fn first_at_or_after(found: &BatchToSearch, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
    let header = &found.header;
    let batch_level = Some((header.base_offset, header.max_timestamp));
    if header.is_log_append_time() {
        return Ok(batch_level);
    }
    let codec = compression::codec(header.attributes & 0x7).map_err(|e| LogError::CorruptMessage(e.to_string()))?;
    let section = found.batch.get(HEADER_BYTES..).unwrap_or_default();
    let limit = header.size_bytes().max(1 << 20) * EXPANSION_MAX;
    let records =
        compression::decompressor(codec, section, limit).map_err(|e| LogError::CorruptMessage(e.to_string()))?;
    let mut r = BufReader::new(records);
    for _ in 0..header.records_count.max(0) {
        match next_record(&mut r) {
            Ok((timestamp_delta, offset_delta)) => {
                let ts = header.base_timestamp.wrapping_add(timestamp_delta);
                if ts >= timestamp {
                    return Ok(Some((header.base_offset + offset_delta, ts)));
                }
            }
            Err(e) => {
                tracing::debug!(base_offset = header.base_offset, error = %e, "timestamp lookup answered per batch");
                return Ok(batch_level);
            }
        }
    }
    Ok(batch_level)
}

/// Reads one record's (timestampDelta, offsetDelta) and skips the rest of it.
fn next_record(r: &mut impl Read) -> io::Result<(i64, i64)> {
    let length = varint(r)?;
    if length < 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "negative record length"));
    }
    let mut counted = Counted { inner: r, read: 0 };
    let mut attributes = [0u8; 1];
    counted.read_exact(&mut attributes)?;
    let timestamp_delta = varint(&mut counted)?;
    let offset_delta = varint(&mut counted)?;
    let rest = (length as u64)
        .checked_sub(counted.read)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "record shorter than its header"))?;
    let skipped = io::copy(&mut counted.inner.take(rest), &mut io::sink())?;
    if skipped != rest {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((timestamp_delta, offset_delta))
}

/// A zig-zag varint (Kafka's varint and varlong), at most 10 bytes.
fn varint(r: &mut impl Read) -> io::Result<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        raw |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "varint longer than 10 bytes",
    ))
}

/// Counts the bytes read through it.
struct Counted<'a, R> {
    inner: &'a mut R,
    read: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{encode, records};

    fn search(batch: Vec<u8>) -> BatchToSearch {
        let header = BatchHeader::parse(&batch).unwrap();
        BatchToSearch {
            header,
            batch: Bytes::from(batch),
        }
    }

    #[test]
    fn finds_the_first_record_at_or_after_in_every_codec() {
        for codec in crate::log::compression::ALL_CODECS {
            // Records at timestamps 100, 101, ... 104 (see testutil::records).
            let found = search(encode(&records(5, 100, 10), codec));
            assert_eq!(first_at_or_after(&found, 0).unwrap(), Some((0, 100)), "{codec:?}");
            assert_eq!(first_at_or_after(&found, 102).unwrap(), Some((2, 102)), "{codec:?}");
            assert_eq!(first_at_or_after(&found, 104).unwrap(), Some((4, 104)), "{codec:?}");
        }
    }

    #[test]
    fn varints_decode_as_kafka_writes_them() {
        for (bytes, value) in [
            (&[0x00][..], 0i64),
            (&[0x01], -1),
            (&[0x02], 1),
            (&[0xac, 0x02], 150),
            (&[0x7f], -64),
        ] {
            assert_eq!(varint(&mut &bytes[..]).unwrap(), value);
        }
        assert!(varint(&mut &[0xff; 11][..]).is_err());
    }
}
