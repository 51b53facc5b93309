//! The project's one integration test binary (one link, one harness).
mod util;

mod check;
mod cli;
mod convert;
mod coredump;
mod criu_e2e;
mod decode_direct;
mod docs;
mod encode_direct;
mod golden;
mod malformed;
mod mem;
mod props;
mod reference;
mod roundtrip;
mod stats;
mod stream;
mod views;
