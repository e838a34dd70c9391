//! libFuzzer target: see `sluice::fuzzing::controller_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::controller_message(data));
