//! The properties the fuzz targets check, one function per target.
//!
//! Each function takes any bytes, must never panic on them, and panics only
//! when a property fails.  The test suite compiles this same file
//! (tests/integration/malformed.rs) and replays tests/regressions/ through
//! it, so it uses nothing but std and crit.
//!
//! Properties, besides "no panic, no allocation out of proportion":
//! - everything that reads a stream gives the same answer whether the input
//!   comes whole or in pieces of 1, 2, 3, … bytes with interruptions;
//! - `decode` succeeds exactly when `info` and `show --nopl` do, and `info`
//!   counts what `decode` lists;
//! - the JSON of a decoded image encodes back (unless the image lacks a
//!   required field, which encode refuses by design), the image so made
//!   decodes to the same JSON, and nice JSON encodes to the same image as
//!   raw JSON;
//! - an image `encode` made is a fixed point: encode(decode(y)) == y;
//! - a message decoded from any bytes re-encodes to bytes that decode and
//!   re-encode to themselves, and its raw and nice JSON map back to it;
//! - `x ps|fds|mems|rss` on any directory print bounded output and one-line
//!   problems.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crit::checkpoint::Checkpoint;
use crit::error::ErrorKind;
use crit::explore::{self, Notes};
use crit::json::parse::{parse_slice, Json, Parser};
use crit::json::{message_from_json, write_message, JsonOut, Style};
use crit::magic::{Body, Payload};
use crit::schema::{MsgId, MESSAGES};
use crit::transcode::{self, DecodeOptions};
use crit::wire::Message;

/// A reader that hands its data out in small pieces, and, when asked,
/// fails every third call with `Interrupted` (which readers must retry).
pub struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
    interrupt: bool,
    calls: usize,
}

impl<'a> Pieces<'a> {
    /// Piece size from the low 3 bits of `ctl`, interruptions from bit 3.
    pub fn new(data: &'a [u8], ctl: u8) -> Self {
        const STEPS: [usize; 8] = [1, 2, 3, 5, 8, 61, 4093, usize::MAX];
        Pieces { data, step: STEPS[(ctl & 7) as usize], interrupt: ctl & 8 != 0, calls: 0 }
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.interrupt && self.calls % 3 == 0 {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "fuzz interruption"));
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Where two texts first differ, with some context.
fn diff(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let show = |t: &[u8]| String::from_utf8_lossy(&t[at.saturating_sub(80)..(at + 80).min(t.len())]).into_owned();
    format!("at byte {at}:\n  before: {}\n  after:  {}", show(a), show(b))
}

fn status<T>(r: &crit::Result<T>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => format!("Err({e})"),
    }
}

/// Whole and in pieces must agree: the same value, or the same error text.
fn same<T: PartialEq>(what: &str, whole: &crit::Result<T>, pieces: &crit::Result<T>) {
    match (whole, pieces) {
        (Ok(a), Ok(b)) => assert!(a == b, "{what}: whole input and input in pieces give different results"),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{what}: whole input and input in pieces fail differently")
        }
        _ => panic!("{what}: whole input gives {}, input in pieces gives {}", status(whole), status(pieces)),
    }
}

/// Every error message is one line (the CLI prints `crit: ` + it).
fn one_line(what: &str, e: &crit::Error) {
    let s = e.to_string();
    assert!(!s.contains('\n'), "{what}: error message spans lines: {s:?}");
}

fn dec(img: &[u8], opts: DecodeOptions) -> crit::Result<Vec<u8>> {
    transcode::decode(img, Vec::new(), opts)
}

fn enc(json: &[u8]) -> crit::Result<Vec<u8>> {
    transcode::encode(json, Vec::new())
}

const RAW: DecodeOptions = DecodeOptions { nice: false, no_payload: false };
const NICE: DecodeOptions = DecodeOptions { nice: true, no_payload: false };

/// Target `decode`: byte 0 picks the options (0x10 nice, 0x20 no payload)
/// and the piece size; the rest is an image.
pub fn decode(data: &[u8]) {
    let Some((&ctl, img)) = data.split_first() else { return };
    let opts = DecodeOptions { nice: ctl & 0x10 != 0, no_payload: ctl & 0x20 != 0 };
    let got = dec(img, opts);
    same("decode", &got, &transcode::decode(Pieces::new(img, ctl), Vec::new(), opts));
    if let Err(e) = &got {
        one_line("decode", e);
    }
    let separate = if opts.nice || opts.no_payload { Some(dec(img, RAW)) } else { None };
    let raw = separate.as_ref().unwrap_or(&got);
    assert_eq!(raw.is_ok(), got.is_ok(), "decode {opts:?} gives {}, raw decode {}", status(&got), status(raw));
    let info = transcode::info(img);
    assert_eq!(info.is_ok(), raw.is_ok(), "info gives {}, decode {}", status(&info), status(raw));
    let (Ok(json), Ok((kind, count))) = (raw, info) else { return };

    let doc = parse_slice(json).unwrap_or_else(|e| panic!("decode wrote JSON that does not parse: {e}"));
    let listed = match doc.get("entries") {
        Some(Json::Arr(a)) => a.len(),
        _ => panic!("decode wrote no entries list"),
    };
    let listed = if kind.body == Body::Pagemap { listed.saturating_sub(1) } else { listed };
    assert_eq!(count, listed, "info counts {count} entries, decode lists {listed}");

    // Decode reads messages that lack required fields (so that such an
    // image can be looked at); encode refuses to write them, or, for a
    // pagemap entry with `nr_pages` but no `compat_nr_pages`, reads it as
    // the JSON of crit <= 4.1.  The round trip is for complete images.
    if !complete(img) {
        return;
    }
    let img2 = match enc(json) {
        Ok(b) => b,
        // The same for a SysV message header inside a payload.
        Err(e)
            if matches!(e.kind, ErrorKind::MissingRequired { .. })
                && e.loc.field.as_deref().is_some_and(|f| f.starts_with("extra")) =>
        {
            return
        }
        // A SysV queue that ends before `qnum` messages ends the list on
        // decode, as in CRIU and crit; encode wants `qnum` of them.
        Err(e) if matches!(kind.body, Body::Entries(_, Payload::Msg)) && e.loc.field.as_deref() == Some("extra") => {
            return
        }
        Err(e) => panic!("the JSON of a decoded image does not encode: {e}"),
    };
    let json2 = dec(&img2, RAW).unwrap_or_else(|e| panic!("an image made by encode does not decode: {e}"));
    assert!(json2 == *json, "decode(encode(decode(x))) differs from decode(x): {}", diff(json, &json2));
    if opts.nice && !opts.no_payload {
        if let Ok(nice) = &got {
            match enc(nice) {
                Ok(b) => assert!(b == img2, "nice JSON encodes to another image than raw JSON"),
                Err(e) => panic!("nice JSON does not encode, raw JSON does: {e}"),
            }
        }
    }
}

/// Whether every entry of an image has all its required fields, and no
/// unix socket name that crit's quoted-printable cannot carry.
fn complete(img: &[u8]) -> bool {
    let Ok(mut rd) = crit::image::ImageReader::open(img) else { return false };
    while let Ok(Some(item)) = rd.next_item() {
        if !item.msg.missing_required().is_empty() || qp_lossy(&item.msg) {
            return false;
        }
    }
    true
}

/// Unix socket names are quoted-printable in crit's JSON (Python's
/// `quopri`), which does not give back every byte string: CR and LF come
/// back as line breaks of its own, and trailing white space before them
/// changes.  We print the same text as crit, so such a name does not
/// survive JSON; the round-trip properties leave those messages out.
fn qp_lossy(m: &Message) -> bool {
    use crit::wire::Value;
    m.fields.iter().any(|(n, v)| match v {
        Value::Msg(sub) => qp_lossy(sub),
        Value::Bytes(b) => {
            let d = m.ty.desc();
            d.field_index(*n).is_some_and(|i| d.fields[i].opts.conv == Some("unix_name"))
                && crit::json::pyfmt::qp_decode(crit::json::pyfmt::qp_encode(b).as_bytes()) != *b
        }
        _ => false,
    })
}

/// Target `encode`: the input is JSON text.
pub fn encode(data: &[u8]) {
    let ctl = (data.len() % 16) as u8;
    let got = enc(data);
    same("encode", &got, &transcode::encode(Pieces::new(data, ctl), Vec::new()));
    let img = match got {
        Ok(img) => img,
        Err(e) => return one_line("encode", &e),
    };
    let json = dec(&img, RAW).unwrap_or_else(|e| panic!("an image made by encode does not decode: {e}"));
    if !complete(&img) {
        return;
    }
    let img2 = enc(&json).unwrap_or_else(|e| panic!("the JSON of an image made by encode does not encode: {e}"));
    assert!(img2 == img, "encode(decode(y)) != y for an image y made by encode");
    let nice = dec(&img, NICE).unwrap_or_else(|e| panic!("an image made by encode does not decode nice: {e}"));
    let img3 = enc(&nice).unwrap_or_else(|e| panic!("the nice JSON of an image made by encode does not encode: {e}"));
    assert!(img3 == img, "nice JSON of an image made by encode encodes to another image");
}

fn to_json(m: &Message, nice: bool) -> Vec<u8> {
    let mut out = JsonOut::new(Vec::new(), nice);
    write_message(&mut out, m, Style { nice }, false).unwrap_or_else(|e| panic!("writing JSON to memory failed: {e}"));
    out.finish().unwrap_or_else(|e| panic!("writing JSON to memory failed: {e}"))
}

/// Target `message`: bytes 0–1 pick the message type, the rest is its wire
/// form.
pub fn message(data: &[u8]) {
    if data.len() < 2 || MESSAGES.is_empty() {
        return;
    }
    let ty = MsgId((u16::from_le_bytes([data[0], data[1]]) as usize % MESSAGES.len()) as u16);
    let name = ty.desc().name;
    let m = match Message::decode(ty, &data[2..]) {
        Ok(m) => m,
        Err(e) => return one_line(name, &e),
    };
    let bytes = m.to_bytes();
    let m2 = Message::decode(ty, &bytes).unwrap_or_else(|e| panic!("{name}: our own encoding does not decode: {e}"));
    assert!(m2.to_bytes() == bytes, "{name}: encode(decode(y)) != y for bytes y we wrote");
    if qp_lossy(&m) {
        return;
    }
    for nice in [false, true] {
        let text = to_json(&m, nice);
        let j = parse_slice(&text).unwrap_or_else(|e| panic!("{name}: our JSON does not parse (nice {nice}): {e}"));
        let back = message_from_json(ty, &j)
            .unwrap_or_else(|e| panic!("{name}: our JSON does not map back (nice {nice}): {e}"));
        let text2 = to_json(&back, nice);
        assert!(text2 == text, "{name}: JSON → message → JSON changes the JSON (nice {nice}): {}", diff(&text, &text2));
        let again = message_from_json(ty, &parse_slice(&to_json(&back, false)).unwrap_or(Json::Null));
        assert!(
            again.map(|a| a.to_bytes()).ok() == Some(back.to_bytes()),
            "{name}: raw JSON of a message does not give back its bytes (nice {nice})"
        );
    }
}

/// Target `json`: any bytes through the streaming JSON parser.
pub fn json(data: &[u8]) {
    let ctl = (data.len() % 16) as u8;
    let whole = parse_slice(data);
    let mut p = Parser::new(Pieces::new(data, ctl));
    let pieces = p.value().and_then(|v| p.expect_end().map(|_| v));
    match (&whole, &pieces) {
        // Debug text, so that NaN compares equal to NaN.
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "json: whole and in pieces differ"),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "json: whole and in pieces fail differently");
            assert!(a.loc.line_col.is_some(), "json: error without line and column: {a}");
            one_line("json", a);
        }
        _ => panic!("json: whole input gives {}, input in pieces gives {}", status(&whole), status(&pieces)),
    }
}

/// The fuzz input of target `x`, as the files of a directory: pieces
/// `=== NAME\nDATA` joined by `\n`.  Names are kept to `[A-Za-z0-9._-]`.
pub fn split_dir(data: &[u8]) -> Vec<(String, &[u8])> {
    const SEP: &[u8] = b"\n=== ";
    let mut rest = data.strip_prefix(&SEP[1..]).unwrap_or(data);
    let mut out: Vec<(String, &[u8])> = Vec::new();
    loop {
        let (piece, more) = match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => (&rest[..i], Some(&rest[i + SEP.len()..])),
            None => (rest, None),
        };
        let (name, body) = match piece.iter().position(|&b| b == b'\n') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &piece[piece.len()..]),
        };
        let name: String = name
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            .take(64)
            .map(|&b| b as char)
            .collect();
        if !name.is_empty() && !name.starts_with('.') && out.len() < 48 && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, body));
        }
        match more {
            Some(m) => rest = m,
            None => return out,
        }
    }
}

/// The inverse of [`split_dir`], for seeding the corpus.
pub fn join_dir(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, (name, data)) in files.iter().enumerate() {
        if i > 0 {
            v.push(b'\n');
        }
        v.extend_from_slice(b"=== ");
        v.extend_from_slice(name.as_bytes());
        v.push(b'\n');
        v.extend_from_slice(data);
    }
    v
}

/// Counts output; fails writes past a limit.
struct Capped {
    n: u64,
    limit: u64,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.n += buf.len() as u64;
        if self.n > self.limit {
            return Err(io::Error::other("output limit"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    base.join(format!("crit-fuzz-x-{}", std::process::id()))
}

/// Target `x`: the input split into files of a directory (see
/// [`split_dir`]), then every view.
pub fn x(data: &[u8]) {
    x_in(data, &scratch())
}

/// Target `x` in a given scratch directory (emptied first).
pub fn x_in(data: &[u8], dir: &Path) {
    let _ = fs::create_dir_all(dir);
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    for (name, body) in split_dir(data) {
        fs::write(dir.join(&name), body).unwrap_or_else(|e| panic!("cannot write the scratch file {name}: {e}"));
    }
    let ck = Checkpoint::open(dir).unwrap_or_else(|e| panic!("a directory does not open: {e}"));
    // Some views are legitimately quadratic (every task of a pstree listing
    // the same fd table), never worse.
    let n = data.len() as u64;
    let limit = (4 << 20) + n * n / 8;
    type View = fn(&Checkpoint, &mut dyn Write, &mut Notes) -> crit::Result<()>;
    let views: [(&str, View); 4] =
        [("ps", explore::ps), ("fds", explore::fds), ("mems", explore::mems), ("rss", explore::rss)];
    for (name, view) in views {
        let mut out = Capped { n: 0, limit };
        let mut notes = Notes::default();
        let r = view(&ck, &mut out, &mut notes);
        assert!(out.n <= limit, "x {name}: more than {limit} bytes of output from {n} bytes of input");
        if let Err(e) = &r {
            one_line(name, e);
        }
        for p in &notes.problems {
            assert!(!p.contains('\n'), "x {name}: a problem note spans lines: {p:?}");
        }
    }
}

/// Target `archive`: the input as a container checkpoint archive (tar,
/// tar.gz or tar.zst).  Every member it lists reads the same through
/// `open` and `read_at`, within the size it reports, and the views run on
/// it.
pub fn archive(data: &[u8]) {
    let path = scratch().with_extension("tar");
    fs::write(&path, data).unwrap_or_else(|e| panic!("cannot write the scratch archive: {e}"));
    archive_at(&path, data.len() as u64);
}

/// Target `archive` on a file already written.
pub fn archive_at(path: &Path, len: u64) {
    use crit::archive::ArchiveSource;
    use crit::checkpoint::Source;
    let src = match ArchiveSource::open(path) {
        Ok(s) => s,
        Err(e) => return one_line("archive", &e),
    };
    let names = src.names().unwrap_or_default();
    for name in names.iter().take(64) {
        let Some(size) = src.size(name) else { continue };
        let mut via_open = Vec::new();
        if let Ok(Some(mut r)) = src.open(name) {
            let _ = r.by_ref().take(16 << 20).read_to_end(&mut via_open);
        }
        assert!(via_open.len() as u64 <= size, "archive {name}: read {} bytes, size says {size}", via_open.len());
        let mut via_at = vec![0u8; via_open.len()];
        let mut at = 0;
        while at < via_at.len() {
            match src.read_at(name, at as u64, &mut via_at[at..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => at += k,
            }
        }
        assert!(via_at[..at] == via_open[..at], "archive {name}: read_at and open give different bytes");
    }
    let ck = Checkpoint::from_source(Box::new(src));
    let limit = (4 << 20) + len * len / 8;
    let mut out = Capped { n: 0, limit };
    let _ = explore::ps(&ck, &mut out, &mut Notes::default());
    assert!(out.n <= limit, "archive: x ps printed more than {limit} bytes");
}

/// Target `stream`: byte 0 picks what the rest is: requests as CRIU sends
/// them to the image streamer (0), or a `--set IMAGE:PATH=JSON` edit applied
/// to a small image's JSON (1).
pub fn stream(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        let Ok((mut a, mut b)) = std::os::unix::net::UnixStream::pair() else { return };
        let body = rest.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = a.write_all(&body);
        });
        let mut n = 0;
        loop {
            match crit::stream::read_request(&mut b) {
                Ok(Some(name)) => {
                    n += 1;
                    assert!(n <= rest.len() / 4 + 1, "stream: more requests than the input holds");
                    let _ = crit::stream::valid_name(&name);
                }
                Ok(None) => break,
                Err(e) => {
                    one_line("stream", &e);
                    break;
                }
            }
        }
        drop(b);
        let _ = writer.join();
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let crit::stream::Edit::Set { path, value, .. } = (match crit::stream::Edit::parse_set(text) {
        Ok(e) => e,
        Err(e) => return one_line("--set", &e),
    }) else {
        return;
    };
    let mut doc =
        parse_slice(br#"{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "threads": [1]}]}"#)
            .unwrap_or(Json::Null);
    if crit::json::edit::set_path(&mut doc, &path, value).is_ok() {
        let text = crit::json::edit::to_vec(&doc);
        let back = parse_slice(&text).unwrap_or_else(|e| panic!("--set: the edited JSON does not parse: {e}"));
        assert_eq!(format!("{back:?}"), format!("{doc:?}"), "--set: the edited JSON does not read back");
        if let Err(e) = enc(&text) {
            one_line("--set then encode", &e);
        }
    }
}

/// Target `views`: the same directory input as `x` (see [`split_dir`]),
/// through the other readers of a checkpoint: `x sk|tree|mounts|files` and
/// the JSON forms of every view, `stats`, `check`, the memory reader
/// (`mem`: each process's mappings and their first bytes) and `core` (an
/// ELF core file of each process).  Output stays bounded, messages are
/// one line.
pub fn views(data: &[u8]) {
    views_in(data, &scratch().with_extension("views"))
}

/// Target `views` in a given scratch directory (emptied first).
pub fn views_in(data: &[u8], dir: &Path) {
    let _ = fs::create_dir_all(dir);
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    for (name, body) in split_dir(data) {
        fs::write(dir.join(&name), body).unwrap_or_else(|e| panic!("cannot write the scratch file {name}: {e}"));
    }
    let n = data.len() as u64;
    let limit = (4 << 20) + n * n / 8;
    type View = fn(&Checkpoint, &mut dyn Write, &mut Notes) -> crit::Result<()>;
    let views: [(&str, View); 14] = [
        ("ps --json", crit::views::ps_json),
        ("fds --json", crit::views::fds_json),
        ("mems --json", crit::views::mems_json),
        ("rss --json", crit::views::rss_json),
        ("sk", |c, w, n| crit::views::sk(c, w, n, false)),
        ("sk --json", |c, w, n| crit::views::sk(c, w, n, true)),
        ("tree", |c, w, n| crit::views::tree(c, w, n, false)),
        ("tree --json", |c, w, n| crit::views::tree(c, w, n, true)),
        ("mounts", |c, w, n| crit::views::mounts(c, w, n, false)),
        ("mounts --json", |c, w, n| crit::views::mounts(c, w, n, true)),
        ("files", |c, w, n| crit::views::files(c, w, n, false)),
        ("files --json", |c, w, n| crit::views::files(c, w, n, true)),
        ("stats", |c, w, n| crit::stats::stats(c, w, n, false)),
        ("stats --json", |c, w, n| crit::stats::stats(c, w, n, true)),
    ];
    let ck = Checkpoint::open(dir).unwrap_or_else(|e| panic!("a directory does not open: {e}"));
    for (name, view) in views {
        let mut out = Capped { n: 0, limit };
        let mut notes = Notes::default();
        let r = view(&ck, &mut out, &mut notes);
        assert!(out.n <= limit, "x {name}: more than {limit} bytes of output from {n} bytes of input");
        if let Err(e) = &r {
            one_line(name, e);
        }
        for p in &notes.problems {
            assert!(!p.contains('\n'), "x {name}: a problem note spans lines: {p:?}");
        }
    }
    match crit::check::check(&ck) {
        Ok(report) => {
            let mut out = Capped { n: 0, limit };
            let _ = crit::check::write_text(&report, "fuzz", &mut out);
            let _ = crit::check::write_json(&report, "fuzz", &mut out);
            assert!(out.n <= limit, "check: more than {limit} bytes of report from {n} bytes of input");
        }
        Err(e) => one_line("check", &e),
    }
    let Ok(tasks) = ck.tasks() else { return };
    let files = crit::mem::Files::default();
    for t in tasks.iter().take(8) {
        let Ok(m) = crit::mem::Memory::open(&ck, t.pid, &files) else { continue };
        for v in m.vmas().iter().take(64) {
            let pieces = m.vma_contents(v);
            let mut buf = [0u8; 64];
            if let Some(p) = pieces.first() {
                let _ = m.read(p.addr, &mut buf);
            }
        }
    }
    let core = dir.with_extension("core");
    if let Ok(procs) = crit::coredump::processes_with_memory(&ck) {
        for t in procs.iter().take(4) {
            match crit::coredump::write_core(&ck, t.pid, &core, &crit::coredump::CoreOptions::default()) {
                Ok(_) => {}
                Err(e) => one_line("core", &e),
            }
            let _ = fs::remove_file(&core);
        }
    }
}
