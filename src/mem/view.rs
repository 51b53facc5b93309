//! The views of `crit mem`: the mappings with what was dumped of each, a
//! byte range (raw or as `hexdump -C`), a search, and the contents of each
//! mapping written to files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Content, Kind, Memory, Tally, Vma, Why, KINDS};
use crate::error::{Error, Result};
use crate::json::JsonOut;
use crate::output::AtomicFile;

/// Which mappings a view covers.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only addresses at or above this one.
    pub from: Option<u64>,
    /// Only addresses below this one.
    pub to: Option<u64>,
    /// Only mappings whose protection fits.
    pub prot: Option<Prot>,
    /// Only mappings of one of these kinds (any, when empty).
    pub kinds: Vec<Kind>,
}

/// A protection filter: `r-x` (exactly that; a fourth letter `p` or `s`
/// checks sharing too) or `rw` (at least these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prot {
    want: u32,
    exact: bool,
    shared: Option<bool>,
}

impl Prot {
    /// Parse `r-x`, `rw-p`, `rw`, `x`.
    pub fn parse(s: &str) -> Result<Prot> {
        let bad = || {
            Error::value(format!(
                "bad protection {s:?}: give letters of rwx (at least these) or a pattern like r-x or rw-p"
            ))
        };
        let exact = s.contains('-') || s.len() == 4;
        let mut want = 0;
        let mut shared = None;
        if exact {
            let b = s.as_bytes();
            if !(b.len() == 3 || b.len() == 4) {
                return Err(bad());
            }
            for (i, (c, bit)) in [(b'r', 1), (b'w', 2), (b'x', 4)].iter().enumerate() {
                match b[i] {
                    x if x == *c => want |= bit,
                    b'-' => {}
                    _ => return Err(bad()),
                }
            }
            if b.len() == 4 {
                shared = match b[3] {
                    b's' => Some(true),
                    b'p' => Some(false),
                    _ => return Err(bad()),
                };
            }
        } else {
            for c in s.bytes() {
                want |= match c {
                    b'r' => 1,
                    b'w' => 2,
                    b'x' => 4,
                    _ => return Err(bad()),
                };
            }
        }
        Ok(Prot { want, exact, shared })
    }

    fn matches(&self, v: &Vma) -> bool {
        let p = v.prot & 7;
        let ok = if self.exact { p == self.want } else { p & self.want == self.want };
        ok && self.shared.is_none_or(|s| s == (v.flags & 1 != 0))
    }
}

impl Filter {
    /// Whether a mapping is selected.
    pub fn matches(&self, v: &Vma) -> bool {
        self.from.is_none_or(|f| v.end > f)
            && self.to.is_none_or(|t| v.start < t)
            && self.prot.as_ref().is_none_or(|p| p.matches(v))
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| v.is(*k)))
    }

    /// The part of a mapping inside the address range.
    pub fn clip(&self, v: &Vma) -> (u64, u64) {
        (v.start.max(self.from.unwrap_or(0)), v.end.min(self.to.unwrap_or(u64::MAX)))
    }
}

/// A size as a whole number of the largest binary unit that divides it.
pub fn size_text(n: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    if n >= 1 << 10 && n % 1024 == 0 {
        return format!("{}K", n >> 10);
    }
    n.to_string()
}

fn why_key(w: Why) -> &'static str {
    match w {
        Why::Lazy => "lazy",
        Why::MissingParent => "missing_parent",
        Why::NoFile => "no_file",
        Why::NotDumped => "not_dumped",
        Why::Unmapped => "unmapped",
    }
}

/// `crit mem DIR PID`: the mappings, with how much of each was dumped.
pub fn list(mem: &Memory, filter: &Filter, json: bool, out: &mut dyn Write) -> Result<()> {
    let vmas: Vec<(&Vma, Tally)> = mem.vmas().iter().filter(|v| filter.matches(v)).map(|v| (v, mem.tally(v))).collect();
    if json {
        let mut j = JsonOut::new(&mut *out, true);
        j.begin_object()?;
        j.key("pid")?;
        j.int(mem.pid as u64)?;
        j.key("mappings")?;
        j.begin_array()?;
        for (v, t) in &vmas {
            j.elem()?;
            j.begin_object()?;
            for (k, val) in [("start", v.start), ("end", v.end), ("pgoff", v.pgoff), ("size", v.len())] {
                j.key(k)?;
                j.int(val)?;
            }
            j.key("perms")?;
            j.write_str(v.perms().as_bytes())?;
            j.key("kinds")?;
            j.begin_array()?;
            for k in v.kind_names() {
                j.elem()?;
                j.write_str(k.as_bytes())?;
            }
            j.end_array()?;
            j.key("name")?;
            j.write_str(v.name.as_bytes())?;
            j.key("dumped")?;
            j.int(t.dumped.first().copied().unwrap_or(0))?;
            j.key("dumped_in_parents")?;
            j.int(t.dumped.iter().skip(1).sum::<u64>())?;
            j.key("from_file")?;
            j.int(t.file)?;
            j.key("zero")?;
            j.int(t.zero)?;
            j.key("unavailable")?;
            j.begin_object()?;
            for (w, n) in &t.unavailable {
                j.key(why_key(*w))?;
                j.int(*n)?;
            }
            j.end_object()?;
            j.end_object()?;
        }
        j.end_array()?;
        j.end_object()?;
        j.finish()?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    let aw = vmas.iter().map(|(v, _)| format!("{:x}-{:x}", v.start, v.end).len()).max().unwrap_or(9).max(9);
    let kw = vmas.iter().map(|(v, _)| v.kind_names().join(",").len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:<aw$} {:<4} {:>8} {:>8} {:>8} {:>8} {:<kw$} NAME",
        "ADDRESS", "PERM", "SIZE", "DUMPED", "PARENTS", "UNKNOWN", "KIND"
    )?;
    let mut total = Tally::default();
    let mut size = 0;
    for (v, t) in &vmas {
        let kinds = v.kind_names().join(",");
        writeln!(
            out,
            "{:<aw$} {} {:>8} {:>8} {:>8} {:>8} {:<kw$} {}",
            format!("{:x}-{:x}", v.start, v.end),
            v.perms(),
            size_text(v.len()),
            size_text(t.dumped.first().copied().unwrap_or(0)),
            size_text(t.dumped.iter().skip(1).sum()),
            size_text(t.unavailable_total()),
            kinds,
            v.name
        )?;
        size += v.len();
        total.merge(t);
    }
    write!(
        out,
        "{} mappings, {} mapped, {} dumped",
        vmas.len(),
        size_text(size),
        size_text(total.dumped.first().copied().unwrap_or(0))
    )?;
    if total.dumped.len() > 1 {
        write!(out, ", {} in parent dumps", size_text(total.dumped.iter().skip(1).sum()))?;
    }
    for (w, n) in &total.unavailable {
        write!(out, ", {} {}", size_text(*n), w.describe())?;
    }
    writeln!(out)?;
    Ok(())
}

/// A `hexdump -C` printer: 16 bytes a line with the address, a line equal
/// to the one before (all 16 bytes) folded into `*`, the end address last.
pub struct HexDump<W: Write> {
    w: W,
    addr: u64,
    line: [u8; 16],
    fill: usize,
    prev: Option<[u8; 16]>,
    starred: bool,
    any: bool,
}

impl<W: Write> HexDump<W> {
    /// A printer whose first byte is at address `addr`.
    pub fn new(w: W, addr: u64) -> Self {
        HexDump { w, addr, line: [0; 16], fill: 0, prev: None, starred: false, any: false }
    }

    /// Print more bytes.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = (16 - self.fill).min(data.len());
            self.line[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            self.any = true;
            if self.fill == 16 {
                if self.prev == Some(self.line) {
                    if !self.starred {
                        self.w.write_all(b"*\n")?;
                        self.starred = true;
                    }
                } else {
                    let line = self.line;
                    self.print(&line)?;
                    self.prev = Some(line);
                    self.starred = false;
                }
                self.addr = self.addr.wrapping_add(16);
                self.fill = 0;
            }
        }
        Ok(())
    }

    fn print(&mut self, bytes: &[u8]) -> Result<()> {
        let mut s = String::with_capacity(80);
        s.push_str(&format!("{:08x}  ", self.addr));
        for i in 0..16 {
            match bytes.get(i) {
                Some(b) => s.push_str(&format!("{b:02x} ")),
                None => s.push_str("   "),
            }
            if i == 7 {
                s.push(' ');
            }
        }
        s.push_str(" |");
        for b in bytes {
            s.push(if (0x20..0x7f).contains(b) { *b as char } else { '.' });
        }
        s.push_str("|\n");
        self.w.write_all(s.as_bytes())?;
        Ok(())
    }

    /// Print the last partial line (never folded) and the end address.
    pub fn finish(mut self) -> Result<W> {
        if self.fill > 0 {
            let line = self.line;
            let n = self.fill;
            self.print(&line[..n])?;
            self.addr = self.addr.wrapping_add(n as u64);
        }
        if self.any {
            writeln!(self.w, "{:08x}", self.addr)?;
        }
        Ok(self.w)
    }
}

/// Bytes read by [`dump`]: how many were not known.
#[derive(Clone, Debug, Default)]
pub struct DumpReport {
    /// Unknown ranges (read as zeros): address, length, why.
    pub unknown: Vec<(u64, u64, Why)>,
}

/// `crit mem --addr A --len N [--hex]`: the bytes, in pieces of at most
/// 1 MiB; unknown bytes are written as zeros and reported.
pub fn dump(mem: &Memory, addr: u64, len: u64, hex: bool, out: &mut dyn Write) -> Result<DumpReport> {
    let end = addr.checked_add(len).ok_or_else(|| Error::value(format!("{len} bytes at {addr:#x} wrap around")))?;
    let pieces = mem.pieces(addr, end);
    if let Some(p) = pieces.iter().find(|p| p.content == Content::Unavailable(Why::Unmapped)) {
        return Err(Error::value(format!("address {:#x} is not mapped in process {}", p.addr, mem.pid)));
    }
    let mut report = DumpReport::default();
    for p in &pieces {
        if let Content::Unavailable(w) = p.content {
            report.unknown.push((p.addr, p.len, w));
        }
    }
    let mut buf = vec![0u8; (1 << 20).min(len as usize).max(1)];
    let mut each = |emit: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
        let mut a = addr;
        while a < end {
            let n = (end - a).min(buf.len() as u64) as usize;
            mem.read(a, &mut buf[..n])?;
            emit(&buf[..n])?;
            a += n as u64;
        }
        Ok(())
    };
    if hex {
        let mut h = HexDump::new(&mut *out, addr);
        each(&mut |b| h.feed(b))?;
        h.finish()?;
    } else {
        each(&mut |b| out.write_all(b).map_err(Into::into))?;
    }
    Ok(report)
}

/// What a search looks for.
pub enum Pattern {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A regular expression over bytes.
    Regex(regex::bytes::Regex),
}

impl Pattern {
    /// A bytes regular expression (the `regex` crate's syntax; `(?-u)` for
    /// byte classes).
    pub fn regex(re: &str) -> Result<Pattern> {
        regex::bytes::Regex::new(re)
            .map(Pattern::Regex)
            .map_err(|e| Error::value(format!("bad regular expression: {e}")))
    }

    fn finder(&self) -> Result<regex::bytes::Regex> {
        match self {
            Pattern::Regex(r) => Ok(r.clone()),
            Pattern::Bytes(b) => {
                if b.is_empty() {
                    return Err(Error::value("the search string is empty"));
                }
                let mut s = String::from("(?-u)");
                for c in b {
                    s.push_str(&format!("\\x{c:02x}"));
                }
                regex::bytes::Regex::new(&s).map_err(|e| Error::value(format!("search string: {e}")))
            }
        }
    }
}

/// One match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Its address.
    pub addr: u64,
    /// The matched bytes.
    pub bytes: Vec<u8>,
    /// Up to `context` bytes before and after it, in the same mapping.
    pub before: Vec<u8>,
    /// The bytes after.
    pub after: Vec<u8>,
    /// The mapping's start.
    pub vma_start: u64,
}

/// How much memory a search reads at once, and how far a match may go past it.
const CHUNK: usize = 4 << 20;
/// The longest match a search finds across the end of a chunk.
pub const MAX_MATCH: usize = 64 << 10;

/// Find `pat` in every dumped byte of the selected mappings (dumped in this
/// dump or a parent; file contents and zeros are not searched), calling
/// `found` for each match in address order; stops after `max` matches.
pub fn search(
    mem: &Memory,
    filter: &Filter,
    pat: &Pattern,
    context: usize,
    max: Option<u64>,
    found: &mut dyn FnMut(&Match, &Vma) -> Result<()>,
) -> Result<u64> {
    let re = pat.finder()?;
    // Dumped bytes that are contiguous in memory are searched together.
    let mut regions: Vec<(u64, u64)> = Vec::new();
    for v in mem.vmas().iter().filter(|v| filter.matches(v)) {
        let (a, b) = filter.clip(v);
        for p in mem.pieces(a, b) {
            if !matches!(p.content, Content::Dumped { .. }) {
                continue;
            }
            match regions.last_mut() {
                Some(r) if r.1 == p.addr => r.1 = p.end(),
                _ => regions.push((p.addr, p.end())),
            }
        }
    }
    let mut count = 0u64;
    let mut buf = vec![0u8; 0];
    for (start, end) in regions {
        let mut pos = start;
        // Matches do not overlap, across windows too.
        let mut next_from = start;
        while pos < end {
            let window_end = pos.saturating_add(CHUNK as u64).min(end);
            let read_end = window_end.saturating_add(MAX_MATCH as u64).min(end);
            let n = (read_end - pos) as usize;
            buf.resize(n, 0);
            mem.read(pos, &mut buf)?;
            let last = window_end == end;
            for m in re.find_iter(&buf) {
                let at = pos + m.start() as u64;
                if at >= window_end && !last {
                    break;
                }
                if at < next_from {
                    continue;
                }
                next_from = at + (m.len() as u64).max(1);
                let Some(v) = mem.vma_at(at) else { continue };
                let before_from = at.saturating_sub(context as u64).max(v.start);
                let after_to = (pos + m.end() as u64).saturating_add(context as u64).min(v.end);
                let mut before = vec![0u8; (at - before_from) as usize];
                mem.read(before_from, &mut before)?;
                let mut after = vec![0u8; (after_to - (pos + m.end() as u64)) as usize];
                mem.read(pos + m.end() as u64, &mut after)?;
                let mt = Match { addr: at, bytes: m.as_bytes().to_vec(), before, after, vma_start: v.start };
                found(&mt, v)?;
                count += 1;
                if max.is_some_and(|mx| count >= mx) {
                    return Ok(count);
                }
            }
            pos = window_end;
        }
    }
    Ok(count)
}

/// Bytes as a quoted, escaped string (`\xNN`, `\n`, `\t`, `\\`, `\"`).
pub fn escaped(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    for c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(*c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Print a match: `ADDRESS PERM NAME "before" "match" "after"` (text) or
/// one JSON object a line.
pub fn print_match(out: &mut dyn Write, m: &Match, v: &Vma, json: bool) -> Result<()> {
    if json {
        let mut j = JsonOut::new(&mut *out, false);
        j.begin_object()?;
        j.key("addr")?;
        j.int(m.addr)?;
        j.key("offset")?;
        j.int(m.addr - v.start)?;
        j.key("mapping")?;
        j.write_str(format!("{:x}-{:x}", v.start, v.end).as_bytes())?;
        j.key("name")?;
        j.write_str(v.name.as_bytes())?;
        for (k, b) in [("match", &m.bytes), ("before", &m.before), ("after", &m.after)] {
            j.key(k)?;
            j.write_str(escaped(b).as_bytes())?;
        }
        j.end_object()?;
        j.finish()?;
        out.write_all(b"\n")?;
    } else {
        let name = if v.name.is_empty() { String::new() } else { format!(" {}", v.name) };
        if m.before.is_empty() && m.after.is_empty() {
            writeln!(out, "{:x} {}{name}: \"{}\"", m.addr, v.perms(), escaped(&m.bytes))?;
        } else {
            writeln!(
                out,
                "{:x} {}{name}: \"{}\" \"{}\" \"{}\"",
                m.addr,
                v.perms(),
                escaped(&m.before),
                escaped(&m.bytes),
                escaped(&m.after)
            )?;
        }
    }
    Ok(())
}

/// One file written by [`extract`].
#[derive(Clone, Debug)]
pub struct Extracted {
    /// The file.
    pub path: PathBuf,
    /// The mapping.
    pub start: u64,
    /// Its end.
    pub end: u64,
    /// What its bytes are.
    pub tally: Tally,
}

/// The file name of a mapping's contents.
pub fn extract_name(v: &Vma) -> String {
    format!("{:x}-{:x}.bin", v.start, v.end)
}

/// `crit mem --extract OUTDIR`: each selected mapping's contents (the
/// whole mapping: dumped pages, file pages, zeros; unknown bytes as zeros,
/// as holes) to `OUTDIR/START-END.bin`, each file written atomically.
pub fn extract(
    mem: &Memory,
    filter: &Filter,
    dir: &Path,
    done: &mut dyn FnMut(&Extracted) -> Result<()>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::from(e).in_file(dir))?;
    for v in mem.vmas().iter().filter(|v| filter.matches(v)) {
        let path = dir.join(extract_name(v));
        let pieces = mem.vma_contents(v);
        let mut tally = Tally::default();
        for p in &pieces {
            tally.add(p);
        }
        let mut f = AtomicFile::create(&path).map_err(|e| Error::from(e).in_file(&path))?;
        {
            let file = f.file().map_err(|e| Error::from(e).in_file(&path))?;
            mem.copy_pieces(&pieces, file, 0).map_err(|e| e.in_file(&path))?;
            file.set_len(v.len()).map_err(|e| Error::from(e).in_file(&path))?;
        }
        f.commit().map_err(|e| Error::from(e).in_file(&path))?;
        done(&Extracted { path, start: v.start, end: v.end, tally })?;
    }
    Ok(())
}

/// Parse a kind name.
pub fn kind_by_name(s: &str) -> Option<Kind> {
    KINDS.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(data: &[u8], addr: u64, pieces: &[usize]) -> String {
        let mut h = HexDump::new(Vec::new(), addr);
        let mut rest = data;
        for &n in pieces {
            let n = n.min(rest.len());
            h.feed(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        h.feed(rest).unwrap();
        String::from_utf8(h.finish().unwrap()).unwrap()
    }

    #[test]
    fn hexdump_layout() {
        let mut d = b"hello world, this is a test of hexdump".to_vec();
        d.extend_from_slice(&[0; 45]);
        d.extend_from_slice(b"\xff\x80abc");
        let want = "\
00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 2c 20 74 68 69  |hello world, thi|
00000010  73 20 69 73 20 61 20 74  65 73 74 20 6f 66 20 68  |s is a test of h|
00000020  65 78 64 75 6d 70 00 00  00 00 00 00 00 00 00 00  |exdump..........|
00000030  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
*
00000050  00 00 00 ff 80 61 62 63                           |.....abc|
00000058
";
        assert_eq!(hd(&d, 0, &[]), want);
        // Fed in odd pieces, the same.
        assert_eq!(hd(&d, 0, &[1, 15, 3, 40, 7]), want);
        assert_eq!(hd(b"", 0, &[]), "");
    }

    #[test]
    fn byte_patterns_match_raw_bytes() {
        let f = Pattern::Bytes(vec![0xff, 0x00, b'.', b'a']).finder().unwrap();
        assert_eq!(f.find(b"xx\xff\x00.a").map(|m| m.start()), Some(2));
        assert!(f.find(b"xx\xff\x00ba").is_none(), "a literal, not a regex");
        assert!(Pattern::Bytes(Vec::new()).finder().is_err());
        let r = Pattern::regex("(?-u)\\xff[a-c]+").unwrap().finder().unwrap();
        assert_eq!(r.find(b"\xff\xffabcd").map(|m| (m.start(), m.end())), Some((1, 5)));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_text(0), "0");
        assert_eq!(size_text(4096), "4K");
        assert_eq!(size_text(139264), "136K");
        assert_eq!(size_text(8 << 20), "8M");
        assert_eq!(size_text(1000), "1000");
    }

    #[test]
    fn protections() {
        assert_eq!(Prot::parse("r-x").unwrap(), Prot { want: 5, exact: true, shared: None });
        assert_eq!(Prot::parse("rw-s").unwrap(), Prot { want: 3, exact: true, shared: Some(true) });
        assert_eq!(Prot::parse("rw").unwrap(), Prot { want: 3, exact: false, shared: None });
        assert_eq!(Prot::parse("x").unwrap(), Prot { want: 4, exact: false, shared: None });
        assert!(Prot::parse("rq").is_err());
        assert!(Prot::parse("r-").is_err());
    }
}
