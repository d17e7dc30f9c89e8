#![no_main]
// What this target covers: crates/fuzz/src/controller.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kraft_fuzz::controller::controller_rpc(data));
