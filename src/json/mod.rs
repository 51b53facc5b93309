//! The JSON mapping layer: crit's JSON, raw and nice, written and read.
pub mod direct;
pub mod direct_in;
pub mod edit;
pub mod map;
pub mod maps;
pub mod out;
pub mod parse;
pub mod pyfmt;

pub use map::{message_from_json, write_fields, write_message, Style, UNKNOWN_KEY};
pub use out::JsonOut;
pub use parse::{Json, Parser};
