//! Record batch headers (magic v2): parse, validate, CRC check, in-place offset assignment,
//! and the few header rewrites Kafka makes that change the CRC.
//!
//! Owns: the 61-byte header layout. May call: `crc32c`. Must never: decode or re-encode the
//! records after the header. On the produce path the producer's CRC (bytes 21..) stays valid
//! because only `baseOffset` and `partitionLeaderEpoch`, which lie before it, are rewritten.
//! A new CRC is computed only where Kafka computes one: a LogAppendTime topic's leader stamps
//! its clock into the batch (`stamp_log_append_time`), and the log cleaner writes a batch it
//! rewrote, emptied or stamped with a delete horizon (`rebuilt_batch`, `empty_batch`).

use super::error::LogError;

/// Bytes of a v2 batch header, from `baseOffset` through `recordsCount`.
pub(crate) const HEADER_BYTES: usize = 61;
/// `baseOffset` (8) + `batchLength` (4): the part of a batch not counted by `batchLength`.
pub(crate) const LOG_OVERHEAD_BYTES: usize = 12;
/// Smallest legal `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: i32 = (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
/// Bound on batches in one append call, so a hostile payload cannot make us build a huge
/// header vector (a 100 MiB request holds at most ~1.7 M minimal batches).
pub(crate) const MAX_BATCHES_PER_APPEND: usize = 1 << 21;
const MAGIC_V2: i8 = 2;

// Field positions inside a batch (big-endian).
const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers everything from `attributes` to the end of the batch.
const CRC_START: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
const ATTR_TRANSACTIONAL: i16 = 1 << 4;
const ATTR_CONTROL: i16 = 1 << 5;
/// KIP-534: the batch's base timestamp is the time its tombstones and its marker may be
/// deleted (`deleteHorizonMs`), set by the log cleaner.
const ATTR_DELETE_HORIZON: i16 = 1 << 6;

/// The fixed header of one v2 record batch, as stored at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    pub(crate) batch_length: i32,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) crc: u32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Checks only what is needed to step over the
    /// batch safely: magic 2, a whole header, `batchLength` covering at least a header.
    /// Magic is checked first because v0/v1 message sets are legitimately shorter.
    pub(crate) fn parse(buf: &[u8]) -> Result<BatchHeader, LogError> {
        if buf.len() <= MAGIC_AT {
            return Err(corrupt(format!(
                "truncated batch: {} bytes, a header needs {HEADER_BYTES}",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(LogError::InvalidRecord(format!(
                "record batch magic {magic} is not supported, only v2"
            )));
        }
        if buf.len() < HEADER_BYTES {
            return Err(corrupt(format!(
                "truncated batch header: {} bytes, needs {HEADER_BYTES}",
                buf.len()
            )));
        }
        let header = Self::read_fields(buf);
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(corrupt(format!(
                "batchLength {} is below the minimum {MIN_BATCH_LENGTH}",
                header.batch_length
            )));
        }
        Ok(header)
    }

    fn read_fields(buf: &[u8]) -> BatchHeader {
        BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_AT),
            batch_length: be_i32(buf, LENGTH_AT),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
            magic: buf[MAGIC_AT] as i8,
            crc: be_i32(buf, CRC_AT) as u32,
            attributes: be_i16(buf, CRC_START),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: be_i64(buf, PRODUCER_ID_AT),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(buf, BASE_SEQUENCE_AT),
            records_count: be_i32(buf, RECORDS_COUNT_AT),
        }
    }

    /// Whole batch size on disk, including the 12-byte offset + length prefix.
    pub(crate) fn size_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length as usize
    }

    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// With LogAppendTime every record's timestamp is the batch's `maxTimestamp`.
    pub(crate) fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// Control batches (transaction markers) are written by the broker, never by clients.
    pub(crate) fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Part of a producer's transaction (data), or its marker (control).
    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// KIP-534's `deleteHorizonMs`: set by the log cleaner on a batch whose tombstones (or
    /// marker) it kept, the time after which a cleaning may drop them.
    pub(crate) fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    /// Producer batches are never compacted: exactly `recordsCount` consecutive offsets.
    fn check_producer_counts(&self) -> Result<(), LogError> {
        if self.records_count <= 0 {
            return Err(LogError::InvalidRecord(format!(
                "recordsCount {} must be positive",
                self.records_count
            )));
        }
        if self.last_offset_delta != self.records_count - 1 {
            return Err(LogError::InvalidRecord(format!(
                "lastOffsetDelta {} does not match recordsCount {}",
                self.last_offset_delta, self.records_count
            )));
        }
        Ok(())
    }

    /// Batches already in a log may be compacted (gaps, even zero records), but never run
    /// backwards.
    pub(crate) fn check_stored_counts(&self) -> Result<(), LogError> {
        if self.records_count < 0 || self.last_offset_delta < 0 {
            return Err(LogError::InvalidRecord(format!(
                "recordsCount {} / lastOffsetDelta {} must not be negative",
                self.records_count, self.last_offset_delta
            )));
        }
        Ok(())
    }
}

/// Checks the CRC-32C of one whole batch (`batch` is exactly `header.size_bytes()` long).
pub(crate) fn check_crc(batch: &[u8], header: &BatchHeader) -> Result<(), LogError> {
    debug_assert_eq!(batch.len(), header.size_bytes());
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if computed != header.crc {
        return Err(corrupt(format!(
            "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    Ok(())
}

/// Validates every batch in a producer's payload before any is written: header, length inside
/// the buffer, size limit, counts, CRC. Returns the headers in order.
pub(crate) fn validate_batches(buf: &[u8], max_message_bytes: u32) -> Result<Vec<BatchHeader>, LogError> {
    validate_each(buf, |rest| validate_one(rest, Some(max_message_bytes)))
}

/// Validates what the broker's own coordinators append (records, transaction markers): as a
/// producer's, but control batches are theirs to write.
pub(crate) fn validate_coordinator(buf: &[u8], max_message_bytes: u32) -> Result<Vec<BatchHeader>, LogError> {
    validate_each(buf, |rest| {
        let header = BatchHeader::parse(rest)?;
        if header.is_control() {
            validate_one(rest, None)
        } else {
            validate_one(rest, Some(max_message_bytes))
        }
    })
}

/// Validates a leader's batches before a follower appends them: framing, counts and CRC, as
/// for a producer's, but control batches (transaction markers) are the leader's to write and
/// the size limit was the leader's to apply.
pub(crate) fn validate_replicated(buf: &[u8]) -> Result<Vec<BatchHeader>, LogError> {
    validate_each(buf, |rest| validate_one(rest, None))
}

/// Walks the batches of `buf` with `check` (given the bytes from each batch on), locating any
/// error, bounding the count; at least one batch.
fn validate_each(
    buf: &[u8],
    check: impl Fn(&[u8]) -> Result<BatchHeader, LogError>,
) -> Result<Vec<BatchHeader>, LogError> {
    let mut headers = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        if headers.len() == MAX_BATCHES_PER_APPEND {
            return Err(LogError::InvalidRecord(format!(
                "more than {MAX_BATCHES_PER_APPEND} batches in one append"
            )));
        }
        let header = check(&buf[position..]).map_err(|e| locate(e, headers.len(), position))?;
        position += header.size_bytes();
        headers.push(header);
    }
    if headers.is_empty() {
        return Err(LogError::InvalidRecord("no record batch to append".into()));
    }
    Ok(headers)
}

/// One batch at the start of `rest`. A producer's (`max_message_bytes` given) is held to the
/// size limit and may not be a control batch; a leader's is taken as the leader wrote it.
fn validate_one(rest: &[u8], max_message_bytes: Option<u32>) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(rest)?;
    let size = header.size_bytes();
    if size > rest.len() {
        return Err(corrupt(format!(
            "batch claims {size} bytes but only {} remain",
            rest.len()
        )));
    }
    if let Some(max) = max_message_bytes {
        if size > max as usize {
            return Err(LogError::MessageTooLarge { size, max });
        }
        header.check_producer_counts()?;
        if header.is_control() {
            // Transaction markers come from the broker's own coordinator, never from a client.
            return Err(LogError::InvalidRecord("control batches cannot be produced".into()));
        }
    }
    check_crc(&rest[..size], &header)?;
    Ok(header)
}

/// Says which batch an error is about; the size error already carries its numbers.
fn locate(error: LogError, index: usize, position: usize) -> LogError {
    let at = |msg: String| format!("batch {index} at byte {position}: {msg}");
    match error {
        LogError::CorruptMessage(msg) => LogError::CorruptMessage(at(msg)),
        LogError::InvalidRecord(msg) => LogError::InvalidRecord(at(msg)),
        other => other,
    }
}

/// Rewrites `baseOffset` (consecutive from `first_offset`) and `partitionLeaderEpoch` in place
/// for batches already checked by `validate_batches`. Both fields lie before the CRC range.
/// Returns the next offset to assign.
pub(crate) fn assign_offsets(buf: &mut [u8], headers: &mut [BatchHeader], first_offset: i64, leader_epoch: i32) -> i64 {
    let mut position = 0;
    let mut next_offset = first_offset;
    for header in headers.iter_mut() {
        let batch = &mut buf[position..position + header.size_bytes()];
        batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&next_offset.to_be_bytes());
        batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
        header.base_offset = next_offset;
        header.partition_leader_epoch = leader_epoch;
        next_offset = header.next_offset();
        position += header.size_bytes();
    }
    debug_assert_eq!(position, buf.len());
    next_offset
}

/// Kafka's `setMaxTimestamp(LOG_APPEND_TIME, now)` on each batch of a LogAppendTime topic's
/// append: the timestamp-type attribute set, `maxTimestamp` = the leader's clock (every record
/// reads it as its timestamp), a new CRC. Base timestamp and records stay as sent.
pub(crate) fn stamp_log_append_time(buf: &mut [u8], headers: &mut [BatchHeader], now_ms: i64) {
    let mut position = 0;
    for header in headers.iter_mut() {
        let batch = &mut buf[position..position + header.size_bytes()];
        header.attributes |= ATTR_LOG_APPEND_TIME;
        header.max_timestamp = now_ms;
        batch[CRC_START..CRC_START + 2].copy_from_slice(&header.attributes.to_be_bytes());
        batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
        header.crc = write_crc(batch);
        position += header.size_bytes();
    }
}

/// Kafka's cleaner keeping some of a batch's records (`buildRetainedRecordsInto`): the
/// original header (base offset, last offset delta, base timestamp, producer fields,
/// attributes: all kept, so each kept record's bytes stay valid as they are) over a new
/// records section, with its record count, the kept records' max timestamp (a LogAppendTime
/// batch keeps its own) and a new CRC.
///
/// With `delete_horizon_ms` (KIP-534) the header's base timestamp becomes that horizon and the
/// delete-horizon attribute is set; the records in `section` must then carry timestamp deltas
/// relative to it (`cleaned_batch` re-encodes them).
pub(crate) fn rebuilt_batch(
    original: &[u8],
    records_count: i32,
    max_timestamp: i64,
    section: &[u8],
    delete_horizon_ms: Option<i64>,
) -> Vec<u8> {
    let mut batch = Vec::with_capacity(HEADER_BYTES + section.len());
    batch.extend_from_slice(&original[..HEADER_BYTES]);
    batch.extend_from_slice(section);
    if let Some(horizon) = delete_horizon_ms {
        let attributes = be_i16(original, CRC_START) | ATTR_DELETE_HORIZON;
        batch[CRC_START..CRC_START + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&horizon.to_be_bytes());
    }
    let length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&records_count.to_be_bytes());
    if be_i16(original, CRC_START) & ATTR_LOG_APPEND_TIME == 0 {
        batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    }
    write_crc(&mut batch);
    batch
}

/// Kafka's `writeEmptyHeader`: what the cleaner keeps of a batch whose records all went but
/// whose offsets (and producer fields) must stay: the header alone, no records, uncompressed,
/// no delete horizon (nothing is left to delete).
pub(crate) fn empty_batch(original: &BatchHeader) -> (Vec<u8>, BatchHeader) {
    let mut header = BatchHeader {
        batch_length: MIN_BATCH_LENGTH,
        attributes: original.attributes & !0x7 & !ATTR_DELETE_HORIZON,
        base_timestamp: original.max_timestamp,
        records_count: 0,
        ..*original
    };
    let mut batch = vec![0u8; HEADER_BYTES];
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&header.base_offset.to_be_bytes());
    batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&header.batch_length.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
    batch[MAGIC_AT] = MAGIC_V2 as u8;
    batch[CRC_START..CRC_START + 2].copy_from_slice(&header.attributes.to_be_bytes());
    batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&header.last_offset_delta.to_be_bytes());
    batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&header.base_timestamp.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&header.max_timestamp.to_be_bytes());
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&header.producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&header.producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&header.base_sequence.to_be_bytes());
    batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&0i32.to_be_bytes());
    header.crc = write_crc(&mut batch);
    (batch, header)
}

/// Computes and stores the CRC-32C of a whole batch; returns it.
fn write_crc(batch: &mut [u8]) -> u32 {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    crc
}

fn corrupt(msg: String) -> LogError {
    LogError::CorruptMessage(msg)
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8-byte slice"))
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4-byte slice"))
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2-byte slice"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{batch_of, decode_offsets, encode};
    use kafka_protocol::records::Compression;

    const MAX: u32 = 1 << 20;

    #[test]
    fn header_parse_and_crc_accept_encoder_batch() {
        let buf = batch_of(3, 1_000);
        let headers = validate_batches(&buf, MAX).unwrap();
        assert_eq!(headers.len(), 1);
        let h = headers[0];
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.size_bytes(), buf.len());
        assert!(!h.is_control() && !h.is_log_append_time());
    }

    #[test]
    fn flipped_byte_is_corrupt_message() {
        let mut buf = batch_of(2, 5);
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        let err = validate_batches(&buf, MAX).unwrap_err();
        assert!(
            matches!(err, LogError::CorruptMessage(ref m) if m.contains("CRC")),
            "{err}"
        );
    }

    #[test]
    fn magic_1_is_invalid_record() {
        let mut buf = batch_of(1, 5);
        buf[MAGIC_AT] = 1;
        let err = validate_batches(&buf, MAX).unwrap_err();
        assert!(matches!(err, LogError::InvalidRecord(_)), "{err}");
    }

    #[test]
    fn batch_over_max_message_bytes_is_too_large() {
        let buf = batch_of(10, 5);
        let err = validate_batches(&buf, buf.len() as u32 - 1).unwrap_err();
        assert!(
            matches!(err, LogError::MessageTooLarge { size, .. } if size == buf.len()),
            "{err}"
        );
        assert!(validate_batches(&buf, buf.len() as u32).is_ok());
    }

    #[test]
    fn short_length_and_truncated_batch_are_corrupt() {
        let mut buf = batch_of(1, 5);
        buf[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert!(matches!(validate_batches(&buf, MAX), Err(LogError::CorruptMessage(_))));
        let buf = batch_of(1, 5);
        let err = validate_batches(&buf[..buf.len() - 1], MAX).unwrap_err();
        assert!(matches!(err, LogError::CorruptMessage(_)), "{err}");
        assert!(matches!(
            validate_batches(&buf[..20], MAX),
            Err(LogError::CorruptMessage(_))
        ));
    }

    #[test]
    fn inconsistent_counts_are_invalid_record() {
        // Counts are inside the CRC, so a real producer bug would also carry a matching CRC.
        for (count, delta) in [(0, -1), (3, 1), (2, -1)] {
            let mut buf = batch_of(2, 5);
            buf[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&i32::to_be_bytes(count));
            buf[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&i32::to_be_bytes(delta));
            let crc = crc32c::crc32c(&buf[CRC_START..]);
            buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
            let err = validate_batches(&buf, MAX).unwrap_err();
            assert!(matches!(err, LogError::InvalidRecord(_)), "{count}/{delta}: {err}");
        }
    }

    #[test]
    fn log_append_time_stamps_type_and_max_timestamp_with_a_valid_crc() {
        let mut buf = batch_of(3, 10);
        buf.extend(encode(&crate::log::testutil::records(2, 20, 8), Compression::Zstd));
        let mut headers = validate_batches(&buf, MAX).unwrap();
        stamp_log_append_time(&mut buf, &mut headers, 5_000);
        let again = validate_batches(&buf, MAX).unwrap();
        assert_eq!(again, headers);
        assert!(again.iter().all(|h| h.is_log_append_time() && h.max_timestamp == 5_000));
        assert_eq!((again[0].base_timestamp, again[1].base_timestamp), (10, 20));
    }

    #[test]
    fn a_rebuilt_batch_keeps_the_header_and_takes_a_new_count_and_crc() {
        let buf = batch_of(3, 10);
        let original = BatchHeader::parse(&buf).unwrap();
        // The first record alone (records are laid out back to back after the header).
        let first_len = usize::from(buf[HEADER_BYTES] >> 1) + 1;
        let section = &buf[HEADER_BYTES..HEADER_BYTES + first_len];
        let rebuilt = rebuilt_batch(&buf, 1, 10, section, None);
        let header = validate_replicated(&rebuilt).unwrap()[0];
        assert_eq!(
            (header.base_offset, header.last_offset(), header.records_count),
            (0, 2, 1)
        );
        assert_eq!((header.base_timestamp, header.max_timestamp), (10, 10));
        assert_eq!(header.base_sequence, original.base_sequence);
        assert_eq!(decode_offsets(&rebuilt), vec![0]);
    }

    #[test]
    fn an_empty_batch_keeps_offsets_and_producer_fields() {
        let buf = batch_of(3, 10);
        let original = BatchHeader::parse(&buf).unwrap();
        let (empty, header) = empty_batch(&original);
        assert_eq!(empty.len(), HEADER_BYTES);
        let parsed = BatchHeader::parse(&empty).unwrap();
        assert_eq!(parsed, header);
        check_crc(&empty, &parsed).unwrap();
        assert_eq!(
            (parsed.base_offset, parsed.last_offset(), parsed.records_count),
            (0, 2, 0)
        );
        assert_eq!(
            (parsed.producer_id, parsed.base_sequence),
            (original.producer_id, original.base_sequence)
        );
        assert!(decode_offsets(&empty).is_empty());
    }

    #[test]
    fn empty_payload_is_invalid_record() {
        assert!(matches!(validate_batches(&[], MAX), Err(LogError::InvalidRecord(_))));
    }

    #[test]
    fn assign_offsets_keeps_crc_valid_and_decodes_consecutively() {
        let mut buf = batch_of(3, 10);
        buf.extend(encode(&crate::log::testutil::records(2, 20, 8), Compression::Gzip));
        buf.extend(batch_of(1, 30));
        let mut headers = validate_batches(&buf, MAX).unwrap();
        let next = assign_offsets(&mut buf, &mut headers, 100, 7);
        assert_eq!(next, 106);
        assert_eq!(
            headers.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
            vec![100, 103, 105]
        );
        // CRC still holds after the rewrite, and the records decode at their new offsets.
        let again = validate_batches(&buf, MAX).unwrap();
        assert!(again.iter().all(|h| h.partition_leader_epoch == 7));
        assert_eq!(decode_offsets(&buf), (100..106).collect::<Vec<_>>());
    }
}
