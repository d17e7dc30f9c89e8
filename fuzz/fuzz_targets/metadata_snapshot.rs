#![no_main]
// What this target covers: crates/fuzz/src/metadata.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kraft_fuzz::metadata::metadata_snapshot(data));
