#![no_main]
// What this target covers: crates/fuzz/src/frames.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kraft_fuzz::frames::request_frame(data));
