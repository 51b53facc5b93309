//! Fuzz target `archive`: see `crit_fuzz::checks::archive` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::archive(data));
