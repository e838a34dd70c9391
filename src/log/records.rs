//! Looking inside one stored or produced batch, streaming: the walk over its records that
//! the broker uses where it must see them (ListOffsets by time, the keys and timestamps a
//! topic's policy checks on append, the log cleaner's keys), and the timestamp search built
//! on it.
//!
//! Owns: the walk over a records section. Each record is `length, attributes, timestampDelta,
//! offsetDelta, key, value, headers` (Kafka's v2 record); the walk reads the leading fields
//! and the key when asked, and skips the rest of each record by its length. The section is
//! read through a bounded decompressor (`compression`), so neither the expanded bytes nor the
//! records are ever held: memory stays at a codec's window (plus one key) whatever the batch
//! claims. kafka-protocol's record decoder builds every record in memory (a 6 KB zstd batch of
//! 9 million empty records took 1.6 GB through it), which is why this walk exists. Must never:
//! allocate a length a record states before its bytes have arrived.

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

/// One record as the walk sees it.
#[derive(Debug)]
pub(crate) struct RecordView<'a> {
    /// Its position in the batch (Kafka's record-error "batch index").
    pub(crate) index: usize,
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i64,
    /// Its key, if the walk reads keys and the record has one (`Some(&[])`: an empty key,
    /// which counts as a key).
    pub(crate) key: Option<&'a [u8]>,
    /// Whether the record has a key (also when keys are not read).
    pub(crate) has_key: bool,
    /// A null value: a tombstone on a compacted topic.
    pub(crate) has_value: bool,
    /// The record's bytes exactly as stored (length prefix included), if the walk reads them.
    pub(crate) raw: &'a [u8],
}

/// How much of each record a walk reads: the leading fields, also the key, or the whole
/// record as stored (what the cleaner copies into a rebuilt batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    Fields,
    Keys,
    Raw,
}

/// Walks the records of `batch` (one whole batch, header included), calling `visit` for each
/// until it returns false. Fails if the records are malformed, end before `recordsCount`, or
/// expand past their bound.
pub(crate) fn walk_records(
    header: &BatchHeader,
    batch: &[u8],
    detail: Detail,
    mut visit: impl FnMut(&RecordView<'_>) -> bool,
) -> io::Result<()> {
    let codec = compression::codec(header.attributes & 0x7)?;
    let section = batch.get(HEADER_BYTES..).unwrap_or_default();
    let limit = header.size_bytes().max(1 << 20) * EXPANSION_MAX;
    let mut r = BufReader::new(compression::decompressor(codec, section, limit)?);
    let mut scratch = Scratch::default();
    for index in 0..header.records_count.max(0) as usize {
        let fields = next_record(&mut r, detail, &mut scratch)?;
        let view = RecordView {
            index,
            timestamp_delta: fields.timestamp_delta,
            offset_delta: fields.offset_delta,
            key: (fields.has_key && detail != Detail::Fields).then_some(scratch.key.as_slice()),
            has_key: fields.has_key,
            has_value: fields.has_value,
            raw: &scratch.raw,
        };
        if !visit(&view) {
            break;
        }
    }
    Ok(())
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
    let mut hit = None;
    let walked = walk_records(header, &found.batch, Detail::Fields, |record| {
        let ts = header.base_timestamp.wrapping_add(record.timestamp_delta);
        if ts >= timestamp {
            hit = Some((header.base_offset + record.offset_delta, ts));
        }
        hit.is_none()
    });
    if let Err(e) = walked {
        tracing::debug!(base_offset = header.base_offset, error = %e, "timestamp lookup answered per batch");
        return Ok(batch_level);
    }
    Ok(hit.or(batch_level))
}

/// Writes the record `raw` (as stored, length prefix included) to `out` with its timestamp
/// delta moved by `shift`: what a batch whose base timestamp changes (the cleaner setting
/// KIP-534's delete horizon) does to each record so its timestamp stays the same. Only the
/// length, the attributes and the delta are re-encoded; the rest is copied as it is.
pub(crate) fn write_rebased(raw: &[u8], shift: i64, out: &mut impl io::Write) -> io::Result<()> {
    let mut r = raw;
    let length = varint(&mut r, None)?;
    if length < 1 || length as usize != r.len() {
        return Err(invalid("record length does not match its bytes"));
    }
    let attributes = r[0];
    let mut rest = &r[1..];
    let delta = varint(&mut rest, None)?;
    let mut head = Vec::with_capacity(12);
    head.push(attributes);
    put_varint(&mut head, delta.wrapping_add(shift));
    let mut prefix = Vec::with_capacity(5);
    put_varint(&mut prefix, (head.len() + rest.len()) as i64);
    out.write_all(&prefix)?;
    out.write_all(&head)?;
    out.write_all(rest)
}

/// Appends `v` as a zig-zag varint (Kafka's varlong; a varint's values encode the same).
fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// The fields of one record the walk reports.
struct RecordFields {
    timestamp_delta: i64,
    offset_delta: i64,
    has_key: bool,
    has_value: bool,
}

/// Buffers a walk reuses from record to record.
#[derive(Default)]
struct Scratch {
    key: Vec<u8>,
    raw: Vec<u8>,
}

/// Reads one record: its leading fields (its key into `scratch.key` unless only fields are
/// asked for; the whole record into `scratch.raw` for `Raw`), skipping the rest.
fn next_record(r: &mut impl Read, detail: Detail, scratch: &mut Scratch) -> io::Result<RecordFields> {
    if detail != Detail::Raw {
        let length = varint(r, None)?;
        return read_fields(r, length, detail, &mut scratch.key);
    }
    scratch.raw.clear();
    let length = varint(r, Some(&mut scratch.raw))?;
    let prefix = scratch.raw.len();
    // Grows with the bytes that arrive, never to the length the record states.
    r.take(length.max(0) as u64).read_to_end(&mut scratch.raw)?;
    if scratch.raw.len() - prefix != length.max(0) as usize {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    read_fields(&mut &scratch.raw[prefix..], length, Detail::Keys, &mut scratch.key)
}

/// Reads the fields of a record of `length` bytes (its length prefix already read) and skips
/// the rest of it.
fn read_fields(r: &mut impl Read, length: i64, detail: Detail, key: &mut Vec<u8>) -> io::Result<RecordFields> {
    if length < 0 {
        return Err(invalid("negative record length"));
    }
    let mut counted = Counted { inner: r, read: 0 };
    let mut attributes = [0u8; 1];
    counted.read_exact(&mut attributes)?;
    let timestamp_delta = varint(&mut counted, None)?;
    let offset_delta = varint(&mut counted, None)?;
    let key_length = varint(&mut counted, None)?;
    let has_key = key_length >= 0;
    if has_key {
        let key_length = key_length as u64;
        if key_length > (length as u64).saturating_sub(counted.read) {
            return Err(invalid("key longer than its record"));
        }
        key.clear();
        if detail == Detail::Fields {
            skip(&mut counted, key_length)?;
        } else {
            (&mut counted).take(key_length).read_to_end(key)?;
        }
    }
    let has_value = varint(&mut counted, None)? >= 0;
    let rest = (length as u64)
        .checked_sub(counted.read)
        .ok_or_else(|| invalid("record shorter than its fields"))?;
    skip(counted.inner, rest)?;
    Ok(RecordFields {
        timestamp_delta,
        offset_delta,
        has_key,
        has_value,
    })
}

/// Reads and drops exactly `n` bytes.
fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut r.take(n), &mut io::sink())?;
    if skipped != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// A zig-zag varint (Kafka's varint and varlong), at most 10 bytes; its bytes are also
/// appended to `record` when given.
fn varint(r: &mut impl Read, mut record: Option<&mut Vec<u8>>) -> io::Result<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        if let Some(out) = record.as_mut() {
            out.push(b[0]);
        }
        raw |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(invalid("varint longer than 10 bytes"))
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
    use kafka_protocol::records::Compression;

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
    fn the_walk_reads_keys_and_tombstones_in_every_codec() {
        use kafka_protocol::records::Record;
        let mut recs: Vec<Record> = records(4, 100, 3);
        recs[1].key = None;
        recs[2].value = None;
        recs[3].key = Some(Bytes::new());
        for codec in crate::log::compression::ALL_CODECS {
            let batch = encode(&recs, codec);
            let header = BatchHeader::parse(&batch).unwrap();
            let mut seen = Vec::new();
            let mut raw = Vec::new();
            walk_records(&header, &batch, Detail::Raw, |r| {
                seen.push((r.index, r.offset_delta, r.key.map(<[u8]>::to_vec), r.has_value));
                raw.extend_from_slice(r.raw);
                true
            })
            .unwrap();
            if codec == Compression::None {
                assert_eq!(raw, batch[HEADER_BYTES..], "raw records are the stored bytes");
            }
            let expected = vec![
                (0, 0, Some(b"key-0".to_vec()), true),
                (1, 1, None, true),
                (2, 2, Some(b"key-2".to_vec()), false),
                (3, 3, Some(Vec::new()), true),
            ];
            assert_eq!(seen, expected, "{codec:?}");
        }
    }

    #[test]
    fn a_record_stating_a_huge_key_fails_without_allocating_it() {
        let mut batch = encode(&records(1, 0, 0), Compression::None);
        // The key length varint follows length, attributes, timestampDelta, offsetDelta.
        let at = HEADER_BYTES + 4;
        assert_eq!(batch[at], 10, "key-0 is 5 bytes, zig-zag 10");
        batch[at] = 0xfe;
        batch.insert(at + 1, 0xff);
        batch.insert(at + 2, 0x0f);
        let header = BatchHeader::parse(&batch).unwrap();
        assert!(walk_records(&header, &batch, Detail::Keys, |_| true).is_err());
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
            assert_eq!(varint(&mut &bytes[..], None).unwrap(), value);
        }
        assert!(varint(&mut &[0xff; 11][..], None).is_err());
    }
}
