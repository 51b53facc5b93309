//! crit: read, write and explore CRIU checkpoint images.
pub mod error;
pub mod image;
pub mod magic;
pub mod schema;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
pub mod json;
pub mod transcode;
pub mod output;
pub mod checkpoint;
pub mod explore;
pub mod check;
pub mod archive;
pub mod stats;
pub mod views;
pub mod stream;
pub mod convert;
pub mod mem;
pub mod coredump;
pub mod flatten;
