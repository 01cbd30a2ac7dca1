//! Event decoding over any bytes: see `replicator_core::fuzz::event_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| replicator_core::fuzz::event_payload(data));
