//! Read 4 KiB of a dumped process's memory at an address.
//!
//! ```sh
//! cargo run --example read_memory -- tests/fixtures/core-threads/images 32163 0x2d55d720
//! ```
//!
//! [`Memory`] answers any address the way CRIU restores it: dumped pages
//! first (of this dump or its parents), then what backs the mapping (a
//! mapped file, shared memory), else zeros; bytes that cannot be known
//! (lazy pages, areas CRIU never dumps) are said so.  Pages are read by
//! range from `pages-N.img`, never whole.

use std::io::{self, Write};
use std::process::ExitCode;

use crit::checkpoint::Checkpoint;
use crit::mem::{Content, Files, Memory, Piece};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args, &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("read_memory: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How many bytes to read.
pub const LEN: usize = 4096;

/// `read_memory DIR PID ADDR`: where each part of the 4 KiB comes from,
/// then the bytes as a hex dump (all-zero lines left out).
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let [dir, pid, addr] = args else {
        return Err("usage: read_memory DIR PID ADDR".into());
    };
    let pid: u32 = pid.parse()?;
    let addr = match addr.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)?,
        None => addr.parse()?,
    };
    let (bytes, pieces) = read(dir, pid, addr)?;
    writeln!(out, "process {pid}, {LEN} bytes at {addr:#x}:")?;
    for p in &pieces {
        writeln!(out, "  {:#x}-{:#x} {}", p.addr, p.end(), describe(&p.content))?;
    }
    let mut zero_lines = 0;
    for (i, line) in bytes.chunks(16).enumerate() {
        if line.iter().all(|&b| b == 0) {
            zero_lines += 1;
            continue;
        }
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let text: String =
            line.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
        writeln!(out, "{:x}  {:<47}  |{text}|", addr + 16 * i as u64, hex.join(" "))?;
    }
    writeln!(out, "({zero_lines} lines of zeros left out)")?;
    Ok(())
}

/// Read [`LEN`] bytes at `addr` of process `pid` of the dump in `dir`,
/// with mapped files read from the live file system.  Unknown bytes read
/// as zeros; the pieces tell which bytes are what.
pub fn read(dir: &str, pid: u32, addr: u64) -> crit::Result<(Vec<u8>, Vec<Piece>)> {
    let ck = Checkpoint::open(dir)?;
    let mem = Memory::open(&ck, pid, &Files::default())?;
    let mut buf = vec![0u8; LEN];
    let pieces = mem.read(addr, &mut buf)?;
    Ok((buf, pieces))
}

fn describe(c: &Content) -> String {
    match c {
        Content::Dumped { level: 0 } => "dumped pages".into(),
        Content::Dumped { level } => format!("dumped pages of parent dump {level}"),
        Content::File => "the mapped file".into(),
        Content::Zero => "zeros".into(),
        Content::Unavailable(why) => format!("unknown: {}", why.describe()),
    }
}
