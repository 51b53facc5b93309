//! The project's one integration test binary (one link, one harness).
mod util;

mod cli;
mod convert;
mod criu_e2e;
mod golden;
mod props;
mod reference;
mod roundtrip;
mod stream;
