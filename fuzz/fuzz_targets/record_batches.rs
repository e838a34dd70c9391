//! libFuzzer target: see `sluice::fuzzing::record_batches`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::record_batches(data));
