//! Fuzz target `views`: see `crit_fuzz::checks::views` for the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crit_fuzz::checks::views(data));
