//! Fuzz target `x`: see `crit_fuzz::checks::x` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::x(data));
