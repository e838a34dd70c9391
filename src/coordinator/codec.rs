//! Kafka's primitive encodings for the records coordinators keep in their internal topics
//! (`__consumer_offsets`, `__transaction_state`): the classic ones (int16 string lengths,
//! int32 byte and array lengths, -1 for null) and the flexible ones (unsigned-varint lengths
//! plus one, tagged fields), as Kafka's generated message code writes them.
//!
//! Pure byte code: no I/O, no state. Every length read is checked against what is left, so a
//! damaged record fails to decode rather than allocating what it claims.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Longest string a classic (int16-length) encoding can carry.
pub(crate) const MAX_STRING_BYTES: usize = i16::MAX as usize;

/// Why bytes do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("record {0} is truncated")]
    Truncated(&'static str),
    #[error("invalid {0} in record")]
    Invalid(&'static str),
}

/// Writes Kafka's primitive encodings, classic or flexible.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) buf: BytesMut,
    flexible: bool,
}

impl Writer {
    pub(crate) fn classic() -> Self {
        Self::new(false)
    }

    pub(crate) fn new(flexible: bool) -> Self {
        Self {
            buf: BytesMut::with_capacity(64),
            flexible,
        }
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.nullable_string(Some(s));
    }

    pub(crate) fn nullable_string(&mut self, s: Option<&str>) {
        match (s, self.flexible) {
            (None, false) => self.buf.put_i16(-1),
            (None, true) => self.uvarint(0),
            (Some(s), false) => {
                // Callers reject longer strings; clamping keeps the layout valid if one slips by.
                let b = &s.as_bytes()[..s.len().min(MAX_STRING_BYTES)];
                self.buf.put_i16(b.len() as i16);
                self.buf.put_slice(b);
            }
            (Some(s), true) => {
                self.uvarint(s.len() as u64 + 1);
                self.buf.put_slice(s.as_bytes());
            }
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        if self.flexible {
            self.uvarint(b.len() as u64 + 1);
        } else {
            self.buf.put_i32(b.len() as i32);
        }
        self.buf.put_slice(b);
    }

    pub(crate) fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    pub(crate) fn tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    /// A flexible struct's tagged fields: (tag, encoded value), in ascending tag order.
    pub(crate) fn tagged_fields_with(&mut self, fields: &[(u32, &[u8])]) {
        self.uvarint(fields.len() as u64);
        for (tag, value) in fields {
            self.uvarint(u64::from(*tag));
            self.uvarint(value.len() as u64);
            self.buf.put_slice(value);
        }
    }

    /// A nullable array's length (`None` for null).
    pub(crate) fn nullable_array_len(&mut self, n: Option<usize>) {
        match (n, self.flexible) {
            (None, false) => self.buf.put_i32(-1),
            (None, true) => self.uvarint(0),
            (Some(n), _) => self.array_len(n),
        }
    }
}

/// Reads Kafka's primitive encodings; every length is checked against what is left.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], flexible: bool, what: &'static str) -> Self {
        Self { buf, flexible, what }
    }

    fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.buf.remaining() < n {
            Err(CodecError::Truncated(self.what))
        } else {
            Ok(())
        }
    }

    pub(crate) fn i8(&mut self) -> Result<i8, CodecError> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    pub(crate) fn i16(&mut self) -> Result<i16, CodecError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self) -> Result<i32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    pub(crate) fn i64(&mut self) -> Result<i64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            self.need(1)?;
            let b = self.buf.get_u8();
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::Invalid("varint"))
    }

    /// A length: `None` for null; checked to fit in what is left.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, CodecError> {
        let n: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(CodecError::Invalid("negative length")),
            n => Ok(Some(n as usize)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.need(n)?;
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, CodecError> {
        match self.length(false)? {
            None => Ok(None),
            // Java decodes malformed UTF-8 with replacement characters; so do we.
            Some(n) => Ok(Some(String::from_utf8_lossy(self.take(n)?).into_owned())),
        }
    }

    pub(crate) fn string(&mut self) -> Result<String, CodecError> {
        self.nullable_string()?.ok_or(CodecError::Invalid("null string"))
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes, CodecError> {
        match self.length(true)? {
            None => Err(CodecError::Invalid("null bytes")),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
        }
    }

    /// An array length, bounded by the bytes left (every element takes at least one byte).
    pub(crate) fn array_len(&mut self) -> Result<usize, CodecError> {
        match self.length(true)? {
            None => Err(CodecError::Invalid("null array")),
            Some(n) if n > self.buf.remaining() => Err(CodecError::Truncated(self.what)),
            Some(n) => Ok(n),
        }
    }

    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), CodecError> {
        self.tagged_fields(|_, _| Ok(()))
    }

    /// Reads a flexible struct's tagged fields, handing each (tag, bytes) to `field`.
    pub(crate) fn tagged_fields(
        &mut self,
        mut field: impl FnMut(u64, &'a [u8]) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|_| CodecError::Invalid("tagged field size"))?;
            field(tag, self.take(size)?)?;
        }
        Ok(())
    }

    /// A nullable array's length, bounded by the bytes left; `None` for null.
    pub(crate) fn nullable_array_len(&mut self) -> Result<Option<usize>, CodecError> {
        match self.length(true)? {
            Some(n) if n > self.buf.remaining() => Err(CodecError::Truncated(self.what)),
            n => Ok(n),
        }
    }
}
