//! Fuzz target `json`: see `crit_fuzz::checks::json` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::json(data));
