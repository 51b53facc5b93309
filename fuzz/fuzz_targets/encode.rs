//! Fuzz target `encode`: see `crit_fuzz::checks::encode` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::encode(data));
