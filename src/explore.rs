//! `crit x DIR ps|fds|mems|rss`: the same text as crit prints, byte for
//! byte, with clear messages instead of crashes for missing images.

use std::collections::HashMap;
use std::io::Write;

use crate::checkpoint::{Checkpoint, Task};
use crate::error::Result;
use crate::json::pyfmt;
use crate::wire::Message;

/// Problems met while exploring; the rest of the view is still shown.
#[derive(Default, Debug)]
pub struct Notes {
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Notes {
    fn add(&mut self, s: impl Into<String>) {
        self.problems.push(s.into());
    }
}

/// Resolves file ids to the short strings crit prints.
struct FileNames<'a> {
    ck: &'a Checkpoint,
    cache: HashMap<(String, u32), String>,
    legacy: HashMap<&'static str, Option<std::rc::Rc<Vec<Message>>>>,
}

impl<'a> FileNames<'a> {
    fn new(ck: &'a Checkpoint) -> Self {
        FileNames { ck, cache: HashMap::new(), legacy: HashMap::new() }
    }

    /// The per-type entry of file `id`: from files.img when it has the id,
    /// else from the legacy per-type image.
    fn find(&mut self, id: u32, field: &str, legacy_image: &'static str) -> Option<Message> {
        if let Ok(files) = self.ck.files() {
            if !files.is_empty() {
                if let Some(f) = files.get(&id) {
                    return f.msg(field).cloned();
                }
            }
        }
        let img = self.legacy.entry(legacy_image).or_insert_with(|| self.ck.entries(legacy_image).ok()).clone()?;
        img.iter().find(|m| m.u64("id") == Some(id as u64)).cloned()
    }

    fn get(&mut self, ty: &str, id: u32) -> String {
        let key = (ty.to_string(), id);
        if let Some(s) = self.cache.get(&key) {
            return s.clone();
        }
        let s = match ty {
            "REG" => match self.find(id, "reg", "reg-files.img") {
                Some(r) => match r.get("name") {
                    Some(crate::wire::Value::Str(n)) if !n.is_empty() => String::from_utf8_lossy(n).into_owned(),
                    _ => "unknown path".into(),
                },
                None => "unknown path".into(),
            },
            "PIPE" => match self.find(id, "pipe", "pipes.img") {
                Some(p) => format!("pipe[{}]", p.u64("pipe_id").unwrap_or(0)),
                None => "pipe[?]".into(),
            },
            "UNIXSK" => match self.find(id, "usk", "unixsk.img") {
                Some(u) => {
                    let name = match u.get("name") {
                        Some(crate::wire::Value::Bytes(b)) => pyfmt::qp_encode(b),
                        _ => String::new(),
                    };
                    let n = if name.is_empty() { String::new() } else { format!(" {name}") };
                    format!("unix[{} ({}){n}]", u.u64("ino").unwrap_or(0), u.u64("peer").unwrap_or(0))
                }
                None => "unix[?]".into(),
            },
            other => format!("{other}.{id}"),
        };
        self.cache.insert(key, s.clone());
        s
    }
}

/// Whether a task was dumped dead (a zombie: CRIU's task_state 2 keeps
/// only its core image, so it has no files or memory to show).
pub fn is_dead(ck: &Checkpoint, pid: u32) -> bool {
    ck.core(pid).ok().and_then(|c| c.msg("tc").and_then(|tc| tc.u64("task_state"))) == Some(2)
}

/// `x ps`: the process tree.
pub fn ps(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let tasks = ck.tasks()?;
    let mut comm: HashMap<u32, String> = HashMap::new();
    for t in &tasks {
        match ck.core(t.pid) {
            Ok(c) => {
                let name = c.msg("tc").and_then(|tc| tc.str("comm").map(|s| s.into_owned())).unwrap_or_default();
                comm.insert(t.pid, name);
            }
            Err(e) => notes.add(format!("task {}: {e}", t.pid)),
        }
    }
    writeln!(out, "{:>7}{:>7}{:>7}   {}", "PID", "PGID", "SID", "COMM")?;
    // The root is the task whose parent is 0 (the last one, as crit).
    let Some(root) = tasks.iter().rev().find(|t| t.ppid == 0) else {
        notes.add("no root task (ppid 0) in pstree.img");
        return Ok(());
    };
    let mut kids: HashMap<u32, Vec<&Task>> = HashMap::new();
    for t in &tasks {
        if t.ppid == 0 {
            continue;
        }
        if !tasks.iter().any(|p| p.pid == t.ppid) {
            notes.add(format!("task {}: parent {} is not in the tree", t.pid, t.ppid));
            continue;
        }
        kids.entry(t.ppid).or_default().push(t);
    }
    // Each pid is shown once: a damaged pstree with repeated pids or a
    // cycle would otherwise print without end (crit recurses until Python
    // gives up).
    type Seen = std::collections::HashSet<u32>;
    fn show(
        out: &mut dyn Write,
        t: &Task,
        depth: usize,
        kids: &HashMap<u32, Vec<&Task>>,
        comm: &HashMap<u32, String>,
        seen: &mut Seen,
    ) -> Result<()> {
        if depth > 4096 || !seen.insert(t.pid) {
            return Ok(());
        }
        writeln!(
            out,
            "{:>7}{:>7}{:>7}   {}{}",
            t.pid,
            t.pgid,
            t.sid,
            " ".repeat(4 * depth),
            comm.get(&t.pid).map(String::as_str).unwrap_or("?")
        )?;
        if let Some(ks) = kids.get(&t.pid) {
            for k in ks {
                if k.pid != t.pid {
                    show(out, k, depth + 1, kids, comm, seen)?;
                }
            }
        }
        Ok(())
    }
    show(out, root, 0, &kids, &comm, &mut Seen::new())
}

/// `x fds`: open files of every process, then cwd and root.
pub fn fds(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let mut names = FileNames::new(ck);
    for t in ck.tasks()? {
        if is_dead(ck, t.pid) {
            writeln!(out, "{}", t.pid)?;
            continue;
        }
        let fdinfo =
            ck.ids(t.pid).and_then(|ids| ck.entries(&format!("fdinfo-{}.img", ids.u64("files_id").unwrap_or(0))));
        writeln!(out, "{}", t.pid)?;
        match fdinfo {
            Ok(fds) => {
                for fd in fds.iter() {
                    let ty = fd
                        .enum_name("type")
                        .map(str::to_string)
                        .unwrap_or_else(|| fd.enum_value("type").map(|v| v.to_string()).unwrap_or_default());
                    let s = names.get(&ty, fd.u64("id").unwrap_or(0) as u32);
                    writeln!(out, "\t{:>7}: {}", fd.u64("fd").unwrap_or(0), s)?;
                }
            }
            Err(e) => notes.add(format!("task {}: {e}", t.pid)),
        }
        match ck.first(&format!("fs-{}.img", t.pid)) {
            Ok(fs) => {
                let cwd = names.get("REG", fs.u64("cwd_id").unwrap_or(0) as u32);
                let root = names.get("REG", fs.u64("root_id").unwrap_or(0) as u32);
                writeln!(out, "\t{:>7}: {}", "cwd", cwd)?;
                writeln!(out, "\t{:>7}: {}", "root", root)?;
            }
            Err(e) => notes.add(format!("task {}: {e}", t.pid)),
        }
    }
    Ok(())
}

/// `x mems`: the mappings of every process.
pub fn mems(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let mut names = FileNames::new(ck);
    let mut vids: HashMap<u64, u64> = HashMap::new();
    let mut vid = |id: u64| -> u64 {
        let n = vids.len() as u64 + 1;
        *vids.entry(id).or_insert(n)
    };
    for t in ck.tasks()? {
        if is_dead(ck, t.pid) {
            writeln!(out, "{}", t.pid)?;
            continue;
        }
        let mm = match ck.mm(t.pid) {
            Ok(mm) => mm,
            Err(e) => {
                writeln!(out, "{}", t.pid)?;
                notes.add(format!("task {}: {e}", t.pid));
                continue;
            }
        };
        writeln!(out, "{}", t.pid)?;
        let exe = names.get("REG", mm.u64("exe_file_id").unwrap_or(0) as u32);
        writeln!(out, "\t{:<36}    {}", "exe", exe)?;
        for v in mm.get_all("vmas") {
            let crate::wire::Value::Msg(vma) = v else { continue };
            let st = vma.u64("status").unwrap_or(0);
            let shmid = vma.u64("shmid").unwrap_or(0);
            let mut fname = if st & (1 << 10) != 0 {
                format!(" ips[{:x}]", vid(shmid))
            } else if st & (1 << 8) != 0 {
                format!(" shmem[{:x}]", vid(shmid))
            } else if st & (1 << 11) != 0 {
                format!(" packet[{:x}]", vid(shmid))
            } else if st & ((1 << 6) | (1 << 7)) != 0 {
                let mut s = format!(" {}", names.get("REG", shmid as u32));
                let pgoff = vma.u64("pgoff").unwrap_or(0);
                if pgoff != 0 {
                    s.push_str(&format!(" + {pgoff:#x}"));
                }
                if st & (1 << 7) != 0 {
                    s.push_str(" (s)");
                }
                s
            } else if st & (1 << 1) != 0 {
                " [stack]".into()
            } else if st & (1 << 2) != 0 {
                " [vsyscall]".into()
            } else if st & (1 << 3) != 0 {
                " [vdso]".into()
            } else if vma.u64("flags").unwrap_or(0) & 0x100 != 0 {
                " [stack?]".into()
            } else {
                String::new()
            };
            if st & 1 == 0 {
                fname.push_str(" *");
            }
            let prot = vma.u64("prot").unwrap_or(0);
            let p = format!(
                "{}{}{}",
                if prot & 1 != 0 { 'r' } else { '-' },
                if prot & 2 != 0 { 'w' } else { '-' },
                if prot & 4 != 0 { 'x' } else { '-' }
            );
            let a = format!("{:08x}-{:08x}", vma.u64("start").unwrap_or(0), vma.u64("end").unwrap_or(0));
            writeln!(out, "\t{a:<36}{p}{fname}")?;
        }
    }
    Ok(())
}

/// The page count of a pagemap entry: 4.2's `nr_pages`, else the older
/// `compat_nr_pages` (CRIU reads them the same way).
pub fn entry_pages(pm: &Message) -> u64 {
    pm.u64("nr_pages").unwrap_or_else(|| pm.u64("compat_nr_pages").unwrap_or(0))
}

/// `x rss`: dumped page runs of every process, against its mappings.
pub fn rss(ck: &Checkpoint, out: &mut dyn Write, notes: &mut Notes) -> Result<()> {
    let mut names = FileNames::new(ck);
    for t in ck.tasks()? {
        if is_dead(ck, t.pid) {
            writeln!(out, "{}", t.pid)?;
            continue;
        }
        let vmas: Vec<Message> = match ck.mm(t.pid) {
            Ok(mm) => mm
                .get_all("vmas")
                .filter_map(|v| if let crate::wire::Value::Msg(m) = v { Some(m.clone()) } else { None })
                .collect(),
            Err(e) => {
                writeln!(out, "{}", t.pid)?;
                notes.add(format!("task {}: {e}", t.pid));
                continue;
            }
        };
        let name = format!("pagemap-{}.img", t.pid);
        let mut rd = match ck.reader(&name) {
            Ok(r) => r,
            Err(e) => {
                writeln!(out, "{}", t.pid)?;
                notes.add(format!("task {}: {e}", t.pid));
                continue;
            }
        };
        writeln!(out, "{}", t.pid)?;
        let mut vmi = 0usize;
        let mut pvmi: isize = -1;
        let mut first = true;
        while let Some(item) = rd.next_item().map_err(|e| e.in_file(&name))? {
            if first {
                first = false;
                continue;
            }
            let pm = item.msg;
            let vaddr = pm.u64("vaddr").unwrap_or(0);
            let nr = entry_pages(&pm);
            let pstr = format!("\t{vaddr:x} / {nr:<8}");
            while vmi < vmas.len() && vmas[vmi].u64("end").unwrap_or(0) <= vaddr {
                vmi += 1;
            }
            let pme = vaddr.wrapping_add(nr << 12);
            let mut vstr = String::new();
            while vmi < vmas.len() && vmas[vmi].u64("start").unwrap_or(0) < pme {
                let vma = &vmas[vmi];
                if vmi as isize == pvmi {
                    vstr.push_str(" ~");
                } else {
                    let (s, e) = (vma.u64("start").unwrap_or(0), vma.u64("end").unwrap_or(0));
                    vstr.push_str(&format!(" {s:08x} / {:<8}", e.wrapping_sub(s) >> 12));
                    if vma.u64("status").unwrap_or(0) & ((1 << 6) | (1 << 7)) != 0 {
                        vstr.push(' ');
                        vstr.push_str(&names.get("REG", vma.u64("shmid").unwrap_or(0) as u32));
                    }
                    pvmi = vmi as isize;
                }
                vstr.push_str(&format!("\n\t{:23}", ""));
                vmi += 1;
            }
            vmi = vmi.saturating_sub(1);
            writeln!(out, "{pstr:<24}{vstr}")?;
        }
    }
    Ok(())
}
