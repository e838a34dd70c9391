//! libFuzzer target: see `sluice::fuzzing::group_blobs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::group_blobs(data));
