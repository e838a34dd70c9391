//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz, libFuzzer), compiled only with
//! the `fuzzing` feature: each takes raw bytes down the very path a peer's bytes take, so the
//! fuzzer exercises the broker's code rather than a copy of it.
//!
//! - [`request`]: a request frame through `api::dispatch` (header, every API's decoder, the
//!   handler's validation and work) on an in-process broker started once per fuzzing process.
//! - [`record_batches`]: a produce payload through batch validation, recompression into every
//!   codec, and the streaming record walk of a timestamp lookup.
//! - [`decompress`]: one codec's bounded decompressor.
//! - [`group_blobs`]: consumer-protocol metadata (JoinGroup) and `__consumer_offsets` records.
//! - [`controller_message`]: a message on the controller listener.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::broker::Broker;
use crate::log::compression;
use crate::{Server, Settings};

/// The broker the `request` target talks to, and the runtime it runs on.
struct Target {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    _server: Server,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let root = std::env::temp_dir().join("sluice-fuzz");
        // Data dirs of earlier fuzzing processes that are gone (each process has its own).
        for old in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let pid = old.file_name().to_string_lossy().into_owned();
            if !std::path::Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        let overrides = [
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            "metrics.listener=127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.display()),
            "group.initial.rebalance.delay.ms=0".to_string(),
            "logging.level=off".to_string(),
        ];
        let settings: Settings = crate::config::load(None, &overrides).expect("fuzz settings");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(Server::start(settings)).expect("fuzz broker starts");
        let broker = server.broker().expect("a broker node");
        Target {
            runtime,
            broker,
            _server: server,
        }
    })
}

/// One request frame (without its size prefix) through dispatch; the response future is
/// polled once (what answers at once is encoded; a parked long poll or join is dropped).
pub fn request(frame: &[u8]) {
    let target = target();
    let _entered = target.runtime.enter();
    let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
    let session = crate::api::Session {
        peer,
        endpoint: None,
        principal: crate::api::Session::ANONYMOUS.into(),
        append_order: Default::default(),
        throttle: Default::default(),
    };
    if let Ok(mut pending) = crate::api::dispatch(&target.broker, Bytes::copy_from_slice(frame), &session) {
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(outcome) = pending.as_mut().poll(&mut cx) {
            drop(outcome);
        }
    }
}

/// A produce payload through validation, recompression and bounded record decoding.
pub fn record_batches(bytes: &[u8]) {
    const MAX_MESSAGE_BYTES: u32 = 1 << 20;
    if crate::log::validate_batches(bytes, MAX_MESSAGE_BYTES).is_err() {
        return;
    }
    for codec in crate::log::compression::ALL_CODECS {
        let _ = crate::replica::recompress(bytes, codec, MAX_MESSAGE_BYTES);
    }
    // The timestamp lookup's walk over each batch's records.
    let Ok(headers) = crate::log::validate_batches(bytes, MAX_MESSAGE_BYTES) else {
        return;
    };
    let mut at = 0;
    for header in headers {
        let batch = Bytes::copy_from_slice(&bytes[at..at + header.size_bytes()]);
        at += header.size_bytes();
        let found = crate::log::records::BatchToSearch { header, batch };
        let _ = crate::log::records::first_at_or_after(&found, i64::MAX);
    }
}

/// The first byte picks the codec; the rest is a records section.
pub fn decompress(bytes: &[u8]) {
    let Some((code, section)) = bytes.split_first() else {
        return;
    };
    if let Ok(codec) = compression::codec(i16::from(*code % 5)) {
        let _ = compression::decompress(codec, section, 1 << 20);
    }
}

/// Consumer-protocol subscription metadata, and `__consumer_offsets` key/value pairs (the
/// first two bytes say where the key ends).
pub fn group_blobs(bytes: &[u8]) {
    let _ = crate::group::state::parse_subscription_topics(Bytes::copy_from_slice(bytes));
    if bytes.len() >= 2 {
        let split = (usize::from(u16::from_be_bytes([bytes[0], bytes[1]])) + 2).min(bytes.len());
        let (key, value) = (&bytes[2..split], &bytes[split..]);
        let _ = crate::group::records::Record::decode(key, Some(value));
        let _ = crate::group::records::Record::decode(key, None);
    }
}

/// A message body on the controller listener.
pub fn controller_message(bytes: &[u8]) {
    crate::controller::decode_request(bytes);
}
