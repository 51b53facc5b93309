//! CRIU's image streaming (`criu dump --stream`, `criu restore --stream`):
//! we are the image streamer.
//!
//! The protocol (CRIU's `criu/img-streamer.c`, measured in
//! `shared/reference/stream-and-versions.md`): we listen on
//! `DIR/streamer-capture.sock` (dump) or `DIR/streamer-serve.sock`
//! (restore); CRIU connects once; for each image it sends a u32-LE
//! length-prefixed `img_streamer_request_entry` with the file name; on
//! restore we answer an `img_streamer_reply_entry` (exists or not); then
//! CRIU passes one end of a pipe with SCM_RIGHTS and a 1-byte payload, and
//! the file's exact bytes flow through it.
//!
//! CRIU asks for `pages-N.img` before it has read the whole pagemap, so
//! every file is served by its own thread: the request loop never waits
//! for a file to be written.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};

use crate::error::{Error, Result};
use crate::json::edit;
use crate::json::parse::{parse_slice, Json};
use crate::magic;
use crate::output::AtomicFile;
use crate::schema::msg;
use crate::transcode::{self, DecodeOptions};
use crate::wire::{Message, Value};

/// Longest request accepted (a file name in a small message).
const MAX_REQUEST: u32 = 4096;

/// Socket file names.
pub const CAPTURE_SOCKET: &str = "streamer-capture.sock";
/// Socket file name of the restore side.
pub const SERVE_SOCKET: &str = "streamer-serve.sock";

// ---------------------------------------------------------------------------
// The wire protocol

fn read_exact_or_eof(s: &mut UnixStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a message")),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Read one request: the file name, or None when CRIU closed the socket.
/// Exact-length reads only: the byte that carries the pipe fd must be left
/// for [`recv_fd`].
pub fn read_request(s: &mut UnixStream) -> Result<Option<String>> {
    let mut len = [0u8; 4];
    if !read_exact_or_eof(s, &mut len)? {
        return Ok(None);
    }
    let n = u32::from_le_bytes(len);
    if n > MAX_REQUEST {
        return Err(Error::malformed(format!("stream request of {n} bytes (at most {MAX_REQUEST})")));
    }
    let mut body = vec![0u8; n as usize];
    if !read_exact_or_eof(s, &mut body)? {
        return Err(Error::malformed("stream closed inside a request"));
    }
    let m = Message::decode(msg::IMG_STREAMER_REQUEST_ENTRY, &body)?;
    match m.get("filename") {
        Some(Value::Str(name)) => String::from_utf8(name.clone())
            .map(Some)
            .map_err(|_| Error::malformed("stream request: file name is not UTF-8")),
        _ => Err(Error::malformed("stream request without a file name")),
    }
}

/// Write a request (the CRIU side; used by tests).
pub fn write_request(s: &mut UnixStream, name: &str) -> Result<()> {
    let mut m = Message::new(msg::IMG_STREAMER_REQUEST_ENTRY);
    m.set("filename", Value::Str(name.as_bytes().to_vec()))?;
    let body = m.to_bytes();
    s.write_all(&(body.len() as u32).to_le_bytes())?;
    s.write_all(&body)?;
    Ok(())
}

/// Answer whether a file exists (restore side).
pub fn write_reply(s: &mut UnixStream, exists: bool) -> Result<()> {
    s.write_all(&[2, 0, 0, 0, 0x08, exists as u8])?;
    Ok(())
}

/// Read a reply (the CRIU side; used by tests).
pub fn read_reply(s: &mut UnixStream) -> Result<bool> {
    let mut len = [0u8; 4];
    if !read_exact_or_eof(s, &mut len)? {
        return Err(Error::malformed("stream closed before the reply"));
    }
    let n = u32::from_le_bytes(len).min(MAX_REQUEST);
    let mut body = vec![0u8; n as usize];
    read_exact_or_eof(s, &mut body)?;
    let m = Message::decode(msg::IMG_STREAMER_REPLY_ENTRY, &body)?;
    Ok(m.bool("exists") == Some(true))
}

/// Receive the pipe end CRIU passes (1 byte + SCM_RIGHTS).
pub fn recv_fd(s: &UnixStream) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<UnixAddr>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| Error::from(io::Error::from(e)))?;
    let mut got: Option<OwnedFd> = None;
    for c in msg.cmsgs().map_err(|e| Error::from(io::Error::from(e)))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just gave us this descriptor; we own it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    if msg.bytes == 0 {
        return Err(Error::malformed("stream closed before the pipe was passed"));
    }
    got.ok_or_else(|| Error::malformed("no pipe was passed with the request"))
}

/// Pass a descriptor (the CRIU side; used by tests).
pub fn send_fd(s: &UnixStream, fd: impl AsFd) -> Result<()> {
    let fds = [fd.as_fd().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&[0u8])];
    sendmsg::<UnixAddr>(s.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::from(io::Error::from(e)))?;
    Ok(())
}

/// Whether a requested name is a plain file name in the images directory.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Create the listening socket (mode 0600), replacing a stale one.
pub fn listen(dir: &Path, name: &str) -> Result<(UnixListener, PathBuf)> {
    let path = dir.join(name);
    if path.as_os_str().len() > 107 {
        return Err(Error::other(format!(
            "socket path {} is longer than 107 bytes: CRIU could not connect to it",
            path.display()
        )));
    }
    let _ = std::fs::remove_file(&path);
    // The socket's mode comes from the umask at bind time.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(&path);
    nix::sys::stat::umask(old);
    let l = l.map_err(|e| Error::from(e).in_file(&path))?;
    Ok((l, path))
}

// ---------------------------------------------------------------------------
// Common bookkeeping

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file name CRIU asked for.
    pub name: String,
    /// Bytes moved.
    pub bytes: u64,
    /// How it went, if not well.
    pub problem: Option<String>,
    /// CRIU closed the pipe before the end (restore): not an error of ours.
    pub closed_early: bool,
}

/// The result of a session.
#[derive(Debug, Default)]
pub struct Summary {
    /// Every file, in request order.
    pub files: Vec<FileReport>,
    /// Requests answered "does not exist" (restore).
    pub missing: Vec<String>,
    /// Requests refused (bad names).
    pub refused: Vec<String>,
}

impl Summary {
    /// Whether everything went well.
    pub fn ok(&self) -> bool {
        self.files.iter().all(|f| f.problem.is_none()) && self.refused.is_empty()
    }
}

/// Progress lines (`socket-init`, as criu-image-streamer prints them).
pub struct Progress {
    out: Option<Box<dyn Write + Send>>,
}

impl Progress {
    /// Progress to a writer, or nowhere.
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        Progress { out }
    }

    /// Write one progress line.
    pub fn line_public(&mut self, s: &str) {
        self.line(s)
    }

    fn line(&mut self, s: &str) {
        if let Some(o) = self.out.as_mut() {
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
    }
}

fn splice_or_copy(from: &mut File, to: &File, live: &crate::progress::Shared) -> io::Result<u64> {
    use nix::fcntl::{splice, SpliceFFlags};
    let mut total = 0u64;
    loop {
        match splice(from.as_fd(), None, to.as_fd(), None, 1 << 20, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n as u64;
                live.add_bytes(n as u64);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EINVAL) if total == 0 => {
                // Not spliceable (e.g. a file system without splice): copy.
                let mut w = to;
                return io::copy(from, &mut w);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn grow_pipe(fd: &OwnedFd) {
    let _ = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

// ---------------------------------------------------------------------------
// Capture (dump)

/// Options of [`capture`].
#[derive(Default)]
pub struct CaptureOptions {
    /// Write images as crit JSON (`NAME.json`), raw images stay binary.
    pub json: bool,
}

/// Receive a dump: listen, accept CRIU, write every file into `dir`.
pub fn capture(dir: &Path, opts: &CaptureOptions, mut progress: Progress) -> Result<Summary> {
    let (listener, sock_path) = listen(dir, CAPTURE_SOCKET)?;
    progress.line("socket-init");
    capture_on(listener, &sock_path, dir, opts, progress)
}

/// [`capture`] on a socket already listening (see [`listen`]).
pub fn capture_on(
    listener: UnixListener,
    sock_path: &Path,
    dir: &Path,
    opts: &CaptureOptions,
    mut progress: Progress,
) -> Result<Summary> {
    let (mut conn, _) = listener.accept()?;
    drop(listener);
    let _ = std::fs::remove_file(sock_path);
    let mut workers = Workers::new("capture");
    let mut summary = Summary::default();
    let mut first = true;
    while let Some(name) = next_request(&mut conn, &mut summary) {
        let fd = recv_fd(&conn)?;
        if !valid_name(&name) {
            summary.refused.push(name);
            continue;
        }
        if first && name != "cpuinfo.img" {
            progress.line("checkpoint-start");
            first = false;
        }
        grow_pipe(&fd);
        let dir = dir.to_path_buf();
        let json = opts.json;
        workers.spawn(name.clone(), move |live| write_captured(&dir, &name, &mut File::from(fd), json, live));
    }
    workers.finish(&mut summary);
    if !summary.files.iter().any(|f| f.name == "inventory.img" && f.problem.is_none()) {
        summary.files.push(FileReport {
            name: "inventory.img".into(),
            bytes: 0,
            problem: Some("CRIU closed the connection before writing inventory.img: the dump is incomplete".into()),
            closed_early: false,
        });
    }
    Ok(summary)
}

fn write_captured(dir: &Path, name: &str, pipe: &mut File, json: bool, live: &crate::progress::Shared) -> Result<u64> {
    let raw = magic::RAW_IMAGE_PREFIXES.iter().any(|p| name.starts_with(p));
    if json && !raw {
        let target = dir.join(format!("{name}.json"));
        let mut out = AtomicFile::create(&target).map_err(|e| Error::from(e).in_file(&target))?;
        let mut counted = CountingReader { r: BufReader::with_capacity(1 << 16, pipe), n: 0, live };
        match transcode::decode(&mut counted, &mut out, DecodeOptions { nice: false, no_payload: false }) {
            Ok(_) => {
                out.commit().map_err(|e| Error::from(e).in_file(&target))?;
                Ok(counted.n)
            }
            Err(e) => Err(e.in_file(name)),
        }
    } else {
        let target = dir.join(name);
        let mut out = AtomicFile::create(&target).map_err(|e| Error::from(e).in_file(&target))?;
        let n = out.splice_from(pipe, |k| live.add_bytes(k)).map_err(|e| Error::from(e).in_file(&target))?;
        out.commit().map_err(|e| Error::from(e).in_file(&target))?;
        Ok(n)
    }
}

struct CountingReader<'a, R> {
    r: R,
    n: u64,
    live: &'a crate::progress::Shared,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n += k as u64;
        self.live.add_bytes(k as u64);
        Ok(k)
    }
}

// ---------------------------------------------------------------------------
// Serve (restore)

/// An edit applied to one image while it is served.
#[derive(Clone, Debug)]
pub enum Edit {
    /// `--set IMAGE:PATH=JSON`.
    Set {
        /// The image file name.
        image: String,
        /// Dotted path into the image's JSON.
        path: String,
        /// The new value.
        value: Json,
    },
    /// `--patch IMAGE=FILE`: a JSON Patch (RFC 6902).
    Patch {
        /// The image file name.
        image: String,
        /// The patch.
        patch: Json,
    },
}

impl Edit {
    fn image(&self) -> &str {
        match self {
            Edit::Set { image, .. } | Edit::Patch { image, .. } => image,
        }
    }

    /// Parse `IMAGE:PATH=JSON`.
    pub fn parse_set(s: &str) -> Result<Edit> {
        let (image, rest) =
            s.split_once(':').ok_or_else(|| Error::value(format!("--set {s:?}: expected IMAGE:PATH=JSON")))?;
        let (path, value) =
            rest.split_once('=').ok_or_else(|| Error::value(format!("--set {s:?}: expected IMAGE:PATH=JSON")))?;
        let value = parse_slice(value.as_bytes())
            .map_err(|e| Error::value(format!("--set {s:?}: the value is not JSON: {e}")))?;
        if !valid_name(image) {
            return Err(Error::value(format!("--set {s:?}: {image:?} is not an image file name")));
        }
        Ok(Edit::Set { image: image.to_string(), path: path.to_string(), value })
    }

    /// Parse `IMAGE=FILE` and read the patch file.
    pub fn parse_patch(s: &str) -> Result<Edit> {
        let (image, file) =
            s.split_once('=').ok_or_else(|| Error::value(format!("--patch {s:?}: expected IMAGE=FILE")))?;
        let data = std::fs::read(file).map_err(|e| Error::from(e).in_file(file))?;
        let patch = parse_slice(&data).map_err(|e| e.in_file(file))?;
        Ok(Edit::Patch { image: image.to_string(), patch })
    }
}

/// Options of [`serve`].
#[derive(Default)]
pub struct ServeOptions {
    /// Edits, applied in order.
    pub edits: Vec<Edit>,
}

/// Check that every edit names an image of `dir`.
pub fn check_edits(dir: &Path, opts: &ServeOptions) -> Result<()> {
    for e in &opts.edits {
        if find_origin(dir, e.image()).is_none() {
            return Err(Error::other(format!("the edit names {}, which is not in {}", e.image(), dir.display())));
        }
    }
    Ok(())
}

/// Where a served image comes from.
#[derive(Clone)]
enum Origin {
    /// A pagemap of an incremental dump, flattened on the fly.
    FlatPagemap(PathBuf, String),
    /// The pages of such a pagemap, from every dump of the chain.
    FlatPages(PathBuf, String),
    /// A binary file, passed through unchanged (zero-copy).
    Binary(PathBuf),
    /// A JSON file (ours or crit's), encoded on the fly.
    Json(PathBuf),
}

/// Whether a file holds crit JSON rather than an image: by content.
pub fn is_json_file(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else { return false };
    let mut buf = [0u8; 64];
    let Ok(n) = f.read(&mut buf) else { return false };
    let s = &buf[..n];
    let start = s.iter().position(|b| !b" \t\r\n".contains(b)).unwrap_or(n);
    s.get(start) == Some(&b'{') && (s[start..].windows(7).any(|w| w == b"\"magic\"") || n - start < 8)
}

/// The pagemaps of `dir` that need its parent chain, by pages id: CRIU
/// cannot follow parents while streaming, so these are served flattened.
fn chained_pagemaps(dir: &Path) -> Result<Vec<(u32, String)>> {
    let mut v = Vec::new();
    if std::fs::symlink_metadata(dir.join("parent")).is_err() {
        return Ok(v);
    }
    for e in std::fs::read_dir(dir)? {
        let n = e?.file_name().to_string_lossy().into_owned();
        if n.starts_with("pagemap-") && crate::flatten::needs_parent(dir, &n)? {
            if let Some(id) = crate::flatten::pages_id(dir, &n)? {
                v.push((id, n));
            }
        }
    }
    Ok(v)
}

fn find_origin_flat(dir: &Path, name: &str, chained: &[(u32, String)]) -> Option<Origin> {
    for (id, pm) in chained {
        if name == pm {
            return Some(Origin::FlatPagemap(dir.to_path_buf(), pm.clone()));
        }
        if name == format!("pages-{id}.img") {
            return Some(Origin::FlatPages(dir.to_path_buf(), pm.clone()));
        }
    }
    find_origin(dir, name)
}

fn find_origin(dir: &Path, name: &str) -> Option<Origin> {
    let p = dir.join(name);
    let raw = magic::RAW_IMAGE_PREFIXES.iter().any(|pre| name.starts_with(pre));
    if p.is_file() {
        if !raw && is_json_file(&p) {
            return Some(Origin::Json(p));
        }
        return Some(Origin::Binary(p));
    }
    let j = dir.join(format!("{name}.json"));
    if !raw && j.is_file() {
        return Some(Origin::Json(j));
    }
    None
}

/// Serve a restore from `dir`: listen, accept CRIU, answer every request.
pub fn serve(dir: &Path, opts: &ServeOptions, mut progress: Progress) -> Result<Summary> {
    check_edits(dir, opts)?;
    let (listener, sock_path) = listen(dir, SERVE_SOCKET)?;
    progress.line("socket-init");
    serve_on(listener, &sock_path, dir, opts)
}

/// [`serve`] on a socket already listening (see [`listen`]).
pub fn serve_on(listener: UnixListener, sock_path: &Path, dir: &Path, opts: &ServeOptions) -> Result<Summary> {
    let (mut conn, _) = listener.accept()?;
    drop(listener);
    let _ = std::fs::remove_file(sock_path);
    let edits = Arc::new(opts.edits.clone());
    let chained = chained_pagemaps(dir)?;
    let mut workers = Workers::new("serve");
    let mut summary = Summary::default();
    while let Some(name) = next_request(&mut conn, &mut summary) {
        let origin = if valid_name(&name) { find_origin_flat(dir, &name, &chained) } else { None };
        if !valid_name(&name) {
            summary.refused.push(name.clone());
        }
        let Some(origin) = origin else {
            write_reply(&mut conn, false)?;
            if valid_name(&name) {
                summary.missing.push(name);
            }
            continue;
        };
        write_reply(&mut conn, true)?;
        let fd = recv_fd(&conn)?;
        let edits = edits.clone();
        workers.spawn(name.clone(), move |live| {
            let mine: Vec<&Edit> = edits.iter().filter(|e| e.image() == name).collect();
            let r = serve_one(&origin, &mine, File::from(fd), live);
            // Pass-through files count their bytes as they go; the others here.
            if let (Ok(n), false) = (&r, matches!(origin, Origin::Binary(_)) && mine.is_empty()) {
                live.add_bytes(*n);
            }
            r
        });
    }
    workers.finish(&mut summary);
    Ok(summary)
}

/// The next file CRIU asks for, or None when it is done; a request that
/// cannot be read ends the session with a report.
fn next_request(conn: &mut UnixStream, summary: &mut Summary) -> Option<String> {
    match read_request(conn) {
        Ok(name) => name,
        Err(e) => {
            summary.files.push(FileReport {
                name: "(request)".into(),
                bytes: 0,
                problem: Some(e.to_string()),
                closed_early: false,
            });
            None
        }
    }
}

/// The threads of a session, one per file, with the progress display they
/// share and the reports they leave.
struct Workers {
    live: Arc<crate::progress::Shared>,
    _display: Option<crate::progress::SharedGuard>,
    reports: Arc<Mutex<Vec<FileReport>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Workers {
    fn new(what: &str) -> Workers {
        let live = Arc::new(crate::progress::Shared::default());
        let _display = live.draw(what);
        Workers { live, _display, reports: Arc::default(), threads: Vec::new() }
    }

    /// Move one file on its own thread; `work` gives its byte count.
    fn spawn(&mut self, name: String, work: impl FnOnce(&crate::progress::Shared) -> Result<u64> + Send + 'static) {
        let live = self.live.clone();
        let reports = self.reports.clone();
        self.threads.push(thread::spawn(move || {
            let r = work(&live);
            live.file_done();
            let rep = match r {
                Ok(bytes) => FileReport { name, bytes, problem: None, closed_early: false },
                Err(e) if e.is_broken_pipe() => FileReport { name, bytes: 0, problem: None, closed_early: true },
                Err(e) => FileReport { name, bytes: 0, problem: Some(e.to_string()), closed_early: false },
            };
            if let Ok(mut v) = reports.lock() {
                v.push(rep);
            }
        }));
    }

    /// Wait for every file; their reports go into the summary by name.
    fn finish(self, summary: &mut Summary) {
        for t in self.threads {
            let _ = t.join();
        }
        let mut files = self.reports.lock().map(|v| v.clone()).unwrap_or_default();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        summary.files.extend(files);
    }
}

fn serve_one(origin: &Origin, edits: &[&Edit], pipe: File, live: &crate::progress::Shared) -> Result<u64> {
    match (origin, edits.is_empty()) {
        (Origin::FlatPages(dir, pm), _) => {
            let (w, n) = crate::flatten::write_pages(dir, pm, BufWriter::with_capacity(1 << 16, pipe))?;
            w.into_inner().map_err(|e| Error::from(e.into_error()))?;
            Ok(n)
        }
        (Origin::FlatPagemap(dir, pm), true) => {
            let mut w = CountingWriter { w: BufWriter::with_capacity(1 << 16, pipe), n: 0 };
            crate::flatten::write_pagemap(dir, pm, &mut w)?;
            w.flush()?;
            Ok(w.n)
        }
        (Origin::Binary(p), true) => {
            let mut f = File::open(p).map_err(|e| Error::from(e).in_file(p))?;
            Ok(splice_or_copy(&mut f, &pipe, live)?)
        }
        (Origin::Json(p), true) => {
            let f = File::open(p).map_err(|e| Error::from(e).in_file(p))?;
            let mut w = CountingWriter { w: BufWriter::with_capacity(1 << 16, pipe), n: 0 };
            transcode::encode(BufReader::with_capacity(1 << 16, f), &mut w).map_err(|e| e.in_file(p))?;
            w.flush()?;
            Ok(w.n)
        }
        (origin, false) => {
            // Edited: the image as JSON in memory (only this image), edited,
            // then encoded into the pipe.
            let (path, json_text) = match origin {
                Origin::FlatPagemap(dir, pm) => {
                    let flat = crate::flatten::write_pagemap(dir, pm, Vec::new())?;
                    let v = transcode::decode(&flat[..], Vec::new(), DecodeOptions::default())?;
                    (&dir.join(pm), v)
                }
                Origin::FlatPages(..) => unreachable_origin()?,
                Origin::Binary(p) => {
                    let f = File::open(p).map_err(|e| Error::from(e).in_file(p))?;
                    let v = transcode::decode(BufReader::new(f), Vec::new(), DecodeOptions::default())
                        .map_err(|e| e.in_file(p))?;
                    (p, v)
                }
                Origin::Json(p) => (p, std::fs::read(p).map_err(|e| Error::from(e).in_file(p))?),
            };
            let mut doc = parse_slice(&json_text).map_err(|e| e.in_file(path))?;
            for e in edits {
                match e {
                    Edit::Set { path: fp, value, .. } => edit::set_path(&mut doc, fp, value.clone()),
                    Edit::Patch { patch, .. } => edit::apply_patch(&mut doc, patch),
                }
                .map_err(|err| err.in_file(path))?;
            }
            let text = edit::to_vec(&doc);
            let mut w = CountingWriter { w: BufWriter::with_capacity(1 << 16, pipe), n: 0 };
            transcode::encode(&text[..], &mut w).map_err(|e| e.in_file(path))?;
            w.flush()?;
            Ok(w.n)
        }
    }
}

fn unreachable_origin() -> Result<(&'static PathBuf, Vec<u8>)> {
    Err(Error::other("pages files cannot be edited"))
}

struct CountingWriter<W> {
    w: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.w.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
