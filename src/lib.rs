//! crit: read, write and explore CRIU checkpoint images.
//!
//! A checkpoint made by [CRIU](https://criu.org) (`criu dump -D DIR`) is a
//! directory of image files: protobuf messages framed by magic numbers,
//! some followed by raw payloads, plus raw `pages-*.img` files.  This crate
//! reads and writes every image kind of CRIU 4.2 (and older layouts), maps
//! them to and from the JSON of CRIU's own `crit`, and builds tools on top:
//! process trees, memory, core files, checks, statistics, conversion
//! between CRIU versions and image streaming.  The `crit` binary is a thin
//! command line over this library.
//!
//! # Layers
//!
//! Each layer uses only the ones above it:
//!
//! | layer | modules | what |
//! |---|---|---|
//! | schema | [`schema`], [`magic`] | static descriptor tables of every message, generated at build time from `schema/*.proto`; the registry of image kinds (magic, file names, entry type, payload) |
//! | codec | [`wire`], [`image`], [`error`], [`output`] | the protobuf wire format and the dynamic [`wire::Message`]; [`image::ImageReader`] / [`image::ImageWriter`], streaming entry by entry; typed errors with file, offset, entry and field; atomic output files |
//! | JSON | [`json`], [`transcode`] | crit's JSON, raw and nice, byte-identical to Python's `json.dump`; whole-image `decode`, `encode`, `info` |
//! | checkpoint | [`checkpoint`], [`archive`] | one checkpoint (a dump directory or a container checkpoint archive), images read lazily: [`checkpoint::Checkpoint`] |
//! | tools | [`explore`], [`views`], [`stats`], [`check`], [`mem`], [`coredump`], [`stream`], [`convert`], [`flatten`], [`progress`] | `crit x` views, statistics, validation, process memory, ELF cores, `criu --stream` serving and capture, version conversion, incremental-chain flattening, the progress line |
//! | CLI | `src/cli/` (the binary, not part of the library) | argument parsing, output and exit codes |
//!
//! # Example
//!
//! Read the process tree of a bundled dump, then the first entry of one of
//! its images and the payload that follows it, then the same image as
//! crit's JSON:
//!
//! ```
//! use crit::checkpoint::Checkpoint;
//! use crit::image::Extra;
//!
//! # fn main() -> crit::Result<()> {
//! let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
//!
//! // pstree.img: six processes, the first one the root of the tree.
//! let ck = Checkpoint::open(format!("{fixtures}/criu41-tree"))?;
//! let tasks = ck.tasks()?;
//! assert_eq!(tasks.len(), 6);
//! assert_eq!((tasks[0].pid, tasks[0].ppid), (677, 0));
//! // Its command name is in core-677.img.
//! let core = ck.core(677)?;
//! assert_eq!(core.msg("tc").and_then(|tc| tc.str("comm")).as_deref(), Some("fx-root"));
//!
//! // pipes-data.img: each entry is a pipe_data_entry followed by the bytes
//! // that were queued in the pipe.
//! let ck = Checkpoint::open(format!("{fixtures}/criu41-pipes"))?;
//! let mut rd = ck.reader("pipes-data.img")?;
//! let first = rd.next_item()?.expect("an entry");
//! assert_eq!(first.msg.u64("bytes"), Some(11));
//! assert_eq!(rd.read_extra()?, Extra::Blob(b"hello pipe\n".to_vec()));
//!
//! // The same image as crit's raw JSON (what `crit decode` prints).
//! let img = std::fs::File::open(format!("{fixtures}/criu41-pipes/pipes-data.img"))?;
//! let opts = crit::transcode::DecodeOptions { nice: false, no_payload: false };
//! let json = String::from_utf8(crit::transcode::decode(img, Vec::new(), opts)?).expect("UTF-8");
//! assert!(json.starts_with(r#"{"magic": "PIPES_DATA", "entries": [{"pipe_id": 95307, "bytes": 11"#));
//! # Ok(())
//! # }
//! ```
//!
//! More complete programs are in `examples/`: the process tree
//! (`process_tree`), renaming a file in `files.img` (`rename_file`), and
//! reading a process's memory (`read_memory`).
#![warn(missing_docs)]
pub mod error;
mod fsio;
pub mod image;
pub mod magic;
pub mod schema;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
pub mod archive;
pub mod check;
pub mod checkpoint;
pub mod convert;
pub mod coredump;
pub mod explore;
pub mod flatten;
pub mod json;
pub mod mem;
pub mod output;
pub mod progress;
pub mod stats;
pub mod stream;
pub mod transcode;
pub mod version;
pub mod views;
