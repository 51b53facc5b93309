//! Fuzz target `decode`: see `crit_fuzz::checks::decode` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::decode(data));
