//! `crit mem DIR PID`: a dumped process's memory.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use crit::checkpoint::Checkpoint;
use crit::mem::view::{self, Filter, Pattern, Prot};
use crit::mem::{Files, Memory};

use super::Failure;

/// `crit mem` arguments.
#[derive(Args)]
pub struct MemArgs {
    /// The checkpoint directory
    pub dir: PathBuf,
    /// The process
    pub pid: u32,
    /// Write the bytes at this address (0x... or decimal) to stdout
    #[arg(long, value_name = "ADDR", value_parser = parse_num, conflicts_with_all = ["search", "regex", "extract"])]
    pub addr: Option<u64>,
    /// How many bytes (with --addr; default: to the end of the mapping); K, M, G suffixes allowed
    #[arg(long, value_name = "N", value_parser = parse_num, requires = "addr")]
    pub len: Option<u64>,
    /// Print the bytes as `hexdump -C` does
    #[arg(long, requires = "addr")]
    pub hex: bool,
    /// Find this string in the dumped memory
    #[arg(long, value_name = "STRING", conflicts_with_all = ["regex", "extract"])]
    pub search: Option<String>,
    /// Find matches of this regular expression (bytes; `(?-u)` for byte classes)
    #[arg(long, value_name = "RE", conflicts_with = "extract")]
    pub regex: Option<String>,
    /// Bytes of context to show before and after each match
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub context: usize,
    /// Stop after this many matches
    #[arg(long, value_name = "N")]
    pub max_count: Option<u64>,
    /// Write each mapping's contents to OUTDIR/START-END.bin
    #[arg(long, value_name = "OUTDIR")]
    pub extract: Option<PathBuf>,
    /// Only mappings (and addresses) at or above this address
    #[arg(long, value_name = "ADDR", value_parser = parse_num)]
    pub from: Option<u64>,
    /// Only mappings (and addresses) below this address
    #[arg(long, value_name = "ADDR", value_parser = parse_num)]
    pub to: Option<u64>,
    /// Only mappings with this protection: r-x, rw-p (exactly) or rw (at least)
    #[arg(long, value_name = "PROT", value_parser = parse_prot)]
    pub prot: Option<Prot>,
    /// Only mappings of these kinds: stack, heap, file, shared, anon, special
    #[arg(long, value_name = "KIND", value_parser = parse_kind, value_delimiter = ',')]
    pub kind: Vec<crit::mem::Kind>,
    /// Read mapped files' pages that were not dumped from this copy of the file system (default: /)
    #[arg(long, value_name = "DIR", conflicts_with = "no_files")]
    pub files_root: Option<PathBuf>,
    /// Do not read mapped files: their pages that were not dumped are unknown
    #[arg(long)]
    pub no_files: bool,
    /// Print JSON (the mappings, the matches, the files written)
    #[arg(long)]
    pub json: bool,
}

/// A number: `0x...` hex or decimal, with an optional K, M or G suffix.
pub fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (body, mul) = match t.as_bytes().last() {
        Some(b'k' | b'K') if !t.starts_with("0x") || t.len() > 2 => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        body.parse::<u64>()
    }
    .map_err(|_| format!("{s:?} is not a number (write hex as 0x...)"))?;
    v.checked_mul(mul).ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_prot(s: &str) -> Result<Prot, String> {
    Prot::parse(s).map_err(|e| e.to_string())
}

fn parse_kind(s: &str) -> Result<crit::mem::Kind, String> {
    view::kind_by_name(s).ok_or_else(|| {
        format!(
            "unknown kind {s:?}; kinds: {}",
            crit::mem::KINDS.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
        )
    })
}

/// The file source of `--files-root` / `--no-files`.
pub fn files_of(root: Option<PathBuf>, none: bool) -> Files {
    match (root, none) {
        (_, true) => Files::None,
        (Some(r), false) => Files::Root(r),
        (None, false) => Files::default(),
    }
}

fn fail(e: crit::Error) -> Failure {
    Failure::new(format!("crit: {e}"))
}

fn finish(r: crit::Result<()>) -> Result<(), Failure> {
    match r {
        Err(e) if e.is_broken_pipe() => Ok(()),
        Err(e) => Err(fail(e)),
        Ok(()) => Ok(()),
    }
}

/// Run `crit mem`.
pub fn run(a: MemArgs) -> Result<(), Failure> {
    let ck = Checkpoint::open(&a.dir).map_err(fail)?;
    let mem = Memory::open(&ck, a.pid, &files_of(a.files_root.clone(), a.no_files)).map_err(fail)?;
    let filter = Filter { from: a.from, to: a.to, prot: a.prot.clone(), kinds: a.kind.clone() };
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
    if let Some(addr) = a.addr {
        let len = match a.len {
            Some(n) => n,
            None => match mem.vma_at(addr) {
                Some(v) => v.end - addr,
                None => {
                    return Err(Failure::new(format!("crit: address {addr:#x} is not mapped in process {}", a.pid)))
                }
            },
        };
        let report = view::dump(&mem, addr, len, a.hex, &mut w);
        let report = match report.and_then(|r| w.flush().map(|_| r).map_err(Into::into)) {
            Err(e) if e.is_broken_pipe() => return Ok(()),
            Err(e) => return Err(fail(e)),
            Ok(r) => r,
        };
        for (at, n, why) in report.unknown {
            eprintln!("crit: {at:#x}-{:#x}: {n} bytes {}, written as zeros", at + n, why.describe());
        }
        return Ok(());
    }
    if a.search.is_some() || a.regex.is_some() {
        let pat = match (&a.search, &a.regex) {
            (Some(s), _) => Pattern::Bytes(s.as_bytes().to_vec()),
            (None, Some(r)) => Pattern::regex(r).map_err(fail)?,
            (None, None) => unreachable_pattern(),
        };
        let json = a.json;
        let r = view::search(&mem, &filter, &pat, a.context, a.max_count, &mut |m, v| {
            view::print_match(&mut w, m, v, json)
        });
        let n = match r.and_then(|n| w.flush().map(|_| n).map_err(Into::into)) {
            Err(e) if e.is_broken_pipe() => return Ok(()),
            Err(e) => return Err(fail(e)),
            Ok(n) => n,
        };
        if n == 0 {
            return Err(Failure::new("crit mem: no match"));
        }
        return Ok(());
    }
    if let Some(dir) = &a.extract {
        let json = a.json;
        let mut first = true;
        let r = (|| -> crit::Result<()> {
            if json {
                w.write_all(b"[")?;
            }
            view::extract(&mem, &filter, dir, &mut |x| {
                if json {
                    let mut j = crit::json::JsonOut::new(&mut w, false);
                    if !first {
                        j.raw(", ")?;
                    }
                    j.begin_object()?;
                    j.key("path")?;
                    j.write_str(x.path.display().to_string().as_bytes())?;
                    for (k, v) in [
                        ("start", x.start),
                        ("end", x.end),
                        ("dumped", x.tally.dumped_total()),
                        ("from_file", x.tally.file),
                        ("zero", x.tally.zero),
                        ("unknown", x.tally.unavailable_total()),
                    ] {
                        j.key(k)?;
                        j.int(v)?;
                    }
                    j.end_object()?;
                } else {
                    writeln!(
                        w,
                        "{} {} dumped {}, from file {}, zeros {}, unknown {}",
                        x.path.display(),
                        view::size_text(x.end - x.start),
                        view::size_text(x.tally.dumped_total()),
                        view::size_text(x.tally.file),
                        view::size_text(x.tally.zero),
                        view::size_text(x.tally.unavailable_total())
                    )?;
                }
                first = false;
                Ok(())
            })?;
            if json {
                w.write_all(b"]\n")?;
            }
            w.flush()?;
            Ok(())
        })();
        return finish(r);
    }
    let r = view::list(&mem, &filter, a.json, &mut w).and_then(|_| w.flush().map_err(Into::into));
    finish(r)
}

fn unreachable_pattern() -> Pattern {
    Pattern::Bytes(Vec::new())
}
