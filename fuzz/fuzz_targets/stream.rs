//! Fuzz target `stream`: see `crit_fuzz::checks::stream` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::stream(data));
