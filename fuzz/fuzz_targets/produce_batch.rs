#![no_main]
// What this target covers: crates/fuzz/src/batches.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kraft_fuzz::batches::produce_batch(data));
