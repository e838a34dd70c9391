//! Walks the batches of a `.log` file from a position, reading it in chunks.
//!
//! Owns: chunked positional reads and the "is this a whole, valid batch" decision for bytes
//! already on disk. May call: `batch`, std. Must never: write, or trust a length before checking
//! it against the end of the file. Every walk is bounded by the file's end.

use super::batch::{self, BatchHeader, HEADER_BYTES};
use super::error::{IoContext, LogError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Read size for a walk: big enough that small batches cost one read per 64 KiB.
const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// What the walk found at the current position.
#[derive(Debug)]
pub(crate) enum Scanned {
    Batch {
        position: u64,
        header: BatchHeader,
    },
    /// The bytes at `position` are not a whole, valid batch (torn write or corruption).
    Invalid {
        position: u64,
        reason: String,
    },
    End,
}

#[derive(Debug)]
pub(crate) struct BatchScanner<'a> {
    file: &'a File,
    path: &'a Path,
    end: u64,
    position: u64,
    chunk: Vec<u8>,
    chunk_start: u64,
    verify_crc: bool,
}

impl<'a> BatchScanner<'a> {
    /// Walks `[from, end)`. With `verify_crc` each batch is read whole and its CRC and counts
    /// checked; without, only headers are read.
    pub(crate) fn new(file: &'a File, path: &'a Path, from: u64, end: u64, verify_crc: bool) -> Self {
        BatchScanner {
            file,
            path,
            end,
            position: from,
            chunk: Vec::new(),
            chunk_start: 0,
            verify_crc,
        }
    }

    /// Next batch, `Invalid` at the first bytes that are not one, `End` at the end.
    /// Errors are I/O only.
    pub(crate) fn next_batch(&mut self) -> Result<Scanned, LogError> {
        let position = self.position;
        if position >= self.end {
            return Ok(Scanned::End);
        }
        match self.check_batch(position)? {
            Ok(header) => {
                self.position += header.size_bytes() as u64;
                Ok(Scanned::Batch { position, header })
            }
            Err(reason) => Ok(Scanned::Invalid { position, reason }),
        }
    }

    fn check_batch(&mut self, position: u64) -> Result<Result<BatchHeader, String>, LogError> {
        let remaining = self.end - position;
        if remaining < HEADER_BYTES as u64 {
            return Ok(Err(format!(
                "{remaining} bytes left, a batch header needs {HEADER_BYTES}"
            )));
        }
        let header = match BatchHeader::parse(self.bytes(position, HEADER_BYTES)?) {
            Ok(header) => header,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let size = header.size_bytes();
        if size as u64 > remaining {
            return Ok(Err(format!("batch claims {size} bytes, {remaining} left in file")));
        }
        if self.verify_crc {
            let whole = self.bytes(position, size)?;
            let valid = batch::check_crc(whole, &header).and_then(|()| header.check_stored_counts());
            if let Err(e) = valid {
                return Ok(Err(e.to_string()));
            }
        }
        Ok(Ok(header))
    }

    /// The whole of a batch the walk just returned (bounded by the file's end, which the walk
    /// checked): the log cleaner copies or filters it.
    pub(crate) fn batch_bytes(&mut self, position: u64, header: &BatchHeader) -> Result<&[u8], LogError> {
        self.bytes(position, header.size_bytes())
    }

    /// `len` bytes at `at`, from the current chunk or a fresh read. The caller has checked that
    /// `at + len <= end`.
    fn bytes(&mut self, at: u64, len: usize) -> Result<&[u8], LogError> {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if at < self.chunk_start || at + len as u64 > chunk_end {
            let want = (len.max(SCAN_CHUNK_BYTES) as u64).min(self.end - at) as usize;
            self.chunk.resize(want, 0);
            self.file.read_exact_at(&mut self.chunk, at).at("read log", self.path)?;
            self.chunk_start = at;
        }
        let from = (at - self.chunk_start) as usize;
        Ok(&self.chunk[from..from + len])
    }
}
