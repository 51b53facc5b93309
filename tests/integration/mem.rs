//! The memory reader and `crit mem`: incremental chains built from real
//! dumps (this kernel has no soft-dirty tracking, so `criu pre-dump` is
//! refused: part of a dump's pages are moved into parent dumps and marked
//! PE_PARENT with our own encoder), restored by the real CRIU, read back;
//! lazy pages; the CLI views against the reader, hexdump and the images.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crit::checkpoint::Checkpoint;
use crit::image::{ImageReader, ImageWriter};
use crit::json::{Json, Parser};
use crit::mem::{pe, Content, Files, Memory, Why};
use crit::schema::MsgId;
use crit::wire::{Message, Value};

use crate::coredump::{core_fixture, fixture_pid, have, make_core};
use crate::util::*;

/// What to do with a present page of a dump.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    /// Keep it in the dump.
    Keep,
    /// Move it to the new parent dump (PE_PARENT here).
    Parent,
    /// Drop it, marking it lazy (PE_LAZY without PE_PRESENT).
    Lazy,
}

fn pagemap_entry(vaddr: u64, pages: u64, flags: Option<u32>, in_parent: bool, nr_form: bool) -> Message {
    let mut m = Message::new(MsgId::by_name("pagemap_entry").unwrap());
    m.set("vaddr", Value::Uint(vaddr)).unwrap();
    m.set("compat_nr_pages", Value::Uint(if nr_form { 0 } else { pages })).unwrap();
    if in_parent {
        m.set("in_parent", Value::Bool(true)).unwrap();
    }
    if let Some(f) = flags {
        m.set("flags", Value::Uint(f as u64)).unwrap();
    }
    if nr_form {
        m.set("nr_pages", Value::Uint(pages)).unwrap();
    }
    m
}

fn read_image(path: &Path) -> Vec<Message> {
    let f = std::fs::File::open(path).unwrap();
    let mut rd = ImageReader::open(std::io::BufReader::new(f)).unwrap();
    let mut v = Vec::new();
    while let Some(it) = rd.next_item().unwrap() {
        v.push(it.msg);
    }
    v
}

fn write_pagemap(path: &Path, msgs: &[Message]) {
    let mut out = Vec::new();
    let mut w = ImageWriter::new(&mut out, crit::magic::by_name("PAGEMAP").unwrap()).unwrap();
    for m in msgs {
        w.write_message(m).unwrap();
    }
    w.finish().unwrap();
    std::fs::write(path, out).unwrap();
}

/// Copy a dump directory (files only).
pub fn copy_dump(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for f in std::fs::read_dir(src).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
}

/// Rewrite process `pid`'s pagemap of dump `dir`: each present page gets
/// `fate(vaddr)`.  Pages moved to a parent go into a new dump `parent`
/// (pagemap and pages, plus a copy of the inventory), which is put between
/// `dir` and its former parent (entries `dir` had in its parent stay
/// PE_PARENT in the new one); `dir/parent` then links to it.  `old_form`
/// writes the entries as CRIU before 3.x did (`in_parent`, no `flags`).
/// Returns how many pages went to the parent and how many became lazy.
pub fn rewrite(dir: &Path, parent: Option<&Path>, pid: u32, old_form: bool, fate: &dyn Fn(u64) -> Fate) -> (u64, u64) {
    let name = format!("pagemap-{pid}.img");
    let msgs = read_image(&dir.join(&name));
    let head = msgs[0].clone();
    let pages_id = head.u64("pages_id").unwrap();
    let pages_name = format!("pages-{pages_id}.img");
    let pages = std::fs::read(dir.join(&pages_name)).unwrap();
    let nr_form = msgs.iter().skip(1).any(|m| m.has("nr_pages"));
    let (mut child, mut par) = (vec![head.clone()], vec![head.clone()]);
    let (mut child_pages, mut par_pages) = (Vec::new(), Vec::new());
    let (mut moved, mut lazy) = (0, 0);
    let mut off = 0usize;
    let flags_of = |m: &Message| -> u32 {
        let mut f = m.u64("flags").map(|f| f as u32);
        if m.bool("in_parent") == Some(true) {
            f = Some(f.unwrap_or(0) | pe::PARENT);
        }
        f.unwrap_or(pe::PRESENT)
    };
    let parent_entry = |v, n| pagemap_entry(v, n, if old_form { None } else { Some(pe::PARENT) }, old_form, nr_form);
    for m in msgs.iter().skip(1) {
        let vaddr = m.u64("vaddr").unwrap();
        let n = m.u64("nr_pages").or_else(|| m.u64("compat_nr_pages")).unwrap();
        let flags = flags_of(m);
        if flags & pe::PARENT != 0 {
            child.push(parent_entry(vaddr, n));
            par.push(parent_entry(vaddr, n));
            continue;
        }
        if flags & pe::PRESENT == 0 {
            child.push(m.clone());
            continue;
        }
        // Runs of pages with the same fate.
        let mut k = 0;
        while k < n {
            let f = fate(vaddr + k * 4096);
            let mut e = k + 1;
            while e < n && fate(vaddr + e * 4096) == f {
                e += 1;
            }
            let (va, cnt) = (vaddr + k * 4096, e - k);
            let data = &pages[off + (k as usize) * 4096..off + (e as usize) * 4096];
            let keep_flags = if old_form { None } else { Some(flags) };
            match f {
                Fate::Keep => {
                    child.push(pagemap_entry(va, cnt, keep_flags, false, nr_form));
                    child_pages.extend_from_slice(data);
                }
                Fate::Parent => {
                    child.push(parent_entry(va, cnt));
                    par.push(pagemap_entry(va, cnt, keep_flags, false, nr_form));
                    par_pages.extend_from_slice(data);
                    moved += cnt;
                }
                Fate::Lazy => {
                    child.push(pagemap_entry(va, cnt, Some(pe::LAZY), false, nr_form));
                    lazy += cnt;
                }
            }
            k = e;
        }
        off += n as usize * 4096;
    }
    write_pagemap(&dir.join(&name), &child);
    std::fs::write(dir.join(&pages_name), &child_pages).unwrap();
    if let Some(p) = parent {
        std::fs::create_dir_all(p).unwrap();
        write_pagemap(&p.join(&name), &par);
        std::fs::write(p.join(&pages_name), &par_pages).unwrap();
        std::fs::copy(dir.join("inventory.img"), p.join("inventory.img")).unwrap();
        let link = dir.join("parent");
        if let Ok(old) = std::fs::read_link(&link) {
            // The old parent, seen from the new one (all are siblings here).
            std::os::unix::fs::symlink(&old, p.join("parent")).unwrap();
            std::fs::remove_file(&link).unwrap();
        }
        let rel = Path::new("..").join(p.file_name().unwrap());
        std::os::unix::fs::symlink(rel, &link).unwrap();
    }
    (moved, lazy)
}

fn page_no(v: u64) -> u64 {
    v / 4096
}

/// A chain of three: `top` (kept pages), `p1` (every third page),
/// `p2` (every third page after that), as siblings in `root`.
pub fn three_level_chain(src: &Path, root: &Path, pid: u32, old_form: bool) -> PathBuf {
    let top = root.join("top");
    copy_dump(src, &top);
    let (m2, _) = rewrite(&top, Some(&root.join("p2")), pid, old_form, &|v| {
        if page_no(v) % 3 == 1 {
            Fate::Parent
        } else {
            Fate::Keep
        }
    });
    let (m1, _) = rewrite(&top, Some(&root.join("p1")), pid, old_form, &|v| {
        if page_no(v) % 3 == 0 {
            Fate::Parent
        } else {
            Fate::Keep
        }
    });
    assert!(m1 > 2 && m2 > 2, "{m1} {m2}");
    top
}

fn whole(mem: &Memory) -> Vec<(u64, Vec<u8>, Vec<Content>)> {
    mem.vmas()
        .iter()
        .map(|v| {
            let mut b = vec![0u8; v.len() as usize];
            let p = mem.read(v.start, &mut b).unwrap();
            (v.start, b, p.iter().map(|p| p.content).collect())
        })
        .collect()
}

fn check_chain(src: &Path, old_form: bool) {
    let tmp = TempDir::new("chain");
    let pid = Checkpoint::open(src).unwrap().tasks().unwrap()[0].pid;
    let top = three_level_chain(src, tmp.path(), pid, old_form);
    let ck0 = Checkpoint::open(src).unwrap();
    let ck = Checkpoint::open(&top).unwrap();
    let orig = Memory::open(&ck0, pid, &Files::None).unwrap();
    let mem = Memory::open(&ck, pid, &Files::None).unwrap();
    assert_eq!(mem.pagemap().unwrap().levels().len(), 3);
    let (a, b) = (whole(&orig), whole(&mem));
    for ((sa, ba, _), (sb, bb, _)) in a.iter().zip(&b) {
        assert_eq!(sa, sb);
        assert!(ba == bb, "{}: mapping {sa:#x} reads differently through the chain", src.display());
    }
    // Each dumped page comes from the level it was put in.
    let mut levels = [0u64; 3];
    for v in orig.vmas() {
        for p in orig.vma_contents(v) {
            if p.content != (Content::Dumped { level: 0 }) {
                continue;
            }
            let mut a = p.addr;
            while a < p.end() {
                let pp = mem.pieces(a, a + 4096);
                let Content::Dumped { level } = pp[0].content else { panic!("{a:#x}: {:?}", pp[0].content) };
                // Shared memory is not in the private pagemap: level 0.
                let private = orig.pagemap().unwrap().find(a).0 != crit::mem::Found::Hole;
                let want = if !private {
                    0
                } else if page_no(a) % 3 == 0 {
                    1
                } else if page_no(a) % 3 == 1 {
                    2
                } else {
                    0
                };
                assert_eq!(level, want, "page {a:#x}");
                levels[level] += 1;
                a += 4096;
            }
        }
    }
    assert!(levels.iter().all(|n| *n > 0), "{levels:?}");
    // A core from the chain is the core of the original, byte for byte.
    let c0 = make_core(src, &tmp.path().join("c0"), &["--no-files"]);
    let c1 = make_core(&top, &tmp.path().join("c1"), &["--no-files"]);
    assert!(std::fs::read(c0).unwrap() == std::fs::read(c1).unwrap(), "cores differ");
    // crit mem tells what is in the parents.
    let j = mem_json(&top, pid, &[]);
    let maps = match j.get("mappings") {
        Some(Json::Arr(a)) => a.clone(),
        _ => panic!(),
    };
    let sum = |k: &str| -> i128 { maps.iter().map(|m| if let Some(Json::Int(n)) = m.get(k) { *n } else { 0 }).sum() };
    assert_eq!(sum("dumped_in_parents"), ((levels[1] + levels[2]) * 4096) as i128);
    // (Level 0 counts the shared memory's pages too: they are not in the chain.)
    assert_eq!(sum("dumped"), (levels[0] * 4096) as i128);
}

fn mem_json(dir: &Path, pid: u32, extra: &[&str]) -> Json {
    let mut a = vec!["mem", dir.to_str().unwrap()];
    let p = pid.to_string();
    a.push(&p);
    a.push("--json");
    a.push("--no-files");
    a.extend_from_slice(extra);
    let o = crit(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Parser::new(&o.stdout[..]).value().unwrap()
}

#[test]
fn a_chain_reads_like_the_dump_it_was_made_from() {
    // criu41 form (compat_nr_pages, flags), three levels.
    check_chain(&core_fixture().join("images"), false);
}

#[test]
fn a_chain_of_old_entries_reads_the_same() {
    // in_parent and no flags (CRIU < 3), on a 4.2 dump (nr_pages).
    check_chain(&root().join("tests/fixtures/criu42-sleep"), true);
}

#[test]
fn lazy_and_missing_pages_are_reported() {
    let tmp = TempDir::new("lazy");
    let src = core_fixture().join("images");
    let pid = fixture_pid(&src);
    let dir = tmp.path().join("d");
    copy_dump(&src, &dir);
    let orig = Memory::open(&Checkpoint::open(&src).unwrap(), pid, &Files::None).unwrap();
    let heap = orig.vmas().iter().find(|v| v.name == "[heap]").unwrap().clone();
    let (_, lazy) =
        rewrite(&dir, None, pid, false, &|v| if v >= heap.start && v < heap.end { Fate::Lazy } else { Fate::Keep });
    assert_eq!(lazy, 2);
    let ck = Checkpoint::open(&dir).unwrap();
    let mem = Memory::open(&ck, pid, &Files::None).unwrap();
    let t = mem.tally(mem.vma_at(heap.start).unwrap());
    assert_eq!(t.unavailable, vec![(Why::Lazy, 2 * 4096)]);
    assert_eq!(t.dumped_total(), 0);
    // crit mem --addr writes zeros and says why.
    let lazy_at = mem
        .vma_contents(mem.vma_at(heap.start).unwrap())
        .iter()
        .find(|p| p.content == Content::Unavailable(Why::Lazy))
        .unwrap()
        .addr;
    let o = crit(&["mem", dir.to_str().unwrap(), &pid.to_string(), "--addr", &format!("{lazy_at:#x}"), "--len", "16"]);
    assert!(o.status.success());
    assert_eq!(o.stdout, vec![0u8; 16]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("lazy pages"), "{}", String::from_utf8_lossy(&o.stderr));
    // The core has no data for them.
    let core = make_core(&dir, &tmp.path().join("c"), &["--no-files"]);
    let (_, ph, _) = crate::coredump::parse_core(&std::fs::read(core).unwrap());
    let h = ph.iter().find(|p| p.ty == 1 && p.vaddr <= lazy_at && lazy_at < p.vaddr + p.memsz).unwrap();
    assert!(h.vaddr + h.filesz <= lazy_at, "{h:?}");

    // A chain whose parent is gone: those pages are missing, not zeros.
    let dir2 = tmp.path().join("e");
    copy_dump(&src, &dir2);
    rewrite(&dir2, Some(&tmp.path().join("ep")), pid, false, &|v| {
        if v >= heap.start && v < heap.end {
            Fate::Parent
        } else {
            Fate::Keep
        }
    });
    std::fs::remove_dir_all(tmp.path().join("ep")).unwrap();
    let mem = Memory::open(&Checkpoint::open(&dir2).unwrap(), pid, &Files::None).unwrap();
    assert_eq!(mem.tally(mem.vma_at(heap.start).unwrap()).unavailable, vec![(Why::MissingParent, 2 * 4096)]);
    let o = crit(&["mem", dir2.to_str().unwrap(), &pid.to_string(), "--kind", "heap"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("8K in a parent dump that is missing"), "{text}");

    // A loop of parents is refused, with the file named.
    let dir3 = tmp.path().join("f");
    copy_dump(&src, &dir3);
    rewrite(&dir3, Some(&tmp.path().join("fp")), pid, false, &|v| {
        if v >= heap.start && v < heap.end {
            Fate::Parent
        } else {
            Fate::Keep
        }
    });
    rewrite(&tmp.path().join("fp"), None, pid, false, &|_| Fate::Parent);
    std::os::unix::fs::symlink("../f", tmp.path().join("fp/parent")).unwrap_or(());
    let o = crit(&["mem", dir3.to_str().unwrap(), &pid.to_string()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("loops"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Start the fixture's program in `work`, from a copy in `bin`.
fn start_program(bin_dir: &Path, work: &Path) -> u32 {
    std::fs::create_dir_all(bin_dir).unwrap();
    std::fs::create_dir_all(work).unwrap();
    let bin = bin_dir.join("core-threads");
    std::fs::copy(core_fixture().join("root/tmp/crit-core-fixtures/bin/core-threads"), &bin).unwrap();
    let o = Command::new(&bin).arg(work).arg("live").current_dir("/").stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

fn criu_errors(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Error"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The real CRIU restores a chain we crafted, and the restored process has
/// the pages of every level.
#[test]
fn criu_restores_a_crafted_chain() {
    if !is_root() {
        eprintln!("SKIP: needs root to dump and restore with CRIU");
        return;
    }
    let Some(r) = reference() else { return };
    // Our program daemonizes; as its subreaper this test can reap it after
    // the dump (pid 1 here does not), so that its pid is free for restore.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let tmp = TempDir::new("chain-restore");
    let pid = start_program(&tmp.path().join("bin"), &tmp.path().join("work"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dump = tmp.path().join("dump");
    std::fs::create_dir_all(&dump).unwrap();
    let o = Command::new(r.criu())
        .args(["dump", "-t", &pid.to_string(), "-v4", "-o", "dump.log", "-D"])
        .arg(&dump)
        .output()
        .unwrap();
    if !o.status.success() {
        kill(pid);
        panic!("criu dump failed:\n{}", criu_errors(&dump.join("dump.log")));
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    let chain = tmp.path().join("chain");
    std::fs::create_dir_all(&chain).unwrap();
    let top = three_level_chain(&dump, &chain, pid, false);
    let orig = Memory::open(&Checkpoint::open(&dump).unwrap(), pid, &Files::None).unwrap();
    let o =
        Command::new(r.criu()).args(["restore", "-d", "-v4", "-o", "restore.log", "-D"]).arg(&top).output().unwrap();
    let log = criu_errors(&top.join("restore.log"));
    assert!(o.status.success(), "criu restore of the chain failed:\n{log}");
    // Compare the restored memory with the dump, page by page, for every
    // private dumped page of the heap, data and shared mappings (the
    // thread stacks move on after the restore).
    let memf = std::fs::File::open(format!("/proc/{pid}/mem"));
    let mut checked = [0u64; 3];
    let mut bad = Vec::new();
    if let Ok(memf) = memf {
        use std::os::unix::fs::FileExt;
        let chain_mem = Memory::open(&Checkpoint::open(&top).unwrap(), pid, &Files::None).unwrap();
        for v in orig.vmas().iter().filter(|v| {
            v.name == "[heap]"
                || v.name.ends_with("core-threads")
                || v.name.ends_with("short.dat")
                || v.is(crit::mem::Kind::Shared)
        }) {
            for p in orig.vma_contents(v) {
                let Content::Dumped { .. } = p.content else { continue };
                let mut a = p.addr;
                while a < p.end() {
                    let mut want = [0u8; 4096];
                    orig.read(a, &mut want).unwrap();
                    let mut got = [0u8; 4096];
                    memf.read_exact_at(&mut got, a).unwrap();
                    let level = match chain_mem.pieces(a, a + 4096)[0].content {
                        Content::Dumped { level } => level,
                        c => panic!("{a:#x}: {c:?}"),
                    };
                    // glibc's heap bookkeeping may change after restore; compare what the program wrote.
                    if got != want && v.name != "[heap]" {
                        bad.push(format!("{a:#x} (level {level})"));
                    }
                    checked[level] += 1;
                    a += 4096;
                }
            }
        }
        // The heap string made it back, from whatever level holds it.
        let heap = orig.vmas().iter().find(|v| v.name == "[heap]").unwrap();
        let mut h = vec![0u8; heap.len() as usize];
        memf.read_exact_at(&mut h, heap.start).unwrap();
        let marker: &[u8] = b"crit-heap-marker: the quick brown fox";
        assert!(h.windows(marker.len()).any(|w| w == marker), "heap marker lost");
    }
    let alive = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    kill(pid);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    assert_eq!(alive, "core-threads\n");
    assert!(bad.is_empty(), "pages differ after restore: {bad:?}");
    assert!(checked[1] > 0 && checked[2] > 0 && checked[0] > 0, "{checked:?}");
}

// ---------------------------------------------------------------- CLI -

fn fixture_args() -> (PathBuf, u32) {
    let images = core_fixture().join("images");
    let pid = fixture_pid(&images);
    (images, pid)
}

#[test]
fn mem_lists_every_mapping_with_what_was_dumped() {
    let (images, pid) = fixture_args();
    let j = mem_json(&images, pid, &[]);
    let Some(Json::Arr(maps)) = j.get("mappings") else { panic!() };
    let ck = Checkpoint::open(&images).unwrap();
    let vmas: Vec<Message> = ck
        .mm(pid)
        .unwrap()
        .get_all("vmas")
        .filter_map(|v| if let Value::Msg(m) = v { Some(m.clone()) } else { None })
        .collect();
    assert_eq!(maps.len(), vmas.len());
    let int = |m: &Json, k: &str| -> u64 {
        match m.get(k) {
            Some(Json::Int(n)) => *n as u64,
            _ => panic!("{k}"),
        }
    };
    for (m, v) in maps.iter().zip(&vmas) {
        assert_eq!(int(m, "start"), v.u64("start").unwrap());
        assert_eq!(int(m, "end"), v.u64("end").unwrap());
        assert_eq!(
            int(m, "size"),
            int(m, "dumped") + int(m, "from_file") + int(m, "zero") + {
                let Some(Json::Obj(u)) = m.get("unavailable") else { panic!() };
                u.iter().map(|(_, n)| if let Json::Int(n) = n { *n as u64 } else { 0 }).sum::<u64>()
            }
        );
    }
    // All dumped bytes, private and shared, are the pages files' bytes.
    let total: u64 = maps.iter().map(|m| int(m, "dumped")).sum();
    let pages: u64 =
        ["pages-1.img", "pages-2.img"].iter().map(|f| std::fs::metadata(images.join(f)).unwrap().len()).sum();
    assert_eq!(total, pages);
    // The text view: one line per mapping plus header and total.
    let o = crit(&["mem", images.to_str().unwrap(), &pid.to_string(), "--no-files"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), vmas.len() + 2);
    assert!(text.lines().last().unwrap().starts_with(&format!("{} mappings, ", vmas.len())), "{text}");
    assert!(text.contains(" 80K dumped"), "{text}");
    // Filters.
    let sel = |args: &[&str]| -> Vec<u64> {
        let j = mem_json(&images, pid, args);
        let Some(Json::Arr(m)) = j.get("mappings") else { panic!() };
        m.iter().map(|m| int(m, "start")).collect()
    };
    let start_of = |pred: &dyn Fn(&Message) -> bool| -> Vec<u64> {
        vmas.iter().filter(|v| pred(v)).map(|v| v.u64("start").unwrap()).collect()
    };
    assert_eq!(sel(&["--kind", "heap"]), start_of(&|v| v.u64("status").unwrap() & 0x20 != 0));
    assert_eq!(sel(&["--kind", "stack"]), start_of(&|v| v.u64("flags").unwrap() & 0x100 != 0));
    assert_eq!(sel(&["--prot", "r-x"]), start_of(&|v| v.u64("prot").unwrap() == 5));
    assert_eq!(
        sel(&["--prot", "rw-s"]),
        start_of(&|v| v.u64("prot").unwrap() == 3 && v.u64("flags").unwrap() & 1 != 0)
    );
    assert_eq!(sel(&["--kind", "shared,heap"]).len(), 2);
    let heap = start_of(&|v| v.u64("status").unwrap() & 0x20 != 0)[0];
    assert_eq!(sel(&["--from", &format!("{heap:#x}"), "--to", &format!("{:#x}", heap + 1)]), vec![heap]);
    let o = crit(&["mem", images.to_str().unwrap(), &pid.to_string(), "--kind", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let o = crit(&["mem", images.to_str().unwrap(), "999999"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("999999"));
}

#[test]
fn mem_addr_writes_the_bytes_and_hex_is_hexdumps() {
    let (images, pid) = fixture_args();
    let ck = Checkpoint::open(&images).unwrap();
    let mem = Memory::open(&ck, pid, &Files::None).unwrap();
    let heap = mem.vmas().iter().find(|v| v.name == "[heap]").unwrap();
    // Two dumped pages and zeros after: folded lines, a partial line.
    let (a, n) = (heap.start + 0x700, 2 * 4096 + 0x1234);
    let o = crit(&[
        "mem",
        images.to_str().unwrap(),
        &pid.to_string(),
        "--addr",
        &format!("{a:#x}"),
        "--len",
        &n.to_string(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut want = vec![0u8; n];
    mem.read(a, &mut want).unwrap();
    assert!(o.stdout == want);
    assert!(o.stderr.is_empty());
    let o2 = crit(&[
        "mem",
        images.to_str().unwrap(),
        &pid.to_string(),
        "--addr",
        &format!("{a:#x}"),
        "--len",
        &n.to_string(),
        "--hex",
    ]);
    assert!(o2.status.success());
    let ours = String::from_utf8(o2.stdout).unwrap();
    assert!(ours.contains("\n*\n"), "zeros fold");
    if have("hexdump", "to compare with hexdump -C") {
        let tmp = TempDir::new("hexdump");
        let f = tmp.path().join("raw");
        std::fs::write(&f, &want).unwrap();
        let h = Command::new("hexdump").arg("-C").arg(&f).output().unwrap();
        // hexdump counts from 0; we print addresses.
        let theirs: String = String::from_utf8(h.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                if l == "*" {
                    return "*\n".to_string();
                }
                let (off, rest) = l.split_at(8);
                format!("{:08x}{rest}\n", u64::from_str_radix(off, 16).unwrap() + a)
            })
            .collect();
        assert_eq!(ours, theirs);
        // Equal lines only are folded: a page with a changing byte is not.
        let mut d = vec![0u8; 256];
        d[100] = 1;
        d[200] = 0x41;
        let ours = {
            let mut h = crit::mem::view::HexDump::new(Vec::new(), 0);
            h.feed(&d).unwrap();
            String::from_utf8(h.finish().unwrap()).unwrap()
        };
        std::fs::write(&f, &d).unwrap();
        let h = Command::new("hexdump").arg("-C").arg(&f).output().unwrap();
        assert_eq!(ours, String::from_utf8(h.stdout).unwrap());
    }
    // Default length: to the end of the mapping.
    let o = crit(&["mem", images.to_str().unwrap(), &pid.to_string(), "--addr", &format!("{:#x}", heap.end - 10)]);
    assert_eq!(o.stdout.len(), 10);
    // Unmapped: an error.
    let o = crit(&["mem", images.to_str().unwrap(), &pid.to_string(), "--addr", "0x10", "--len", "4"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not mapped"));
    // Text without the file: zeros and a warning; with it, the binary's bytes.
    let text = mem.vmas().iter().find(|v| v.prot == 5).unwrap();
    let at = format!("{:#x}", text.start + 0x2000);
    let o = crit(&["mem", images.to_str().unwrap(), &pid.to_string(), "--addr", &at, "--len", "64", "--no-files"]);
    assert_eq!(o.stdout, vec![0u8; 64]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not available"));
    let root = core_fixture().join("root");
    let o = crit(&[
        "mem",
        images.to_str().unwrap(),
        &pid.to_string(),
        "--addr",
        &at,
        "--len",
        "64",
        "--files-root",
        root.to_str().unwrap(),
    ]);
    let bin = std::fs::read(root.join("tmp/crit-core-fixtures/bin/core-threads")).unwrap();
    let off = (text.pgoff + 0x2000) as usize;
    assert_eq!(o.stdout, &bin[off..off + 64]);
    assert!(o.stderr.is_empty());
}

#[test]
fn mem_search_finds_strings_and_regexes() {
    let (images, pid) = fixture_args();
    let ck = Checkpoint::open(&images).unwrap();
    let mem = Memory::open(&ck, pid, &Files::None).unwrap();
    let run = |args: &[&str]| -> (bool, String) {
        let mut a = vec!["mem", images.to_str().unwrap()];
        let p = pid.to_string();
        a.push(&p);
        a.extend_from_slice(args);
        let o = crit(&a);
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (ok, out) = run(&["--search", "crit-heap-marker"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "{out}");
    let addr = u64::from_str_radix(out.split_whitespace().next().unwrap(), 16).unwrap();
    let mut b = [0u8; 16];
    mem.read(addr, &mut b).unwrap();
    assert_eq!(&b, b"crit-heap-marker");
    assert!(out.contains("[heap]"));
    // A regex over all dumped memory: the heap, the written file page and
    // the shared memory hold a marker; the dumped text page's movabs
    // immediates hold "crit-" followed by code bytes only.
    let (ok, out) = run(&["--regex", "crit-[a-z]+-marker", "--json"]);
    assert!(ok);
    let names: Vec<String> = out
        .lines()
        .map(|l| match Parser::new(l.as_bytes()).value().unwrap().get("name") {
            Some(Json::Str(s)) => String::from_utf8_lossy(s).into_owned(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(names.len(), 3, "{out}");
    assert!(names[0] == "[heap]" && names[1].ends_with("short.dat") && names[2] == "/dev/zero", "{names:?}");
    // Context bytes on both sides.
    let (_, out) = run(&["--search", "quick brown", "--context", "4"]);
    assert!(out.contains("\"the \" \"quick brown\" \" fox\""), "{out}");
    // Filters apply; nothing found is exit status 1.
    let (ok, _) = run(&["--search", "crit-heap-marker", "--kind", "stack"]);
    assert!(!ok);
    let (ok, out) = run(&["--regex", "(?-u)crit-[a-z]", "--max-count", "2"]);
    assert!(ok && out.lines().count() == 2);
    let (ok, _) = run(&["--regex", "("]);
    assert!(!ok);
}

#[test]
fn mem_extract_writes_each_mapping() {
    let (images, pid) = fixture_args();
    let tmp = TempDir::new("extract");
    let out = tmp.path().join("x");
    let root = core_fixture().join("root");
    let o = crit(&[
        "mem",
        images.to_str().unwrap(),
        &pid.to_string(),
        "--extract",
        out.to_str().unwrap(),
        "--files-root",
        root.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = Checkpoint::open(&images).unwrap();
    let mem = Memory::open(&ck, pid, &Files::Root(root.clone())).unwrap();
    let listed = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(listed, mem.vmas().len());
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), mem.vmas().len(), "one file per mapping, no temporaries");
    for v in mem.vmas() {
        let f = out.join(crit::mem::view::extract_name(v));
        let data = std::fs::read(&f).unwrap();
        let mut want = vec![0u8; v.len() as usize];
        mem.read(v.start, &mut want).unwrap();
        assert!(data == want, "{}", f.display());
        if v.len() == 8 << 20 {
            assert!(std::fs::metadata(&f).unwrap().blocks() * 512 < 1 << 20, "sparse");
        }
    }
    // JSON and filters.
    let out2 = tmp.path().join("y");
    let o = crit(&[
        "mem",
        images.to_str().unwrap(),
        &pid.to_string(),
        "--extract",
        out2.to_str().unwrap(),
        "--kind",
        "heap",
        "--json",
    ]);
    assert!(o.status.success());
    let j = Parser::new(&o.stdout[..]).value().unwrap();
    let Json::Arr(a) = j else { panic!() };
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].get("dumped"), Some(&Json::Int(8192)));
}

/// Make mapping `start..end` of process `pid` of dump `dir` fully dumped
/// with `data` (a pagemap entry over it, the pages file rebuilt in order).
fn fill_mapping(dir: &Path, pid: u32, start: u64, end: u64, data: &[u8]) {
    assert_eq!(data.len() as u64, end - start);
    let name = format!("pagemap-{pid}.img");
    let msgs = read_image(&dir.join(&name));
    let pages_name = format!("pages-{}.img", msgs[0].u64("pages_id").unwrap());
    let pages = std::fs::read(dir.join(&pages_name)).unwrap();
    let nr_form = msgs.iter().skip(1).any(|m| m.has("nr_pages"));
    let (mut out, mut out_pages, mut off, mut placed) = (vec![msgs[0].clone()], Vec::new(), 0usize, false);
    for m in msgs.iter().skip(1) {
        let v = m.u64("vaddr").unwrap();
        let n = m.u64("nr_pages").or_else(|| m.u64("compat_nr_pages")).unwrap();
        let present = m.u64("flags").unwrap_or(4) & 4 != 0;
        let bytes = if present { n as usize * 4096 } else { 0 };
        if !placed && v >= start {
            out.push(pagemap_entry(start, (end - start) / 4096, Some(pe::PRESENT), false, nr_form));
            out_pages.extend_from_slice(data);
            placed = true;
        }
        if v < start || v >= end {
            out.push(m.clone());
            out_pages.extend_from_slice(&pages[off..off + bytes]);
        }
        off += bytes;
    }
    assert!(placed);
    write_pagemap(&dir.join(&name), &out);
    std::fs::write(dir.join(&pages_name), out_pages).unwrap();
}

#[test]
fn search_finds_matches_across_its_read_windows() {
    let tmp = TempDir::new("search-win");
    let src = core_fixture().join("images");
    let pid = fixture_pid(&src);
    let orig = Memory::open(&Checkpoint::open(&src).unwrap(), pid, &Files::None).unwrap();
    let v = orig.vmas().iter().find(|v| v.len() == 8 << 20).unwrap().clone();
    let w = 4usize << 20; // the search window
    let put = |d: &mut Vec<u8>, at: usize, s: &[u8]| d[at..at + s.len()].copy_from_slice(s);
    let run = |dir: &Path, args: &[&str]| -> Vec<u64> {
        let mut a = vec!["mem", dir.to_str().unwrap()];
        let p = pid.to_string();
        a.push(&p);
        a.extend_from_slice(args);
        let o = crit(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| u64::from_str_radix(l.split_whitespace().next().unwrap(), 16).unwrap())
            .collect()
    };
    let (s, wu) = (v.start, w as u64);

    let dir = tmp.path().join("d");
    copy_dump(&src, &dir);
    let mut data = vec![b'.'; v.len() as usize];
    put(&mut data, 10, b"crit-win-marker");
    put(&mut data, w - 7, b"crit-win-marker"); // straddles the window end
    put(&mut data, w + 100, b"crit-win-marker");
    put(&mut data, v.len() as usize - 15, b"crit-win-marker"); // the very end
    fill_mapping(&dir, pid, v.start, v.end, &data);
    assert_eq!(run(&dir, &["--search", "crit-win-marker"]), vec![s + 10, s + wu - 7, s + wu + 100, s + v.len() - 15]);

    // Matches do not overlap, across the window end too: one pass's answer.
    let dir = tmp.path().join("e");
    copy_dump(&src, &dir);
    let mut data = vec![b'.'; v.len() as usize];
    put(&mut data, w - 4, b"aaaaaaaa");
    fill_mapping(&dir, pid, v.start, v.end, &data);
    assert_eq!(run(&dir, &["--search", "aaa"]), vec![s + wu - 4, s + wu - 1]);
    let (from, to) = (format!("{:#x}", s + wu - 100), format!("{:#x}", s + wu + 100));
    assert_eq!(run(&dir, &["--regex", "a{3}", "--from", &from, "--to", &to]), vec![s + wu - 4, s + wu - 1]);
}
