//! The project's one integration test binary (one link, one harness).
mod util;

mod check;
mod cli;
mod convert;
mod coredump;
mod docs;
mod criu_e2e;
mod golden;
mod malformed;
mod mem;
mod props;
mod reference;
mod roundtrip;
mod stats;
mod views;
mod stream;
