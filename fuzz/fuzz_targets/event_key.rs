//! Key decoding over any bytes: see `replicator_core::fuzz::event_key`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| replicator_core::fuzz::event_key(data));
