//! The views of `crit x` beyond crit's own: `sk` (sockets), `tree`
//! (processes with threads, state, credentials, command line and
//! environment), `mounts` (the mount trees) and `files` (every open file),
//! each as readable text and as JSON; and the JSON form of crit's `ps`,
//! `fds`, `mems` and `rss`.
//!
//! Each view first builds a small model of what it shows (also used by
//! `crit stats`), then prints it.  A missing or broken image is reported in
//! the [`Notes`] and the rest is shown.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use crate::checkpoint::{Checkpoint, Task};
use crate::error::Result;
use crate::explore::{self, Notes};
use crate::json::maps;
use crate::json::parse::Json;
use crate::json::pyfmt;
use crate::json::JsonOut;
use crate::wire::{Message, Value};

/// Page size of the dumps we read (x86_64; CRIU does not record it).
pub const PAGE: u64 = 4096;

// ---------------------------------------------------------------------------
// Output helpers, shared with `stats`.

/// A JSON string.
pub fn js(s: impl AsRef<str>) -> Json {
    Json::Str(s.as_ref().as_bytes().to_vec())
}

/// A JSON number.
pub fn jn(v: u64) -> Json {
    Json::Int(v as i128)
}

/// A JSON signed number.
pub fn ji(v: i64) -> Json {
    Json::Int(v as i128)
}

/// A JSON number or null.
pub fn jopt(v: Option<u64>) -> Json {
    v.map(jn).unwrap_or(Json::Null)
}

/// A JSON object from its members, in order.
pub fn jo(members: Vec<(&str, Json)>) -> Json {
    Json::Obj(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A JSON list.
pub fn ja(items: Vec<Json>) -> Json {
    Json::Arr(items)
}

/// Write a JSON document, indented, with a final newline.
pub fn write_json(out: &mut dyn Write, v: &Json) -> Result<()> {
    let mut j = JsonOut::new(&mut *out, true);
    crate::json::edit::write_value(&mut j, v)?;
    j.finish()?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A text table: columns separated by two spaces, numbers right-aligned,
/// the last column not padded.
pub struct Table {
    head: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers; a header starting with `>` is a
    /// right-aligned column.
    pub fn new(head: &[&'static str]) -> Table {
        Table {
            head: head.iter().map(|h| h.trim_start_matches('>')).collect(),
            right: head.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Print it, with `indent` before each line.
    pub fn print(&self, out: &mut dyn Write, indent: &str) -> Result<()> {
        let n = self.head.len();
        let mut w: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
            let mut s = String::from(indent);
            for (i, c) in cells.enumerate().take(n) {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = w[i].saturating_sub(c.chars().count());
                if self.right[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else if i + 1 < n {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str(c);
                }
            }
            s.truncate(s.trim_end().len());
            s
        };
        writeln!(out, "{}", line(&mut self.head.iter().copied()))?;
        for r in &self.rows {
            writeln!(out, "{}", line(&mut r.iter().map(String::as_str)))?;
        }
        Ok(())
    }
}

/// Text for people: UTF-8 as is, control characters and bytes that are not
/// UTF-8 as `\xNN`.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                for byte in c.to_string().bytes() {
                    s.push_str(&format!("\\x{byte:02x}"));
                }
            } else {
                s.push(c);
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// A JSON string from bytes (invalid UTF-8 kept as `\udcXX`).
fn jb(b: &[u8]) -> Json {
    Json::Str(b.to_vec())
}

// ---------------------------------------------------------------------------
// Message helpers.

fn u(m: &Message, f: &str) -> u64 {
    m.u64(f).unwrap_or(0)
}

fn bytes<'a>(m: &'a Message, f: &str) -> &'a [u8] {
    match m.get(f) {
        Some(Value::Str(b)) | Some(Value::Bytes(b)) => b,
        _ => &[],
    }
}

fn msgs<'a>(m: &'a Message, f: &str) -> impl Iterator<Item = &'a Message> + 'a {
    m.get_all(f).filter_map(|v| if let Value::Msg(x) = v { Some(x) } else { None })
}

fn nums<'a>(m: &'a Message, f: &str) -> impl Iterator<Item = u64> + 'a {
    m.get_all(f).filter_map(Value::as_u64)
}

fn sk_name(field: &str, v: u64) -> String {
    maps::dict("sk", field)
        .and_then(|d| pyfmt::dict_name(v as i128, d))
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

// ---------------------------------------------------------------------------
// Tasks.

/// CRIU's task states (`task_state` of the core; crit's labels for 3 and 6
/// are swapped, these are CRIU's).
pub fn task_state_name(s: u64) -> String {
    match s {
        1 => "alive".into(),
        2 => "dead".into(),
        3 => "stopped".into(),
        6 => "zombie".into(),
        n => format!("state {n}"),
    }
}

/// What a task is, from its core.
pub struct TaskInfo {
    /// From pstree.
    pub task: Task,
    /// The main thread's core, if readable.
    pub core: Option<Message>,
    /// `tc.task_state` (0 when unknown).
    pub state: u64,
    /// `tc.comm`.
    pub comm: String,
}

impl TaskInfo {
    /// Whether the task was dumped dead (a zombie): no files or memory.
    pub fn dead(&self) -> bool {
        self.state == 2 || self.state == 6
    }

    /// The threads worth listing: none for a dead task (CRIU does not
    /// write them), else pstree's.
    pub fn threads(&self) -> &[u32] {
        if self.dead() {
            &[]
        } else {
            &self.task.threads
        }
    }
}

/// Every task with its core.
pub fn task_infos(ck: &Checkpoint, notes: &mut Notes) -> Result<Vec<TaskInfo>> {
    let mut v = Vec::new();
    for t in ck.tasks()? {
        let core = match ck.core(t.pid) {
            Ok(c) => Some(c),
            Err(e) => {
                notes.problems.push(format!("task {}: {e}", t.pid));
                None
            }
        };
        let tc = core.as_ref().and_then(|c| c.msg("tc"));
        let state = tc.map(|tc| u(tc, "task_state")).unwrap_or(0);
        let comm = tc.and_then(|tc| tc.str("comm")).map(|s| s.into_owned()).unwrap_or_default();
        v.push(TaskInfo { task: t, core, state, comm });
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// Files.

/// File kinds: the fdinfo type, the field of `file_entry` holding it, and
/// the image older CRIU wrote such entries to.
pub static FILE_KINDS: &[(&str, &str, &str)] = &[
    ("REG", "reg", "reg-files.img"),
    ("PIPE", "pipe", "pipes.img"),
    ("FIFO", "fifo", "fifo.img"),
    ("INETSK", "isk", "inetsk.img"),
    ("UNIXSK", "usk", "unixsk.img"),
    ("EVENTFD", "efd", "eventfd.img"),
    ("EVENTPOLL", "epfd", "eventpoll.img"),
    ("INOTIFY", "ify", "inotify.img"),
    ("SIGNALFD", "sgfd", "signalfd.img"),
    ("PACKETSK", "psk", "packetsk.img"),
    ("TTY", "tty", "tty.img"),
    ("FANOTIFY", "ffy", "fanotify.img"),
    ("NETLINKSK", "nlsk", "netlinksk.img"),
    ("NS", "nsf", "ns-files.img"),
    ("TUNF", "tunf", "tunfile.img"),
    ("EXT", "ext", "ext-files.img"),
    ("TIMERFD", "tfd", "timerfd.img"),
    ("MEMFD", "memfd", ""),
    ("BPFMAP", "bpf", "bpfmap-file.img"),
    ("PIDFD", "pidfd", "pidfd.img"),
];

/// One file object of the checkpoint (an open file description).
#[derive(Clone, Debug)]
pub struct FileObj {
    /// Its id (what fdinfo entries point at).
    pub id: u32,
    /// The fdinfo type name (`REG`, `PIPE`, ...).
    pub ty: String,
    /// The per-type entry.
    pub entry: Option<Message>,
}

/// Every file object: files.img in order, else the per-type images of
/// older CRIU.
pub fn file_objects(ck: &Checkpoint) -> Result<Vec<FileObj>> {
    let mut v = Vec::new();
    if ck.has("files.img") {
        for f in ck.entries("files.img")?.iter() {
            let ty = f.enum_name("type").map(str::to_string).unwrap_or_else(|| u(f, "type").to_string());
            let field = FILE_KINDS.iter().find(|k| k.0 == ty).map(|k| k.1).unwrap_or("");
            v.push(FileObj { id: u(f, "id") as u32, ty, entry: f.msg(field).cloned() });
        }
        return Ok(v);
    }
    for (ty, _, img) in FILE_KINDS {
        if img.is_empty() || !ck.has(img) {
            continue;
        }
        for e in ck.entries(img)?.iter() {
            v.push(FileObj { id: u(e, "id") as u32, ty: ty.to_string(), entry: Some(e.clone()) });
        }
    }
    Ok(v)
}

/// An fd of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdRef {
    /// The process.
    pub pid: u32,
    /// The fd number.
    pub fd: u32,
    /// FD_CLOEXEC.
    pub cloexec: bool,
}

/// The fd table of every live task: `(pid, fdinfo entries)`.
pub fn fd_tables(ck: &Checkpoint, tasks: &[TaskInfo], notes: &mut Notes) -> Vec<(u32, std::rc::Rc<Vec<Message>>)> {
    let mut v = Vec::new();
    for t in tasks.iter().filter(|t| !t.dead()) {
        let pid = t.task.pid;
        match ck.ids(pid).and_then(|ids| ck.entries(&format!("fdinfo-{}.img", u(&ids, "files_id")))) {
            Ok(fds) => v.push((pid, fds)),
            Err(e) => notes.problems.push(format!("task {pid}: {e}")),
        }
    }
    v
}

/// The fds that refer to each file id.
pub fn owners(tables: &[(u32, std::rc::Rc<Vec<Message>>)]) -> HashMap<u32, Vec<FdRef>> {
    let mut m: HashMap<u32, Vec<FdRef>> = HashMap::new();
    for (pid, fds) in tables {
        for fd in fds.iter() {
            m.entry(u(fd, "id") as u32).or_default().push(FdRef {
                pid: *pid,
                fd: u(fd, "fd") as u32,
                cloexec: u(fd, "flags") & 1 != 0,
            });
        }
    }
    m
}

/// Open flags as names: the access mode, then the other bits of crit's
/// `rfile.flags` table, then what is left in octal.
pub fn open_flags(v: u64) -> String {
    let mut parts = vec![match v & 3 {
        0 => "O_RDONLY".to_string(),
        1 => "O_WRONLY".to_string(),
        2 => "O_RDWR".to_string(),
        _ => "O_ACCMODE".to_string(),
    }];
    let mut known = 3u64;
    for (name, mask) in maps::flag_map("rfile.flags").unwrap_or(&[]) {
        let m = *mask;
        known |= m;
        if m & 3 == 0 && v & m != 0 {
            parts.push(name.to_string());
        }
    }
    if v & !known != 0 {
        parts.push(format!("0o{:o}", v & !known));
    }
    parts.join("|")
}

/// Queued data of pipes and fifos, by pipe id: (bytes, entries).
pub fn pipe_data(ck: &Checkpoint, image: &str) -> Result<HashMap<u64, (u64, u64)>> {
    let mut m: HashMap<u64, (u64, u64)> = HashMap::new();
    if ck.has(image) {
        let mut rd = ck.reader(image)?;
        while let Some(it) = rd.next_item().map_err(|e| e.in_file(image))? {
            let e = m.entry(u(&it.msg, "pipe_id")).or_default();
            e.0 += u(&it.msg, "bytes");
            e.1 += 1;
        }
    }
    Ok(m)
}

/// Ghost and link-remapped files: orig file id → (remap type, remap id).
pub fn remaps(ck: &Checkpoint) -> Result<HashMap<u32, (String, u32)>> {
    let mut m = HashMap::new();
    if ck.has("remap-fpath.img") {
        for e in ck.entries("remap-fpath.img")?.iter() {
            let ty = e.enum_name("remap_type").unwrap_or("LINKED").to_string();
            m.insert(u(e, "orig_id") as u32, (ty, u(e, "remap_id") as u32));
        }
    }
    Ok(m)
}

/// A ghost file: its entry, the file size it records and the bytes of
/// contents in the image.
pub struct Ghost {
    /// The id in `ghost-file-ID.img`.
    pub id: u32,
    /// st_mode.
    pub mode: u64,
    /// The size recorded (0 when absent).
    pub size: u64,
    /// Bytes of contents held in the image.
    pub bytes: u64,
}

/// Read a ghost file image, streaming its contents.
pub fn ghost(ck: &Checkpoint, id: u32) -> Result<Ghost> {
    let name = format!("ghost-file-{id}.img");
    let mut rd = ck.reader(&name)?;
    let mut g = Ghost { id, mode: 0, size: 0, bytes: 0 };
    while let Some(it) = rd.next_item().map_err(|e| e.in_file(&name))? {
        if it.role == crate::image::Role::GhostFile {
            g.mode = u(&it.msg, "mode");
            g.size = u(&it.msg, "size");
        }
        g.bytes += rd.skip_extra().map_err(|e| e.in_file(&name))?;
    }
    Ok(g)
}

fn queued(q: Option<&(u64, u64)>) -> String {
    match q {
        Some((b, _)) if *b > 0 => format!(" ({b} bytes queued)"),
        _ => String::new(),
    }
}

/// Everything a description of a file needs besides its entry.
pub struct FileCtx {
    files: HashMap<u32, FileObj>,
    memfd: HashMap<u64, Message>,
    tty_info: HashMap<u64, Message>,
    remaps: HashMap<u32, (String, u32)>,
    sockets: HashMap<u32, Sock>,
    pipes: HashMap<u64, (u64, u64)>,
    fifos: HashMap<u64, (u64, u64)>,
}

impl FileCtx {
    /// Gather it.
    pub fn new(ck: &Checkpoint, objs: &[FileObj], sockets: &[Sock]) -> Result<FileCtx> {
        let by_id = |img: &str, key: &str| -> Result<HashMap<u64, Message>> {
            let mut m = HashMap::new();
            if ck.has(img) {
                for e in ck.entries(img)?.iter() {
                    m.insert(u(e, key), e.clone());
                }
            }
            Ok(m)
        };
        Ok(FileCtx {
            files: objs.iter().map(|f| (f.id, f.clone())).collect(),
            memfd: by_id("memfd.img", "inode_id")?,
            tty_info: by_id("tty-info.img", "id")?,
            remaps: remaps(ck)?,
            sockets: sockets.iter().map(|s| (s.id, s.clone())).collect(),
            pipes: pipe_data(ck, "pipes-data.img")?,
            fifos: pipe_data(ck, "fifo-data.img")?,
        })
    }

    fn reg_name(&self, id: u64) -> String {
        match self.files.get(&(id as u32)).and_then(|f| f.entry.as_ref()) {
            Some(r) => printable(bytes(r, "name")),
            None => format!("file {id}?"),
        }
    }

    /// What a person calls the file: a path, or what `/proc/PID/fd` shows.
    pub fn describe(&self, f: &FileObj) -> String {
        let Some(e) = &f.entry else { return format!("{} {}", f.ty, f.id) };
        let mut s = match f.ty.as_str() {
            "REG" => printable(bytes(e, "name")),
            "PIPE" => format!("pipe:[{}]{}", u(e, "pipe_id"), queued(self.pipes.get(&u(e, "pipe_id")))),
            "FIFO" => format!(
                "{} (fifo {}){}",
                self.reg_name(u(e, "regf_id")),
                u(e, "pipe_id"),
                queued(self.fifos.get(&u(e, "pipe_id")))
            ),
            "UNIXSK" | "INETSK" | "PACKETSK" | "NETLINKSK" => match self.sockets.get(&f.id) {
                Some(sk) => {
                    format!("socket:[{}] {}", sk.ino.map(|i| i.to_string()).unwrap_or_else(|| "?".into()), sk.summary())
                }
                None => "socket".into(),
            },
            "EVENTFD" => format!("anon_inode:[eventfd] count {}", u(e, "counter")),
            "EVENTPOLL" => format!("anon_inode:[eventpoll] {} targets", msgs(e, "tfd").count()),
            "SIGNALFD" => format!("anon_inode:[signalfd] mask {:#x}", u(e, "sigmask")),
            "TIMERFD" => format!("anon_inode:[timerfd] clock {}", u(e, "clockid")),
            "INOTIFY" => format!("anon_inode:inotify {} watches", msgs(e, "wd").count()),
            "FANOTIFY" => format!("anon_inode:[fanotify] {} marks", msgs(e, "mark").count()),
            "TTY" => {
                let path = e.u64("regf_id").map(|r| self.reg_name(r)).unwrap_or_else(|| "tty".into());
                let kind = self.tty_info.get(&u(e, "tty_info_id")).and_then(|t| t.enum_name("type")).unwrap_or("?");
                format!("{path} ({kind})")
            }
            "MEMFD" => match self.memfd.get(&u(e, "inode_id")) {
                Some(i) => format!("/memfd:{}", printable(bytes(i, "name"))),
                None => format!("/memfd:? (inode {})", u(e, "inode_id")),
            },
            "NS" => format!("ns id {} (clone flag {:#x})", u(e, "ns_id"), u(e, "ns_cflag")),
            "TUNF" => format!("/dev/net/tun {}", printable(bytes(e, "netdev"))),
            "EXT" => "external file".into(),
            "BPFMAP" => format!("anon_inode:bpf-map {}", printable(bytes(e, "map_name"))),
            "PIDFD" => format!("anon_inode:[pidfd] pid {}", e.i64("nspid").unwrap_or(0)),
            other => format!("{other} {}", f.id),
        };
        if let Some((ty, rid)) = self.remaps.get(&f.id) {
            s.push_str(&match ty.as_str() {
                "GHOST" => format!(" (deleted; ghost {rid})"),
                "PROCFS" => " (procfs)".to_string(),
                _ => format!(" (deleted; linked {rid})"),
            });
        }
        s
    }
}

/// A reference to a file other than an fd.
#[derive(Clone, Debug)]
pub struct Use {
    /// The process.
    pub pid: u32,
    /// `cwd`, `root`, `exe` or `map`.
    pub what: &'static str,
}

/// cwd, root, exe and mappings of every live task, by file id.
pub fn uses(ck: &Checkpoint, tasks: &[TaskInfo], notes: &mut Notes) -> HashMap<u32, Vec<Use>> {
    let mut m: HashMap<u32, Vec<Use>> = HashMap::new();
    let mut add = |id: u64, pid: u32, what: &'static str| {
        let v = m.entry(id as u32).or_default();
        if !v.iter().any(|x| x.pid == pid && x.what == what) {
            v.push(Use { pid, what });
        }
    };
    for t in tasks.iter().filter(|t| !t.dead()) {
        let pid = t.task.pid;
        match ck.first(&format!("fs-{pid}.img")) {
            Ok(fs) => {
                add(u(&fs, "cwd_id"), pid, "cwd");
                add(u(&fs, "root_id"), pid, "root");
            }
            Err(e) => notes.problems.push(format!("task {pid}: {e}")),
        }
        match ck.mm(pid) {
            Ok(mm) => {
                add(u(&mm, "exe_file_id"), pid, "exe");
                for vma in msgs(&mm, "vmas") {
                    if u(vma, "status") & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
                        add(u(vma, "shmid"), pid, "map");
                    }
                }
            }
            Err(e) => notes.problems.push(format!("task {pid}: {e}")),
        }
    }
    m
}

/// `x files`: every file object, with its type, path, flags, position
/// and who holds it.
pub fn files(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes, json: bool) -> Result<()> {
    let tasks = task_infos(ck, notes)?;
    let tables = fd_tables(ck, &tasks, notes);
    let own = owners(&tables);
    let usage = uses(ck, &tasks, notes);
    let objs = file_objects(ck)?;
    let socks = sockets(ck, notes)?;
    let ctx = FileCtx::new(ck, &objs, &socks)?;
    let flags_of = |f: &FileObj| -> Option<u64> { f.entry.as_ref().and_then(|e| e.u64("flags")) };
    let is_open_flags = |ty: &str| matches!(ty, "REG" | "MEMFD" | "BPFMAP" | "TTY" | "PIPE" | "FIFO");
    let mut rows = Vec::new();
    for f in &objs {
        let fds = own.get(&f.id).cloned().unwrap_or_default();
        let us = usage.get(&f.id).cloned().unwrap_or_default();
        let pos = f.entry.as_ref().and_then(|e| e.u64("pos"));
        let flags = flags_of(f);
        rows.push((f, fds, us, pos, flags));
    }
    if json {
        let items = rows
            .iter()
            .map(|(f, fds, us, pos, flags)| {
                jo(vec![
                    ("id", jn(f.id as u64)),
                    ("type", js(&f.ty)),
                    ("path", js(ctx.describe(f))),
                    ("flags", jopt(*flags)),
                    (
                        "flag_names",
                        match flags {
                            Some(v) if is_open_flags(&f.ty) => js(open_flags(*v)),
                            _ => Json::Null,
                        },
                    ),
                    ("pos", jopt(*pos)),
                    (
                        "fds",
                        ja(fds
                            .iter()
                            .map(|r| {
                                jo(vec![
                                    ("pid", jn(r.pid as u64)),
                                    ("fd", jn(r.fd as u64)),
                                    ("cloexec", Json::Bool(r.cloexec)),
                                ])
                            })
                            .collect()),
                    ),
                    ("uses", ja(us.iter().map(|x| jo(vec![("pid", jn(x.pid as u64)), ("as", js(x.what))])).collect())),
                ])
            })
            .collect();
        return write_json(out, &jo(vec![("files", ja(items))]));
    }
    let mut t = Table::new(&[">ID", "TYPE", "FLAGS", ">POS", "OWNERS", "PATH"]);
    for (f, fds, us, pos, flags) in &rows {
        let mut who: Vec<String> = fds.iter().map(|r| format!("{}:{}", r.pid, r.fd)).collect();
        who.extend(us.iter().map(|x| format!("{}:{}", x.pid, x.what)));
        t.row(vec![
            f.id.to_string(),
            f.ty.clone(),
            match flags {
                Some(v) if is_open_flags(&f.ty) => open_flags(*v),
                Some(v) => format!("{v:#x}"),
                None => "-".into(),
            },
            pos.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if who.is_empty() { "-".into() } else { who.join(",") },
            ctx.describe(f),
        ]);
    }
    t.print(out, "")
}

// ---------------------------------------------------------------------------
// Sockets.

/// One socket.
#[derive(Clone, Debug)]
pub struct Sock {
    /// File id.
    pub id: u32,
    /// Inode number (packet sockets have none in the image).
    pub ino: Option<u32>,
    /// `UNIX`, `INET`, `INET6`, `PACKET`, `NETLINK`.
    pub family: String,
    /// `STREAM`, `DGRAM`, ...
    pub ty: String,
    /// `TCP`, `UDP`, a netlink protocol, a packet protocol.
    pub proto: Option<String>,
    /// `ESTABLISHED`, `LISTEN`, ...
    pub state: String,
    /// Local address as text.
    pub local: String,
    /// Peer address as text.
    pub peer: String,
    /// Bytes queued for reading, where the image records them.
    pub recv_q: Option<u64>,
    /// Bytes queued for sending, where the image records them.
    pub send_q: Option<u64>,
    /// Packets in sk-queues.
    pub packets: u64,
    /// Who holds it.
    pub owners: Vec<FdRef>,
    /// Family details for JSON.
    pub details: Vec<(&'static str, Json)>,
}

impl Sock {
    /// A one-line description, for `x files`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.family, self.ty);
        if let Some(p) = &self.proto {
            s.push(' ');
            s.push_str(p);
        }
        if self.state != "-" {
            s.push(' ');
            s.push_str(&self.state);
        }
        if !self.local.is_empty() && self.local != "*" {
            s.push(' ');
            s.push_str(&self.local);
        }
        if !self.peer.is_empty() && self.peer != "*" {
            s.push_str(" -> ");
            s.push_str(&self.peer);
        }
        s
    }
}

/// Netlink protocol names (`NETLINK_*`).
static NETLINK_PROTOS: &[(u64, &str)] = &[
    (0, "ROUTE"),
    (2, "USERSOCK"),
    (3, "FIREWALL"),
    (4, "SOCK_DIAG"),
    (5, "NFLOG"),
    (6, "XFRM"),
    (7, "SELINUX"),
    (8, "ISCSI"),
    (9, "AUDIT"),
    (10, "FIB_LOOKUP"),
    (11, "CONNECTOR"),
    (12, "NETFILTER"),
    (13, "IP6_FW"),
    (14, "DNRTMSG"),
    (15, "KOBJECT_UEVENT"),
    (16, "GENERIC"),
    (18, "SCSITRANSPORT"),
    (19, "ECRYPTFS"),
    (20, "RDMA"),
    (21, "CRYPTO"),
    (22, "SMC"),
];

fn ip_of(m: &Message, f: &str) -> String {
    let w: Vec<u32> = nums(m, f).map(|x| x as u32).collect();
    match w.as_slice() {
        [a] => pyfmt::ipv4(*a),
        [a, b, c, d] => pyfmt::ipv6([*a, *b, *c, *d]),
        other => other.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","),
    }
}

fn host_port(addr: String, port: u64, v6: bool) -> String {
    let a = if v6 { format!("[{addr}]") } else { addr };
    if port == 0 {
        format!("{a}:*")
    } else {
        format!("{a}:{port}")
    }
}

/// A unix socket name for people: `@` for the abstract namespace, a path
/// (joined to `name_dir` when relative), `*` for none.
fn unix_name(e: &Message) -> String {
    let raw = bytes(e, "name");
    if raw.is_empty() {
        return "*".into();
    }
    if let Some(rest) = raw.strip_prefix(b"\0") {
        return format!("@{}", printable(rest));
    }
    let mut end = raw.len();
    while end > 0 && raw[end - 1] == 0 {
        end -= 1;
    }
    let name = &raw[..end];
    let dir = bytes(e, "name_dir");
    let mut s = if !name.starts_with(b"/") && !dir.is_empty() {
        format!("{}/{}", printable(dir), printable(name))
    } else {
        printable(name)
    };
    if e.bool("deleted") == Some(true) {
        s.push_str(" (deleted)");
    }
    s
}

/// Bytes and packets queued per socket id, from sk-queues.img.
pub fn sk_queues(ck: &Checkpoint) -> Result<HashMap<u64, (u64, u64)>> {
    let mut m: HashMap<u64, (u64, u64)> = HashMap::new();
    if ck.has("sk-queues.img") {
        let mut rd = ck.reader("sk-queues.img")?;
        while let Some(it) = rd.next_item().map_err(|e| e.in_file("sk-queues.img"))? {
            let e = m.entry(u(&it.msg, "id_for")).or_default();
            e.0 += u(&it.msg, "length");
            e.1 += 1;
        }
    }
    Ok(m)
}

/// Every socket of the checkpoint.
pub fn sockets(ck: &Checkpoint, notes: &mut Notes) -> Result<Vec<Sock>> {
    let tasks = task_infos(ck, &mut Notes::default())?;
    let own = owners(&fd_tables(ck, &tasks, &mut Notes::default()));
    let queues = sk_queues(ck)?;
    let mut v = Vec::new();
    for f in file_objects(ck)? {
        let Some(e) = &f.entry else { continue };
        let (q_bytes, q_packets) = queues.get(&(f.id as u64)).copied().unwrap_or((0, 0));
        let queued = queues.contains_key(&(f.id as u64));
        let mut s = Sock {
            id: f.id,
            ino: e.u64("ino").map(|i| i as u32),
            family: String::new(),
            ty: String::new(),
            proto: None,
            state: "-".into(),
            local: String::new(),
            peer: String::new(),
            recv_q: if queued { Some(q_bytes) } else { None },
            send_q: None,
            packets: q_packets,
            owners: own.get(&f.id).cloned().unwrap_or_default(),
            details: Vec::new(),
        };
        match f.ty.as_str() {
            "UNIXSK" => {
                s.family = "UNIX".into();
                s.ty = sk_name("type", u(e, "type"));
                s.state = sk_name("state", u(e, "state"));
                s.local = unix_name(e);
                s.recv_q = Some(q_bytes);
                let peer = u(e, "peer");
                s.peer = if peer == 0 { "*".into() } else { format!("ino {peer}") };
                s.details = vec![
                    ("name", jb(bytes(e, "name"))),
                    ("name_dir", e.get("name_dir").map(|_| jb(bytes(e, "name_dir"))).unwrap_or(Json::Null)),
                    ("deleted", Json::Bool(e.bool("deleted") == Some(true))),
                    ("peer_ino", jn(peer)),
                    ("backlog", jn(u(e, "backlog"))),
                    ("shutdown", e.enum_name("shutdown").map(js).unwrap_or(Json::Null)),
                ];
            }
            "INETSK" => {
                let fam = u(e, "family");
                let v6 = fam == 10;
                s.family = sk_name("family", fam);
                s.ty = sk_name("type", u(e, "type"));
                s.proto = Some(sk_name("proto", u(e, "proto")));
                s.state = sk_name("state", u(e, "state"));
                let (src, dst) = (ip_of(e, "src_addr"), ip_of(e, "dst_addr"));
                s.local = host_port(src.clone(), u(e, "src_port"), v6);
                s.peer = host_port(dst.clone(), u(e, "dst_port"), v6);
                if u(e, "proto") == 6 {
                    let img = format!("tcp-stream-{:x}.img", u(e, "ino"));
                    if ck.has(&img) {
                        match ck.first(&img) {
                            Ok(t) => {
                                s.recv_q = Some(u(&t, "inq_len"));
                                s.send_q = Some(u(&t, "outq_len"));
                            }
                            Err(err) => notes.problems.push(format!("socket {}: {err}", f.id)),
                        }
                    }
                }
                s.details = vec![
                    ("src_addr", js(src)),
                    ("src_port", jn(u(e, "src_port"))),
                    ("dst_addr", js(dst)),
                    ("dst_port", jn(u(e, "dst_port"))),
                    ("backlog", jn(u(e, "backlog"))),
                    ("v6only", e.bool("v6only").map(Json::Bool).unwrap_or(Json::Null)),
                    ("shutdown", e.enum_name("shutdown").map(js).unwrap_or(Json::Null)),
                ];
            }
            "PACKETSK" => {
                let p = u(e, "protocol") as u16;
                let proto = p.swap_bytes();
                s.family = "PACKET".into();
                s.ty = sk_name("type", u(e, "type"));
                s.proto = Some(format!("{proto:#06x}"));
                let ifi = u(e, "ifindex");
                s.local = if ifi == 0 { "*".into() } else { format!("ifindex {ifi}") };
                s.peer = "*".into();
                s.details = vec![
                    ("ifindex", jn(ifi)),
                    ("protocol", jn(proto as u64)),
                    ("version", jn(u(e, "version"))),
                    ("rx_ring", Json::Bool(e.has("rx_ring"))),
                    ("tx_ring", Json::Bool(e.has("tx_ring"))),
                    ("mclist", jn(msgs(e, "mclist").count() as u64)),
                ];
            }
            "NETLINKSK" => {
                let p = u(e, "protocol");
                s.family = "NETLINK".into();
                s.ty = "RAW".into();
                s.proto = Some(
                    NETLINK_PROTOS.iter().find(|x| x.0 == p).map(|x| x.1.to_string()).unwrap_or_else(|| p.to_string()),
                );
                s.state = sk_name("state", u(e, "state"));
                let groups: Vec<u64> = nums(e, "groups").collect();
                let g = groups.iter().map(|x| format!("{x:#x}")).collect::<Vec<_>>().join(",");
                s.local = if groups.is_empty() {
                    format!("portid {}", u(e, "portid"))
                } else {
                    format!("portid {} groups {g}", u(e, "portid"))
                };
                s.peer = format!("portid {} group {}", u(e, "dst_portid"), u(e, "dst_group"));
                s.details = vec![
                    ("protocol", jn(p)),
                    ("portid", jn(u(e, "portid"))),
                    ("groups", ja(groups.into_iter().map(jn).collect())),
                    ("dst_portid", jn(u(e, "dst_portid"))),
                    ("dst_group", jn(u(e, "dst_group"))),
                ];
            }
            _ => continue,
        }
        v.push(s);
    }
    Ok(v)
}

fn qcell(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// `x sk`: every socket.
pub fn sk(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes, json: bool) -> Result<()> {
    let socks = sockets(ck, notes)?;
    if json {
        let items = socks
            .iter()
            .map(|s| {
                let mut m = vec![
                    ("id", jn(s.id as u64)),
                    ("ino", jopt(s.ino.map(u64::from))),
                    ("family", js(&s.family)),
                    ("type", js(&s.ty)),
                    ("proto", s.proto.as_ref().map(js).unwrap_or(Json::Null)),
                    ("state", js(&s.state)),
                    ("local", js(&s.local)),
                    ("peer", js(&s.peer)),
                    ("recv_queue", jopt(s.recv_q)),
                    ("send_queue", jopt(s.send_q)),
                    ("queued_packets", jn(s.packets)),
                    (
                        "owners",
                        ja(s.owners
                            .iter()
                            .map(|r| jo(vec![("pid", jn(r.pid as u64)), ("fd", jn(r.fd as u64))]))
                            .collect()),
                    ),
                ];
                m.extend(s.details.iter().cloned());
                jo(m)
            })
            .collect();
        return write_json(out, &jo(vec![("sockets", ja(items))]));
    }
    let mut t =
        Table::new(&["OWNER", "FAMILY", "TYPE", "PROTO", "STATE", ">RECV-Q", ">SEND-Q", ">INO", "LOCAL", "PEER"]);
    for s in &socks {
        let who = if s.owners.is_empty() {
            "-".to_string()
        } else {
            s.owners.iter().map(|r| format!("{}:{}", r.pid, r.fd)).collect::<Vec<_>>().join(",")
        };
        t.row(vec![
            who,
            s.family.clone(),
            s.ty.clone(),
            s.proto.clone().unwrap_or_else(|| "-".into()),
            s.state.clone(),
            qcell(s.recv_q),
            qcell(s.send_q),
            s.ino.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            s.local.clone(),
            s.peer.clone(),
        ]);
    }
    t.print(out, "")
}

// ---------------------------------------------------------------------------
// Dumped memory (a small reader of the pages through the pagemap; to be
// replaced by the library's memory reader).

const PE_PARENT: u64 = 1;
const PE_LAZY: u64 = 2;
const PE_PRESENT: u64 = 4;

/// The flags of a pagemap entry, old images included (no flags means
/// present, `in_parent` means in the parent).
pub fn pagemap_flags(pm: &Message) -> u64 {
    match pm.u64("flags") {
        Some(f) => f,
        None if pm.bool("in_parent") == Some(true) => PE_PARENT,
        None => PE_PRESENT,
    }
}

/// Pages of a pagemap by where they are: (present, in parent, lazy only).
pub fn page_class(flags: u64) -> usize {
    if flags & PE_PRESENT != 0 {
        0
    } else if flags & PE_PARENT != 0 {
        1
    } else if flags & PE_LAZY != 0 {
        2
    } else {
        1
    }
}

struct Run {
    start: u64,
    end: u64,
    flags: u64,
    off: u64,
}

/// The page runs of a process that overlap `[lo, hi)`.
struct DumpedMem {
    pages: String,
    runs: Vec<Run>,
}

impl DumpedMem {
    fn open(ck: &Checkpoint, pid: u32, lo: u64, hi: u64) -> Result<DumpedMem> {
        let name = format!("pagemap-{pid}.img");
        let mut rd = ck.reader(&name)?;
        let mut pages = String::new();
        let mut runs = Vec::new();
        let mut off = 0u64;
        while let Some(it) = rd.next_item().map_err(|e| e.in_file(&name))? {
            if it.role == crate::image::Role::PagemapHead {
                pages = format!("pages-{}.img", u(&it.msg, "pages_id"));
                continue;
            }
            let start = u(&it.msg, "vaddr");
            let len = explore::entry_pages(&it.msg).saturating_mul(PAGE);
            let end = start.saturating_add(len);
            let flags = pagemap_flags(&it.msg);
            if end > lo && start < hi {
                runs.push(Run { start, end, flags, off });
            }
            if flags & PE_PRESENT != 0 {
                off = off.saturating_add(len);
            }
        }
        Ok(DumpedMem { pages, runs })
    }

    fn read(&self, ck: &Checkpoint, start: u64, end: u64) -> std::result::Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut a = start;
        while a < end {
            let Some(r) = self.runs.iter().find(|r| r.start <= a && a < r.end) else {
                return Err(format!("memory at {a:#x} was not dumped"));
            };
            if r.flags & PE_PRESENT == 0 {
                return Err(if r.flags & PE_PARENT != 0 {
                    format!("memory at {a:#x} is in the parent checkpoint")
                } else {
                    format!("memory at {a:#x} is not in the images (lazy pages)")
                });
            }
            let n = (end.min(r.end) - a) as usize;
            let at = out.len();
            out.resize(at + n, 0);
            let got = ck
                .source()
                .read_at(&self.pages, r.off + (a - r.start), &mut out[at..])
                .map_err(|e| format!("{}: {e}", self.pages))?;
            if got < n {
                return Err(format!("{}: ends before {a:#x} + {n}", self.pages));
            }
            a += n as u64;
        }
        Ok(out)
    }
}

/// NUL-separated strings read from memory, or why they could not be.
pub type Strings = std::result::Result<Vec<Vec<u8>>, String>;

/// Most bytes of command line or environment read from memory.
pub const ARGS_MAX: u64 = 1 << 20;

/// The NUL-separated strings of `[start, end)` of a process's memory.
fn strings(b: &[u8]) -> Vec<Vec<u8>> {
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(|s| s.to_vec()).collect()
}

/// Command line and environment of a process, read from its dumped memory.
pub fn args_env(ck: &Checkpoint, mm: &Message, pid: u32) -> (Strings, Strings) {
    let range = |a: &str, b: &str| {
        let (s, e) = (u(mm, a), u(mm, b));
        (s, e.max(s).min(s.saturating_add(ARGS_MAX)))
    };
    let (a0, a1) = range("mm_arg_start", "mm_arg_end");
    let (e0, e1) = range("mm_env_start", "mm_env_end");
    let mem = match DumpedMem::open(ck, pid, a0.min(e0), a1.max(e1)) {
        Ok(m) => m,
        Err(e) => return (Err(e.to_string()), Err(e.to_string())),
    };
    (mem.read(ck, a0, a1).map(|b| strings(&b)), mem.read(ck, e0, e1).map(|b| strings(&b)))
}

/// One argument as a shell would need it.
fn shell_word(a: &[u8]) -> String {
    let s = printable(a);
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// ---------------------------------------------------------------------------
// The process tree.

/// How a dead task ended, from its wait status.
fn exit_text(code: u64) -> String {
    if code & 0x7f == 0 {
        format!("exit status {}", (code >> 8) & 0xff)
    } else {
        format!("killed by signal {}", code & 0x7f)
    }
}

struct ProcView {
    info: TaskInfo,
    creds: Option<Message>,
    threads: Vec<(u32, String)>,
    args: Option<Strings>,
    env: Option<Strings>,
}

fn proc_views(ck: &Checkpoint, notes: &mut Notes) -> Result<Vec<ProcView>> {
    let mut v = Vec::new();
    for info in task_infos(ck, notes)? {
        let pid = info.task.pid;
        let tcore = info.core.as_ref().and_then(|c| c.msg("thread_core"));
        let creds = match tcore.and_then(|t| t.msg("creds")) {
            Some(c) => Some(c.clone()),
            None if ck.has(&format!("creds-{pid}.img")) => ck.first(&format!("creds-{pid}.img")).ok(),
            None => None,
        };
        let mut threads = Vec::new();
        for &tid in info.threads() {
            let comm = if tid == pid {
                tcore.and_then(|t| t.str("comm")).map(|s| s.into_owned()).unwrap_or_else(|| info.comm.clone())
            } else {
                match ck.core(tid) {
                    Ok(c) => {
                        c.msg("thread_core").and_then(|t| t.str("comm")).map(|s| s.into_owned()).unwrap_or_default()
                    }
                    Err(e) => {
                        notes.problems.push(format!("thread {tid} of task {pid}: {e}"));
                        "?".into()
                    }
                }
            };
            threads.push((tid, comm));
        }
        let (args, env) = if info.dead() {
            (None, None)
        } else {
            match ck.mm(pid) {
                Ok(mm) => {
                    let (a, e) = args_env(ck, &mm, pid);
                    (Some(a), Some(e))
                }
                Err(e) => {
                    notes.problems.push(format!("task {pid}: {e}"));
                    (None, None)
                }
            }
        };
        v.push(ProcView { info, creds, threads, args, env });
    }
    Ok(v)
}

/// The forest of items by parent: the roots, and the children of each
/// item (by index), in input order.  An item's parent is the first item
/// with its parent's id; one whose parent is missing, itself, or part of a
/// cycle is a root, so every item is shown exactly once.
fn hierarchy<T>(items: &[T], id: impl Fn(&T) -> u32, parent: impl Fn(&T) -> u32) -> (Vec<usize>, Kids) {
    let mut first: HashMap<u32, usize> = HashMap::new();
    for (i, t) in items.iter().enumerate() {
        first.entry(id(t)).or_insert(i);
    }
    let mut up: Vec<Option<usize>> =
        items.iter().enumerate().map(|(i, t)| first.get(&parent(t)).copied().filter(|&p| p != i)).collect();
    // Break cycles: walk up from each item; a walk that comes back to an
    // item already on it makes that item a root.
    let mut state = vec![0u8; items.len()]; // 0 new, 1 on the current walk, 2 done
    for start in 0..items.len() {
        let mut path = Vec::new();
        let mut cur = Some(start);
        while let Some(c) = cur {
            match state[c] {
                2 => break,
                1 => {
                    up[c] = None;
                    break;
                }
                _ => {
                    state[c] = 1;
                    path.push(c);
                    cur = up[c];
                }
            }
        }
        for c in path {
            state[c] = 2;
        }
    }
    let mut kids: Kids = HashMap::new();
    let mut roots = Vec::new();
    for (i, p) in up.iter().enumerate() {
        match p {
            Some(p) => kids.entry(*p).or_default().push(i),
            None => roots.push(i),
        }
    }
    (roots, kids)
}

/// Children by index.
type Kids = HashMap<usize, Vec<usize>>;

fn creds_json(c: &Message) -> Json {
    let f = |k: &str| jn(u(c, k));
    jo(vec![
        ("uid", f("uid")),
        ("gid", f("gid")),
        ("euid", f("euid")),
        ("egid", f("egid")),
        ("suid", f("suid")),
        ("sgid", f("sgid")),
        ("fsuid", f("fsuid")),
        ("fsgid", f("fsgid")),
        ("groups", ja(nums(c, "groups").map(jn).collect())),
    ])
}

fn strs_json(v: &Option<Strings>) -> Json {
    match v {
        Some(Ok(list)) => ja(list.iter().map(|s| jb(s)).collect()),
        _ => Json::Null,
    }
}

fn proc_json(i: usize, kids: &Kids, all: &[ProcView], depth: usize) -> Json {
    let p = &all[i];
    let t = &p.info.task;
    let tc = p.info.core.as_ref().and_then(|c| c.msg("tc"));
    let err = |v: &Option<Strings>| match v {
        Some(Err(e)) => js(e),
        _ => Json::Null,
    };
    let children = if depth > 4096 {
        Vec::new()
    } else {
        kids.get(&i).map(|ks| ks.iter().map(|&k| proc_json(k, kids, all, depth + 1)).collect()).unwrap_or_default()
    };
    jo(vec![
        ("pid", jn(t.pid as u64)),
        ("ppid", jn(t.ppid as u64)),
        ("pgid", jn(t.pgid as u64)),
        ("sid", jn(t.sid as u64)),
        ("comm", js(&p.info.comm)),
        ("state", js(task_state_name(p.info.state))),
        ("task_state", jn(p.info.state)),
        ("exit_code", if p.info.dead() { jopt(tc.and_then(|tc| tc.u64("exit_code"))) } else { Json::Null }),
        ("stop_signo", if p.info.state == 3 { jopt(tc.and_then(|tc| tc.u64("stop_signo"))) } else { Json::Null }),
        ("creds", p.creds.as_ref().map(creds_json).unwrap_or(Json::Null)),
        ("threads", ja(p.threads.iter().map(|(tid, c)| jo(vec![("tid", jn(*tid as u64)), ("comm", js(c))])).collect())),
        ("cmdline", strs_json(&p.args)),
        ("cmdline_error", err(&p.args)),
        ("environ", strs_json(&p.env)),
        ("environ_error", err(&p.env)),
        ("children", ja(children)),
    ])
}

/// `x tree`: the process tree with threads, state, credentials, command
/// line and environment.
pub fn tree(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes, json: bool) -> Result<()> {
    let procs = proc_views(ck, notes)?;
    let (roots, kids) = hierarchy(&procs, |p| p.info.task.pid, |p| p.info.task.ppid);
    if json {
        let items = roots.iter().map(|&r| proc_json(r, &kids, &procs, 0)).collect();
        return write_json(out, &jo(vec![("processes", ja(items))]));
    }
    fn show(
        out: &mut dyn Write,
        procs: &[ProcView],
        kids: &Kids,
        i: usize,
        lead: &str,
        branch: &str,
        depth: usize,
    ) -> Result<()> {
        let p = &procs[i];
        let t = &p.info.task;
        let tc = p.info.core.as_ref().and_then(|c| c.msg("tc"));
        let mut state = task_state_name(p.info.state);
        if p.info.dead() {
            state = format!("{state}, {}", exit_text(tc.map(|tc| u(tc, "exit_code")).unwrap_or(0)));
        }
        if p.info.state == 3 {
            if let Some(sig) = tc.and_then(|tc| tc.u64("stop_signo")) {
                state = format!("{state} by signal {sig}");
            }
        }
        let creds = match &p.creds {
            Some(c) => {
                let mut s = format!("  uid {} gid {}", u(c, "uid"), u(c, "gid"));
                if u(c, "euid") != u(c, "uid") || u(c, "egid") != u(c, "gid") {
                    s.push_str(&format!(" euid {} egid {}", u(c, "euid"), u(c, "egid")));
                }
                s
            }
            None => String::new(),
        };
        writeln!(out, "{lead}{branch}{} {} ({state})  pgid {} sid {}{creds}", t.pid, p.info.comm, t.pgid, t.sid)?;
        let child_lead = format!(
            "{lead}{}",
            match branch {
                "├─ " => "│  ",
                "└─ " => "   ",
                _ => "",
            }
        );
        let has_kids = kids.get(&i).is_some_and(|k| !k.is_empty());
        let body = format!("{child_lead}{}", if has_kids { "│  " } else { "   " });
        let strs = |v: &Option<Strings>| -> Option<std::result::Result<Vec<String>, String>> {
            v.as_ref().map(|r| r.as_ref().map(|l| l.iter().map(|a| printable(a)).collect()).map_err(Clone::clone))
        };
        if let Some(a) = &p.args {
            match a {
                Ok(list) => writeln!(
                    out,
                    "{body}cmdline  {}",
                    list.iter().map(|x| shell_word(x)).collect::<Vec<_>>().join(" ")
                )?,
                Err(e) => writeln!(out, "{body}cmdline  ({e})")?,
            }
        }
        if let Some(e) = strs(&p.env) {
            match e {
                Ok(list) if list.is_empty() => writeln!(out, "{body}environ  (empty)")?,
                Ok(list) => {
                    for (k, var) in list.iter().enumerate() {
                        writeln!(out, "{body}{}{var}", if k == 0 { "environ  " } else { "         " })?;
                    }
                }
                Err(err) => writeln!(out, "{body}environ  ({err})")?,
            }
        }
        if !p.threads.is_empty() {
            let ts: Vec<String> = p.threads.iter().map(|(tid, c)| format!("{tid} {c}")).collect();
            writeln!(out, "{body}threads  {}", ts.join(", "))?;
        }
        if depth > 4096 {
            return Ok(());
        }
        if let Some(ks) = kids.get(&i) {
            for (n, &k) in ks.iter().enumerate() {
                let b = if n + 1 == ks.len() { "└─ " } else { "├─ " };
                show(out, procs, kids, k, &child_lead, b, depth + 1)?;
            }
        }
        Ok(())
    }
    for &r in &roots {
        show(out, &procs, &kids, r, "", "", 0)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Mounts.

/// CRIU's file system numbers (`fstype` of mnt_entry) and their names.
static FSTYPES: &[(u64, &str)] = &[
    (0, "unsupported"),
    (1, "proc"),
    (2, "sysfs"),
    (3, "devtmpfs"),
    (4, "binfmt_misc"),
    (5, "tmpfs"),
    (6, "devpts"),
    (7, "simfs"),
    (8, "pstore"),
    (9, "securityfs"),
    (10, "fusectl"),
    (11, "debugfs"),
    (12, "cgroup"),
    (13, "aufs"),
    (14, "mqueue"),
    (15, "fuse"),
    (16, "auto"),
    (17, "overlay"),
    (18, "autofs"),
    (19, "tracefs"),
    (23, "cgroup2"),
];

/// Per-mount flags (`MS_*`) as mountinfo shows them.
static MNT_FLAGS: &[(u64, &str)] = &[
    (1 << 1, "nosuid"),
    (1 << 2, "nodev"),
    (1 << 3, "noexec"),
    (1 << 4, "sync"),
    (1 << 6, "mand"),
    (1 << 7, "dirsync"),
    (1 << 8, "nosymfollow"),
    (1 << 10, "noatime"),
    (1 << 11, "nodiratime"),
    (1 << 12, "bind"),
    (1 << 14, "rec"),
    (1 << 16, "posixacl"),
    (1 << 17, "unbindable"),
    (1 << 18, "private"),
    (1 << 19, "slave"),
    (1 << 20, "shared"),
    (1 << 21, "relatime"),
    (1 << 24, "strictatime"),
    (1 << 25, "lazytime"),
];

/// Mount flags as text: `ro`/`rw`, then the others.
pub fn mount_flags(v: u64) -> String {
    let mut parts = vec![if v & 1 != 0 { "ro".to_string() } else { "rw".to_string() }];
    let mut known = 1u64;
    for (m, n) in MNT_FLAGS {
        known |= m;
        if v & m != 0 {
            parts.push(n.to_string());
        }
    }
    if v & !known != 0 {
        parts.push(format!("{:#x}", v & !known));
    }
    parts.join(",")
}

fn fstype_name(m: &Message) -> String {
    let n = u(m, "fstype");
    let fsname = bytes(m, "fsname");
    if !fsname.is_empty() {
        return printable(fsname);
    }
    FSTYPES.iter().find(|x| x.0 == n).map(|x| x.1.to_string()).unwrap_or_else(|| format!("fstype {n}"))
}

/// A mount namespace: its id, its image and the image's entries.
pub type MountNs = (u64, String, std::rc::Rc<Vec<Message>>);

/// The mount namespaces of the checkpoint.
pub fn mount_namespaces(ck: &Checkpoint) -> Result<Vec<MountNs>> {
    let mut v = Vec::new();
    for name in ck.source().names()? {
        let Some(id) = name.strip_prefix("mountpoints-").and_then(|r| r.strip_suffix(".img")) else { continue };
        let Ok(id) = id.parse::<u64>() else { continue };
        v.push((id, name.clone(), ck.entries(&name)?));
    }
    v.sort_by_key(|x| x.0);
    Ok(v)
}

fn mount_json(i: usize, kids: &Kids, all: &[Message], depth: usize) -> Json {
    let m = &all[i];
    let children = if depth > 4096 {
        Vec::new()
    } else {
        kids.get(&i).map(|ks| ks.iter().map(|&k| mount_json(k, kids, all, depth + 1)).collect()).unwrap_or_default()
    };
    let opt_str = |f: &str| if m.has(f) { jb(bytes(m, f)) } else { Json::Null };
    jo(vec![
        ("mnt_id", jn(u(m, "mnt_id"))),
        ("parent_mnt_id", jn(u(m, "parent_mnt_id"))),
        ("mountpoint", jb(bytes(m, "mountpoint"))),
        ("fstype", js(fstype_name(m))),
        ("source", jb(bytes(m, "source"))),
        ("root", jb(bytes(m, "root"))),
        ("options", jb(bytes(m, "options"))),
        ("flags", jn(u(m, "flags"))),
        ("flag_names", js(mount_flags(u(m, "flags")))),
        ("sb_flags", jopt(m.u64("sb_flags"))),
        ("shared_id", jopt(m.u64("shared_id").filter(|&x| x != 0))),
        ("master_id", jopt(m.u64("master_id").filter(|&x| x != 0))),
        (
            "external",
            if m.bool("ext_mount") == Some(true) || m.has("ext_key") { Json::Bool(true) } else { Json::Bool(false) },
        ),
        ("ext_key", opt_str("ext_key")),
        ("deleted", Json::Bool(m.bool("deleted") == Some(true))),
        ("children", ja(children)),
    ])
}

/// `x mounts`: the mount tree of each mount namespace.
pub fn mounts(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes, json: bool) -> Result<()> {
    let tasks = task_infos(ck, notes)?;
    let mut users: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for t in tasks.iter().filter(|t| !t.dead()) {
        if let Ok(ids) = ck.ids(t.task.pid) {
            if let Some(ns) = ids.u64("mnt_ns_id") {
                users.entry(ns).or_default().push(t.task.pid);
            }
        }
    }
    let nss = mount_namespaces(ck)?;
    let mut docs = Vec::new();
    if nss.is_empty() && !json {
        writeln!(out, "no mount namespace was dumped (the tasks share the host's mounts)")?;
        return Ok(());
    }
    for (id, name, entries) in &nss {
        let (roots, kids) = hierarchy(entries, |m| u(m, "mnt_id") as u32, |m| u(m, "parent_mnt_id") as u32);
        let pids = users.get(id).cloned().unwrap_or_default();
        if json {
            docs.push(jo(vec![
                ("ns_id", jn(*id)),
                ("image", js(name)),
                ("pids", ja(pids.iter().map(|p| jn(*p as u64)).collect())),
                ("mounts", ja(roots.iter().map(|&r| mount_json(r, &kids, entries, 0)).collect())),
            ]));
            continue;
        }
        let ps = pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
        writeln!(out, "mount namespace {id} ({name}; tasks {})", if ps.is_empty() { "-".into() } else { ps })?;
        fn show(
            out: &mut dyn Write,
            all: &[Message],
            kids: &Kids,
            i: usize,
            lead: &str,
            branch: &str,
            depth: usize,
        ) -> Result<()> {
            let m = &all[i];
            let mut s = format!(
                "{lead}{branch}{} {} {} {} {}",
                u(m, "mnt_id"),
                printable(bytes(m, "mountpoint")),
                fstype_name(m),
                printable(bytes(m, "source")),
                mount_flags(u(m, "flags"))
            );
            let opts = bytes(m, "options");
            if !opts.is_empty() {
                s.push_str(&format!(" [{}]", printable(opts)));
            }
            let root = bytes(m, "root");
            if root != b"/" {
                s.push_str(&format!(" root={}", printable(root)));
            }
            if let Some(k) = m.get("ext_key").map(|_| printable(bytes(m, "ext_key"))) {
                s.push_str(&format!(" external={k}"));
            } else if m.bool("ext_mount") == Some(true) {
                s.push_str(" external");
            }
            for (f, label) in [("shared_id", "shared"), ("master_id", "master")] {
                if let Some(x) = m.u64(f).filter(|&x| x != 0) {
                    s.push_str(&format!(" {label}:{x}"));
                }
            }
            if m.bool("deleted") == Some(true) {
                s.push_str(" (deleted)");
            }
            writeln!(out, "{s}")?;
            if depth > 4096 {
                return Ok(());
            }
            let child_lead = format!(
                "{lead}{}",
                match branch {
                    "├─ " => "│  ",
                    "└─ " => "   ",
                    _ => "",
                }
            );
            if let Some(ks) = kids.get(&i) {
                for (n, &k) in ks.iter().enumerate() {
                    let b = if n + 1 == ks.len() { "└─ " } else { "├─ " };
                    show(out, all, kids, k, &child_lead, b, depth + 1)?;
                }
            }
            Ok(())
        }
        for &r in &roots {
            show(out, entries, &kids, r, "", "", 0)?;
        }
    }
    if json {
        return write_json(out, &jo(vec![("namespaces", ja(docs))]));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// VMAs.

/// `VMA_*` status bits (CRIU's `image.h`).
pub const VMA_AREA_REGULAR: u64 = 1 << 0;
const VMA_FILE_PRIVATE: u64 = 1 << 6;
const VMA_FILE_SHARED: u64 = 1 << 7;

/// VMA kinds, by the first status bit found in this order.
pub static VMA_KINDS: &[(u64, &str)] = &[
    (1 << 3, "vdso"),
    (1 << 12, "vvar"),
    (1 << 2, "vsyscall"),
    (1 << 17, "uprobes"),
    (1 << 1, "stack"),
    (1 << 5, "heap"),
    (1 << 10, "sysv-shm"),
    (1 << 11, "packet-ring"),
    (1 << 13, "aio-ring"),
    (1 << 14, "memfd"),
    (1 << 15, "shadow-stack"),
    (1 << 16, "guard"),
    (VMA_FILE_SHARED, "file-shared"),
    (VMA_FILE_PRIVATE, "file-private"),
    (1 << 8, "anon-shared"),
    (1 << 9, "anon-private"),
];

/// `MAP_GROWSDOWN`: how CRIU 4 marks the main stack (its status has no
/// `VMA_AREA_STACK` then; crit's `x mems` prints `[stack?]`).
const MAP_GROWSDOWN: u64 = 0x100;

/// The kind of a VMA from its status and mmap flags.
pub fn vma_kind(status: u64, flags: u64) -> &'static str {
    let special = VMA_KINDS.iter().position(|(m, _)| *m == VMA_FILE_SHARED).unwrap_or(0);
    if let Some((_, n)) = VMA_KINDS[..special].iter().find(|(m, _)| status & m != 0) {
        return n;
    }
    if flags & MAP_GROWSDOWN != 0 {
        return "stack";
    }
    VMA_KINDS[special..].iter().find(|(m, _)| status & m != 0).map(|(_, n)| *n).unwrap_or("other")
}

fn prot_text(p: u64) -> String {
    format!(
        "{}{}{}",
        if p & 1 != 0 { 'r' } else { '-' },
        if p & 2 != 0 { 'w' } else { '-' },
        if p & 4 != 0 { 'x' } else { '-' }
    )
}

// ---------------------------------------------------------------------------
// JSON forms of crit's views.

/// `x ps --json`.
pub fn ps_json(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let items = task_infos(ck, notes)?
        .iter()
        .map(|t| {
            jo(vec![
                ("pid", jn(t.task.pid as u64)),
                ("ppid", jn(t.task.ppid as u64)),
                ("pgid", jn(t.task.pgid as u64)),
                ("sid", jn(t.task.sid as u64)),
                ("comm", js(&t.comm)),
                ("state", js(task_state_name(t.state))),
            ])
        })
        .collect();
    write_json(out, &jo(vec![("processes", ja(items))]))
}

/// `x fds --json`.
pub fn fds_json(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let tasks = task_infos(ck, notes)?;
    let tables = fd_tables(ck, &tasks, notes);
    let objs = file_objects(ck)?;
    let socks = sockets(ck, notes)?;
    let ctx = FileCtx::new(ck, &objs, &socks)?;
    let by_id: HashMap<u32, &FileObj> = objs.iter().map(|f| (f.id, f)).collect();
    let name = |id: u64| by_id.get(&(id as u32)).map(|f| js(ctx.describe(f))).unwrap_or(Json::Null);
    let mut items = Vec::new();
    for t in &tasks {
        let pid = t.task.pid;
        let fds = tables.iter().find(|(p, _)| *p == pid).map(|(_, f)| f.clone());
        let fs = if t.dead() { None } else { ck.first(&format!("fs-{pid}.img")).ok() };
        items.push(jo(vec![
            ("pid", jn(pid as u64)),
            (
                "fds",
                ja(fds
                    .iter()
                    .flat_map(|v| v.iter())
                    .map(|fd| {
                        jo(vec![
                            ("fd", jn(u(fd, "fd"))),
                            (
                                "type",
                                js(fd
                                    .enum_name("type")
                                    .map(str::to_string)
                                    .unwrap_or_else(|| u(fd, "type").to_string())),
                            ),
                            ("id", jn(u(fd, "id"))),
                            ("name", name(u(fd, "id"))),
                        ])
                    })
                    .collect()),
            ),
            ("cwd", fs.as_ref().map(|f| name(u(f, "cwd_id"))).unwrap_or(Json::Null)),
            ("root", fs.as_ref().map(|f| name(u(f, "root_id"))).unwrap_or(Json::Null)),
        ]));
    }
    write_json(out, &jo(vec![("processes", ja(items))]))
}

fn vma_json(v: &Message) -> Vec<(&'static str, Json)> {
    vec![
        ("start", jn(u(v, "start"))),
        ("end", jn(u(v, "end"))),
        ("prot", js(prot_text(u(v, "prot")))),
        ("kind", js(vma_kind(u(v, "status"), u(v, "flags")))),
        ("status", jn(u(v, "status"))),
        ("flags", jn(u(v, "flags"))),
        ("pgoff", jn(u(v, "pgoff"))),
        ("shmid", jn(u(v, "shmid"))),
    ]
}

/// `x mems --json`.
pub fn mems_json(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let tasks = task_infos(ck, notes)?;
    let objs = file_objects(ck)?;
    let ctx = FileCtx::new(ck, &objs, &[])?;
    let by_id: HashMap<u32, &FileObj> = objs.iter().map(|f| (f.id, f)).collect();
    let mut items = Vec::new();
    for t in &tasks {
        let pid = t.task.pid;
        let mm = if t.dead() {
            None
        } else {
            match ck.mm(pid) {
                Ok(m) => Some(m),
                Err(e) => {
                    notes.problems.push(format!("task {pid}: {e}"));
                    None
                }
            }
        };
        let file = |id: u64| by_id.get(&(id as u32)).map(|f| js(ctx.describe(f))).unwrap_or(Json::Null);
        items.push(jo(vec![
            ("pid", jn(pid as u64)),
            ("exe", mm.as_ref().map(|m| file(u(m, "exe_file_id"))).unwrap_or(Json::Null)),
            (
                "vmas",
                ja(mm
                    .iter()
                    .flat_map(|m| msgs(m, "vmas"))
                    .map(|v| {
                        let mut f = vma_json(v);
                        let st = u(v, "status");
                        f.push((
                            "file",
                            if st & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
                                file(u(v, "shmid"))
                            } else {
                                Json::Null
                            },
                        ));
                        jo(f)
                    })
                    .collect()),
            ),
        ]));
    }
    write_json(out, &jo(vec![("processes", ja(items))]))
}

/// Names of pagemap flags.
pub fn pagemap_flag_names(f: u64) -> Vec<Json> {
    [(PE_PARENT, "parent"), (PE_LAZY, "lazy"), (PE_PRESENT, "present")]
        .iter()
        .filter(|(m, _)| f & m != 0)
        .map(|(_, n)| js(n))
        .collect()
}

/// `x rss --json`.
pub fn rss_json(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let tasks = task_infos(ck, notes)?;
    let mut items = Vec::new();
    for t in &tasks {
        let pid = t.task.pid;
        let mut runs = Vec::new();
        let mut pages_img = Json::Null;
        if !t.dead() {
            let name = format!("pagemap-{pid}.img");
            match ck.reader(&name) {
                Ok(mut rd) => {
                    while let Some(it) = rd.next_item().map_err(|e| e.in_file(&name))? {
                        if it.role == crate::image::Role::PagemapHead {
                            pages_img = js(format!("pages-{}.img", u(&it.msg, "pages_id")));
                            continue;
                        }
                        let fl = pagemap_flags(&it.msg);
                        runs.push(jo(vec![
                            ("vaddr", jn(u(&it.msg, "vaddr"))),
                            ("nr_pages", jn(explore::entry_pages(&it.msg))),
                            ("flags", ja(pagemap_flag_names(fl))),
                        ]));
                    }
                }
                Err(e) => notes.problems.push(format!("task {pid}: {e}")),
            }
        }
        items.push(jo(vec![("pid", jn(pid as u64)), ("pages_image", pages_img), ("runs", ja(runs))]));
    }
    write_json(out, &jo(vec![("processes", ja(items))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_names() {
        assert_eq!(open_flags(0o100002), "O_RDWR|O_LARGEFILE");
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(open_flags(0o2001 | 0o40000000), "O_WRONLY|O_APPEND|0o40000000");
        assert_eq!(mount_flags(0x20000e), "rw,nosuid,nodev,noexec,relatime");
        assert_eq!(mount_flags(0x200001), "ro,relatime");
        assert_eq!(vma_kind((1 << 0) | (1 << 1) | (1 << 9), 0), "stack");
        assert_eq!(vma_kind((1 << 0) | (1 << 9), 0x100), "stack");
        assert_eq!(vma_kind((1 << 0) | (1 << 9), 0x22), "anon-private");
        assert_eq!(vma_kind((1 << 0) | (1 << 3), 0x100), "vdso");
        assert_eq!(vma_kind(0, 0), "other");
        assert_eq!(exit_text(7 << 8), "exit status 7");
        assert_eq!(exit_text(9), "killed by signal 9");
        assert_eq!(printable(b"a\tb\xff"), "a\\x09b\\xff");
        assert_eq!(shell_word(b"a b"), "'a b'");
        assert_eq!(strings(b"a\0bc\0"), vec![b"a".to_vec(), b"bc".to_vec()]);
    }

    #[test]
    fn hierarchy_shows_every_item_once() {
        // (id, parent): 1 is the root; 5 and 7 are each other's parent;
        // 9 is its own parent; 3 has a parent that is not there; 5 twice.
        let items = [(1, 0), (2, 1), (5, 7), (7, 5), (9, 9), (3, 42), (5, 2), (4, 5)];
        let (roots, kids) = hierarchy(&items, |t| t.0, |t| t.1);
        let mut seen = vec![0; items.len()];
        let mut stack = roots.clone();
        while let Some(i) = stack.pop() {
            seen[i] += 1;
            stack.extend(kids.get(&i).cloned().unwrap_or_default());
        }
        assert_eq!(seen, vec![1; items.len()]);
        assert!(roots.contains(&0) && roots.contains(&4) && roots.contains(&5));
        assert_eq!(roots.len(), 4);
    }

    #[test]
    fn table_layout() {
        let mut t = Table::new(&[">N", "NAME", "X"]);
        t.row(vec!["1".into(), "a".into(), "".into()]);
        t.row(vec!["100".into(), "bbb".into(), "z".into()]);
        let mut out = Vec::new();
        t.print(&mut out, "").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "  N  NAME  X\n  1  a\n100  bbb   z\n");
    }
}
