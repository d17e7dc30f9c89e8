#![no_main]
// What this target covers: crates/fuzz/src/transactions.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kraft_fuzz::transactions::txn_index(data));
