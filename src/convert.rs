//! Conversion between the image layouts of CRIU versions.
//!
//! CRIU's `img_version` has been 2 since 2015; the format changes through
//! fields and files.  A conversion is a table of transforms, each with the
//! CRIU change it undoes or applies, when it applies (the target version,
//! and what the images hold), and how safe it is.  The source is never
//! touched: the result is built in a temporary directory next to the
//! destination and renamed into place only when every step succeeded.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::image::{Extra, ImageReader, ImageWriter, Role};
use crate::magic::{self, ImageKind};
use crate::output::AtomicFile;
use crate::schema::{msg, Type};
use crate::wire::{Message, Value};

pub use crate::version::Version;
use crate::version::{IMAGES_SINCE, INVENTORY_SINCE};

impl Version {
    /// The oldest layout we convert to: 3.15, the first CRIU that streams.
    pub const FLOOR: Version = Version(3, 15);
    /// The newest layout we know.
    pub const LATEST: Version = Version(4, 2);
}

// ---------------------------------------------------------------------------
// Fingerprint: the oldest CRIU that could have written a checkpoint.

/// One piece of evidence for the version lower bound.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// At least this version wrote it.
    pub since: Version,
    /// What was seen.
    pub what: String,
}

/// The lower bound of the CRIU version that wrote `ck`, with the evidence.
pub fn criu_version_bound(ck: &Checkpoint) -> Result<(Version, Vec<Evidence>)> {
    let mut ev: Vec<Evidence> = Vec::new();
    let names = ck.source().names().map_err(Error::from)?;
    let mut see = |since: Version, what: String| ev.push(Evidence { since, what });
    // Image files that first appeared in a release.
    for &(prefix, since) in IMAGES_SINCE {
        if let Some(n) = names.iter().find(|n| n.starts_with(prefix)) {
            see(since, format!("{n} exists"));
        }
    }
    if ck.has("inventory.img") {
        let inv = ck.first("inventory.img")?;
        for &(field, since) in INVENTORY_SINCE {
            if inv.has(field) {
                see(since, format!("inventory.img has {field}"));
            }
        }
    }
    // Fields inside images.
    'pm: for n in names.iter().filter(|n| n.starts_with("pagemap-")) {
        let mut rd = ck.reader(n)?;
        while let Some(it) = rd.next_item()? {
            if it.role == Role::PagemapEntry {
                if it.msg.has("nr_pages") {
                    see(Version(4, 2), format!("{n} has nr_pages (field 5)"));
                    break 'pm;
                }
                if it.msg.has("flags") {
                    see(Version(3, 5), format!("{n} has flags"));
                    break 'pm;
                }
            }
        }
    }
    if ck.has("files.img") {
        for (_, f) in ck.files()?.iter() {
            if f.msg("isk").is_some_and(|i| i.has("tcp_opts")) {
                see(Version(4, 0), "files.img: an inet socket has tcp_opts".into());
                break;
            }
        }
        if ck.files()?.values().any(|f| f.enum_name("type") == Some("PIDFD")) {
            see(Version(4, 1), "files.img has a pidfd".into());
        }
    }
    for n in names.iter().filter(|n| n.starts_with("core-")) {
        let c = ck.first(n)?;
        if c.msg("thread_core").is_some_and(|t| t.has("cg_set")) {
            see(Version(3, 18), format!("{n}: thread_core has cg_set"));
            break;
        }
    }
    let bound = ev.iter().map(|e| e.since).max().unwrap_or(Version(1, 6));
    ev.sort_by(|a, b| b.since.cmp(&a.since));
    Ok((bound, ev))
}

// ---------------------------------------------------------------------------
// The work area and its helpers.

/// How safe a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// Nothing is lost.
    Lossless,
    /// Something the target cannot express is lost or ignored (a warning).
    Lossy,
    /// Not done unless forced.
    Refused,
}

/// One thing a conversion did (or refused to do).
#[derive(Clone, Debug)]
pub struct Step {
    /// The transform.
    pub transform: &'static str,
    /// The image it touched.
    pub image: String,
    /// What it did.
    pub what: String,
    /// How safe that was.
    pub safety: Safety,
}

/// The images being converted (the temporary output directory).
pub struct Work {
    dir: PathBuf,
    src_dir: Option<PathBuf>,
    force: bool,
    steps: Vec<Step>,
}

impl Work {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn names(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    fn has(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    fn step(&mut self, transform: &'static str, image: &str, what: String, safety: Safety) {
        self.steps.push(Step { transform, image: image.to_string(), what, safety });
    }

    /// A refusal: an error unless forced (then a recorded step).
    fn refuse(&mut self, transform: &'static str, image: &str, what: String) -> Result<()> {
        if !self.force {
            return Err(Error::other(format!("{image}: {what} (use --force to convert anyway)")));
        }
        self.step(transform, image, format!("{what}; converted anyway (--force)"), Safety::Refused);
        Ok(())
    }

    /// All entries of an image with their payloads (small images only).
    fn load(&self, name: &str) -> Result<(&'static ImageKind, Vec<(Role, Message, Extra)>)> {
        let p = self.path(name);
        let f = File::open(&p).map_err(|e| Error::from(e).in_file(name))?;
        let mut rd = ImageReader::open(BufReader::new(f)).map_err(|e| e.in_file(name))?;
        let kind = rd.kind();
        let mut v = Vec::new();
        while let Some(it) = rd.next_item().map_err(|e| e.in_file(name))? {
            let x = rd.read_extra().map_err(|e| e.in_file(name))?;
            v.push((it.role, it.msg, x));
        }
        Ok((kind, v))
    }

    /// Messages of an image (small images only).
    fn messages(&self, name: &str) -> Result<Vec<Message>> {
        Ok(self.load(name)?.1.into_iter().map(|(_, m, _)| m).collect())
    }

    /// Write an image from entries (atomically).
    fn store(&self, name: &str, kind: &'static ImageKind, entries: &[(Message, Extra)]) -> Result<()> {
        let p = self.path(name);
        let f = AtomicFile::create(&p).map_err(|e| Error::from(e).in_file(name))?;
        let mut w = ImageWriter::new(f, kind)?;
        for (m, x) in entries {
            w.write_message(m).map_err(|e| e.in_file(name))?;
            w.write_extra(x).map_err(|e| e.in_file(name))?;
        }
        w.finish()?.commit().map_err(|e| Error::from(e).in_file(name))?;
        Ok(())
    }

    /// Rewrite an image entry by entry (streamed): `f` may change each
    /// message and returns whether it did; payloads pass through.
    fn rewrite(&self, name: &str, mut f: impl FnMut(Role, &mut Message) -> Result<bool>) -> Result<usize> {
        let p = self.path(name);
        let src = File::open(&p).map_err(|e| Error::from(e).in_file(name))?;
        let mut rd = ImageReader::open(BufReader::with_capacity(1 << 16, src)).map_err(|e| e.in_file(name))?;
        let out = AtomicFile::create(&p).map_err(|e| Error::from(e).in_file(name))?;
        let mut w = ImageWriter::new(out, rd.kind())?;
        let mut changed = 0;
        while let Some(mut it) = rd.next_item().map_err(|e| e.in_file(name))? {
            let idx = it.index;
            if f(it.role, &mut it.msg).map_err(|e| e.in_file(name).at_entry(idx))? {
                changed += 1;
            }
            w.write_message(&it.msg)?;
            let x = rd.read_extra().map_err(|e| e.in_file(name))?;
            w.write_extra(&x)?;
        }
        if changed > 0 {
            w.finish()?.commit().map_err(|e| Error::from(e).in_file(name))?;
        }
        Ok(changed)
    }

    fn remove(&self, name: &str) -> Result<()> {
        fs::remove_file(self.path(name)).map_err(|e| Error::from(e).in_file(name))
    }

    fn pids_of(&self, prefix: &str) -> Result<Vec<(String, u32)>> {
        Ok(self
            .names()?
            .into_iter()
            .filter_map(|n| {
                let id = n.strip_prefix(prefix)?.strip_suffix(".img")?.parse().ok()?;
                Some((n, id))
            })
            .collect())
    }
}

fn set(m: &mut Message, field: &str, v: Value) -> Result<()> {
    m.set(field, v)
}

fn sub_mut<'a>(m: &'a mut Message, field: &str) -> Result<&'a mut Message> {
    let f = m.field_desc(field).ok_or_else(|| Error::other(format!("{} has no field {field}", m.ty.desc().name)))?;
    if !m.has(field) {
        let Type::Message(t) = f.ty else { return Err(Error::other(format!("{field} is not a message"))) };
        m.set(field, Value::Msg(Message::new(t)))?;
    }
    match m.get_mut(field) {
        Some(Value::Msg(s)) => Ok(s),
        _ => Err(Error::other(format!("{field} is not a message"))),
    }
}

// ---------------------------------------------------------------------------
// The transforms.

/// When a transform applies.
#[derive(Clone, Copy, Debug)]
enum When {
    /// Converting to a version older than this.
    Below(Version),
    /// Converting to this version or a newer one.
    AtLeast(Version),
}

/// One transform of the table.
pub struct Transform {
    /// Its name, as reports print it.
    pub name: &'static str,
    /// What it does, and the CRIU change behind it.
    pub about: &'static str,
    when: When,
    run: fn(&mut Work) -> Result<()>,
}

/// Every transform, in the order they run.
pub static TRANSFORMS: &[Transform] = &[
    // ---- up: old layouts that current CRIU reads only through compat code
    Transform {
        name: "merge-fsnotify-epoll",
        about: "CRIU 1.4 put eventpoll targets, inotify watches and fanotify marks inside their file entries; \
                older dumps keep them in eventpoll-tfd.img, inotify-wd.img and fanotify-mark.img, which CRIU \
                reads only with --deprecated",
        when: When::AtLeast(Version(1, 4)),
        run: merge_fsnotify_epoll,
    },
    Transform {
        name: "merge-file-images",
        about: "CRIU 3.4 (\"image: Introduce files.img and file_entry\") merged the per-type file images \
                (reg-files, pipes, unixsk, ...) into files.img; CRIU reads the old ones only when files.img is empty",
        when: When::AtLeast(Version(3, 4)),
        run: merge_file_images,
    },
    Transform {
        name: "task-images-into-core",
        about: "CRIU 1.2-3.1 moved per-task images into core and mm: vmas into mm (1.2), rlimits, itimers, \
                posix-timers and signal queues into core (1.3, some read only with --deprecated), creds (2.0) \
                and sigactions (3.1)",
        when: When::AtLeast(Version(3, 1)),
        run: task_images_into_core,
    },
    Transform {
        name: "pagemap-flags",
        about: "CRIU 3.5 replaced pagemap in_parent by flags (PE_PARENT, PE_LAZY, PE_PRESENT); no flags means \
                PE_PRESENT, in_parent means PE_PARENT",
        when: When::AtLeast(Version(3, 5)),
        run: pagemap_flags,
    },
    Transform {
        name: "pagemap-nr-pages-up",
        about: "CRIU 4.2 (afb2e6c3f) moved the page count of a pagemap entry to the 64-bit nr_pages (field 5) \
                and writes compat_nr_pages (field 2) as 0",
        when: When::AtLeast(Version(4, 2)),
        run: pagemap_nr_pages_up,
    },
    Transform {
        name: "flatten-chain",
        about: "an incremental dump (criu pre-dump, then dump --prev-images-dir) keeps pages in its parent \
                dumps (PE_PARENT entries and a `parent` link); the pages are copied in, so the result stands alone",
        when: When::AtLeast(Version::FLOOR),
        run: flatten_chain,
    },
    // ---- down: newer layouts an older CRIU cannot read
    Transform {
        name: "pagemap-nr-pages-down",
        about: "CRIU before 4.2 reads the page count from compat_nr_pages (field 2); 4.2 writes it as 0 and keeps \
                the count in nr_pages (field 5), so 4.1 restores nothing (vdso: ELF header magic mismatch)",
        when: When::Below(Version(4, 2)),
        run: pagemap_nr_pages_down,
    },
    Transform {
        name: "allow-uprobes",
        about: "CRIU 4.2 dumps uprobe mappings only with --allow-uprobes and records it in inventory \
                allow_uprobes; older CRIU ignores the field and cannot restore uprobes",
        when: When::Below(Version(4, 2)),
        run: allow_uprobes,
    },
    Transform {
        name: "pidfd",
        about: "CRIU 4.1 added pidfd files (fd type PIDFD = 20); older CRIU fails with \"Unknown file type 20\"",
        when: When::Below(Version(4, 1)),
        run: pidfd,
    },
    Transform {
        name: "tcp-opts-old-fields",
        about: "CRIU 4.0 (1cb75c0b1) moved TCP options to inet_sk_entry.tcp_opts; older CRIU reads nodelay and \
                cork from tcp_stream_entry and keepcnt/keepidle/keepintvl from sk_opts_entry",
        when: When::Below(Version(4, 0)),
        run: tcp_opts_down,
    },
    Transform {
        name: "task-cg-set",
        about: "CRIU 3.18 (17d1d8810) moved the cgroup set from task_core_entry.cg_set to each thread's \
                thread_core_entry.cg_set; older CRIU reads only the task's",
        when: When::Below(Version(3, 18)),
        run: cg_set_down,
    },
];

fn merge_fsnotify_epoll(w: &mut Work) -> Result<()> {
    // (legacy image, message of the owner, owner file_entry field, owner legacy image, list field)
    let table: [(&str, &str, &str, &str); 3] = [
        ("eventpoll-tfd.img", "epfd", "eventpoll.img", "tfd"),
        ("inotify-wd.img", "ify", "inotify.img", "wd"),
        ("fanotify-mark.img", "ffy", "fanotify.img", "mark"),
    ];
    for (img, fe_field, owner_img, list) in table {
        if !w.has(img) {
            continue;
        }
        let items = w.messages(img)?;
        let mut by_id: HashMap<u64, Vec<Message>> = HashMap::new();
        for m in items {
            by_id.entry(m.u64("id").unwrap_or(0)).or_default().push(m);
        }
        let total: usize = by_id.values().map(Vec::len).sum();
        let mut placed = 0usize;
        let mut attach = |owner: &mut Message| -> Result<bool> {
            let id = owner.u64("id").unwrap_or(0);
            let Some(v) = by_id.remove(&id) else { return Ok(false) };
            let num = owner.field_desc(list).map(|f| f.number).unwrap_or(0);
            for m in v {
                placed += 1;
                owner.insert_sorted(num, Value::Msg(m));
            }
            Ok(true)
        };
        if w.has(owner_img) {
            w.rewrite(owner_img, |_, m| attach(m))?;
        }
        if w.has("files.img") {
            w.rewrite("files.img", |_, f| match f.get_mut(fe_field) {
                Some(Value::Msg(owner)) => attach(owner),
                _ => Ok(false),
            })?;
        }
        if placed != total {
            return Err(Error::other(format!("{img}: {} entries belong to no file", total - placed)));
        }
        w.remove(img)?;
        w.step("merge-fsnotify-epoll", img, format!("moved {total} entries into their file entries"), Safety::Lossless);
    }
    Ok(())
}

/// Legacy per-type file images: (file name, fd type, file_entry field).
pub static LEGACY_FILE_IMAGES: &[(&str, &str, &str)] = &[
    ("reg-files.img", "REG", "reg"),
    ("inetsk.img", "INETSK", "isk"),
    ("ns-files.img", "NS", "nsf"),
    ("packetsk.img", "PACKETSK", "psk"),
    ("netlinksk.img", "NETLINKSK", "nlsk"),
    ("eventfd.img", "EVENTFD", "efd"),
    ("eventpoll.img", "EVENTPOLL", "epfd"),
    ("signalfd.img", "SIGNALFD", "sgfd"),
    ("tunfile.img", "TUNF", "tunf"),
    ("timerfd.img", "TIMERFD", "tfd"),
    ("inotify.img", "INOTIFY", "ify"),
    ("fanotify.img", "FANOTIFY", "ffy"),
    ("ext-files.img", "EXT", "ext"),
    ("unixsk.img", "UNIXSK", "usk"),
    ("fifo.img", "FIFO", "fifo"),
    ("pipes.img", "PIPE", "pipe"),
    ("tty.img", "TTY", "tty"),
];

fn fd_type(name: &str) -> Result<i32> {
    crate::schema::enums::FD_TYPES.desc().number_of(name).ok_or_else(|| Error::other(format!("no fd type {name}")))
}

fn merge_file_images(w: &mut Work) -> Result<()> {
    let present: Vec<_> = LEGACY_FILE_IMAGES.iter().filter(|(img, _, _)| w.has(img)).collect();
    if present.is_empty() {
        return Ok(());
    }
    let mut entries: Vec<(Message, Extra)> = if w.has("files.img") {
        w.load("files.img")?.1.into_iter().map(|(_, m, x)| (m, x)).collect()
    } else {
        Vec::new()
    };
    let before = entries.len();
    for (img, ty, field) in present {
        let n = w.messages(img)?.len();
        for m in w.messages(img)? {
            let mut fe = Message::new(msg::FILE_ENTRY);
            set(&mut fe, "type", Value::Enum(fd_type(ty)?))?;
            set(&mut fe, "id", Value::Uint(m.u64("id").unwrap_or(0)))?;
            set(&mut fe, field, Value::Msg(m))?;
            entries.push((fe, Extra::None));
        }
        w.remove(img)?;
        w.step("merge-file-images", img, format!("moved {n} {ty} entries into files.img"), Safety::Lossless);
    }
    let kind = magic::by_name("FILES").ok_or_else(|| Error::other("no FILES kind"))?;
    w.store("files.img", kind, &entries)?;
    w.step(
        "merge-file-images",
        "files.img",
        format!("{} entries ({} before)", entries.len(), before),
        Safety::Lossless,
    );
    Ok(())
}

fn task_images_into_core(w: &mut Work) -> Result<()> {
    // vmas-%u.img into mm-%u.img (only when mm has none: CRIU's rule).
    for (name, pid) in w.pids_of("vmas-")? {
        let mm_name = format!("mm-{pid}.img");
        if !w.has(&mm_name) {
            continue;
        }
        let vmas = w.messages(&name)?;
        let n = vmas.len();
        let mut done = false;
        w.rewrite(&mm_name, |_, mm| {
            if mm.has("vmas") {
                return Ok(false);
            }
            let num = mm.field_desc("vmas").map(|f| f.number).unwrap_or(14);
            for v in vmas.clone() {
                mm.insert_sorted(num, Value::Msg(v));
            }
            done = true;
            Ok(true)
        })?;
        if done {
            w.remove(&name)?;
            w.step("task-images-into-core", &name, format!("moved {n} VMAs into {mm_name}"), Safety::Lossless);
        }
    }
    // Per-task images into core-%u.img: (prefix, how).
    type Put = fn(&mut Message, Vec<Message>) -> Result<bool>;
    let per_task: [(&str, Put); 6] = [
        ("rlimit-", |c, v| {
            let tc = sub_mut(c, "tc")?;
            if tc.has("rlimits") {
                return Ok(false);
            }
            let r = sub_mut(tc, "rlimits")?;
            let num = r.field_desc("rlimits").map(|f| f.number).unwrap_or(1);
            for m in v {
                r.insert_sorted(num, Value::Msg(m));
            }
            Ok(true)
        }),
        ("itimers-", |c, v| {
            let tc = sub_mut(c, "tc")?;
            let t = sub_mut(tc, "timers")?;
            if t.has("real") {
                return Ok(false);
            }
            for (m, f) in v.into_iter().zip(["real", "virt", "prof"]) {
                t.set(f, Value::Msg(m))?;
            }
            Ok(true)
        }),
        ("posix-timers-", |c, v| {
            let tc = sub_mut(c, "tc")?;
            let t = sub_mut(tc, "timers")?;
            if t.has("posix") {
                return Ok(false);
            }
            let num = t.field_desc("posix").map(|f| f.number).unwrap_or(4);
            for m in v {
                t.insert_sorted(num, Value::Msg(m));
            }
            Ok(true)
        }),
        ("sigacts-", |c, v| {
            let tc = sub_mut(c, "tc")?;
            if tc.has("sigactions") {
                return Ok(false);
            }
            let num = tc.field_desc("sigactions").map(|f| f.number).unwrap_or(15);
            for m in v {
                tc.insert_sorted(num, Value::Msg(m));
            }
            Ok(true)
        }),
        ("creds-", |c, v| {
            let th = sub_mut(c, "thread_core")?;
            match (th.has("creds"), v.into_iter().next()) {
                (false, Some(m)) => {
                    th.set("creds", Value::Msg(m))?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }),
        ("signal-s-", |c, v| signals_into(sub_mut(c, "tc")?, "signals_s", v)),
    ];
    for (prefix, put) in per_task {
        for (name, pid) in w.pids_of(prefix)? {
            let core = format!("core-{pid}.img");
            if !w.has(&core) {
                continue;
            }
            let v = w.messages(&name)?;
            let n = v.len();
            let mut done = false;
            w.rewrite(&core, |_, c| {
                let r = put(c, v.clone())?;
                done |= r;
                Ok(r)
            })?;
            if done {
                w.remove(&name)?;
                w.step("task-images-into-core", &name, format!("moved {n} entries into {core}"), Safety::Lossless);
            } else {
                w.step(
                    "task-images-into-core",
                    &name,
                    format!("left in place: {core} already has that data"),
                    Safety::Lossless,
                );
            }
        }
    }
    for (name, tid) in w.pids_of("signal-p-")? {
        let core = format!("core-{tid}.img");
        if !w.has(&core) {
            continue;
        }
        let v = w.messages(&name)?;
        let mut done = false;
        w.rewrite(&core, |_, c| {
            let r = signals_into(sub_mut(c, "thread_core")?, "signals_p", v.clone())?;
            done |= r;
            Ok(r)
        })?;
        if done {
            w.remove(&name)?;
            w.step("task-images-into-core", &name, format!("moved into {core}"), Safety::Lossless);
        }
    }
    Ok(())
}

fn signals_into(owner: &mut Message, field: &str, v: Vec<Message>) -> Result<bool> {
    if owner.has(field) {
        return Ok(false);
    }
    let q = sub_mut(owner, field)?;
    let num = q.field_desc("signals").map(|f| f.number).unwrap_or(1);
    for m in v {
        q.insert_sorted(num, Value::Msg(m));
    }
    Ok(true)
}

const PE_PARENT: u64 = 1;
const PE_PRESENT: u64 = 4;

fn pagemaps(w: &Work) -> Result<Vec<String>> {
    Ok(w.names()?.into_iter().filter(|n| n.starts_with("pagemap-")).collect())
}

fn pagemap_flags(w: &mut Work) -> Result<()> {
    for name in pagemaps(w)? {
        let n = w.rewrite(&name, |role, m| {
            if role != Role::PagemapEntry || m.has("flags") {
                return Ok(false);
            }
            let f = if m.bool("in_parent") == Some(true) { PE_PARENT } else { PE_PRESENT };
            m.set("flags", Value::Uint(f))?;
            Ok(true)
        })?;
        if n > 0 {
            w.step("pagemap-flags", &name, format!("set flags on {n} entries from in_parent"), Safety::Lossless);
        }
    }
    Ok(())
}

fn flatten_chain(w: &mut Work) -> Result<()> {
    for name in pagemaps(w)? {
        if !crate::flatten::needs_parent(&w.dir, &name)? {
            continue;
        }
        let id = crate::flatten::pages_id(&w.dir, &name)?.unwrap_or(0);
        let pages = format!("pages-{id}.img");
        // The pages first (reading the old pagemap), then the pagemap.
        let out = AtomicFile::create(&w.path(&pages))?;
        let (out, n) = crate::flatten::write_pages(&w.dir, &name, out)?;
        let pm = AtomicFile::create(&w.path(&name))?;
        let pm = crate::flatten::write_pagemap(&w.dir, &name, pm)?;
        out.commit()?;
        pm.commit()?;
        w.step(
            "flatten-chain",
            &name,
            format!("{} pages from the parent chain copied into {pages}", n / 4096),
            Safety::Lossless,
        );
    }
    let still = pagemaps(w)?.iter().any(|n| crate::flatten::needs_parent(&w.dir, n).unwrap_or(true));
    if !still && fs::symlink_metadata(w.path("parent")).is_ok() {
        fs::remove_file(w.path("parent"))?;
        w.step("flatten-chain", "parent", "removed the parent link: the dump stands alone".into(), Safety::Lossless);
    }
    Ok(())
}

fn pagemap_nr_pages_up(w: &mut Work) -> Result<()> {
    for name in pagemaps(w)? {
        let n = w.rewrite(&name, |role, m| {
            if role != Role::PagemapEntry || m.has("nr_pages") {
                return Ok(false);
            }
            let c = m.u64("compat_nr_pages").unwrap_or(0);
            m.set("nr_pages", Value::Uint(c))?;
            m.set("compat_nr_pages", Value::Uint(0))?;
            Ok(true)
        })?;
        if n > 0 {
            w.step(
                "pagemap-nr-pages-up",
                &name,
                format!("moved the page count of {n} entries to nr_pages"),
                Safety::Lossless,
            );
        }
    }
    Ok(())
}

fn pagemap_nr_pages_down(w: &mut Work) -> Result<()> {
    for name in pagemaps(w)? {
        let n = w.rewrite(&name, |role, m| {
            if role != Role::PagemapEntry {
                return Ok(false);
            }
            let Some(n) = m.u64("nr_pages") else { return Ok(false) };
            if m.u64("compat_nr_pages") == Some(n) {
                return Ok(false);
            }
            let n32 = u32::try_from(n).map_err(|_| {
                Error::other(format!("a run of {n} pages does not fit the 32-bit count of CRIU before 4.2"))
                    .in_field("nr_pages")
            })?;
            m.set("compat_nr_pages", Value::Uint(n32 as u64))?;
            Ok(true)
        })?;
        if n > 0 {
            w.step(
                "pagemap-nr-pages-down",
                &name,
                format!("copied nr_pages into compat_nr_pages in {n} entries (nr_pages kept for CRIU 4.2)"),
                Safety::Lossless,
            );
        }
    }
    Ok(())
}

fn allow_uprobes(w: &mut Work) -> Result<()> {
    if !w.has("inventory.img") {
        return Ok(());
    }
    let inv = w.messages("inventory.img")?;
    if inv.first().and_then(|m| m.bool("allow_uprobes")) == Some(true) {
        w.refuse(
            "allow-uprobes",
            "inventory.img",
            "the dump has uprobe mappings (allow_uprobes), which the target cannot restore".into(),
        )?;
    }
    Ok(())
}

fn pidfd(w: &mut Work) -> Result<()> {
    if w.has("pidfd.img") {
        w.refuse("pidfd", "pidfd.img", "the dump holds pidfds, which the target does not know".into())?;
    }
    if w.has("files.img") {
        let n = w.messages("files.img")?.iter().filter(|f| f.enum_name("type") == Some("PIDFD")).count();
        if n > 0 {
            w.refuse("pidfd", "files.img", format!("{n} pidfd files, which the target does not know"))?;
        }
    }
    Ok(())
}

fn tcp_opts_down(w: &mut Work) -> Result<()> {
    let mut sockets: Vec<(u64, Message)> = Vec::new();
    for img in ["files.img", "inetsk.img"] {
        if !w.has(img) {
            continue;
        }
        let field = if img == "files.img" { Some("isk") } else { None };
        let n = w.rewrite(img, |_, m| {
            let isk = match field {
                Some(f) => match m.get_mut(f) {
                    Some(Value::Msg(s)) => s,
                    _ => return Ok(false),
                },
                None => m,
            };
            let Some(opts) = isk.msg("tcp_opts").cloned() else { return Ok(false) };
            sockets.push((isk.u64("ino").unwrap_or(0), opts.clone()));
            let so = sub_mut(isk, "opts")?;
            let mut changed = false;
            for (from, to) in [("keepcnt", "tcp_keepcnt"), ("keepidle", "tcp_keepidle"), ("keepintvl", "tcp_keepintvl")]
            {
                if let Some(v) = opts.u64(from) {
                    if so.u64(to) != Some(v) {
                        so.set(to, Value::Uint(v))?;
                        changed = true;
                    }
                }
            }
            Ok(changed)
        })?;
        if n > 0 {
            w.step(
                "tcp-opts-old-fields",
                img,
                format!("copied keepalive options into sk_opts of {n} sockets"),
                Safety::Lossless,
            );
        }
    }
    for (ino, opts) in sockets {
        let name = format!("tcp-stream-{ino:x}.img");
        if !w.has(&name) {
            continue;
        }
        let n = w.rewrite(&name, |_, t| {
            let mut changed = false;
            for f in ["nodelay", "cork"] {
                if let Some(v) = opts.bool(f) {
                    if t.bool(f) != Some(v) {
                        t.set(f, Value::Bool(v))?;
                        changed = true;
                    }
                }
            }
            Ok(changed)
        })?;
        if n > 0 {
            w.step("tcp-opts-old-fields", &name, "copied nodelay and cork from tcp_opts".into(), Safety::Lossless);
        }
    }
    Ok(())
}

fn cg_set_down(w: &mut Work) -> Result<()> {
    if !w.has("pstree.img") {
        return Ok(());
    }
    for task in w.messages("pstree.img")? {
        let pid = task.u64("pid").unwrap_or(0);
        let threads: Vec<u64> = task.get_all("threads").filter_map(Value::as_u64).collect();
        let mut sets = Vec::new();
        for t in &threads {
            let core = format!("core-{t}.img");
            if w.has(&core) {
                if let Some(c) = w.messages(&core)?.first() {
                    sets.push(c.msg("thread_core").and_then(|th| th.u64("cg_set")));
                }
            }
        }
        let Some(Some(first)) = sets.first().copied() else { continue };
        let leader = format!("core-{pid}.img");
        if !w.has(&leader) {
            continue;
        }
        let n = w.rewrite(&leader, |_, c| {
            let tc = sub_mut(c, "tc")?;
            if tc.u64("cg_set") == Some(first) {
                return Ok(false);
            }
            tc.set("cg_set", Value::Uint(first))?;
            Ok(true)
        })?;
        if sets.iter().any(|s| *s != Some(first)) {
            w.step(
                "task-cg-set",
                &leader,
                "threads are in different cgroup sets: the target puts them all in the first thread's".into(),
                Safety::Lossy,
            );
        } else if n > 0 {
            w.step("task-cg-set", &leader, format!("set the task's cg_set to {first}"), Safety::Lossless);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// What a version knows.

/// Image kinds by the release that introduced them.
static KIND_SINCE: &[(&str, Version)] = &[
    ("MEMFD_INODE", Version(3, 14)),
    ("TIMENS", Version(3, 14)),
    ("BPFMAP_FILE", Version(3, 15)),
    ("BPFMAP_DATA", Version(3, 15)),
    ("PIDNS", Version(3, 15)),
    ("APPARMOR", Version(3, 16)),
    ("PIDFD", Version(4, 1)),
];

/// Check every image of the result against what the target knows.
fn check_target(w: &mut Work, to: Version) -> Result<()> {
    for name in w.names()? {
        let Some(kind) = magic::by_file_name(&name) else { continue };
        if let Some((_, since)) = KIND_SINCE.iter().find(|(k, _)| *k == kind.name) {
            if to < *since {
                w.refuse(
                    "target-check",
                    &name,
                    format!("CRIU {to} does not know {} images (new in {since})", kind.name),
                )?;
            }
        }
    }
    // Every image still decodes.
    for name in w.names()? {
        if magic::by_file_name(&name).is_none() {
            continue;
        }
        let f = File::open(w.path(&name))?;
        let mut rd = ImageReader::open(BufReader::new(f)).map_err(|e| e.in_file(&name))?;
        while rd.next_item().map_err(|e| e.in_file(&name))?.is_some() {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The command.

/// Options of [`convert`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The target layout.
    pub to: Version,
    /// Do refused steps anyway.
    pub force: bool,
    /// Hard-link the images no transform changes instead of copying them
    /// (where the file system allows).  The result then shares those files
    /// with the source: for private read-only use, such as `serve`.
    pub link: bool,
}

/// What a conversion did.
#[derive(Debug)]
pub struct Report {
    /// The source's version lower bound.
    pub from: Version,
    /// The target.
    pub to: Version,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// Convert the checkpoint in `src` (directory) to `opts.to`, writing a new
/// directory `dst` (which must not exist or be empty).
pub fn convert(src: &Path, dst: &Path, opts: &Options) -> Result<Report> {
    if opts.to < Version::FLOOR {
        return Err(Error::other(format!(
            "cannot convert to CRIU {}: the oldest supported target is {} (the first CRIU that streams images)",
            opts.to,
            Version::FLOOR
        )));
    }
    if opts.to > Version::LATEST {
        return Err(Error::other(format!(
            "CRIU {} is newer than the newest layout known here ({})",
            opts.to,
            Version::LATEST
        )));
    }
    let src_real = fs::canonicalize(src).map_err(|e| Error::from(e).in_file(src))?;
    // Where the destination would be, even if it does not exist yet.
    let dst_abs = match fs::canonicalize(dst) {
        Ok(d) => d,
        Err(_) => {
            let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let parent = fs::canonicalize(parent).map_err(|e| Error::from(e).in_file(parent))?;
            parent.join(dst.file_name().unwrap_or_default())
        }
    };
    if dst_abs == src_real || dst_abs.starts_with(&src_real) {
        return Err(Error::other("the destination must not be the source or inside it: convert never works in place"));
    }
    if dst_abs.exists() && fs::read_dir(&dst_abs).map(|mut r| r.next().is_some()).unwrap_or(true) {
        return Err(Error::other(format!("{}: destination exists and is not empty", dst.display())));
    }
    let ck = Checkpoint::open(src)?;
    let (from, _) = criu_version_bound(&ck)?;
    let parent_dir = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = parent_dir.join(format!(
        ".{}.crit-convert-{}",
        dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::from(e).in_file(&tmp))?;
    let mut w = Work { dir: tmp.clone(), src_dir: Some(src_real.clone()), force: opts.force, steps: Vec::new() };
    let r = (|| -> Result<()> {
        let names = ck.source().names()?;
        let mut meter = crate::progress::Meter::new("convert", Some(names.len() as u64));
        for name in names {
            if opts.link {
                if let Some(p) = ck.source().path_of(&name) {
                    if fs::hard_link(&p, w.path(&name)).is_ok() {
                        meter.file_done();
                        continue;
                    }
                }
            }
            let r = ck.source().open(&name)?.ok_or_else(|| Error::other(format!("{name} vanished")))?;
            let mut out = AtomicFile::create(&w.path(&name))?;
            std::io::copy(&mut meter.reader(r), &mut out)?;
            out.commit()?;
            meter.file_done();
        }
        meter.finish();
        // An incremental dump keeps its parent link (absolute, since the
        // copy lives elsewhere).
        let parent = src_real.join("parent");
        if let Ok(target) = fs::canonicalize(&parent) {
            std::os::unix::fs::symlink(&target, w.path("parent"))?;
        }
        for t in TRANSFORMS {
            let applies = match t.when {
                When::Below(v) => opts.to < v,
                When::AtLeast(v) => opts.to >= v,
            };
            if applies {
                (t.run)(&mut w).map_err(|e| Error::other(format!("{}: {e}", t.name)))?;
            }
        }
        check_target(&mut w, opts.to)
    })();
    if let Err(e) = r {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = w.src_dir.take();
    if dst.exists() {
        fs::remove_dir(dst).map_err(|e| Error::from(e).in_file(dst))?;
    }
    fs::rename(&tmp, dst).map_err(|e| Error::from(e).in_file(dst))?;
    Ok(Report { from, to: opts.to, steps: w.steps })
}

/// Split files.img into the per-type images CRIU wrote before 3.4 (the
/// inverse of `merge-file-images`, for making old-layout test dumps):
/// every entry whose type has a legacy image moves there.
pub fn split_file_images(dir: &Path) -> Result<usize> {
    let mut w = Work { dir: dir.to_path_buf(), src_dir: None, force: false, steps: Vec::new() };
    let (_, entries) = w.load("files.img")?;
    let mut keep: Vec<(Message, Extra)> = Vec::new();
    let mut out: HashMap<&str, Vec<(Message, Extra)>> = HashMap::new();
    let mut moved = 0;
    for (_, fe, x) in entries {
        let ty = fe.enum_name("type").unwrap_or("");
        match LEGACY_FILE_IMAGES.iter().find(|(_, t, _)| *t == ty) {
            Some((img, _, field)) => match fe.msg(field) {
                Some(m) => {
                    out.entry(img).or_default().push((m.clone(), Extra::None));
                    moved += 1;
                }
                None => keep.push((fe, x)),
            },
            None => keep.push((fe, x)),
        }
    }
    for (img, v) in &out {
        let kind = magic::by_file_name(img).ok_or_else(|| Error::other(format!("no kind for {img}")))?;
        w.store(img, kind, v)?;
    }
    let kind = magic::by_name("FILES").ok_or_else(|| Error::other("no FILES kind"))?;
    if keep.is_empty() {
        w.remove("files.img")?;
    } else {
        w.store("files.img", kind, &keep)?;
    }
    w.steps.clear();
    Ok(moved)
}
