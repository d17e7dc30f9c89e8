#![no_main]
// What this target covers: crates/fuzz/src/segments.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kraft_fuzz::segments::producer_snapshot(data));
