//! Change a file path in `files.img` and write the image back.
//!
//! ```sh
//! cargo run --example rename_file -- tests/fixtures/criu41-pipes/files.img /tmp/files.img \
//!     /tmp/crit-fixtures/criu41-pipes/fifo1 /srv/fifo1
//! ```
//!
//! The image is streamed entry by entry: each entry is decoded into a
//! dynamic [`Message`](crit::wire::Message), edited, and encoded again;
//! everything else (unknown fields included) is written back unchanged.
//! The output is written atomically, so IN and OUT may be the same file.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use crit::image::{ImageReader, ImageWriter};
use crit::output::AtomicFile;
use crit::wire::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args, &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rename_file: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rename_file IN OUT OLD NEW`: every regular file entry named OLD is
/// renamed NEW; prints how many entries were changed.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let [input, output, old, new] = args else {
        return Err("usage: rename_file IN OUT OLD-PATH NEW-PATH".into());
    };
    let n = rename(Path::new(input), Path::new(output), old, new)?;
    writeln!(out, "{n} entr{} renamed", if n == 1 { "y" } else { "ies" })?;
    Ok(())
}

/// Copy the image `input` to `output`, renaming `old` to `new` in every
/// `reg` (regular file) entry; returns the number of entries changed.
pub fn rename(input: &Path, output: &Path, old: &str, new: &str) -> crit::Result<usize> {
    let file = File::open(input).map_err(|e| crit::Error::from(e).in_file(input))?;
    let mut rd = ImageReader::open(BufReader::new(file)).map_err(|e| e.in_file(input))?;
    let mut dst = AtomicFile::create(output).map_err(|e| crit::Error::from(e).in_file(output))?;
    let mut w = ImageWriter::new(&mut dst, rd.kind())?;
    let mut changed = 0;
    while let Some(mut item) = rd.next_item().map_err(|e| e.in_file(input))? {
        // The payload that follows the entry, if any (files.img has none,
        // but the same loop copies any image).
        let extra = rd.read_extra().map_err(|e| e.in_file(input))?;
        if let Some(Value::Msg(reg)) = item.msg.get_mut("reg") {
            if reg.str("name").as_deref() == Some(old) {
                reg.set("name", Value::Str(new.as_bytes().to_vec()))?;
                changed += 1;
            }
        }
        w.write_message(&item.msg)?;
        w.write_extra(&extra)?;
    }
    w.finish()?;
    dst.commit().map_err(|e| crit::Error::from(e).in_file(output))?;
    Ok(changed)
}
