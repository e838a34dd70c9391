//! Kafka's record-batch codecs as bounded streams: gzip, snappy (xerial framing, or raw as
//! Kafka's reader accepts), lz4 (frame format) and zstd.
//!
//! Owns: how much a compressed records section may expand to, and that no codec ever holds
//! it whole. A decompressing reader fails once it has produced `limit` bytes, so a "bomb" (a
//! few KiB of gzip or zstd that expands to gigabytes) costs a bounded amount of work and
//! a fixed buffer (each codec's window or block), never its expanded size in memory. A
//! compressing writer fails once its output passes its cap.
//!
//! The codec libraries (flate2, snap, lz4, zstd) are the ones the kafka-protocol crate uses;
//! its own helpers decompress a section whole into memory, which is what this module exists
//! to avoid. Used by the broker's recompression (`replica::recompress`) and by the time
//! index lookup inside a batch (`segment`).

use std::io::{self, Read, Write};

use bytes::BytesMut;
use kafka_protocol::records::Compression;

/// How many times `max.message.bytes` a records section may expand to when the broker must
/// look inside it. Producers compress batches of at most their `batch.size` (1 MB in
/// librdkafka, 16 KiB in the Java client), so real batches stay far below this.
pub(crate) const EXPANSION_MAX: usize = 64;

/// Kafka's gzip level (`compression.gzip.level` default), lz4 level and zstd level.
const GZIP_LEVEL: u32 = 6;
const LZ4_LEVEL: u32 = 4;
const ZSTD_LEVEL: i32 = 3;
/// Largest zstd window a batch may ask the decoder for (16 MiB): producers use at most the
/// batch size; the library's default would allow 128 MiB per decoder.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// xerial's framing: a 16-byte header, then `[u32 length][raw snappy block]` repeated.
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Every codec a batch can be in (what the codec bits 0 to 4 name).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// The codec named by a batch's attribute bits.
pub(crate) fn codec(code: i16) -> io::Result<Compression> {
    Ok(match code {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        other => return Err(invalid(format!("unknown compression codec {other}"))),
    })
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// A reader of the decompressed `section`, which fails once it would pass `limit` bytes.
pub(crate) fn decompressor<'a>(codec: Compression, section: &'a [u8], limit: usize) -> io::Result<Box<dyn Read + 'a>> {
    let inner: Box<dyn Read + 'a> = match codec {
        Compression::None => Box::new(section),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(section)),
        Compression::Snappy => Box::new(SnappyReader::new(section, limit)?),
        Compression::Lz4 => Box::new(lz4::Decoder::new(section)?),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(section)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Box::new(d)
        }
    };
    Ok(Box::new(Limited {
        inner,
        left: limit,
        limit,
    }))
}

/// Decompresses `section` whole into memory, refusing to go past `limit` bytes.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decompress(codec: Compression, section: &[u8], limit: usize) -> io::Result<BytesMut> {
    use bytes::BufMut;
    let mut out = BytesMut::new().writer();
    io::copy(&mut decompressor(codec, section, limit)?, &mut out)?;
    Ok(out.into_inner())
}

struct Limited<R> {
    inner: R,
    left: usize,
    limit: usize,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed is asked for, so reaching the limit exactly is not an error.
        let want = buf.len().min(self.left + 1);
        let n = self.inner.read(&mut buf[..want])?;
        if n > self.left {
            return Err(invalid(format!("records expand past {} bytes", self.limit)));
        }
        self.left -= n;
        Ok(n)
    }
}

/// Reads xerial-framed snappy block by block; a section without the framing header is one
/// raw snappy block, as Kafka's reader (snappy-java) accepts.
struct SnappyReader<'a> {
    rest: &'a [u8],
    block: Vec<u8>,
    at: usize,
    framed: bool,
    limit: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(section: &'a [u8], limit: usize) -> io::Result<SnappyReader<'a>> {
        let framed = section.starts_with(XERIAL_MAGIC);
        let rest = if framed {
            &section[XERIAL_MAGIC.len()..]
        } else {
            section
        };
        Ok(SnappyReader {
            rest,
            block: Vec::new(),
            at: 0,
            framed,
            limit,
        })
    }

    /// Decodes the next block into `self.block`; false at the end of the section.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let raw = if self.framed {
            let (len, rest) = self
                .rest
                .split_first_chunk::<4>()
                .ok_or_else(|| invalid("snappy block length cut short".into()))?;
            let len = u32::from_be_bytes(*len) as usize;
            let raw = rest
                .get(..len)
                .ok_or_else(|| invalid("snappy block runs past the section".into()))?;
            self.rest = &rest[len..];
            raw
        } else {
            std::mem::take(&mut self.rest)
        };
        // Checked before anything is allocated: the block states its own expanded length.
        let len = snap::raw::decompress_len(raw).map_err(|e| invalid(e.to_string()))?;
        if len > self.limit {
            return Err(invalid(format!("snappy block expands past {} bytes", self.limit)));
        }
        self.block.resize(len, 0);
        snap::raw::Decoder::new()
            .decompress(raw, &mut self.block)
            .map_err(|e| invalid(e.to_string()))?;
        self.at = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A compressing writer; `finish` writes the codec's trailer.
pub(crate) trait Compressor: Write {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// A compressor in `codec` appending to `out`, which fails once `out` would pass `cap` bytes.
pub(crate) fn compressor<'a>(
    codec: Compression,
    out: &'a mut BytesMut,
    cap: usize,
) -> io::Result<Box<dyn Compressor + 'a>> {
    let out = Capped { out, cap };
    Ok(match codec {
        Compression::None => Box::new(out),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL))),
        Compression::Snappy => Box::new(SnappyWriter::new(out)?),
        Compression::Lz4 => Box::new(
            lz4::EncoderBuilder::new()
                .level(LZ4_LEVEL)
                .block_mode(lz4::BlockMode::Independent)
                .build(out)?,
        ),
        Compression::Zstd => Box::new(zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?),
    })
}

/// Appends to a buffer up to a cap.
struct Capped<'a> {
    out: &'a mut BytesMut,
    cap: usize,
}

impl Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.cap {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("compressed records pass {} bytes", self.cap),
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Compressor for Capped<'_> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Compressor for flate2::write::GzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        flate2::write::GzEncoder::finish(*self).map(drop)
    }
}

impl<W: Write> Compressor for lz4::Encoder<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        lz4::Encoder::finish(*self).1
    }
}

impl<W: Write> Compressor for zstd::stream::write::Encoder<'_, W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        zstd::stream::write::Encoder::finish(*self).map(drop)
    }
}

/// Writes xerial-framed snappy, as Kafka's producer does: 32 KiB blocks.
struct SnappyWriter<W> {
    out: W,
    pending: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl<W: Write> SnappyWriter<W> {
    fn new(mut out: W) -> io::Result<SnappyWriter<W>> {
        out.write_all(XERIAL_MAGIC)?;
        Ok(SnappyWriter {
            out,
            pending: Vec::with_capacity(XERIAL_BLOCK_BYTES),
            encoder: snap::raw::Encoder::new(),
        })
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = self
            .encoder
            .compress_vec(&self.pending)
            .map_err(|e| invalid(e.to_string()))?;
        self.out.write_all(&(block.len() as u32).to_be_bytes())?;
        self.out.write_all(&block)?;
        self.pending.clear();
        Ok(())
    }
}

impl<W: Write> Write for SnappyWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(XERIAL_BLOCK_BYTES - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == XERIAL_BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Compressor for SnappyWriter<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.write_block()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(codec: Compression, raw: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        let mut c = compressor(codec, &mut out, usize::MAX).unwrap();
        c.write_all(raw).unwrap();
        c.finish().unwrap();
        out
    }

    #[test]
    fn every_codec_round_trips_through_the_streams() {
        let raw: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for codec in ALL_CODECS {
            let packed = compress(codec, &raw);
            assert_eq!(
                &decompress(codec, &packed, raw.len()).unwrap()[..],
                &raw[..],
                "{codec:?}"
            );
        }
    }

    #[test]
    fn the_crate_reads_what_the_streams_write_and_the_other_way_round() {
        use kafka_protocol::compression::{self as k, Compressor as _, Decompressor as _};
        let raw = bytes::Bytes::from(vec![42u8; 100_000]);
        let take = |b: &mut bytes::Bytes| anyhow::Ok(b.split_off(0));
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut theirs = compress(codec, &raw).freeze();
            let back = match codec {
                Compression::Gzip => k::Gzip::decompress(&mut theirs, take),
                Compression::Snappy => k::Snappy::decompress(&mut theirs, take),
                Compression::Lz4 => k::Lz4::decompress(&mut theirs, take),
                _ => k::Zstd::decompress(&mut theirs, take),
            };
            assert_eq!(back.unwrap(), raw, "{codec:?} ours -> crate");
            let mut ours = BytesMut::new();
            let put = |b: &mut BytesMut| {
                b.extend_from_slice(&raw);
                anyhow::Ok(())
            };
            match codec {
                Compression::Gzip => k::Gzip::compress(&mut ours, put),
                Compression::Snappy => k::Snappy::compress(&mut ours, put),
                Compression::Lz4 => k::Lz4::compress(&mut ours, put),
                _ => k::Zstd::compress(&mut ours, put),
            }
            .unwrap();
            assert_eq!(
                &decompress(codec, &ours, raw.len()).unwrap()[..],
                &raw[..],
                "{codec:?} crate -> ours"
            );
        }
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit_without_expanding_it() {
        // 64 MiB of zeros compresses to a few KiB in every codec.
        let raw = vec![0u8; 64 << 20];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bomb = compress(codec, &raw);
            assert!(bomb.len() < 4 << 20, "{codec:?} bomb is {} bytes", bomb.len());
            let err = decompress(codec, &bomb, 1 << 20).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{codec:?}: {err}");
        }
    }

    #[test]
    fn a_snappy_block_declaring_a_huge_length_is_refused_before_allocating() {
        // A raw snappy block starts with its expanded length as a varint: here ~4 GiB.
        let lying = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(decompress(Compression::Snappy, &lying, 1 << 20).is_err());
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&6u32.to_be_bytes());
        framed.extend_from_slice(&lying);
        assert!(decompress(Compression::Snappy, &framed, 1 << 20).is_err());
    }

    #[test]
    fn output_past_the_cap_is_an_error() {
        let mut out = BytesMut::new();
        let mut c = compressor(Compression::None, &mut out, 10).unwrap();
        assert!(c.write_all(&[1; 11]).is_err());
    }

    #[test]
    fn reaching_the_limit_exactly_is_fine() {
        let raw = vec![9u8; 1000];
        for codec in ALL_CODECS {
            let packed = compress(codec, &raw);
            assert_eq!(decompress(codec, &packed, 1000).unwrap().len(), 1000, "{codec:?}");
            assert!(decompress(codec, &packed, 999).is_err(), "{codec:?}");
        }
    }
}
