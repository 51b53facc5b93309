//! `crit check`: validate a checkpoint before anyone tries to restore it.
//!
//! [`check`] reads every image of a [`Checkpoint`] once, keeps compact facts
//! about what it saw (never whole large images, never a pages file: only its
//! size), and then checks the links between images the way CRIU's restore
//! follows them: which images every task needs, the ids that point from one
//! image into another, the process tree, the threads, the memory maps and
//! the page maps.  It reports every problem it finds as a [`Finding`] (image,
//! entry, field, what was expected, what was found, severity) and never
//! writes anything.
//!
//! Errors are what would make `criu restore` fail or restore something
//! other than what was dumped; warnings are oddities CRIU restores anyway
//! (an image nothing refers to, data CRIU would silently drop).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::image::{ImageReader, Item, Role};
use crate::magic::{self, Head, ImageKind, IMG_COMMON, IMG_SERVICE};
use crate::wire::{Message, Value};

// ---------------------------------------------------------------------------
// Findings and the report

/// How bad a finding is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Severity {
    /// Restore would fail, or restore something else than was dumped.
    Error,
    /// Restorable, but odd: data nothing refers to, data CRIU drops.
    Warning,
}

impl Severity {
    /// The lowercase name used in the output.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Which check found it (one of [`CHECKS`]).
    pub check: &'static str,
    /// The image file the problem is in (or the one that is missing).
    pub image: String,
    /// Index of the entry in the image (0-based, as in crit's JSON list).
    pub entry: Option<usize>,
    /// Dotted path of the field inside the entry.
    pub field: Option<String>,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
}

impl Finding {
    fn new(severity: Severity, check: &'static str, image: impl Into<String>) -> Finding {
        Finding {
            severity,
            check,
            image: image.into(),
            entry: None,
            field: None,
            expected: String::new(),
            found: String::new(),
        }
    }

    fn error(check: &'static str, image: impl Into<String>) -> Finding {
        Finding::new(Severity::Error, check, image)
    }

    fn warning(check: &'static str, image: impl Into<String>) -> Finding {
        Finding::new(Severity::Warning, check, image)
    }

    fn at(mut self, entry: usize) -> Finding {
        self.entry = Some(entry);
        self
    }

    fn field(mut self, field: impl Into<String>) -> Finding {
        self.field = Some(field.into());
        self
    }

    fn expect(mut self, s: impl Into<String>) -> Finding {
        self.expected = s.into();
        self
    }

    fn found(mut self, s: impl Into<String>) -> Finding {
        self.found = s.into();
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity.name(), self.image)?;
        if let Some(e) = self.entry {
            write!(f, ", entry {e}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": expected {}, found {} [{}]", self.expected, self.found, self.check)
    }
}

/// Every check, by the name findings carry, with what it looks at.
pub static CHECKS: &[(&str, &str)] = &[
    ("missing-image", "an image that restore needs is not in the checkpoint"),
    ("unreadable", "an image that cannot be read at all (permissions, a symlink out of the directory, I/O errors)"),
    ("bad-magic", "the magic words at the start of an image do not fit its file name or the image version"),
    ("truncated", "an image ends inside an entry or a payload"),
    ("trailing-garbage", "bytes after the last entry that are not an entry"),
    ("malformed", "an entry that does not decode as its protobuf message"),
    ("required-field", "an entry without a field its message requires"),
    ("entry-count", "an image read as one entry holds none, or more than one"),
    ("inventory", "the image version, the per-id fdinfo layout and the root cgroup set of inventory.img"),
    (
        "file-entry",
        "a files.img (or per-type) entry: known type, the sub-message of that type, matching ids, unique ids",
    ),
    (
        "file-id",
        "an id that must name a file (fdinfo, exe, cwd, root, mapped files, fifo and tty paths, remaps, SCM rights)",
    ),
    ("fd", "fd numbers: unique in a table; those named by file locks and epoll targets exist"),
    ("pipe", "pipe and fifo data for pipes that exist; data within the pipe size"),
    ("unix-peer", "the peer of every unix socket exists"),
    ("sk-queue", "queued socket data belongs to an existing unix socket"),
    ("tcp-stream", "every connected TCP socket has its tcp-stream image, and every tcp-stream image its socket"),
    ("tty", "tty files have their tty-info, tty data its tty, ptys their pty data, termios and peer"),
    ("remap", "remap-fpath entries: original and linked files exist, ghost files present"),
    ("memfd", "memfd files have their inode, memfd contents their page map"),
    ("shmem", "shared memory mappings have their segment or page map, and the page map fits the segment"),
    ("pstree", "the process tree: one root first, unique pids, parents before children, session and group leaders"),
    ("threads", "pstree threads against core images: a core per thread, no core without a thread, leader first"),
    ("core", "core images: task state, architecture data, thread data, sigactions, credentials"),
    ("timer", "itimers and POSIX timers: time values in range, signals, notify threads"),
    ("signal", "queued signals: siginfo size and signal number"),
    ("seccomp", "seccomp filter indexes and chains"),
    ("namespace", "the per-namespace images of every namespace a task uses that is not CRIU's own"),
    ("vma", "memory mappings: ordered, non-overlapping, page-aligned"),
    ("pagemap", "page map entries: page-aligned, sorted, non-overlapping, inside the mappings"),
    ("pages", "the pages file size equals the present pages of its page map; no pages file without a page map"),
    ("parent", "page map entries in a parent snapshot have a parent directory and a parent page map covering them"),
    ("orphan", "an image nothing refers to (restore ignores it)"),
];

pub use crate::version::Version;
use crate::version::{IMAGES_SINCE, INVENTORY_SINCE};

/// Something in the images that only a CRIU of at least some version writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// The version.
    pub version: Version,
    /// The first image it was seen in.
    pub image: String,
    /// What was seen.
    pub what: String,
}

/// The result of a check.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every problem found, in the order found.
    pub findings: Vec<Finding>,
    /// Image files examined (raw images included).
    pub images: usize,
    /// Processes in pstree.img.
    pub tasks: usize,
    /// Threads in pstree.img.
    pub threads: usize,
    /// File entries (files.img or the per-type images).
    pub files: usize,
    /// `img_version` of inventory.img.
    pub img_version: Option<u32>,
    /// What the images tell of the CRIU that wrote them, newest first.
    pub evidence: Vec<Evidence>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Warning).count()
    }

    /// No errors (warnings allowed): what the exit status reports.
    pub fn ok(&self) -> bool {
        self.errors() == 0
    }

    /// A lower bound of the version of the CRIU that wrote the images.
    pub fn criu_at_least(&self) -> Option<Version> {
        self.evidence.iter().map(|e| e.version).max()
    }
}

// ---------------------------------------------------------------------------
// Tables

/// PE_PARENT: the pages are in the parent snapshot.
const PE_PARENT: u64 = 1;
/// PE_LAZY: the pages may be restored lazily.
const PE_LAZY: u64 = 2;
/// PE_PRESENT: the pages are in the pages file.
const PE_PRESENT: u64 = 4;
const PAGE: u64 = 4096;
/// Entries CRIU writes are far smaller than this (the largest, an mm with
/// the kernel's maximum of 65530 mappings, is a few MiB).
const PLAUSIBLE_ENTRY: u64 = 64 << 20;

/// `task_state` values of core images.
const TASK_ALIVE: u64 = 1;
const TASK_DEAD: u64 = 2;
const TASK_STOPPED: u64 = 3;

/// Number of signals (x86, arm, ...).
const SIGMAX: u64 = 64;
/// `sizeof(siginfo_t)`.
const SIGINFO_SIZE: usize = 128;
/// Number of termios control characters CRIU requires.
const TERMIOS_NCC: usize = 19;

// VMA status bits (criu/include/image.h).
const VMA_FILE_PRIVATE: u64 = 1 << 6;
const VMA_FILE_SHARED: u64 = 1 << 7;
const VMA_ANON_SHARED: u64 = 1 << 8;
const VMA_AREA_SYSVIPC: u64 = 1 << 10;
const VMA_AREA_SOCKET: u64 = 1 << 11;
const VMA_AREA_MEMFD: u64 = 1 << 14;

// fd_types values.
const FD_UND: i32 = 0;
const FD_REG: i32 = 1;
const FD_PIPE: i32 = 2;
const FD_FIFO: i32 = 3;
const FD_INETSK: i32 = 4;
const FD_UNIXSK: i32 = 5;
const FD_EVENTPOLL: i32 = 7;
const FD_PACKETSK: i32 = 10;
const FD_TTY: i32 = 11;
const FD_MEMFD: i32 = 18;
const FD_PIDFD: i32 = 20;

/// A kind of file: its `fd_types` number, the `file_entry` field holding
/// it, and the per-type image older CRIU (< 3.4) kept it in.
struct FileKind {
    ty: i32,
    field: &'static str,
    legacy: Option<&'static str>,
}

static FILE_KINDS: &[FileKind] = &[
    FileKind { ty: FD_REG, field: "reg", legacy: Some("REG_FILES") },
    FileKind { ty: FD_PIPE, field: "pipe", legacy: Some("PIPES") },
    FileKind { ty: FD_FIFO, field: "fifo", legacy: Some("FIFO") },
    FileKind { ty: FD_INETSK, field: "isk", legacy: Some("INETSK") },
    FileKind { ty: FD_UNIXSK, field: "usk", legacy: Some("UNIXSK") },
    FileKind { ty: 6, field: "efd", legacy: Some("EVENTFD_FILE") },
    FileKind { ty: FD_EVENTPOLL, field: "epfd", legacy: Some("EVENTPOLL_FILE") },
    FileKind { ty: 8, field: "ify", legacy: Some("INOTIFY_FILE") },
    FileKind { ty: 9, field: "sgfd", legacy: Some("SIGNALFD") },
    FileKind { ty: FD_PACKETSK, field: "psk", legacy: Some("PACKETSK") },
    FileKind { ty: FD_TTY, field: "tty", legacy: Some("TTY_FILES") },
    FileKind { ty: 12, field: "ffy", legacy: Some("FANOTIFY_FILE") },
    FileKind { ty: 13, field: "nlsk", legacy: Some("NETLINK_SK") },
    FileKind { ty: 14, field: "nsf", legacy: Some("NS_FILES") },
    FileKind { ty: 15, field: "tunf", legacy: Some("TUNFILE") },
    FileKind { ty: 16, field: "ext", legacy: Some("EXT_FILES") },
    FileKind { ty: 17, field: "tfd", legacy: Some("TIMERFD") },
    FileKind { ty: FD_MEMFD, field: "memfd", legacy: None },
    FileKind { ty: 19, field: "bpf", legacy: Some("BPFMAP_FILE") },
    FileKind { ty: FD_PIDFD, field: "pidfd", legacy: Some("PIDFD") },
];

fn file_kind(ty: i32) -> Option<&'static FileKind> {
    FILE_KINDS.iter().find(|k| k.ty == ty)
}

fn legacy_kind(kind_name: &str) -> Option<&'static FileKind> {
    FILE_KINDS.iter().find(|k| k.legacy == Some(kind_name))
}

/// The name of an `fd_types` value.
fn fd_type_name(ty: i32) -> String {
    crate::schema::ENUMS
        .iter()
        .find(|e| e.name == "fd_types")
        .and_then(|e| e.name_of(ty))
        .map(str::to_string)
        .unwrap_or_else(|| format!("type {ty}"))
}

/// A namespace kind: the `task_kobj_ids_entry` field, the image every
/// namespace of the kind that is not CRIU's own must have (`%` for its id),
/// and whether restore needs that image.
struct NsKind {
    field: &'static str,
    image: &'static str,
    /// uts and ipc images were named by pid before `ns_per_id`.
    per_pid_before_ns_per_id: bool,
}

static NS_KINDS: &[NsKind] = &[
    NsKind { field: "uts_ns_id", image: "utsns-%.img", per_pid_before_ns_per_id: true },
    NsKind { field: "ipc_ns_id", image: "ipcns-var-%.img", per_pid_before_ns_per_id: true },
    NsKind { field: "net_ns_id", image: "netns-%.img", per_pid_before_ns_per_id: false },
    NsKind { field: "mnt_ns_id", image: "mountpoints-%.img", per_pid_before_ns_per_id: false },
    NsKind { field: "time_ns_id", image: "timens-%.img", per_pid_before_ns_per_id: false },
    NsKind { field: "user_ns_id", image: "userns-%.img", per_pid_before_ns_per_id: false },
];

/// The thread-info field each architecture of `core_entry.mtype` needs.
static ARCH_INFO: &[(i32, &str)] = &[
    (1, "thread_info"),
    (2, "ti_arm"),
    (3, "ti_aarch64"),
    (4, "ti_ppc64"),
    (5, "ti_s390"),
    (6, "ti_mips"),
    (7, "ti_loongarch64"),
    (8, "ti_riscv64"),
];

// ---------------------------------------------------------------------------
// Compact facts gathered while reading

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// A file of this type (None: any type).
    File(Option<i32>),
    Pipe,
    Fifo,
    TtyInfo,
    MemfdInode,
    SysvShm,
    Task,
}

/// A reference from one entry to an object of another image.
struct Ref {
    check: &'static str,
    image: u32,
    entry: usize,
    field: Cow<'static, str>,
    target: Target,
    id: u64,
    severity: Severity,
}

#[derive(Default)]
struct Inventory {
    img_version: Option<u64>,
    root_ids: Option<Message>,
    ns_per_id: bool,
    tcp_close: bool,
}

struct PsEntry {
    entry: usize,
    pid: u32,
    ppid: u32,
    pgid: u32,
    sid: u32,
    threads: Vec<u32>,
}

#[derive(Default)]
struct CoreRec {
    task_state: Option<u64>,
    mtype: i32,
    has_arch: bool,
    has_tc: bool,
    has_thread_core: bool,
    has_ids: bool,
    has_creds: bool,
    n_sigactions: usize,
    seccomp_filter: Option<u64>,
    /// (index in tc.timers.posix, notify_thread_id) of SIGEV_THREAD_ID timers.
    notify_threads: Vec<(usize, u64)>,
}

struct FileRec {
    ty: i32,
    image: u32,
    entry: usize,
}

struct Vma {
    start: u64,
    end: u64,
}

struct UnixRec {
    image: u32,
    entry: usize,
    field: String,
    ino: u64,
    peer: u64,
}

struct TcpRec {
    image: u32,
    entry: usize,
    ino: u64,
}

struct TtyRec {
    image: u32,
    entry: usize,
    field: String,
    regf: u64,
    info_id: u64,
}

struct TtyInfo {
    entry: usize,
    ty: i32,
    active: bool,
}

struct EpollTarget {
    image: u32,
    entry: usize,
    field: String,
    tfd: u64,
}

struct FdEntry {
    id: u64,
    ty: i32,
    fd: u64,
}

#[derive(Default)]
struct Facts {
    /// Names of the images, for references by index.
    names: Vec<String>,
    index: HashMap<String, u32>,
    present: HashSet<String>,
    sizes: HashMap<String, u64>,
    damaged: HashSet<String>,
    inventory: Inventory,
    pstree: Vec<PsEntry>,
    cores: HashMap<u32, CoreRec>,
    ids: HashMap<u32, Message>,
    vmas: HashMap<u32, Vec<Vma>>,
    fdinfo: HashMap<u32, Vec<FdEntry>>,
    files: HashMap<u64, FileRec>,
    files_from_files_img: bool,
    pipes: HashSet<u64>,
    fifos: HashSet<u64>,
    unix: Vec<UnixRec>,
    unix_inos: HashSet<u64>,
    tcp: Vec<TcpRec>,
    tcp_streams: HashMap<u64, String>,
    ttys: Vec<TtyRec>,
    tty_infos: HashMap<u64, TtyInfo>,
    epoll: HashMap<u64, Vec<EpollTarget>>,
    memfd_inodes: HashSet<u64>,
    sysv_shm: HashSet<u64>,
    /// Known sizes of shared memory segments by shmid, for their page maps.
    shmem_size: HashMap<u64, u64>,
    /// Page maps that must exist: (image name, needing image, entry, field).
    shmem_needed: Vec<(String, u32, usize, String)>,
    ghosts_needed: HashSet<u64>,
    /// Where the `parent` link of an incremental dump would be.
    parent_link: Option<PathBuf>,
    seccomp: Option<Vec<Option<u64>>>,
    locks: Vec<(usize, u64, i64)>,
    refs: Vec<Ref>,
    /// pages_id → (pagemap image, present pages; None when the page map
    /// is damaged and the count unknown).
    pages_users: HashMap<u64, (String, Option<u64>)>,
    evidence: Vec<Evidence>,
    findings: Vec<Finding>,
}

impl Facts {
    fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    fn idx(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map(String::as_str).unwrap_or("?")
    }

    fn add_ref(
        &mut self,
        check: &'static str,
        image: &str,
        entry: usize,
        field: impl Into<Cow<'static, str>>,
        target: Target,
        id: u64,
    ) {
        let image = self.idx(image);
        self.refs.push(Ref { check, image, entry, field: field.into(), target, id, severity: Severity::Error });
    }

    fn evidence(&mut self, version: Version, image: &str, what: impl Into<String>) {
        let what = what.into();
        if self.evidence.iter().any(|e| e.what == what) {
            return;
        }
        self.evidence.push(Evidence { version, image: image.to_string(), what });
    }

    fn has(&self, name: &str) -> bool {
        self.present.contains(name)
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// The number in an image name made from `pre` + number + `post`.
fn name_number(name: &str, pre: &str, post: &str, radix: u32) -> Option<u64> {
    let mid = name.strip_prefix(pre)?.strip_suffix(post)?;
    if mid.is_empty() {
        return None;
    }
    u64::from_str_radix(mid, radix).ok()
}

fn u(m: &Message, name: &str) -> u64 {
    m.u64(name).unwrap_or(0)
}

fn msgs<'a>(m: &'a Message, name: &str) -> impl Iterator<Item = &'a Message> + 'a {
    m.get_all(name).filter_map(|v| match v {
        Value::Msg(m) => Some(m),
        _ => None,
    })
}

fn bytes_of<'a>(m: &'a Message, name: &str) -> Option<&'a [u8]> {
    match m.get(name)? {
        Value::Bytes(b) | Value::Str(b) => Some(b),
        _ => None,
    }
}

/// Whether a field is present at all (even one the schema marks unknown).
fn has_number(m: &Message, number: u32) -> bool {
    m.fields.iter().any(|(n, _)| *n == number)
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

// ---------------------------------------------------------------------------
// Reading the images

/// Check a checkpoint.  Fails only when the checkpoint cannot be listed at
/// all; everything wrong inside it is a finding.
pub fn check(ck: &Checkpoint) -> Result<Report> {
    let mut names = ck.source().names().map_err(|e| Error::from(e).in_file(ck.source().display()))?;
    names.sort();
    // The `parent` link of an incremental dump is a symlink to a directory,
    // usually outside this one: found next to the images on disk.
    let dir = names.iter().find_map(|n| ck.source().path_of(n)).and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let mut f = Facts { parent_link: dir.map(|d| d.join("parent")), ..Facts::default() };
    for n in &names {
        f.present.insert(n.clone());
        if let Some(s) = ck.source().size(n) {
            f.sizes.insert(n.clone(), s);
        }
    }
    let mut report = Report::default();

    // inventory first (it gives the image version), then files.img (it
    // decides whether the per-type images count), then the rest; page maps
    // last, when the mappings they must lie in are known.
    let is_pagemap = |n: &str| n.starts_with("pagemap-");
    let mut order: Vec<&String> = Vec::with_capacity(names.len());
    order.extend(names.iter().filter(|n| n.as_str() == "inventory.img"));
    order.extend(names.iter().filter(|n| n.as_str() == "files.img"));
    order.extend(names.iter().filter(|n| n.as_str() != "inventory.img" && n.as_str() != "files.img" && !is_pagemap(n)));
    order.extend(names.iter().filter(|n| is_pagemap(n)));

    if !f.has("inventory.img") {
        f.push(Finding::error("missing-image", "inventory.img").expect("the inventory image").found("no such file"));
    }
    for (prefix, v) in IMAGES_SINCE {
        if let Some(n) = names.iter().find(|n| n.starts_with(prefix)) {
            f.evidence(*v, n, format!("{prefix}{}", if prefix.ends_with('-') { "*" } else { "" }));
        }
    }

    let mut parent = ParentState::default();
    for name in order {
        if magic::RAW_IMAGE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            report.images += 1;
            continue;
        }
        let Some(kind) = magic::by_file_name(name) else { continue };
        if matches!(kind.body, magic::Body::Undecodable) {
            continue;
        }
        report.images += 1;
        scan_image(ck, &mut f, &mut parent, name, kind);
    }

    cross_checks(&mut f);

    report.tasks = f.pstree.len();
    report.threads = f.pstree.iter().map(|p| p.threads.len()).sum();
    report.files = f.files.len();
    report.img_version = f.inventory.img_version.map(|v| v as u32);
    let mut ev = std::mem::take(&mut f.evidence);
    ev.sort_by_key(|e| std::cmp::Reverse(e.version));
    report.evidence = ev;
    report.findings = f.findings;
    Ok(report)
}

/// Turn a decoding error into a finding.
fn decode_finding(f: &Facts, name: &str, e: &Error) -> Finding {
    let entry = e.loc.entry;
    let mut fd = match &e.kind {
        ErrorKind::Truncated { what, need, got } => {
            let size = f.sizes.get(name).copied().unwrap_or(0);
            // A partial size word after the last entry, or a size no entry
            // has, is junk after the image rather than a cut entry.
            let stray = *what == "entry size" || (*what == "entry" && *need > PLAUSIBLE_ENTRY);
            if stray {
                // The offset is past the size prefix when the entry is short.
                let at = e.loc.offset.unwrap_or(0).saturating_sub(if *what == "entry" { 4 } else { 0 });
                Finding::error("trailing-garbage", name)
                    .expect(match entry {
                        Some(0) | None => "the end of the image or an entry".to_string(),
                        Some(i) => format!("the end of the image after entry {}", i - 1),
                    })
                    .found(format!(
                        "{} at offset {at} that are not an entry",
                        plural(size.saturating_sub(at), "stray byte")
                    ))
            } else {
                Finding::error("truncated", name)
                    .expect(format!("{need} bytes of {what}"))
                    .found(format!("{got} (the image ends there)"))
            }
        }
        ErrorKind::Malformed(m) => Finding::error("malformed", name).expect("an entry that decodes").found(m.clone()),
        ErrorKind::UnknownMagic(m) => Finding::error("bad-magic", name)
            .expect(match magic::by_file_name(name) {
                Some(k) => format!("{} magic {:#x}", k.name, k.magic),
                None => "a known magic".into(),
            })
            .found(format!("unknown magic {:#x}", *m as u32)),
        ErrorKind::NoHandler(k) => Finding::error("bad-magic", name)
            .expect(match magic::by_file_name(name) {
                Some(k) => format!("{} magic {:#x}", k.name, k.magic),
                None => "a known magic".into(),
            })
            .found(format!("magic {k}, which has no entries")),
        other => Finding::error("unreadable", name).expect("a readable image").found(other.to_string()),
    };
    fd.entry = entry;
    if let Some(field) = &e.loc.field {
        fd.field = Some(field.clone());
    }
    fd
}

fn scan_image(ck: &Checkpoint, f: &mut Facts, parent: &mut ParentState, name: &str, kind: &'static ImageKind) {
    let mut rd = match ck.reader(name) {
        Ok(r) => r,
        Err(e) => {
            let fd = decode_finding(f, name, &e);
            f.push(fd);
            f.damaged.insert(name.to_string());
            return;
        }
    };
    if rd.kind().magic != kind.magic {
        f.push(
            Finding::error("bad-magic", name)
                .expect(format!("{} magic {:#x} (from the file name)", kind.name, kind.magic))
                .found(format!("{} magic {:#x}", rd.kind().name, rd.kind().magic)),
        );
        f.damaged.insert(name.to_string());
        return;
    }
    check_head_magic(f, name, kind, rd.head_magic());

    let mut st = ImageState::new(name, kind);
    loop {
        match rd.next_item() {
            Ok(None) => break,
            Ok(Some(item)) => {
                let missing = item.msg.missing_required();
                if !missing.is_empty() {
                    f.push(
                        Finding::error("required-field", name)
                            .at(item.index)
                            .field(missing.join(","))
                            .expect(format!(
                                "the required field{} of {}",
                                if missing.len() > 1 { "s" } else { "" },
                                item.msg.ty.desc().name
                            ))
                            .found("absent"),
                    );
                }
                visit(f, parent, &mut st, &item);
                st.count += 1;
            }
            Err(e) => {
                let fd = decode_finding(f, name, &e);
                f.push(fd);
                f.damaged.insert(name.to_string());
                break;
            }
        }
    }
    finish_image(f, &mut st);
}

fn check_head_magic(f: &mut Facts, name: &str, kind: &ImageKind, head: Option<u32>) {
    let v1 = f.inventory.img_version == Some(1);
    let want = match kind.head {
        _ if kind.name == "INVENTORY" => None,
        _ if v1 => None,
        Head::None => None,
        Head::Common => Some(IMG_COMMON),
        Head::Service => Some(IMG_SERVICE),
    };
    if f.inventory.img_version.is_none() && kind.name != "INVENTORY" {
        return; // no version to hold the image against
    }
    if want != head {
        let show = |m: Option<u32>| match m {
            Some(m) => format!("head magic {m:#x}"),
            None => "no head magic".to_string(),
        };
        f.push(
            Finding::error("bad-magic", name)
                .expect(format!("{} (image version {})", show(want), f.inventory.img_version.unwrap_or(0)))
                .found(show(head)),
        );
    }
}

/// Per-image state while its entries are read.
struct ImageState {
    name: String,
    kind: &'static ImageKind,
    count: usize,
    /// For fdinfo images: fd numbers seen.
    fds: HashSet<u64>,
    /// For page maps.
    pm: Option<PagemapState>,
}

impl ImageState {
    fn new(name: &str, kind: &'static ImageKind) -> ImageState {
        ImageState { name: name.to_string(), kind, count: 0, fds: HashSet::new(), pm: None }
    }
}

/// Kinds CRIU reads as a single entry (`pb_read_one`).
static SINGLE_ENTRY: &[&str] = &[
    "INVENTORY",
    "CORE",
    "IDS",
    "MM",
    "FS",
    "UTSNS",
    "IPC_VAR",
    "TIMENS",
    "NETNS",
    "PIDNS",
    "SECCOMP",
    "STATS",
    "CPUINFO",
    "USERNS",
    "TCP_STREAM",
];

fn finish_image(f: &mut Facts, st: &mut ImageState) {
    let damaged = f.damaged.contains(&st.name);
    if SINGLE_ENTRY.contains(&st.kind.name) && !damaged {
        if st.count == 0 {
            f.push(Finding::error("entry-count", st.name.clone()).expect("one entry").found("none"));
        } else if st.count > 1 {
            f.push(
                Finding::warning("entry-count", st.name.clone())
                    .at(1)
                    .expect("one entry (CRIU reads only the first)")
                    .found(format!("{} entries", st.count)),
            );
        }
    }
    if let Some(pm) = st.pm.take() {
        pm.finish(f, &st.name);
    }
}

fn visit(f: &mut Facts, parent: &mut ParentState, st: &mut ImageState, item: &Item) {
    let name = st.name.clone();
    let m = &item.msg;
    let e = item.index;
    match st.kind.name {
        "INVENTORY" => visit_inventory(f, &name, e, m),
        "PSTREE" => f.pstree.push(PsEntry {
            entry: e,
            pid: u(m, "pid") as u32,
            ppid: u(m, "ppid") as u32,
            pgid: u(m, "pgid") as u32,
            sid: u(m, "sid") as u32,
            threads: m.get_all("threads").filter_map(Value::as_u64).map(|t| t as u32).collect(),
        }),
        "CORE" if e == 0 => {
            if let Some(tid) = name_number(&name, "core-", ".img", 10) {
                let rec = visit_core(f, &name, m);
                f.cores.insert(tid as u32, rec);
            }
        }
        "IDS" if e == 0 => {
            if let Some(pid) = name_number(&name, "ids-", ".img", 10) {
                f.ids.insert(pid as u32, m.clone());
            }
        }
        "MM" if e == 0 => {
            if let Some(pid) = name_number(&name, "mm-", ".img", 10) {
                visit_mm(f, &name, pid as u32, m);
            }
        }
        "FS" if e == 0 => {
            f.add_ref("file-id", &name, e, "cwd_id", Target::File(Some(FD_REG)), u(m, "cwd_id"));
            f.add_ref("file-id", &name, e, "root_id", Target::File(Some(FD_REG)), u(m, "root_id"));
        }
        "FDINFO" => {
            let Some(files_id) = name_number(&name, "fdinfo-", ".img", 10) else { return };
            let ty = m.enum_value("type").unwrap_or(FD_UND);
            let fd = u(m, "fd");
            if !st.fds.insert(fd) {
                f.push(
                    Finding::error("fd", name.clone())
                        .at(e)
                        .field("fd")
                        .expect("each fd number once in the table")
                        .found(format!("fd {fd} again")),
                );
            }
            let target = if ty == FD_UND { Target::File(None) } else { Target::File(Some(ty)) };
            f.add_ref("file-id", &name, e, "id", target, u(m, "id"));
            f.fdinfo.entry(files_id as u32).or_default().push(FdEntry { id: u(m, "id"), ty, fd });
        }
        "FILES" => visit_file_entry(f, &name, e, m),
        "PIPES_DATA" | "FIFO_DATA" => {
            let target = if st.kind.name == "PIPES_DATA" { Target::Pipe } else { Target::Fifo };
            f.add_ref("pipe", &name, e, "pipe_id", target, u(m, "pipe_id"));
            if let (Some(size), Some(bytes)) = (m.u64("size"), m.u64("bytes")) {
                if size > 0 && bytes > size {
                    f.push(
                        Finding::warning("pipe", name.clone())
                            .at(e)
                            .field("bytes")
                            .expect(format!("at most the pipe size, {size} bytes"))
                            .found(format!("{bytes} bytes (restore cannot write them all)")),
                    );
                }
            }
        }
        "SK_QUEUES" => {
            f.add_ref("sk-queue", &name, e, "id_for", Target::File(Some(FD_UNIXSK)), u(m, "id_for"));
            for (i, scm) in msgs(m, "scm").enumerate() {
                for (j, r) in scm.get_all("rights").filter_map(Value::as_u64).enumerate() {
                    f.add_ref("file-id", &name, e, format!("scm[{i}].rights[{j}]"), Target::File(None), r);
                }
            }
        }
        "TCP_STREAM" if e == 0 => {
            if let Some(ino) = name_number(&name, "tcp-stream-", ".img", 16) {
                f.tcp_streams.insert(ino, name.clone());
            }
            if !m.has("unsq_len") {
                f.push(
                    Finding::error("tcp-stream", name.clone())
                        .at(e)
                        .field("unsq_len")
                        .expect("the unsent queue length")
                        .found("absent"),
                );
            }
        }
        "TTY_INFO" => visit_tty_info(f, &name, e, m),
        "TTY_DATA" => f.add_ref("tty", &name, e, "tty_id", Target::TtyInfo, u(m, "tty_id")),
        "REMAP_FPATH" => visit_remap(f, &name, e, m),
        "MEMFD_INODE" => {
            f.memfd_inodes.insert(u(m, "inode_id"));
            let (shmid, size) = (u(m, "shmid"), u(m, "size"));
            f.shmem_size.insert(shmid, size);
            if size > 0 {
                let idx = f.idx(&name);
                f.shmem_needed.push((format!("pagemap-shmem-{shmid}.img"), idx, e, "shmid".into()));
            }
        }
        "IPCNS_SHM" => {
            let id = m.msg("desc").map(|d| u(d, "id")).unwrap_or(0);
            let size = u(m, "size");
            f.sysv_shm.insert(id);
            f.shmem_size.insert(id, size);
            if m.bool("in_pagemaps") == Some(true) && size > 0 {
                let idx = f.idx(&name);
                f.shmem_needed.push((format!("pagemap-shmem-{id}.img"), idx, e, "desc.id".into()));
            }
        }
        "SECCOMP" if e == 0 => visit_seccomp(f, &name, m),
        "FILE_LOCKS" => {
            f.add_ref("fd", &name, e, "pid", Target::Task, u(m, "pid"));
            f.locks.push((e, u(m, "pid"), m.i64("fd").unwrap_or(-1)));
        }
        "EVENTPOLL_TFD" => {
            if !f.files_from_files_img {
                f.add_ref("file-id", &name, e, "id", Target::File(Some(FD_EVENTPOLL)), u(m, "id"));
                let image = f.idx(&name);
                f.epoll.entry(u(m, "id")).or_default().push(EpollTarget {
                    image,
                    entry: e,
                    field: "tfd".into(),
                    tfd: u(m, "tfd"),
                });
            }
        }
        "PAGEMAP" => visit_pagemap(f, parent, st, item),
        kname => {
            if let Some(k) = legacy_kind(kname) {
                visit_legacy_file(f, &name, e, m, k);
            }
        }
    }
}

fn visit_inventory(f: &mut Facts, name: &str, e: usize, m: &Message) {
    if e != 0 {
        return;
    }
    let v = m.u64("img_version");
    f.inventory.img_version = v;
    match v {
        Some(1) | Some(2) => {}
        other => f.push(
            Finding::error("inventory", name)
                .at(e)
                .field("img_version")
                .expect("1 or 2 (the versions CRIU restores)")
                .found(other.map(|v| v.to_string()).unwrap_or_else(|| "absent".into())),
        ),
    }
    if v == Some(2) {
        f.evidence(Version(1, 6), name, "img_version 2 (common head magic)");
    }
    if m.bool("fdinfo_per_id") != Some(true) {
        f.push(
            Finding::error("inventory", name)
                .at(e)
                .field("fdinfo_per_id")
                .expect("true (per-pid fdinfo images are no longer restorable)")
                .found(match m.bool("fdinfo_per_id") {
                    Some(b) => b.to_string(),
                    None => "absent".into(),
                }),
        );
    }
    if m.has("root_cg_set") && u(m, "root_cg_set") == 0 {
        f.push(
            Finding::error("inventory", name)
                .at(e)
                .field("root_cg_set")
                .expect("a cgroup set id other than 0")
                .found("0"),
        );
    }
    f.inventory.root_ids = m.msg("root_ids").cloned();
    f.inventory.ns_per_id = m.bool("ns_per_id") == Some(true);
    f.inventory.tcp_close = m.bool("tcp_close") == Some(true);
    for (field, ver) in INVENTORY_SINCE {
        if m.has(field) {
            f.evidence(*ver, name, format!("inventory_entry.{field}"));
        }
    }
}

fn visit_core(f: &mut Facts, name: &str, m: &Message) -> CoreRec {
    let mtype = m.enum_value("mtype").unwrap_or(0);
    let arch = ARCH_INFO.iter().find(|(t, _)| *t == mtype);
    if arch.is_none() {
        f.push(
            Finding::error("core", name).at(0).field("mtype").expect("a known architecture").found(format!("{mtype}")),
        );
    }
    // Zombies have no registers: whether a live thread has them is checked
    // against the task state later.
    let mut rec = CoreRec {
        mtype,
        has_arch: arch.is_some_and(|(_, field)| m.has(field)),
        has_ids: m.has("ids"),
        has_thread_core: m.has("thread_core"),
        ..CoreRec::default()
    };
    if let Some(tc) = m.msg("tc") {
        rec.has_tc = true;
        rec.task_state = tc.u64("task_state");
        rec.n_sigactions = tc.get_all("sigactions").count();
        if let Some(t) = tc.msg("timers") {
            for (which, it) in ["real", "virt", "prof"].iter().filter_map(|w| t.msg(w).map(|it| (w, it))) {
                check_itimer(f, name, which, it);
            }
            for (i, p) in msgs(t, "posix").enumerate() {
                if let Some(tid) = check_posix_timer(f, name, i, p) {
                    rec.notify_threads.push((i, tid));
                }
            }
        }
        if let Some(q) = tc.msg("signals_s") {
            check_signals(f, name, "tc.signals_s", q);
        }
    }
    if let Some(th) = m.msg("thread_core") {
        rec.has_creds = th.has("creds");
        if let Some(q) = th.msg("signals_p") {
            check_signals(f, name, "thread_core.signals_p", q);
        }
        if th.enum_value("seccomp_mode") == Some(2) {
            rec.seccomp_filter = Some(u(th, "seccomp_filter"));
        }
        if th.has("cg_set") {
            f.evidence(Version(3, 18), name, "thread_core_entry.cg_set");
        }
    }
    rec
}

fn check_itimer(f: &mut Facts, name: &str, which: &str, it: &Message) {
    for (sec, usec) in [("isec", "iusec"), ("vsec", "vusec")] {
        let (s, us) = (u(it, sec), u(it, usec));
        if (s as i64) < 0 {
            f.push(
                Finding::error("timer", name)
                    .at(0)
                    .field(format!("tc.timers.{which}.{sec}"))
                    .expect("a non-negative number of seconds")
                    .found(format!("{}", s as i64)),
            );
        }
        if us >= 1_000_000 {
            f.push(
                Finding::error("timer", name)
                    .at(0)
                    .field(format!("tc.timers.{which}.{usec}"))
                    .expect("less than 1000000 microseconds")
                    .found(us.to_string()),
            );
        }
    }
}

/// Range checks of a POSIX timer; returns its notify thread for
/// SIGEV_THREAD_ID timers.
fn check_posix_timer(f: &mut Facts, name: &str, i: usize, p: &Message) -> Option<u64> {
    let at = |field: &str| format!("tc.timers.posix[{i}].{field}");
    for (sec, nsec) in [("isec", "insec"), ("vsec", "vnsec")] {
        let (s, ns) = (u(p, sec), u(p, nsec));
        if (s as i64) < 0 {
            f.push(
                Finding::error("timer", name)
                    .at(0)
                    .field(at(sec))
                    .expect("a non-negative number of seconds")
                    .found(format!("{}", s as i64)),
            );
        }
        if ns >= 1_000_000_000 {
            f.push(
                Finding::error("timer", name)
                    .at(0)
                    .field(at(nsec))
                    .expect("less than 1000000000 nanoseconds")
                    .found(ns.to_string()),
            );
        }
    }
    let notify = u(p, "it_sigev_notify");
    const SIGEV_NONE: u64 = 1;
    const SIGEV_THREAD_ID: u64 = 4;
    if ![0, SIGEV_NONE, 2, SIGEV_THREAD_ID].contains(&notify) {
        f.push(
            Finding::error("timer", name)
                .at(0)
                .field(at("it_sigev_notify"))
                .expect("SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD or SIGEV_THREAD_ID")
                .found(notify.to_string()),
        );
    }
    let signo = u(p, "si_signo");
    if notify != SIGEV_NONE && !(1..=SIGMAX).contains(&signo) {
        f.push(
            Finding::error("timer", name)
                .at(0)
                .field(at("si_signo"))
                .expect(format!("a signal 1..{SIGMAX}"))
                .found(signo.to_string()),
        );
    }
    (notify == SIGEV_THREAD_ID).then(|| p.i64("notify_thread_id").unwrap_or(0) as u64)
}

fn check_signals(f: &mut Facts, name: &str, at: &str, q: &Message) {
    for (i, s) in msgs(q, "signals").enumerate() {
        let field = format!("{at}.signals[{i}].siginfo");
        let Some(b) = bytes_of(s, "siginfo") else { continue };
        if b.len() != SIGINFO_SIZE {
            f.push(
                Finding::error("signal", name)
                    .at(0)
                    .field(field)
                    .expect(format!("a {SIGINFO_SIZE}-byte siginfo"))
                    .found(plural(b.len() as u64, "byte")),
            );
            continue;
        }
        let signo = b.get(..4).and_then(|w| w.try_into().ok()).map(i32::from_le_bytes).unwrap_or(0);
        if !(1..=SIGMAX as i32).contains(&signo) {
            f.push(
                Finding::error("signal", name)
                    .at(0)
                    .field(field)
                    .expect(format!("a signal 1..{SIGMAX} in si_signo"))
                    .found(signo.to_string()),
            );
        }
    }
}

fn visit_mm(f: &mut Facts, name: &str, pid: u32, m: &Message) {
    f.add_ref("file-id", name, 0, "exe_file_id", Target::File(Some(FD_REG)), u(m, "exe_file_id"));
    let mut vmas = Vec::new();
    let mut prev_end = 0u64;
    for (i, v) in msgs(m, "vmas").enumerate() {
        let (start, end, status, shmid) = (u(v, "start"), u(v, "end"), u(v, "status"), u(v, "shmid"));
        let at = |field: &str| format!("vmas[{i}].{field}");
        if start % PAGE != 0 || end % PAGE != 0 || end <= start {
            f.push(
                Finding::error("vma", name)
                    .at(0)
                    .field(at("end"))
                    .expect("a non-empty, page-aligned range")
                    .found(format!("{start:#x}-{end:#x}")),
            );
        } else if start < prev_end {
            f.push(
                Finding::error("vma", name)
                    .at(0)
                    .field(at("start"))
                    .expect(format!("a mapping at or after {prev_end:#x} (sorted, no overlap)"))
                    .found(format!("{start:#x}")),
            );
        }
        prev_end = prev_end.max(end);
        if status & VMA_AREA_MEMFD != 0 {
            f.add_ref("file-id", name, 0, at("shmid"), Target::File(Some(FD_MEMFD)), shmid);
        } else if status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
            f.add_ref("file-id", name, 0, at("shmid"), Target::File(Some(FD_REG)), shmid);
        } else if status & VMA_AREA_SOCKET != 0 {
            f.add_ref("file-id", name, 0, at("shmid"), Target::File(Some(FD_PACKETSK)), shmid);
        } else if status & VMA_AREA_SYSVIPC != 0 {
            f.add_ref("shmem", name, 0, at("shmid"), Target::SysvShm, shmid);
        } else if status & VMA_ANON_SHARED != 0 {
            let size = u(v, "pgoff").saturating_add(end.saturating_sub(start));
            let e = f.shmem_size.entry(shmid).or_insert(0);
            *e = (*e).max(size);
            let idx = f.idx(name);
            f.shmem_needed.push((format!("pagemap-shmem-{shmid}.img"), idx, 0, at("shmid")));
        }
        vmas.push(Vma { start, end });
    }
    vmas.sort_by_key(|v| v.start);
    f.vmas.insert(pid, vmas);
}

fn visit_file_entry(f: &mut Facts, name: &str, e: usize, m: &Message) {
    f.files_from_files_img = true;
    let ty = m.enum_value("type").unwrap_or(-1);
    let id = u(m, "id");
    let Some(k) = file_kind(ty) else {
        f.push(
            Finding::error("file-entry", name).at(e).field("type").expect("a known file type").found(fd_type_name(ty)),
        );
        return;
    };
    let Some(sub) = m.msg(k.field) else {
        f.push(
            Finding::error("file-entry", name)
                .at(e)
                .field(k.field)
                .expect(format!("the {} message of a {} file", k.field, fd_type_name(ty)))
                .found("absent"),
        );
        return;
    };
    if u(sub, "id") != id {
        f.push(
            Finding::error("file-entry", name)
                .at(e)
                .field(format!("{}.id", k.field))
                .expect(format!("the entry's id {id}"))
                .found(u(sub, "id").to_string()),
        );
    }
    note_file(f, name, e, id, ty, sub, &format!("{}.", k.field));
}

fn visit_legacy_file(f: &mut Facts, name: &str, e: usize, m: &Message, k: &'static FileKind) {
    if f.files_from_files_img {
        if e == 0 {
            f.push(
                Finding::warning("orphan", name)
                    .expect("no per-type file image next to a files.img with entries")
                    .found(format!("{name}, which CRIU ignores when files.img has entries")),
            );
        }
        return;
    }
    note_file(f, name, e, u(m, "id"), k.ty, m, "");
}

/// Record a file (from files.img or a per-type image) and what it points to.
fn note_file(f: &mut Facts, name: &str, e: usize, id: u64, ty: i32, sub: &Message, prefix: &str) {
    let image = f.idx(name);
    if let Some(prev) = f.files.get(&id) {
        let (pi, pe) = (prev.image, prev.entry);
        f.push(
            Finding::error("file-entry", name)
                .at(e)
                .field(format!("{prefix}id").trim_end_matches('.').to_string())
                .expect("a file id used once")
                .found(format!("id {id} also at {} entry {pe}", f.name(pi))),
        );
    } else {
        f.files.insert(id, FileRec { ty, image, entry: e });
    }
    let p = |s: &str| format!("{prefix}{s}");
    match ty {
        FD_PIPE => {
            f.pipes.insert(u(sub, "pipe_id"));
        }
        FD_FIFO => {
            f.fifos.insert(u(sub, "pipe_id"));
            let regf = sub.u64("regf_id").unwrap_or(id);
            f.add_ref(
                "file-id",
                name,
                e,
                p(if sub.has("regf_id") { "regf_id" } else { "id" }),
                Target::File(Some(FD_REG)),
                regf,
            );
        }
        FD_UNIXSK => {
            let ino = u(sub, "ino");
            f.unix_inos.insert(ino);
            f.unix.push(UnixRec { image, entry: e, field: p("peer"), ino, peer: u(sub, "peer") });
        }
        FD_INETSK => {
            const IPPROTO_TCP: u64 = 6;
            const SOCK_RAW: u64 = 3;
            if sub.has("tcp_opts") {
                f.evidence(Version(4, 0), name, "inet_sk_entry.tcp_opts");
            }
            if u(sub, "proto") == IPPROTO_TCP && u(sub, "type") != SOCK_RAW && u(sub, "dst_port") != 0 {
                f.tcp.push(TcpRec { image, entry: e, ino: u(sub, "ino") });
            }
        }
        FD_EVENTPOLL => {
            for (i, t) in msgs(sub, "tfd").enumerate() {
                f.epoll.entry(id).or_default().push(EpollTarget {
                    image,
                    entry: e,
                    field: p(&format!("tfd[{i}].tfd")),
                    tfd: u(t, "tfd"),
                });
            }
        }
        FD_TTY => {
            f.add_ref("tty", name, e, p("tty_info_id"), Target::TtyInfo, u(sub, "tty_info_id"));
            let (regf, field) = match sub.u64("regf_id") {
                Some(r) => (r, p("regf_id")),
                None => (id, p("id")),
            };
            f.ttys.push(TtyRec { image, entry: e, field, regf, info_id: u(sub, "tty_info_id") });
        }
        FD_MEMFD => f.add_ref("memfd", name, e, p("inode_id"), Target::MemfdInode, u(sub, "inode_id")),
        FD_PIDFD => f.evidence(Version(4, 1), name, "file_entry type PIDFD"),
        _ => {}
    }
}

fn visit_tty_info(f: &mut Facts, name: &str, e: usize, m: &Message) {
    const PTY: i32 = 1;
    let ty = m.enum_value("type").unwrap_or(0);
    let id = u(m, "id");
    match ty {
        PTY if !m.has("pty") => {
            f.push(Finding::error("tty", name).at(e).field("pty").expect("the pty index of a PTY").found("absent"));
        }
        2..=6 if m.has("pty") => {
            f.push(
                Finding::error("tty", name)
                    .at(e)
                    .field("pty")
                    .expect("no pty data for a tty that is not a PTY")
                    .found("pty data"),
            );
        }
        1..=6 => {}
        _ => f.push(Finding::error("tty", name).at(e).field("type").expect("a known tty type").found(ty.to_string())),
    }
    for field in ["termios", "termios_locked"] {
        if let Some(t) = m.msg(field) {
            let n = t.get_all("c_cc").count();
            if n < TERMIOS_NCC {
                f.push(
                    Finding::error("tty", name)
                        .at(e)
                        .field(format!("{field}.c_cc"))
                        .expect(format!("{TERMIOS_NCC} control characters"))
                        .found(n.to_string()),
                );
            }
        }
    }
    let opts = ["termios", "termios_locked", "winsize"].iter().filter(|k| m.has(k)).count();
    // A pty master has an odd id (CRIU numbers pty ends index * 2 + master).
    if ty == PTY && opts != 3 && (id % 2 == 1 || opts != 0) {
        f.push(
            Finding::error("tty", name)
                .at(e)
                .field("termios")
                .expect(if id % 2 == 1 {
                    "termios, termios_locked and winsize of a pty master"
                } else {
                    "all or none of termios, termios_locked and winsize"
                })
                .found(format!("{opts} of the 3")),
        );
    }
    match f.tty_infos.entry(id) {
        std::collections::hash_map::Entry::Occupied(_) => f.push(
            Finding::error("tty", name)
                .at(e)
                .field("id")
                .expect("a tty-info id used once")
                .found(format!("id {id} again")),
        ),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(TtyInfo { entry: e, ty, active: m.has("termios") });
        }
    }
}

fn visit_remap(f: &mut Facts, name: &str, e: usize, m: &Message) {
    const REMAP_GHOST_BIT: u64 = 1 << 31;
    let mut remap = u(m, "remap_id");
    let ty = match m.enum_value("remap_type") {
        Some(t) => t,
        None if remap & REMAP_GHOST_BIT != 0 => {
            remap &= !REMAP_GHOST_BIT;
            1
        }
        None => 0,
    };
    f.add_ref("remap", name, e, "orig_id", Target::File(Some(FD_REG)), u(m, "orig_id"));
    match ty {
        0 => f.add_ref("remap", name, e, "remap_id", Target::File(Some(FD_REG)), remap),
        1 => {
            f.ghosts_needed.insert(remap);
            let ghost = format!("ghost-file-{remap:x}.img");
            if !f.has(&ghost) {
                f.push(
                    Finding::error("missing-image", ghost.clone())
                        .at(e)
                        .field("remap_id")
                        .expect(format!("{ghost}, the ghost file of remap entry {e} of {name}"))
                        .found("no such file"),
                );
            }
        }
        2 => {}
        t => f.push(
            Finding::error("remap", name)
                .at(e)
                .field("remap_type")
                .expect("LINKED, GHOST or PROCFS")
                .found(t.to_string()),
        ),
    }
}

fn visit_seccomp(f: &mut Facts, name: &str, m: &Message) {
    let filters: Vec<&Message> = msgs(m, "seccomp_filters").collect();
    let n = filters.len() as u64;
    let mut prevs = Vec::with_capacity(filters.len());
    for (i, sf) in filters.iter().enumerate() {
        let len = bytes_of(sf, "filter").map(<[u8]>::len).unwrap_or(0);
        if len % 8 != 0 {
            f.push(
                Finding::error("seccomp", name)
                    .at(0)
                    .field(format!("seccomp_filters[{i}].filter"))
                    .expect("a whole number of 8-byte BPF instructions")
                    .found(plural(len as u64, "byte")),
            );
        }
        let prev = sf.u64("prev");
        if let Some(p) = prev {
            if p >= n {
                f.push(
                    Finding::error("seccomp", name)
                        .at(0)
                        .field(format!("seccomp_filters[{i}].prev"))
                        .expect(format!("a filter index below {n}"))
                        .found(p.to_string()),
                );
            }
        }
        prevs.push(prev);
    }
    f.seccomp = Some(prevs);
}

// ---------------------------------------------------------------------------
// Page maps

/// The parent snapshot of an incremental dump (the `parent` link).
#[derive(Default)]
struct ParentState {
    looked: bool,
    dir: Option<PathBuf>,
}

impl ParentState {
    fn dir(&mut self, ck_dir: Option<PathBuf>) -> Option<PathBuf> {
        if !self.looked {
            self.looked = true;
            self.dir = ck_dir.filter(|p| std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false));
        }
        self.dir.clone()
    }
}

/// Reads the parent's page map of the same name alongside, as both are
/// sorted, to tell whether each parent run is covered.
struct ParentCursor {
    rd: Option<ImageReader<BufReader<std::fs::File>>>,
    cur: Option<(u64, u64)>,
    done: bool,
}

impl ParentCursor {
    fn advance(&mut self) {
        self.cur = None;
        let Some(rd) = self.rd.as_mut() else {
            self.done = true;
            return;
        };
        loop {
            match rd.next_item() {
                Ok(Some(it)) if it.role == Role::PagemapEntry => {
                    let (v, n) = pagemap_run(&it.msg);
                    self.cur = Some((v, v.saturating_add(n.saturating_mul(PAGE))));
                    return;
                }
                Ok(Some(_)) => continue,
                _ => {
                    self.done = true;
                    return;
                }
            }
        }
    }

    /// Whether [start, end) is covered by parent runs (inputs ascending).
    fn covers(&mut self, start: u64, end: u64) -> bool {
        let mut pos = start;
        while pos < end {
            if self.cur.is_none() {
                if self.done {
                    return false;
                }
                self.advance();
                continue;
            }
            let Some((s, e)) = self.cur else { return false };
            if e <= pos {
                self.cur = None;
                continue;
            }
            if s > pos {
                return false;
            }
            pos = e.min(end);
            if e <= end {
                self.cur = None;
            }
        }
        true
    }
}

struct PagemapState {
    /// The process it belongs to (None for pagemap-shmem images).
    pid: Option<u32>,
    shmid: Option<u64>,
    pages_id: Option<u64>,
    present: u64,
    prev: Option<(usize, u64, u64)>,
    parent_checked: bool,
    parent_ok: bool,
    cursor: Option<ParentCursor>,
    reported_outside: usize,
}

/// vaddr and page count of an entry, as CRIU reads it: `nr_pages` (field 5,
/// CRIU 4.2) when present, else `compat_nr_pages`.
fn pagemap_run(m: &Message) -> (u64, u64) {
    let n = m.u64("nr_pages").unwrap_or_else(|| u(m, "compat_nr_pages"));
    (u(m, "vaddr"), n)
}

/// Flags as CRIU reads them: `in_parent` means PE_PARENT, no flags at all
/// means PE_PRESENT.
fn pagemap_flags(m: &Message) -> u64 {
    let mut fl = m.u64("flags").unwrap_or(0);
    if m.bool("in_parent") == Some(true) {
        fl |= PE_PARENT;
    } else if !m.has("flags") {
        fl = PE_PRESENT;
    }
    fl
}

fn visit_pagemap(f: &mut Facts, parent: &mut ParentState, st: &mut ImageState, item: &Item) {
    let name = st.name.clone();
    let m = &item.msg;
    let e = item.index;
    if item.role == Role::PagemapHead {
        let pid = name_number(&name, "pagemap-", ".img", 10).map(|p| p as u32);
        let shmid = name_number(&name, "pagemap-shmem-", ".img", 10);
        let pages_id = u(m, "pages_id");
        st.pm = Some(PagemapState {
            pid,
            shmid,
            pages_id: Some(pages_id),
            present: 0,
            prev: None,
            parent_checked: false,
            parent_ok: false,
            cursor: None,
            reported_outside: 0,
        });
        return;
    }
    let Some(pm) = st.pm.as_mut() else { return };
    if has_number(m, 5) {
        f.evidence(Version(4, 2), &name, "pagemap_entry.nr_pages (field 5)");
    }
    if m.has("flags") {
        f.evidence(Version(3, 5), &name, "pagemap_entry.flags");
    }
    let (vaddr, nr) = pagemap_run(m);
    let flags = pagemap_flags(m);
    let Some(end) = nr.checked_mul(PAGE).and_then(|l| vaddr.checked_add(l)) else {
        f.push(
            Finding::error("pagemap", name.clone())
                .at(e)
                .field("nr_pages")
                .expect("a run that fits the address space")
                .found(format!("{nr} pages at {vaddr:#x}")),
        );
        return;
    };
    if vaddr % PAGE != 0 {
        f.push(
            Finding::error("pagemap", name.clone())
                .at(e)
                .field("vaddr")
                .expect("a page-aligned address")
                .found(format!("{vaddr:#x}")),
        );
    }
    if nr == 0 {
        f.push(
            Finding::warning("pagemap", name.clone())
                .at(e)
                .field(if m.has("nr_pages") { "nr_pages" } else { "compat_nr_pages" })
                .expect("at least one page")
                .found("0"),
        );
    }
    if flags & !(PE_PARENT | PE_LAZY | PE_PRESENT) != 0 {
        f.push(
            Finding::warning("pagemap", name.clone())
                .at(e)
                .field("flags")
                .expect("PE_PARENT, PE_LAZY, PE_PRESENT")
                .found(format!("{flags:#x}")),
        );
    }
    if flags & PE_PRESENT != 0 && flags & PE_PARENT != 0 {
        f.push(
            Finding::error("pagemap", name.clone())
                .at(e)
                .field("flags")
                .expect("pages either present or in the parent")
                .found("PE_PRESENT and PE_PARENT"),
        );
    }
    if let Some((pe, pv, pend)) = pm.prev {
        if vaddr < pend {
            f.push(
                Finding::error("pagemap", name.clone())
                    .at(e)
                    .field("vaddr")
                    .expect(format!("an address at or after {pend:#x}, the end of entry {pe} (sorted, no overlap)"))
                    .found(format!(
                        "{vaddr:#x}{}",
                        if vaddr < pv { " (before that entry's start)" } else { " (overlapping it)" }
                    )),
            );
        }
    }
    pm.prev = Some((e, vaddr, end.max(pm.prev.map(|p| p.2).unwrap_or(0))));
    if flags & PE_PRESENT != 0 {
        pm.present = pm.present.saturating_add(nr);
    }
    // Task page maps lie inside the task's mappings.
    if let Some(pid) = pm.pid {
        if let Some(vmas) = f.vmas.get(&pid) {
            if !covered(vmas, vaddr, end) && pm.reported_outside < 16 {
                pm.reported_outside += 1;
                f.push(
                    Finding::error("pagemap", name.clone())
                        .at(e)
                        .field("vaddr")
                        .expect(format!("pages inside the mappings of mm-{pid}.img"))
                        .found(format!("{vaddr:#x}-{end:#x}, outside them")),
                );
            }
        }
    } else if let Some(size) = pm.shmid.and_then(|id| f.shmem_size.get(&id)) {
        let limit = size.div_ceil(PAGE).saturating_mul(PAGE);
        if end > limit {
            f.push(
                Finding::warning("shmem", name.clone())
                    .at(e)
                    .field("vaddr")
                    .expect(format!("pages within the {size}-byte segment"))
                    .found(format!("{vaddr:#x}-{end:#x} (restore drops them)")),
            );
        }
    }
    if flags & PE_PARENT != 0 {
        if !pm.parent_checked {
            pm.parent_checked = true;
            let pdir = parent.dir(f.parent_link.clone());
            match pdir {
                None => f.push(
                    Finding::error("parent", name.clone())
                        .at(e)
                        .field("flags")
                        .expect("a parent snapshot (the parent link) for pages in the parent")
                        .found("no parent directory"),
                ),
                Some(d) => match std::fs::File::open(d.join(&name))
                    .map_err(Error::from)
                    .and_then(|fl| ImageReader::open(BufReader::new(fl)))
                {
                    Ok(rd) => {
                        pm.parent_ok = true;
                        pm.cursor = Some(ParentCursor { rd: Some(rd), cur: None, done: false });
                    }
                    Err(err) => f.push(
                        Finding::error("parent", name.clone())
                            .at(e)
                            .field("flags")
                            .expect(format!("parent/{name} for pages in the parent"))
                            .found(err.to_string()),
                    ),
                },
            }
        }
        if pm.parent_ok {
            if let Some(c) = pm.cursor.as_mut() {
                if !c.covers(vaddr, end) {
                    f.push(
                        Finding::error("parent", name.clone())
                            .at(e)
                            .field("vaddr")
                            .expect(format!("parent/{name} to hold {vaddr:#x}-{end:#x}"))
                            .found("pages missing there"),
                    );
                }
            }
        }
    }
}

/// Whether [start, end) lies in the union of the (sorted) mappings.
fn covered(vmas: &[Vma], start: u64, end: u64) -> bool {
    let mut pos = start;
    let mut i = vmas.partition_point(|v| v.end <= pos);
    while pos < end {
        let Some(v) = vmas.get(i) else { return false };
        if v.start > pos {
            return false;
        }
        pos = pos.max(v.end);
        i += 1;
    }
    true
}

impl PagemapState {
    fn finish(self, f: &mut Facts, name: &str) {
        let Some(id) = self.pages_id else { return };
        if let Some((other, _)) = f.pages_users.get(&id) {
            let other = other.clone();
            f.push(
                Finding::error("pages", name)
                    .at(0)
                    .field("pages_id")
                    .expect("a pages file of its own")
                    .found(format!("pages-{id}.img, also used by {other}")),
            );
            return;
        }
        let present = (!f.damaged.contains(name)).then_some(self.present);
        f.pages_users.insert(id, (name.to_string(), present));
    }
}

// ---------------------------------------------------------------------------
// Cross-image checks

impl Facts {
    fn file_type(&self, id: u64) -> Option<i32> {
        self.files.get(&id).map(|r| r.ty)
    }
}

fn resolve(f: &Facts, r: &Ref) -> std::result::Result<(), String> {
    let missing = |what: &str| {
        let key = match r.target {
            Target::Pipe | Target::Fifo => "pipe_id",
            Target::MemfdInode => "inode_id",
            Target::Task => "pid",
            _ => "id",
        };
        Err(format!("no {what} with {key} {}", r.id))
    };
    match r.target {
        Target::File(want) => match (f.file_type(r.id), want) {
            (None, _) => Err(format!(
                "no file with id {} in {}",
                r.id,
                if f.files_from_files_img || !f.files.is_empty() {
                    "the file images"
                } else {
                    "files.img (there are no file entries)"
                }
            )),
            (Some(_), None) => Ok(()),
            (Some(t), Some(w)) if t == w => Ok(()),
            (Some(t), Some(_)) => Err(format!("file {} is of type {}", r.id, fd_type_name(t))),
        },
        Target::Pipe => {
            if f.pipes.contains(&r.id) {
                Ok(())
            } else {
                missing("pipe")
            }
        }
        Target::Fifo => {
            if f.fifos.contains(&r.id) {
                Ok(())
            } else {
                missing("fifo")
            }
        }
        Target::TtyInfo => {
            if f.tty_infos.contains_key(&r.id) {
                Ok(())
            } else {
                missing("tty-info entry")
            }
        }
        Target::MemfdInode => {
            if f.memfd_inodes.contains(&r.id) {
                Ok(())
            } else {
                missing("memfd.img inode")
            }
        }
        Target::SysvShm => {
            if f.sysv_shm.contains(&r.id) {
                Ok(())
            } else {
                missing("SysV shared memory segment")
            }
        }
        Target::Task => {
            if f.pstree.iter().any(|p| p.pid as u64 == r.id) {
                Ok(())
            } else {
                missing("task")
            }
        }
    }
}

fn describe_target(r: &Ref) -> String {
    match r.target {
        Target::File(None) => format!("a file with id {}", r.id),
        Target::File(Some(t)) => format!("a {} file with id {}", fd_type_name(t), r.id),
        Target::Pipe => format!("a pipe with pipe_id {}", r.id),
        Target::Fifo => format!("a fifo with pipe_id {}", r.id),
        Target::TtyInfo => format!("a tty-info entry with id {}", r.id),
        Target::MemfdInode => format!("a memfd.img inode with inode_id {}", r.id),
        Target::SysvShm => format!("a SysV shared memory segment with id {} in ipcns-shm", r.id),
        Target::Task => format!("task {}", r.id),
    }
}

/// The images whose damage makes a target unresolvable anyway.
fn target_images_damaged(f: &Facts, t: Target) -> bool {
    let any = |pred: &dyn Fn(&str) -> bool| f.damaged.iter().any(|n| pred(n));
    match t {
        Target::File(_) | Target::Pipe | Target::Fifo => {
            any(&|n| n == "files.img" || magic::by_file_name(n).is_some_and(|k| legacy_kind(k.name).is_some()))
        }
        Target::TtyInfo => any(&|n| n == "tty-info.img"),
        Target::MemfdInode => any(&|n| n == "memfd.img"),
        Target::SysvShm => any(&|n| n.starts_with("ipcns-shm-")),
        Target::Task => any(&|n| n == "pstree.img"),
    }
}

fn cross_checks(f: &mut Facts) {
    check_references(f);
    check_pstree(f);
    check_tasks(f);
    check_unix(f);
    check_tcp(f);
    check_epoll(f);
    check_ttys(f);
    check_pages(f);
    check_shmem(f);
    check_locks(f);
    check_orphans(f);
}

fn check_references(f: &mut Facts) {
    let refs = std::mem::take(&mut f.refs);
    let mut out = Vec::new();
    for r in &refs {
        if let Err(found) = resolve(f, r) {
            if target_images_damaged(f, r.target) {
                continue;
            }
            out.push(
                Finding::new(r.severity, r.check, f.name(r.image))
                    .at(r.entry)
                    .field(r.field.to_string())
                    .expect(describe_target(r))
                    .found(found),
            );
        }
    }
    f.findings.extend(out);
    f.refs = refs;
}

fn check_pstree(f: &mut Facts) {
    if !f.has("pstree.img") {
        f.push(Finding::error("missing-image", "pstree.img").expect("the process tree").found("no such file"));
        return;
    }
    if f.damaged.contains("pstree.img") && f.pstree.is_empty() {
        return;
    }
    let img = "pstree.img";
    if f.pstree.is_empty() {
        f.push(Finding::error("pstree", img).expect("at least one task").found("no entries"));
        return;
    }
    let mut out = Vec::new();
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let all: HashMap<u32, usize> = f.pstree.iter().enumerate().map(|(i, p)| (p.pid, i)).rev().collect();
    let mut root_seen = false;
    for (i, p) in f.pstree.iter().enumerate() {
        if let Some(prev) = seen.get(&p.pid) {
            out.push(
                Finding::error("pstree", img)
                    .at(p.entry)
                    .field("pid")
                    .expect("a pid used once")
                    .found(format!("pid {} also at entry {prev}", p.pid)),
            );
            continue;
        }
        if p.ppid == 0 {
            if root_seen {
                out.push(
                    Finding::error("pstree", img)
                        .at(p.entry)
                        .field("ppid")
                        .expect("one root task (ppid 0)")
                        .found("a second root"),
                );
            } else if i != 0 {
                out.push(
                    Finding::error("pstree", img)
                        .at(p.entry)
                        .field("ppid")
                        .expect("the root task first")
                        .found(format!("the root at entry {}", p.entry)),
                );
            }
            root_seen = true;
        } else if !seen.contains_key(&p.ppid) {
            let found = match all.get(&p.ppid) {
                Some(j) => format!("{} (at entry {j}, after its child)", p.ppid),
                None => format!("{}, which is not in the tree", p.ppid),
            };
            out.push(
                Finding::error("pstree", img)
                    .at(p.entry)
                    .field("ppid")
                    .expect("a parent listed before the child")
                    .found(found),
            );
        }
        seen.insert(p.pid, p.entry);
        // (A pgid of 0 is tolerated by restore; CRIU refuses to dump sid 0.)
        if p.sid == 0 {
            out.push(Finding::error("pstree", img).at(p.entry).field("sid").expect("a session id").found("0"));
        }
    }
    if !root_seen {
        out.push(Finding::error("pstree", img).at(0).field("ppid").expect("a root task (ppid 0)").found("none"));
    }
    // Thread ids: the leader is threads[0]; the others must not collide
    // with any task, group or session id, nor with each other.
    let mut ids: HashSet<u32> = HashSet::new();
    for p in &f.pstree {
        ids.insert(p.pid);
        ids.insert(p.pgid);
        ids.insert(p.sid);
    }
    let mut tids: HashMap<u32, usize> = HashMap::new();
    for p in &f.pstree {
        let dead = f.cores.get(&p.pid).and_then(|c| c.task_state) == Some(TASK_DEAD);
        if p.threads.is_empty() {
            out.push(
                Finding::error("threads", img)
                    .at(p.entry)
                    .field("threads")
                    .expect("at least the thread leader")
                    .found("no threads"),
            );
            continue;
        }
        if dead {
            if p.threads.len() > 1 {
                out.push(
                    Finding::error("threads", img)
                        .at(p.entry)
                        .field("threads")
                        .expect("one thread for a zombie")
                        .found(plural(p.threads.len() as u64, "thread")),
                );
            }
            continue; // CRIU writes no meaningful thread id for zombies
        }
        if p.threads.first() != Some(&p.pid) {
            out.push(
                Finding::error("threads", img)
                    .at(p.entry)
                    .field("threads[0]")
                    .expect(format!("the thread leader {}", p.pid))
                    .found(p.threads.first().map(|t| t.to_string()).unwrap_or_default()),
            );
        }
        for (j, t) in p.threads.iter().enumerate().skip(1) {
            if ids.contains(t) || tids.contains_key(t) {
                out.push(
                    Finding::error("threads", img)
                        .at(p.entry)
                        .field(format!("threads[{j}]"))
                        .expect("a thread id no other task, group, session or thread has")
                        .found(t.to_string()),
                );
            }
            tids.insert(*t, p.entry);
        }
    }
    // Sessions: a task not leading its session and not sharing its parent's
    // session needs an ancestor that leads it.
    let by_pid: HashMap<u32, &PsEntry> = f.pstree.iter().map(|p| (p.pid, p)).collect();
    for p in &f.pstree {
        if p.ppid == 0 || p.sid == p.pid {
            continue;
        }
        let Some(parent) = by_pid.get(&p.ppid) else { continue };
        if parent.sid == p.sid {
            continue;
        }
        let mut cur = by_pid.get(&p.ppid).copied();
        let mut steps = 0;
        let mut found = false;
        while let Some(c) = cur {
            if c.pid == p.sid {
                found = true;
                break;
            }
            steps += 1;
            if steps > by_pid.len() {
                break;
            }
            cur = by_pid.get(&c.ppid).copied();
        }
        if !found {
            out.push(
                Finding::error("pstree", img)
                    .at(p.entry)
                    .field("sid")
                    .expect(format!("session {} led by an ancestor, or the parent's session {}", p.sid, parent.sid))
                    .found("no ancestor leads it"),
            );
        }
    }
    // Process groups: the leader, if in the tree, is a task of the same session.
    for p in &f.pstree {
        if p.pgid == p.pid || p.pgid == 0 {
            continue;
        }
        if tids.contains_key(&p.pgid) {
            out.push(
                Finding::error("pstree", img)
                    .at(p.entry)
                    .field("pgid")
                    .expect("a process group led by a process")
                    .found(format!("{}, a thread", p.pgid)),
            );
        } else if let Some(l) = by_pid.get(&p.pgid) {
            if l.sid != p.sid {
                out.push(
                    Finding::error("pstree", img)
                        .at(p.entry)
                        .field("pgid")
                        .expect(format!("a group leader in session {}", p.sid))
                        .found(format!("leader {} in session {}", l.pid, l.sid)),
                );
            }
        }
    }
    f.findings.extend(out);
}

fn check_tasks(f: &mut Facts) {
    let mut out = Vec::new();
    let root_ids = f.inventory.root_ids.clone();
    let ns_per_id = f.inventory.ns_per_id;
    let mut used_files_ids = HashSet::new();
    let mut all_ids_known = true;
    let mut needed_cores: HashSet<u32> = HashSet::new();
    let mut mtype: Option<(i32, u32)> = None;
    for p in &f.pstree {
        let core_name = format!("core-{}.img", p.pid);
        needed_cores.insert(p.pid);
        let core = f.cores.get(&p.pid);
        if !f.has(&core_name) {
            out.push(
                Finding::error("missing-image", core_name.clone())
                    .expect(format!("the core of task {} (pstree.img entry {})", p.pid, p.entry))
                    .found("no such file"),
            );
        }
        let state = core.and_then(|c| c.task_state);
        if let Some(c) = core {
            if !c.has_tc && !f.damaged.contains(&core_name) {
                out.push(
                    Finding::error("core", core_name.clone())
                        .at(0)
                        .field("tc")
                        .expect("the task data of a process")
                        .found("absent"),
                );
            }
        }
        match state {
            Some(TASK_ALIVE) | Some(TASK_STOPPED) | None => {}
            Some(TASK_DEAD) => continue, // a zombie has only its core
            Some(s) => {
                out.push(
                    Finding::error("core", core_name.clone())
                        .at(0)
                        .field("tc.task_state")
                        .expect("1 (alive), 2 (dead) or 3 (stopped)")
                        .found(s.to_string()),
                );
                continue;
            }
        }
        // Every thread of a live task has a core with thread data.
        for (j, t) in p.threads.iter().enumerate() {
            needed_cores.insert(*t);
            let tname = format!("core-{t}.img");
            if *t != p.pid && !f.has(&tname) {
                out.push(
                    Finding::error("missing-image", tname.clone())
                        .at(p.entry)
                        .field(format!("threads[{j}]"))
                        .expect(format!("the core of thread {t} of task {}", p.pid))
                        .found("no such file"),
                );
                continue;
            }
            let Some(tc) = f.cores.get(t) else { continue };
            if !tc.has_thread_core {
                out.push(
                    Finding::error("core", tname.clone())
                        .at(0)
                        .field("thread_core")
                        .expect("the thread data of a live thread")
                        .found("absent"),
                );
            }
            if let Some(field) = ARCH_INFO.iter().find(|(a, _)| *a == tc.mtype).map(|(_, fl)| *fl) {
                if !tc.has_arch {
                    out.push(
                        Finding::error("core", tname.clone())
                            .at(0)
                            .field(field)
                            .expect("the registers of a live thread")
                            .found("absent"),
                    );
                }
            }
            match mtype {
                None => mtype = Some((tc.mtype, *t)),
                Some((m0, t0)) if m0 != tc.mtype => out.push(
                    Finding::error("core", tname.clone())
                        .at(0)
                        .field("mtype")
                        .expect(format!("the architecture of core-{t0}.img, {m0}"))
                        .found(tc.mtype.to_string()),
                ),
                Some(_) => {}
            }
            if !tc.has_creds && tc.has_thread_core && !f.has(&format!("creds-{}.img", p.pid)) {
                out.push(
                    Finding::error("core", tname.clone())
                        .at(0)
                        .field("thread_core.creds")
                        .expect(format!("the credentials, or creds-{}.img", p.pid))
                        .found("neither"),
                );
            }
            if let Some(idx) = tc.seccomp_filter {
                match &f.seccomp {
                    None if !f.has("seccomp.img") => out.push(
                        Finding::error("missing-image", "seccomp.img")
                            .expect(format!("the seccomp filters {tname} uses"))
                            .found("no such file"),
                    ),
                    None => {}
                    Some(filters) => {
                        if idx >= filters.len() as u64 {
                            out.push(
                                Finding::error("seccomp", tname.clone())
                                    .at(0)
                                    .field("thread_core.seccomp_filter")
                                    .expect(format!("a filter index below {}", filters.len()))
                                    .found(idx.to_string()),
                            );
                        } else if chain_loops(filters, idx) {
                            out.push(
                                Finding::error("seccomp", "seccomp.img")
                                    .at(0)
                                    .field(format!("seccomp_filters[{idx}].prev"))
                                    .expect("a chain of filters that ends")
                                    .found("a loop"),
                            );
                        }
                    }
                }
            }
        }
        if let Some(c) = core {
            if c.n_sigactions != 0 && c.n_sigactions != (SIGMAX - 2) as usize {
                out.push(
                    Finding::error("core", core_name.clone())
                        .at(0)
                        .field("tc.sigactions")
                        .expect(format!("{} sigactions", SIGMAX - 2))
                        .found(c.n_sigactions.to_string()),
                );
            }
            if c.n_sigactions == 0 && c.has_tc && !f.has(&format!("sigacts-{}.img", p.pid)) {
                out.push(
                    Finding::error("core", core_name.clone())
                        .at(0)
                        .field("tc.sigactions")
                        .expect(format!("{} sigactions, or sigacts-{}.img", SIGMAX - 2, p.pid))
                        .found("neither"),
                );
            }
            for (i, tid) in &c.notify_threads {
                if !p.threads.iter().any(|t| *t as u64 == *tid) {
                    out.push(
                        Finding::error("timer", core_name.clone())
                            .at(0)
                            .field(format!("tc.timers.posix[{i}].notify_thread_id"))
                            .expect(format!("a thread of task {}", p.pid))
                            .found(tid.to_string()),
                    );
                }
            }
        }
        // The per-process images.
        let ids_name = format!("ids-{}.img", p.pid);
        let ids = f.ids.get(&p.pid);
        if ids.is_none() && !f.has(&ids_name) && !core.is_some_and(|c| c.has_ids) {
            out.push(
                Finding::error("missing-image", ids_name.clone())
                    .expect(format!("the kernel object ids of task {}", p.pid))
                    .found("no such file"),
            );
        }
        for (img, what) in [("mm", "memory"), ("pagemap", "page map"), ("fs", "cwd and root")] {
            let n = format!("{img}-{}.img", p.pid);
            if !f.has(&n) {
                out.push(
                    Finding::error("missing-image", n)
                        .expect(format!("the {what} of task {}", p.pid))
                        .found("no such file"),
                );
            }
        }
        let Some(ids) = ids else {
            all_ids_known = false;
            continue;
        };
        let files_id = u(ids, "files_id") as u32;
        used_files_ids.insert(files_id);
        let fdi = format!("fdinfo-{files_id}.img");
        if !f.has(&fdi) {
            out.push(
                Finding::warning("missing-image", fdi)
                    .expect(format!("the open files of task {} (files_id {files_id} of {ids_name})", p.pid))
                    .found("no such file: the task would be restored without open files"),
            );
        }
        // Namespaces that are not CRIU's own need their images.
        if let Some(root) = &root_ids {
            for k in NS_KINDS {
                let (Some(mine), Some(criu)) = (ids.u64(k.field), root.u64(k.field)) else { continue };
                if mine == criu {
                    continue;
                }
                let n = if k.per_pid_before_ns_per_id && !ns_per_id { p.pid as u64 } else { mine };
                let want = k.image.replace('%', &n.to_string());
                if !f.has(&want) {
                    out.push(
                        Finding::error("namespace", ids_name.clone())
                            .at(0)
                            .field(k.field)
                            .expect(format!("{want} for namespace {mine} (CRIU's own is {criu})"))
                            .found("no such file"),
                    );
                }
            }
        }
    }
    // Cores with no task or thread behind them.
    let tree_known = f.has("pstree.img") && !f.damaged.contains("pstree.img");
    let mut orphans: Vec<&u32> = f.cores.keys().filter(|t| tree_known && !needed_cores.contains(t)).collect();
    orphans.sort();
    for t in orphans {
        out.push(
            Finding::warning("threads", format!("core-{t}.img"))
                .expect("a core of a task or thread in pstree.img")
                .found(format!("thread {t} is in no task's thread list")),
        );
    }
    let mut fdinfo_orphans: Vec<&u32> = f.fdinfo.keys().filter(|k| !used_files_ids.contains(k)).collect();
    fdinfo_orphans.sort();
    // An fdinfo image no task claims, when every live task's ids are known.
    if !f.pstree.is_empty() && all_ids_known {
        for k in fdinfo_orphans {
            out.push(
                Finding::warning("orphan", format!("fdinfo-{k}.img"))
                    .expect("a files_id of some task's ids image")
                    .found(format!("files_id {k} is used by no task")),
            );
        }
    }
    f.findings.extend(out);
}

fn chain_loops(prevs: &[Option<u64>], start: u64) -> bool {
    let mut cur = Some(start);
    let mut steps = 0;
    while let Some(i) = cur {
        steps += 1;
        if steps > prevs.len() {
            return true;
        }
        cur = prevs.get(i as usize).copied().flatten();
    }
    false
}

fn check_unix(f: &mut Facts) {
    if target_images_damaged(f, Target::File(None)) {
        return;
    }
    let mut out = Vec::new();
    for s in &f.unix {
        if s.peer != 0 && s.peer != s.ino && !f.unix_inos.contains(&s.peer) {
            out.push(
                Finding::error("unix-peer", f.name(s.image))
                    .at(s.entry)
                    .field(s.field.clone())
                    .expect(format!("a unix socket with inode {}", s.peer))
                    .found("none"),
            );
        }
    }
    f.findings.extend(out);
}

fn check_tcp(f: &mut Facts) {
    let mut out = Vec::new();
    let mut matched = HashSet::new();
    for t in &f.tcp {
        let want = format!("tcp-stream-{:x}.img", t.ino);
        matched.insert(t.ino);
        if !f.inventory.tcp_close && !f.has(&want) {
            out.push(
                Finding::error("tcp-stream", f.name(t.image))
                    .at(t.entry)
                    .field("isk.ino")
                    .expect(format!("{want} for the connected TCP socket with inode {}", t.ino))
                    .found("no such file"),
            );
        }
    }
    let mut streams: Vec<(&u64, &String)> = f.tcp_streams.iter().collect();
    streams.sort();
    if !target_images_damaged(f, Target::File(None)) {
        for (ino, name) in streams {
            if !matched.contains(ino) {
                out.push(
                    Finding::warning("tcp-stream", name.clone())
                        .expect(format!("a connected TCP socket with inode {ino}"))
                        .found("none: the stream is not restored"),
                );
            }
        }
    }
    f.findings.extend(out);
}

fn check_epoll(f: &mut Facts) {
    // The targets of an epoll are fds of a task that holds it.
    let mut tables_with: HashMap<u64, Vec<u32>> = HashMap::new();
    for (files_id, fds) in &f.fdinfo {
        for d in fds {
            if d.ty == FD_EVENTPOLL {
                tables_with.entry(d.id).or_default().push(*files_id);
            }
        }
    }
    let mut out = Vec::new();
    let mut ids: Vec<&u64> = f.epoll.keys().collect();
    ids.sort();
    for id in ids {
        let Some(tables) = tables_with.get(id) else { continue };
        for t in f.epoll.get(id).into_iter().flatten() {
            let ok = tables.iter().any(|fid| f.fdinfo.get(fid).is_some_and(|v| v.iter().any(|d| d.fd == t.tfd)));
            if !ok {
                out.push(
                    Finding::error("fd", f.name(t.image))
                        .at(t.entry)
                        .field(t.field.clone())
                        .expect(format!("fd {} open in a task holding epoll {id}", t.tfd))
                        .found("no such fd"),
                );
            }
        }
    }
    f.findings.extend(out);
}

fn check_ttys(f: &mut Facts) {
    const EXT_TTY: i32 = 5;
    let mut out = Vec::new();
    for t in &f.ttys {
        let ext = f.tty_infos.get(&t.info_id).map(|i| i.ty) == Some(EXT_TTY);
        if ext || target_images_damaged(f, Target::File(None)) {
            continue;
        }
        if f.file_type(t.regf) != Some(FD_REG) {
            out.push(
                Finding::error("file-id", f.name(t.image))
                    .at(t.entry)
                    .field(t.field.clone())
                    .expect(format!("a REG file with id {} (the tty's path)", t.regf))
                    .found(match f.file_type(t.regf) {
                        Some(ty) => format!("file {} is of type {}", t.regf, fd_type_name(ty)),
                        None => format!("no file with id {}", t.regf),
                    }),
            );
        }
    }
    // An active pty slave (even id) needs its active master (id + 1).
    let mut ids: Vec<(&u64, &TtyInfo)> = f.tty_infos.iter().collect();
    ids.sort_by_key(|(id, _)| **id);
    for (id, info) in ids {
        if info.ty == 1 && info.active && id % 2 == 0 && !f.tty_infos.get(&(id + 1)).is_some_and(|m| m.active) {
            out.push(
                Finding::warning("tty", "tty-info.img")
                    .at(info.entry)
                    .field("id")
                    .expect(format!("the master (id {}) of pty slave {id}", id + 1))
                    .found("none: restore needs --shell-job or --orphan-pts-master"),
            );
        }
    }
    f.findings.extend(out);
}

fn check_pages(f: &mut Facts) {
    let mut out = Vec::new();
    let mut users: Vec<(&u64, &(String, Option<u64>))> = f.pages_users.iter().collect();
    users.sort();
    for (id, (pm, present)) in users {
        let Some(present) = present else { continue };
        let pages = format!("pages-{id}.img");
        let want = present.saturating_mul(PAGE);
        match f.sizes.get(&pages) {
            None if *present > 0 => out.push(
                Finding::error("missing-image", pages.clone())
                    .expect(format!("{} for {pm}", plural(*present, "present page")))
                    .found("no such file"),
            ),
            None => {}
            Some(size) if *size < want => out.push(
                Finding::error("pages", pages.clone())
                    .expect(format!("{want} bytes ({} of {pm})", plural(*present, "present page")))
                    .found(format!("{size} bytes (truncated)")),
            ),
            Some(size) if *size > want => out.push(
                Finding::warning("pages", pages.clone())
                    .expect(format!("{want} bytes ({} of {pm})", plural(*present, "present page")))
                    .found(format!("{size} bytes ({} nothing reads)", plural(size - want, "byte"))),
            ),
            Some(_) => {}
        }
    }
    let mut names: Vec<&String> = f.present.iter().filter(|n| n.starts_with("pages-")).collect();
    names.sort();
    for n in names {
        if let Some(id) = name_number(n, "pages-", ".img", 10) {
            if !f.pages_users.contains_key(&id) && !f.damaged.iter().any(|d| d.starts_with("pagemap-")) {
                out.push(
                    Finding::warning("orphan", n.clone()).expect("a page map whose pages_id names it").found("none"),
                );
            }
        }
    }
    f.findings.extend(out);
}

fn check_shmem(f: &mut Facts) {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (want, img, entry, field) in &f.shmem_needed {
        if f.has(want) || !seen.insert(want.clone()) {
            continue;
        }
        let check = if f.name(*img) == "memfd.img" { "memfd" } else { "shmem" };
        out.push(
            Finding::error(check, f.name(*img))
                .at(*entry)
                .field(field.clone())
                .expect(format!("{want} with the segment's contents"))
                .found("no such file"),
        );
    }
    f.findings.extend(out);
}

fn check_locks(f: &mut Facts) {
    let mut out = Vec::new();
    for (entry, pid, fd) in &f.locks {
        let Some(p) = f.pstree.iter().find(|p| p.pid as u64 == *pid) else { continue };
        let Some(files_id) = f.ids.get(&p.pid).map(|i| u(i, "files_id") as u32) else { continue };
        let Some(table) = f.fdinfo.get(&files_id) else { continue };
        if !table.iter().any(|d| d.fd as i64 == *fd) {
            out.push(
                Finding::error("fd", "filelocks.img")
                    .at(*entry)
                    .field("fd")
                    .expect(format!("an fd open in task {pid}"))
                    .found(format!("fd {fd}, not in fdinfo-{files_id}.img")),
            );
        }
    }
    f.findings.extend(out);
}

fn check_orphans(f: &mut Facts) {
    let mut out = Vec::new();
    let mut ghosts: Vec<&String> = f.present.iter().filter(|n| n.starts_with("ghost-file-")).collect();
    ghosts.sort();
    for g in ghosts {
        if let Some(id) = name_number(g, "ghost-file-", ".img", 16) {
            if !f.ghosts_needed.contains(&id) && !f.damaged.contains("remap-fpath.img") {
                out.push(
                    Finding::warning("orphan", g.clone())
                        .expect("a remap-fpath.img GHOST entry naming it")
                        .found("none"),
                );
            }
        }
    }
    f.findings.extend(out);
}

// ---------------------------------------------------------------------------
// Output

/// Write the report as text: one line per finding, then a summary line.
pub fn write_text(report: &Report, what: &str, out: &mut dyn Write) -> Result<()> {
    for f in &report.findings {
        writeln!(out, "{f}")?;
    }
    let (e, w) = (report.errors(), report.warnings());
    let verdict = if e == 0 && w == 0 {
        "clean".to_string()
    } else {
        format!("{}, {}", plural(e as u64, "error"), plural(w as u64, "warning"))
    };
    write!(
        out,
        "crit check: {what}: {verdict}; {}, {}, {}, {}",
        plural(report.images as u64, "image"),
        plural(report.tasks as u64, "task"),
        plural(report.threads as u64, "thread"),
        plural(report.files as u64, "file"),
    )?;
    if let Some(v) = report.img_version {
        write!(out, "; image version {v}")?;
    }
    if let Some(ev) = report.evidence.first() {
        write!(out, "; written by CRIU >= {} ({}: {})", ev.version, ev.image, ev.what)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Write the report as JSON (one object; see docs/check.md).
pub fn write_json(report: &Report, what: &str, out: &mut dyn Write) -> Result<()> {
    let mut j = crate::json::JsonOut::new(out, true);
    j.begin_object()?;
    j.key("checkpoint")?;
    j.write_str(what.as_bytes())?;
    j.key("ok")?;
    j.raw(if report.ok() { "true" } else { "false" })?;
    j.key("errors")?;
    j.int(report.errors() as u64)?;
    j.key("warnings")?;
    j.int(report.warnings() as u64)?;
    for (k, v) in
        [("images", report.images), ("tasks", report.tasks), ("threads", report.threads), ("files", report.files)]
    {
        j.key(k)?;
        j.int(v as u64)?;
    }
    j.key("img_version")?;
    match report.img_version {
        Some(v) => j.int(v as u64)?,
        None => j.raw("null")?,
    }
    j.key("criu_at_least")?;
    match report.criu_at_least() {
        Some(v) => j.write_str(v.to_string().as_bytes())?,
        None => j.raw("null")?,
    }
    j.key("evidence")?;
    j.begin_array()?;
    for ev in &report.evidence {
        j.elem()?;
        j.begin_object()?;
        j.key("version")?;
        j.write_str(ev.version.to_string().as_bytes())?;
        j.key("image")?;
        j.write_str(ev.image.as_bytes())?;
        j.key("what")?;
        j.write_str(ev.what.as_bytes())?;
        j.end_object()?;
    }
    j.end_array()?;
    j.key("findings")?;
    j.begin_array()?;
    for f in &report.findings {
        j.elem()?;
        j.begin_object()?;
        j.key("severity")?;
        j.write_str(f.severity.name().as_bytes())?;
        j.key("check")?;
        j.write_str(f.check.as_bytes())?;
        j.key("image")?;
        j.write_str(f.image.as_bytes())?;
        j.key("entry")?;
        match f.entry {
            Some(e) => j.int(e as u64)?,
            None => j.raw("null")?,
        }
        j.key("field")?;
        match &f.field {
            Some(s) => j.write_str(s.as_bytes())?,
            None => j.raw("null")?,
        }
        j.key("expected")?;
        j.write_str(f.expected.as_bytes())?;
        j.key("found")?;
        j.write_str(f.found.as_bytes())?;
        j.end_object()?;
    }
    j.end_array()?;
    j.end_object()?;
    j.raw("\n")?;
    Ok(())
}
