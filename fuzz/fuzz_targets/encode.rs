//! Fuzz target `encode`: see `crit_fuzz::checks::encode` for the properties
//! of whole images; and encode's direct JSON → wire path gives exactly the
//! image, or the error, of the message path (`encode_through_messages`),
//! the input read whole by one and in pieces by the other.
#![no_main]

use crit::transcode::{encode, encode_through_messages};
use crit_fuzz::checks::Pieces;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    crit_fuzz::checks::encode(data);
    let show = |r: crit::Result<Vec<u8>>| r.map_err(|e| format!("{e} | {e:?}"));
    let direct = show(encode(Pieces::new(data, (data.len() % 16) as u8), Vec::new()));
    let messages = show(encode_through_messages(data, Vec::new()));
    assert!(direct == messages, "the direct path gives {direct:?}\nthe message path {messages:?}");
});
