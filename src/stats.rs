//! `crit stats`: the numbers of a checkpoint at a glance, as a table or
//! as JSON.
//!
//! Everything is counted from the images, streamed: pagemaps are read
//! entry by entry and the pages themselves are never read (their count
//! comes from the pagemaps, their bytes on disk from the file sizes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::explore::{self, Notes};
use crate::json::parse::Json;
use crate::views::{self, ja, jn, jo, jopt, js, Table, PAGE};
use crate::wire::{Message, Value};

fn u(m: &Message, f: &str) -> u64 {
    m.u64(f).unwrap_or(0)
}

fn msgs<'a>(m: &'a Message, f: &str) -> impl Iterator<Item = &'a Message> + 'a {
    m.get_all(f).filter_map(|v| if let Value::Msg(x) = v { Some(x) } else { None })
}

/// Namespace kinds: the field of task_kobj_ids_entry and the name.
static NS_KINDS: &[(&str, &str)] = &[
    ("pid_ns_id", "pid"),
    ("net_ns_id", "net"),
    ("ipc_ns_id", "ipc"),
    ("uts_ns_id", "uts"),
    ("mnt_ns_id", "mnt"),
    ("user_ns_id", "user"),
    ("cgroup_ns_id", "cgroup"),
    ("time_ns_id", "time"),
];

/// The timing and page numbers of `stats-dump`, in its field order.
static DUMP_STATS: &[(&str, &str, &str)] = &[
    ("freezing_time", "freezing time", "us"),
    ("frozen_time", "frozen time", "us"),
    ("memdump_time", "memory dump time", "us"),
    ("memwrite_time", "memory write time", "us"),
    ("irmap_resolve", "irmap resolve time", "us"),
    ("pages_scanned", "pages scanned", ""),
    ("pages_skipped_parent", "pages skipped (in parent)", ""),
    ("pages_written", "pages written", ""),
    ("pages_lazy", "pages lazy", ""),
    ("page_pipes", "page pipes", ""),
    ("page_pipe_bufs", "page pipe buffers", ""),
    ("shpages_scanned", "shared pages scanned", ""),
    ("shpages_skipped_parent", "shared pages skipped (in parent)", ""),
    ("shpages_written", "shared pages written", ""),
];

/// The numbers of `stats-restore`.
static RESTORE_STATS: &[(&str, &str, &str)] = &[
    ("pages_compared", "pages compared", ""),
    ("pages_skipped_cow", "pages skipped (COW)", ""),
    ("forking_time", "forking time", "us"),
    ("restore_time", "restore time", "us"),
    ("pages_restored", "pages restored", ""),
];

/// Memory of one process (or the total).
#[derive(Default, Clone, Debug)]
pub struct Mem {
    /// Number of VMAs.
    pub vmas: u64,
    /// Bytes mapped.
    pub mapped: u64,
    /// VMAs by kind: (count, bytes).
    pub kinds: BTreeMap<&'static str, (u64, u64)>,
    /// Dumped pages: present in the images, in the parent, lazy only.
    pub pages: [u64; 3],
}

impl Mem {
    fn add(&mut self, o: &Mem) {
        self.vmas += o.vmas;
        self.mapped += o.mapped;
        for (k, (c, b)) in &o.kinds {
            let e = self.kinds.entry(k).or_default();
            e.0 += c;
            e.1 += b;
        }
        for i in 0..3 {
            self.pages[i] += o.pages[i];
        }
    }
}

/// Page counts of a pagemap image by class (present, parent, lazy).
fn pagemap_pages(ck: &Checkpoint, name: &str) -> Result<[u64; 3]> {
    let mut p = [0u64; 3];
    let mut rd = ck.reader(name)?;
    while let Some(it) = rd.next_item().map_err(|e| e.in_file(name))? {
        if it.role == crate::image::Role::PagemapHead {
            continue;
        }
        p[views::page_class(views::pagemap_flags(&it.msg))] += explore::entry_pages(&it.msg);
    }
    Ok(p)
}

/// The container engine's metadata of an archive.
#[derive(Default, Debug, Clone)]
pub struct Container {
    /// `Podman`, `CRI-O`, `containerd`.
    pub engine: Option<String>,
    /// Members as (key, value), in display order.
    pub fields: Vec<(&'static str, String)>,
}

fn read_json(ck: &Checkpoint, name: &str, notes: &mut Notes) -> Option<Json> {
    let mut r = match ck.source().open(name) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            notes.problems.push(format!("{name}: {e}"));
            return None;
        }
    };
    let mut buf = Vec::new();
    if let Err(e) = (&mut r).take(16 << 20).read_to_end(&mut buf) {
        notes.problems.push(format!("{name}: {e}"));
        return None;
    }
    match crate::json::parse::parse_slice(&buf) {
        Ok(j) => Some(j),
        Err(e) => {
            notes.problems.push(format!("{name}: {e}"));
            None
        }
    }
}

fn jstr(j: Option<&Json>) -> Option<String> {
    match j? {
        Json::Str(s) if !s.is_empty() => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// Read `config.dump` and `spec.dump`, if the checkpoint has them.
pub fn container(ck: &Checkpoint, notes: &mut Notes) -> Option<Container> {
    let config = read_json(ck, "config.dump", notes);
    let spec = read_json(ck, "spec.dump", notes);
    if config.is_none() && spec.is_none() {
        return None;
    }
    let cfg = |k: &str| jstr(config.as_ref().and_then(|c| c.get(k)));
    let ann = |k: &str| jstr(spec.as_ref().and_then(|s| s.get("annotations")).and_then(|a| a.get(k)));
    let manager = ann("io.container.manager");
    let mut c = Container::default();
    let (engine, name, pod, namespace, created) = match manager.as_deref() {
        Some("libpod") => (Some("Podman"), cfg("name"), None, None, cfg("createdTime")),
        Some("cri-o") => {
            let meta =
                ann("io.kubernetes.cri-o.Metadata").and_then(|m| crate::json::parse::parse_slice(m.as_bytes()).ok());
            (
                Some("CRI-O"),
                jstr(meta.as_ref().and_then(|m| m.get("name"))).or_else(|| cfg("name")),
                ann("io.kubernetes.pod.name"),
                ann("io.kubernetes.pod.namespace"),
                ann("io.kubernetes.cri-o.Created").or_else(|| cfg("createdTime")),
            )
        }
        _ if ann("io.kubernetes.cri.container-name").is_some() => (
            Some("containerd"),
            ann("io.kubernetes.cri.container-name"),
            ann("io.kubernetes.cri.sandbox-name"),
            ann("io.kubernetes.cri.sandbox-namespace"),
            cfg("createdTime"),
        ),
        _ => (None, cfg("name"), None, None, cfg("createdTime")),
    };
    c.engine = engine.map(str::to_string);
    let id = cfg("id");
    let image = cfg("rootfsImageName").or_else(|| cfg("rootfsImage"));
    for (k, v) in [
        ("name", name),
        ("id", id),
        ("image", image),
        ("image_ref", cfg("rootfsImageRef")),
        ("runtime", cfg("runtime")),
        ("created", created),
        ("checkpointed", cfg("checkpointedTime")),
        ("pod", pod),
        ("namespace", namespace),
    ] {
        if let Some(v) = v {
            c.fields.push((k, v));
        }
    }
    Some(c)
}

/// All the numbers.
pub struct Stats {
    source: crate::checkpoint::SourceInfo,
    path: String,
    container: Option<Container>,
    inventory: Option<Message>,
    processes: u64,
    threads: u64,
    dead: u64,
    stopped: u64,
    namespaces: Vec<(&'static str, u64, u64)>,
    fds: u64,
    files: BTreeMap<String, u64>,
    ghosts: (u64, u64, u64),
    mem: Vec<(u32, String, Mem)>,
    total: Mem,
    shmem: (u64, [u64; 3]),
    sockets: BTreeMap<(String, String), u64>,
    queues: Vec<(&'static str, u64, u64)>,
    ipc: Vec<(&'static str, u64, u64, &'static str)>,
    timers: Vec<(&'static str, u64)>,
    dump: Option<Message>,
    restore: Option<Message>,
    images: (u64, u64),
    pages_files: (u64, u64),
}

/// Count everything.
pub fn collect(ck: &Checkpoint, notes: &mut Notes) -> Result<Stats> {
    let tasks = views::task_infos(ck, notes)?;
    let inventory = ck.first("inventory.img").map_err(|e| notes.problems.push(e.to_string())).ok();
    let live: Vec<&views::TaskInfo> = tasks.iter().filter(|t| !t.dead()).collect();

    // Namespaces.
    let root_ids = inventory.as_ref().and_then(|i| i.msg("root_ids")).cloned();
    let mut ns: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); NS_KINDS.len()];
    for t in &live {
        match ck.ids(t.task.pid) {
            Ok(ids) => {
                for (i, (f, _)) in NS_KINDS.iter().enumerate() {
                    if let Some(id) = ids.u64(f) {
                        ns[i].insert(id);
                    }
                }
            }
            Err(e) => notes.problems.push(format!("task {}: {e}", t.task.pid)),
        }
    }
    let namespaces = NS_KINDS
        .iter()
        .zip(&ns)
        .map(|((f, name), set)| {
            let host = root_ids.as_ref().and_then(|r| r.u64(f));
            (*name, set.len() as u64, set.iter().filter(|&&id| Some(id) != host).count() as u64)
        })
        .collect();

    // Files.
    let tables = views::fd_tables(ck, &tasks, notes);
    let fds = tables.iter().map(|(_, f)| f.len() as u64).sum();
    let objs = views::file_objects(ck)?;
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    for f in &objs {
        *files.entry(f.ty.clone()).or_default() += 1;
    }
    let mut ghosts = (0, 0, 0);
    let mut ghost_ids: BTreeSet<u32> = BTreeSet::new();
    for (ty, id) in views::remaps(ck)?.values() {
        if ty == "GHOST" {
            ghost_ids.insert(*id);
        }
    }
    for id in ghost_ids {
        match views::ghost(ck, id) {
            Ok(g) => {
                ghosts.0 += 1;
                ghosts.1 += g.bytes;
                ghosts.2 += g.size;
            }
            Err(e) => notes.problems.push(format!("ghost file {id}: {e}")),
        }
    }

    // Memory.
    let mut mem = Vec::new();
    let mut total = Mem::default();
    for t in &live {
        let pid = t.task.pid;
        let mut m = Mem::default();
        match ck.mm(pid) {
            Ok(mm) => {
                for v in msgs(&mm, "vmas") {
                    let len = u(v, "end").saturating_sub(u(v, "start"));
                    m.vmas += 1;
                    m.mapped += len;
                    let e = m.kinds.entry(views::vma_kind(u(v, "status"), u(v, "flags"))).or_default();
                    e.0 += 1;
                    e.1 += len;
                }
            }
            Err(e) => notes.problems.push(format!("task {pid}: {e}")),
        }
        match pagemap_pages(ck, &format!("pagemap-{pid}.img")) {
            Ok(p) => m.pages = p,
            Err(e) => notes.problems.push(format!("task {pid}: {e}")),
        }
        total.add(&m);
        mem.push((pid, t.comm.clone(), m));
    }
    let names = ck.source().names()?;
    let mut shmem = (0u64, [0u64; 3]);
    for n in names.iter().filter(|n| n.starts_with("pagemap-shmem-") && n.ends_with(".img")) {
        match pagemap_pages(ck, n) {
            Ok(p) => {
                shmem.0 += 1;
                for (acc, x) in shmem.1.iter_mut().zip(p) {
                    *acc += x;
                }
            }
            Err(e) => notes.problems.push(e.to_string()),
        }
    }

    // Sockets and queues.
    let socks = views::sockets(ck, notes)?;
    let mut sockets: BTreeMap<(String, String), u64> = BTreeMap::new();
    let (mut unix_q, mut tcp_in, mut tcp_out) = ((0u64, 0u64), (0u64, 0u64), (0u64, 0u64));
    for s in &socks {
        let fam = match (s.family.as_str(), s.proto.as_deref()) {
            ("INET" | "INET6", Some(p)) => format!("{} {p}", s.family),
            _ => s.family.clone(),
        };
        *sockets.entry((fam, s.state.clone())).or_default() += 1;
        if s.family == "INET" || s.family == "INET6" {
            if let (Some(i), Some(o)) = (s.recv_q, s.send_q) {
                tcp_in = (tcp_in.0 + 1, tcp_in.1 + i);
                tcp_out = (tcp_out.0 + 1, tcp_out.1 + o);
            }
        }
    }
    for (bytes, packets) in views::sk_queues(ck)?.values() {
        unix_q = (unix_q.0 + packets, unix_q.1 + bytes);
    }
    let pipes = views::pipe_data(ck, "pipes-data.img")?;
    let fifos = views::pipe_data(ck, "fifo-data.img")?;
    let sum = |m: &HashMap<u64, (u64, u64)>| (m.len() as u64, m.values().map(|v| v.0).sum::<u64>());
    let queues = vec![
        ("pipes", sum(&pipes).0, sum(&pipes).1),
        ("fifos", sum(&fifos).0, sum(&fifos).1),
        ("socket packets (sk-queues)", unix_q.0, unix_q.1),
        ("tcp receive queues", tcp_in.0, tcp_in.1),
        ("tcp send queues", tcp_out.0, tcp_out.1),
    ];

    // SysV IPC.
    let mut ipc = vec![
        ("shared memory segments", 0, 0, "bytes"),
        ("semaphore sets", 0, 0, "semaphores"),
        ("message queues", 0, 0, "messages"),
        ("queued messages", 0, 0, "bytes"),
    ];
    for n in &names {
        let kind = crate::magic::by_file_name(n).map(|k| k.name);
        match kind {
            Some("IPCNS_SHM") | Some("IPCNS_SEM") => {
                for e in ck.entries(n)?.iter() {
                    let i = if kind == Some("IPCNS_SHM") { 0 } else { 1 };
                    ipc[i].1 += 1;
                    ipc[i].2 += if i == 0 { u(e, "size") } else { u(e, "nsems") };
                }
            }
            Some("IPCNS_MSG") => {
                let mut rd = ck.reader(n)?;
                while let Some(it) = rd.next_item().map_err(|e| e.in_file(n))? {
                    let q = u(&it.msg, "qnum");
                    let msgs = rd.read_msgs(q).map_err(|e| e.in_file(n))?;
                    ipc[2].1 += 1;
                    ipc[2].2 += msgs.len() as u64;
                    ipc[3].1 += msgs.len() as u64;
                    ipc[3].2 += msgs.iter().map(|(m, _)| u(m, "msize")).sum::<u64>();
                }
            }
            _ => {}
        }
    }

    // Timers.
    let (mut posix, mut itimers) = (0u64, 0u64);
    let armed = |m: &Message| ["isec", "iusec", "vsec", "vusec"].iter().any(|f| u(m, f) != 0);
    for t in &live {
        let pid = t.task.pid;
        if let Some(timers) = t.core.as_ref().and_then(|c| c.msg("tc")).and_then(|tc| tc.msg("timers")) {
            posix += msgs(timers, "posix").count() as u64;
            itimers += ["real", "virt", "prof"].iter().filter(|f| timers.msg(f).is_some_and(armed)).count() as u64;
        }
        let pt = format!("posix-timers-{pid}.img");
        if ck.has(&pt) {
            posix += ck.entries(&pt)?.len() as u64;
        }
        let it = format!("itimers-{pid}.img");
        if ck.has(&it) {
            for e in ck.entries(&it)?.iter() {
                itimers += armed(e) as u64;
            }
        }
    }
    let timers = vec![
        ("posix timers", posix),
        ("interval timers armed", itimers),
        ("timerfds", files.get("TIMERFD").copied().unwrap_or(0)),
    ];

    // The dump's own statistics, and the images on disk.
    let mut service = |name: &str, field: &str| -> Option<Message> {
        if !ck.has(name) {
            return None;
        }
        match ck.first(name) {
            Ok(m) => m.msg(field).cloned(),
            Err(e) => {
                notes.problems.push(e.to_string());
                None
            }
        }
    };
    let dump = service("stats-dump", "dump");
    let restore = service("stats-restore", "restore");
    let mut images = (0, 0);
    let mut pages_files = (0, 0);
    for n in &names {
        let size = ck.source().size(n).unwrap_or(0);
        images.0 += 1;
        images.1 += size;
        if n.starts_with("pages-") {
            pages_files.0 += 1;
            pages_files.1 += size;
        }
    }

    let processes = tasks.len() as u64;
    let threads = live.iter().map(|t| t.threads().len() as u64).sum();
    let dead = tasks.iter().filter(|t| t.dead()).count() as u64;
    let stopped = tasks.iter().filter(|t| t.state == 3).count() as u64;
    Ok(Stats {
        source: ck.source().info(),
        path: ck.source().display(),
        container: container(ck, notes),
        inventory,
        processes,
        threads,
        dead,
        stopped,
        namespaces,
        fds,
        files,
        ghosts,
        mem,
        total,
        shmem,
        sockets,
        queues,
        ipc,
        timers,
        dump,
        restore,
        images,
        pages_files,
    })
}

/// `1234 (1.2 KiB)` for sizes of a kibibyte and more.
pub fn size(b: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{b} B ({v:.1} {})", UNITS[i])
}

fn kv(out: &mut dyn Write, k: &str, v: impl std::fmt::Display) -> Result<()> {
    let line = format!("  {k:<34}{v}");
    writeln!(out, "{}", line.trim_end())?;
    Ok(())
}

fn mem_json(m: &Mem) -> Vec<(&'static str, Json)> {
    vec![
        ("vmas", jn(m.vmas)),
        ("mapped_bytes", jn(m.mapped)),
        (
            "vma_kinds",
            Json::Obj(
                m.kinds
                    .iter()
                    .map(|(k, (c, b))| (k.to_string(), jo(vec![("count", jn(*c)), ("bytes", jn(*b))])))
                    .collect(),
            ),
        ),
        ("pages_present", jn(m.pages[0])),
        ("pages_in_parent", jn(m.pages[1])),
        ("pages_lazy", jn(m.pages[2])),
        ("dumped_bytes", jn(m.pages[0] * PAGE)),
    ]
}

fn service_json(m: &Option<Message>, table: &[(&str, &str, &str)]) -> Json {
    match m {
        None => Json::Null,
        Some(m) => {
            Json::Obj(table.iter().filter(|(f, _, _)| m.has(f)).map(|(f, _, _)| (f.to_string(), jn(u(m, f)))).collect())
        }
    }
}

impl Stats {
    /// As JSON.
    pub fn to_json(&self) -> Json {
        let inv = self.inventory.as_ref();
        jo(vec![
            (
                "source",
                jo(vec![
                    ("path", js(&self.path)),
                    ("kind", js(self.source.kind)),
                    ("format", js(&self.source.format)),
                    ("archive_bytes", jopt(self.source.bytes)),
                    ("image_root", self.source.image_root.as_ref().map(js).unwrap_or(Json::Null)),
                ]),
            ),
            (
                "container",
                match &self.container {
                    None => Json::Null,
                    Some(c) => {
                        let mut m = vec![("engine", c.engine.as_ref().map(js).unwrap_or(Json::Null))];
                        m.extend(c.fields.iter().map(|(k, v)| (*k, js(v))));
                        jo(m)
                    }
                },
            ),
            (
                "criu",
                jo(vec![
                    ("image_version", jopt(inv.and_then(|i| i.u64("img_version")))),
                    ("run_id", inv.and_then(|i| i.str("dump_criu_run_id")).map(|s| js(&*s)).unwrap_or(Json::Null)),
                    ("lsm", inv.and_then(|i| i.enum_name("lsmtype")).map(js).unwrap_or(Json::Null)),
                ]),
            ),
            (
                "tasks",
                jo(vec![
                    ("processes", jn(self.processes)),
                    ("threads", jn(self.threads)),
                    ("dead", jn(self.dead)),
                    ("stopped", jn(self.stopped)),
                ]),
            ),
            (
                "namespaces",
                Json::Obj(
                    self.namespaces
                        .iter()
                        .map(|(k, n, own)| (k.to_string(), jo(vec![("count", jn(*n)), ("own", jn(*own))])))
                        .collect(),
                ),
            ),
            (
                "files",
                jo(vec![
                    ("fds", jn(self.fds)),
                    ("by_type", Json::Obj(self.files.iter().map(|(k, v)| (k.clone(), jn(*v))).collect())),
                    ("ghost_files", jn(self.ghosts.0)),
                    ("ghost_bytes", jn(self.ghosts.1)),
                    ("ghost_file_sizes", jn(self.ghosts.2)),
                ]),
            ),
            (
                "memory",
                jo(vec![
                    (
                        "processes",
                        ja(self
                            .mem
                            .iter()
                            .map(|(pid, comm, m)| {
                                let mut v = vec![("pid", jn(*pid as u64)), ("comm", js(comm))];
                                v.extend(mem_json(m));
                                jo(v)
                            })
                            .collect()),
                    ),
                    ("total", jo(mem_json(&self.total))),
                    (
                        "shared",
                        jo(vec![
                            ("objects", jn(self.shmem.0)),
                            ("pages_present", jn(self.shmem.1[0])),
                            ("pages_in_parent", jn(self.shmem.1[1])),
                            ("pages_lazy", jn(self.shmem.1[2])),
                        ]),
                    ),
                ]),
            ),
            (
                "sockets",
                ja(self
                    .sockets
                    .iter()
                    .map(|((f, s), n)| jo(vec![("family", js(f)), ("state", js(s)), ("count", jn(*n))]))
                    .collect()),
            ),
            (
                "queued",
                Json::Obj(
                    self.queues
                        .iter()
                        .map(|(k, n, b)| (k.to_string(), jo(vec![("count", jn(*n)), ("bytes", jn(*b))])))
                        .collect(),
                ),
            ),
            (
                "ipc",
                Json::Obj(
                    self.ipc
                        .iter()
                        .map(|(k, n, x, what)| (k.to_string(), jo(vec![("count", jn(*n)), (*what, jn(*x))])))
                        .collect(),
                ),
            ),
            ("timers", Json::Obj(self.timers.iter().map(|(k, n)| (k.to_string(), jn(*n))).collect())),
            ("dump_stats", service_json(&self.dump, DUMP_STATS)),
            ("restore_stats", service_json(&self.restore, RESTORE_STATS)),
            (
                "images",
                jo(vec![
                    ("files", jn(self.images.0)),
                    ("bytes", jn(self.images.1)),
                    ("pages_files", jn(self.pages_files.0)),
                    ("pages_bytes", jn(self.pages_files.1)),
                ]),
            ),
        ])
    }

    /// As text.
    pub fn print(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(out, "Checkpoint")?;
        kv(out, "source", &self.path)?;
        kv(out, "format", &self.source.format)?;
        if let Some(b) = self.source.bytes {
            kv(out, "archive size", size(b))?;
        }
        if let Some(r) = &self.source.image_root {
            kv(out, "images in", r)?;
        }
        kv(out, "image files", format!("{}, {}", self.images.0, size(self.images.1)))?;
        kv(out, "pages files", format!("{}, {}", self.pages_files.0, size(self.pages_files.1)))?;
        if let Some(i) = &self.inventory {
            kv(out, "image version", u(i, "img_version"))?;
            if let Some(id) = i.str("dump_criu_run_id") {
                kv(out, "criu run id", id)?;
            }
        }
        if let Some(c) = &self.container {
            writeln!(out, "\nContainer")?;
            if let Some(e) = &c.engine {
                kv(out, "engine", e)?;
            }
            for (k, v) in &c.fields {
                kv(out, k, v)?;
            }
        }
        writeln!(out, "\nTasks")?;
        kv(out, "processes", self.processes)?;
        kv(out, "threads", self.threads)?;
        kv(out, "dead (zombies)", self.dead)?;
        kv(out, "stopped", self.stopped)?;

        writeln!(out, "\nNamespaces")?;
        let mut t = Table::new(&["KIND", ">COUNT", ">OWN"]);
        for (k, n, own) in &self.namespaces {
            t.row(vec![k.to_string(), n.to_string(), own.to_string()]);
        }
        t.print(out, "  ")?;

        writeln!(out, "\nOpen files")?;
        kv(out, "fds", self.fds)?;
        for (k, n) in &self.files {
            kv(out, k, n)?;
        }
        kv(out, "ghost files", self.ghosts.0)?;
        if self.ghosts.0 > 0 {
            kv(out, "ghost bytes in images", size(self.ghosts.1))?;
            kv(out, "ghost file sizes", size(self.ghosts.2))?;
        }

        writeln!(out, "\nMemory")?;
        let mut t = Table::new(&[">PID", "COMM", ">VMAS", ">MAPPED", ">PRESENT", ">PARENT", ">LAZY", ">DUMPED"]);
        let row = |pid: String, comm: String, m: &Mem| {
            vec![
                pid,
                comm,
                m.vmas.to_string(),
                m.mapped.to_string(),
                m.pages[0].to_string(),
                m.pages[1].to_string(),
                m.pages[2].to_string(),
                (m.pages[0] * PAGE).to_string(),
            ]
        };
        for (pid, comm, m) in &self.mem {
            t.row(row(pid.to_string(), comm.clone(), m));
        }
        t.row(row("total".into(), String::new(), &self.total));
        t.print(out, "  ")?;
        writeln!(out, "  (MAPPED and DUMPED in bytes; PRESENT, PARENT and LAZY in pages of {PAGE} bytes)")?;
        let mut t = Table::new(&["VMA KIND", ">COUNT", ">BYTES"]);
        for (k, (c, b)) in &self.total.kinds {
            t.row(vec![k.to_string(), c.to_string(), b.to_string()]);
        }
        t.print(out, "  ")?;
        kv(
            out,
            "shared memory objects",
            format!(
                "{} ({} pages present, {} in parent, {} lazy)",
                self.shmem.0, self.shmem.1[0], self.shmem.1[1], self.shmem.1[2]
            ),
        )?;

        writeln!(out, "\nSockets")?;
        if self.sockets.is_empty() {
            kv(out, "none", "")?;
        } else {
            let mut t = Table::new(&["FAMILY", "STATE", ">COUNT"]);
            for ((f, s), n) in &self.sockets {
                t.row(vec![f.clone(), s.clone(), n.to_string()]);
            }
            t.print(out, "  ")?;
        }

        writeln!(out, "\nQueued data")?;
        for (k, n, b) in &self.queues {
            kv(out, k, format!("{n}, {}", size(*b)))?;
        }

        writeln!(out, "\nSysV IPC")?;
        for (k, n, x, what) in &self.ipc {
            kv(out, k, format!("{n} ({x} {what})"))?;
        }

        writeln!(out, "\nTimers")?;
        for (k, n) in &self.timers {
            kv(out, k, n)?;
        }

        for (title, m, table) in
            [("stats-dump", &self.dump, DUMP_STATS), ("stats-restore", &self.restore, RESTORE_STATS)]
        {
            let Some(m) = m else { continue };
            writeln!(out, "\nDump statistics ({title})")?;
            for (f, label, unit) in table {
                if m.has(f) {
                    kv(out, label, if unit.is_empty() { u(m, f).to_string() } else { format!("{} {unit}", u(m, f)) })?;
                }
            }
        }
        if self.dump.is_none() && self.restore.is_none() {
            writeln!(out, "\nDump statistics")?;
            kv(out, "none", "(no stats-dump)")?;
        }
        Ok(())
    }
}

/// `crit stats`: print the numbers, as text or JSON.
pub fn stats(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes, json: bool) -> Result<()> {
    let s = collect(ck, notes)?;
    if json {
        views::write_json(out, &s.to_json())
    } else {
        s.print(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(10), "10 B");
        assert_eq!(size(65536), "65536 B (64.0 KiB)");
        assert_eq!(size(3 << 20), "3145728 B (3.0 MiB)");
    }
}
