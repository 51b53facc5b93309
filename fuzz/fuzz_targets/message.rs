//! Fuzz target `message`: see `crit_fuzz::checks::message` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::message(data));
