//! libFuzzer target: see `sluice::fuzzing::decompress`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::decompress(data));
