//! `crit convert`: each transform on real dumps, refusals, merge/split
//! round trips, and the real CRIU 4.1.1 restoring what we converted.

use std::path::Path;
use std::process::Command;

use crit::checkpoint::Checkpoint;
use crit::convert::{self, criu_version_bound, Options, Version};
use crit::image::ImageReader;
use crit::wire::{Message, Value};

use crate::util::*;

fn fixture(name: &str) -> std::path::PathBuf {
    fixtures().into_iter().find(|f| f.ends_with(name)).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for img in images(from) {
        std::fs::copy(&img, to.join(img.file_name().unwrap())).unwrap();
    }
}

fn entries(path: &Path) -> Vec<Message> {
    let data = std::fs::read(path).unwrap();
    let rd = ImageReader::open(&data[..]).unwrap();
    rd.map(|r| r.unwrap().0.msg).collect()
}

fn pagemap_of(dir: &Path) -> std::path::PathBuf {
    images(dir)
        .into_iter()
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("pagemap-") && !p.to_string_lossy().contains("shmem")
        })
        .unwrap()
}

fn to(v: &str) -> Options {
    Options { to: v.parse().unwrap(), force: false, link: false }
}

#[test]
fn down_to_41_copies_nr_pages_into_the_old_field() {
    let src = fixture("criu42-sleep");
    let tmp = TempDir::new("conv-down");
    let dst = tmp.path().join("out");
    let r = convert::convert(&src, &dst, &to("4.1")).unwrap();
    assert_eq!(r.from, Version(4, 2));
    assert!(r.steps.iter().any(|s| s.transform == "pagemap-nr-pages-down"), "{:?}", r.steps);
    let before = entries(&pagemap_of(&src));
    let after = entries(&pagemap_of(&dst));
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after).skip(1) {
        assert_eq!(b.u64("compat_nr_pages"), Some(0), "4.2 writes 0 there");
        assert_eq!(a.u64("compat_nr_pages"), b.u64("nr_pages"));
        assert_eq!(a.u64("nr_pages"), b.u64("nr_pages"), "field 5 kept for 4.2");
    }
    // Everything else is copied byte for byte; the source is untouched.
    for img in images(&src) {
        let name = img.file_name().unwrap();
        if !name.to_string_lossy().starts_with("pagemap-") {
            assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(dst.join(name)).unwrap(), "{name:?}");
        }
    }
    assert!(!tmp.path().read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("crit-convert")));
}

#[test]
fn up_to_42_writes_the_42_layout_and_back() {
    let src = fixture("criu41-pipes");
    let tmp = TempDir::new("conv-up");
    let up = tmp.path().join("up");
    let r = convert::convert(&src, &up, &to("4.2")).unwrap();
    assert!(r.steps.iter().any(|s| s.transform == "pagemap-nr-pages-up"));
    for (b, a) in entries(&pagemap_of(&src)).iter().zip(&entries(&pagemap_of(&up))).skip(1) {
        assert!(!b.has("nr_pages"));
        assert_eq!(a.u64("nr_pages"), b.u64("compat_nr_pages"));
        assert_eq!(a.u64("compat_nr_pages"), Some(0));
    }
    let (v, _) = criu_version_bound(&Checkpoint::open(&up).unwrap()).unwrap();
    assert_eq!(v, Version(4, 2));
    let down = tmp.path().join("down");
    convert::convert(&up, &down, &to("4.1")).unwrap();
    for (b, a) in entries(&pagemap_of(&src)).iter().zip(&entries(&pagemap_of(&down))).skip(1) {
        assert_eq!(a.u64("compat_nr_pages"), b.u64("compat_nr_pages"));
    }
}

#[test]
fn refusals_and_guards() {
    let tmp = TempDir::new("conv-refuse");
    // allow_uprobes cannot go below 4.2 unless forced.
    let src = fixture("criu42-uprobe");
    let e = convert::convert(&src, &tmp.path().join("a"), &to("4.1")).unwrap_err();
    assert!(e.to_string().contains("allow_uprobes") && e.to_string().contains("--force"), "{e}");
    assert!(!tmp.path().join("a").exists(), "nothing written on refusal");
    let r = convert::convert(&src, &tmp.path().join("a"), &Options { to: Version(4, 1), force: true, link: false })
        .unwrap();
    assert!(r.steps.iter().any(|s| s.safety == convert::Safety::Refused));
    // Below the floor, into the source, into a non-empty directory.
    assert!(convert::convert(&src, &tmp.path().join("b"), &to("3.14")).unwrap_err().to_string().contains("3.15"));
    assert!(convert::convert(&src, &src, &to("4.1")).is_err());
    std::fs::create_dir(tmp.path().join("c")).unwrap();
    std::fs::write(tmp.path().join("c/x"), b"x").unwrap();
    assert!(convert::convert(&src, &tmp.path().join("c"), &to("4.1")).is_err());
    assert!(convert::convert(&src, &tmp.path().join("d"), &to("9.9")).is_err());
    // pidfds need 4.1.
    let d = tmp.path().join("pid");
    copy_dir(&fixture("criu42-sleep"), &d);
    std::fs::copy(root().join("tests/fixtures/crafted/pidfd.img"), d.join("pidfd.img")).unwrap();
    let e = convert::convert(&d, &tmp.path().join("e"), &to("4.0")).unwrap_err();
    assert!(e.to_string().contains("pidfd"), "{e}");
}

#[test]
fn legacy_file_images_split_and_merge_back() {
    let src = fixture("criu41-fdtypes");
    let tmp = TempDir::new("conv-legacy");
    let old = tmp.path().join("old");
    copy_dir(&src, &old);
    let moved = convert::split_file_images(&old).unwrap();
    assert!(moved >= 5, "{moved}");
    assert!(old.join("eventfd.img").exists() && old.join("reg-files.img").exists());
    let new = tmp.path().join("new");
    let r = convert::convert(&old, &new, &to("4.2")).unwrap();
    assert!(r.steps.iter().any(|s| s.transform == "merge-file-images"));
    assert!(!new.join("eventfd.img").exists());
    let mut a: Vec<Vec<u8>> = entries(&src.join("files.img")).iter().map(Message::to_bytes).collect();
    let mut b: Vec<Vec<u8>> = entries(&new.join("files.img")).iter().map(Message::to_bytes).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same file entries after split and merge");
}

/// Take per-task data out of core and mm into the images CRIU wrote
/// before 1.3-3.1, as the old layout had it.
fn unmerge_task_images(dir: &Path, pid: u32) {
    let core_path = dir.join(format!("core-{pid}.img"));
    let mut core = entries(&core_path).remove(0);
    let kind = |n: &str| crit::magic::by_name(n).unwrap();
    let write = |name: &str, k: &'static crit::magic::ImageKind, msgs: Vec<Message>| {
        let mut w = crit::image::ImageWriter::new(Vec::new(), k).unwrap();
        for m in &msgs {
            w.write_message(m).unwrap();
        }
        std::fs::write(dir.join(name), w.finish().unwrap()).unwrap();
    };
    let Some(Value::Msg(tc)) = core.get_mut("tc") else { panic!() };
    let rl: Vec<Message> = tc
        .msg("rlimits")
        .unwrap()
        .get_all("rlimits")
        .map(|v| if let Value::Msg(m) = v { m.clone() } else { panic!() })
        .collect();
    let sa: Vec<Message> =
        tc.get_all("sigactions").map(|v| if let Value::Msg(m) = v { m.clone() } else { panic!() }).collect();
    let num_rl = tc.field_desc("rlimits").unwrap().number;
    let num_sa = tc.field_desc("sigactions").unwrap().number;
    tc.fields.retain(|(n, _)| *n != num_rl && *n != num_sa);
    write(&format!("rlimit-{pid}.img"), kind("RLIMIT"), rl);
    write(&format!("sigacts-{pid}.img"), kind("SIGACT"), sa);
    let Some(Value::Msg(th)) = core.get_mut("thread_core") else { panic!() };
    let creds = th.msg("creds").unwrap().clone();
    let num = th.field_desc("creds").unwrap().number;
    th.fields.retain(|(n, _)| *n != num);
    write(&format!("creds-{pid}.img"), kind("CREDS"), vec![creds]);
    write(&format!("core-{pid}.img"), kind("CORE"), vec![core]);
    let mm_path = dir.join(format!("mm-{pid}.img"));
    let mut mm = entries(&mm_path).remove(0);
    let vmas: Vec<Message> =
        mm.get_all("vmas").map(|v| if let Value::Msg(m) = v { m.clone() } else { panic!() }).collect();
    let num = mm.field_desc("vmas").unwrap().number;
    mm.fields.retain(|(n, _)| *n != num);
    write(&format!("vmas-{pid}.img"), kind("VMAS"), vmas);
    write(&format!("mm-{pid}.img"), kind("MM"), vec![mm]);
}

#[test]
fn legacy_task_images_move_back_into_core_and_mm() {
    let src = fixture("criu42-sleep");
    let pid = Checkpoint::open(&src).unwrap().tasks().unwrap()[0].pid;
    let tmp = TempDir::new("conv-task");
    let old = tmp.path().join("old");
    copy_dir(&src, &old);
    unmerge_task_images(&old, pid);
    assert_ne!(
        std::fs::read(old.join(format!("core-{pid}.img"))).unwrap(),
        std::fs::read(src.join(format!("core-{pid}.img"))).unwrap()
    );
    let new = tmp.path().join("new");
    let r = convert::convert(&old, &new, &to("4.2")).unwrap();
    assert!(r.steps.iter().filter(|s| s.transform == "task-images-into-core").count() >= 4, "{:?}", r.steps);
    for name in [format!("core-{pid}.img"), format!("mm-{pid}.img")] {
        assert_eq!(std::fs::read(new.join(&name)).unwrap(), std::fs::read(src.join(&name)).unwrap(), "{name}");
    }
    for gone in ["rlimit-", "sigacts-", "creds-", "vmas-"] {
        assert!(!new.join(format!("{gone}{pid}.img")).exists());
    }
}

// ---------------------------------------------------------------------------
// With the real CRIU 4.1.1.

fn restore(r: &Reference, dir: &Path) -> bool {
    let o = Command::new(r.criu()).args(["restore", "-d", "-v4", "-o", "restore.log", "-D"]).arg(dir).output().unwrap();
    if !o.status.success() {
        eprintln!("restore of {} failed:\n{}", dir.display(), errors_of(&dir.join("restore.log")));
    }
    o.status.success()
}

fn kill(pid: u32) {
    kill_and_reap(pid);
}

#[test]
fn real_criu_41_restores_what_we_convert_down_and_not_the_42_layout() {
    if !is_root() {
        eprintln!("SKIP: needs root to dump and restore with CRIU");
        return;
    }
    let Some(r) = reference() else { return };
    let tmp = TempDir::new("conv-real");
    let dump = tmp.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let (mut child, pid) = spawn_sleep();
    let o = Command::new(r.criu())
        .args(["dump", "-v4", "-o", "dump.log", "-t", &pid.to_string(), "-D"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "dump: {}", errors_of(&dump.join("dump.log")));
    let _ = child.wait();
    // Up to the 4.2 layout: CRIU 4.1.1 cannot restore that.
    let up = tmp.path().join("up");
    convert::convert(&dump, &up, &to("4.2")).unwrap();
    assert!(!restore(r, &up), "CRIU 4.1.1 must fail on the 4.2 pagemap layout");
    kill(pid);
    // Down again: it restores.
    let down = tmp.path().join("down");
    convert::convert(&up, &down, &to("4.1")).unwrap();
    assert!(restore(r, &down), "CRIU 4.1.1 restores the converted dump");
    kill(pid);
    // The old per-type file images, which CRIU still reads, and merged back.
    let old = tmp.path().join("old");
    copy_dir(&dump, &old);
    assert!(convert::split_file_images(&old).unwrap() > 0);
    // CRIU 4.1.1 still has the code that reads these images, but it
    // crashes in it (it collects memfd files from an image template that has
    // no file name), so a legacy dump does not restore without the merge.
    assert!(!restore(r, &old), "CRIU 4.1.1 was expected to fail on the legacy file layout");
    kill(pid);
    let merged = tmp.path().join("merged");
    convert::convert(&old, &merged, &to("4.1")).unwrap();
    assert!(merged.join("files.img").exists() && !merged.join("reg-files.img").exists());
    assert!(restore(r, &merged));
    kill(pid);
}

#[test]
fn tcp_options_go_back_to_the_old_fields_below_40() {
    let src = fixture("criu42-tcp");
    let tmp = TempDir::new("conv-tcp");
    let dst = tmp.path().join("out");
    let r = convert::convert(&src, &dst, &Options { to: Version(3, 19), force: true, link: false }).unwrap();
    assert!(r.steps.iter().any(|s| s.transform == "tcp-opts-old-fields"), "{:?}", r.steps);
    let mut n = 0;
    for (b, a) in entries(&src.join("files.img")).iter().zip(&entries(&dst.join("files.img"))) {
        let (Some(bi), Some(ai)) = (b.msg("isk"), a.msg("isk")) else { continue };
        let Some(t) = bi.msg("tcp_opts") else { continue };
        let so = ai.msg("opts").unwrap();
        for (from, to) in [("keepcnt", "tcp_keepcnt"), ("keepidle", "tcp_keepidle"), ("keepintvl", "tcp_keepintvl")] {
            assert_eq!(so.u64(to), t.u64(from), "{to}");
        }
        assert_eq!(ai.msg("tcp_opts"), bi.msg("tcp_opts"), "tcp_opts kept");
        n += 1;
    }
    assert!(n >= 4, "{n} inet sockets with tcp_opts");
}

#[test]
fn cg_set_goes_back_to_the_task_below_318() {
    let src = fixture("criu42-sleep");
    let pid = Checkpoint::open(&src).unwrap().tasks().unwrap()[0].pid;
    let tmp = TempDir::new("conv-cg");
    let dst = tmp.path().join("out");
    let before = entries(&src.join(format!("core-{pid}.img"))).remove(0);
    let th = before.msg("thread_core").unwrap().u64("cg_set").expect("4.2 writes thread cg_set");
    convert::convert(&src, &dst, &Options { to: Version(3, 17), force: true, link: false }).unwrap();
    let after = entries(&dst.join(format!("core-{pid}.img"))).remove(0);
    assert_eq!(after.msg("tc").unwrap().u64("cg_set"), Some(th));
}

#[test]
fn old_pagemap_entries_get_flags() {
    let src = fixture("criu41-pipes");
    let tmp = TempDir::new("conv-flags");
    let old = tmp.path().join("old");
    copy_dir(&src, &old);
    let pm = pagemap_of(&old);
    let mut msgs = entries(&pm);
    for m in msgs.iter_mut().skip(1) {
        let num = m.field_desc("flags").unwrap().number;
        m.fields.retain(|(n, _)| *n != num);
    }
    let mut w = crit::image::ImageWriter::new(Vec::new(), crit::magic::by_name("PAGEMAP").unwrap()).unwrap();
    for m in &msgs {
        w.write_message(m).unwrap();
    }
    std::fs::write(&pm, w.finish().unwrap()).unwrap();
    let new = tmp.path().join("new");
    let r = convert::convert(&old, &new, &to("4.1")).unwrap();
    assert!(r.steps.iter().any(|s| s.transform == "pagemap-flags"));
    for m in entries(&pagemap_of(&new)).iter().skip(1) {
        assert_eq!(m.u64("flags"), Some(4), "PE_PRESENT, as CRIU assumes for entries without flags");
    }
}

#[test]
fn epoll_and_fsnotify_side_images_merge_into_their_files() {
    let crafted = root().join("tests/fixtures/crafted");
    let tmp = TempDir::new("conv-fsn");
    let old = tmp.path().join("old");
    std::fs::create_dir(&old).unwrap();
    for n in
        ["eventpoll.img", "eventpoll-tfd.img", "inotify.img", "inotify-wd.img", "fanotify.img", "fanotify-mark.img"]
    {
        std::fs::copy(crafted.join(n), old.join(n)).unwrap();
    }
    let tfds = entries(&old.join("eventpoll-tfd.img")).len();
    let new = tmp.path().join("new");
    let r = convert::convert(&old, &new, &to("4.2")).unwrap();
    assert_eq!(r.steps.iter().filter(|s| s.transform == "merge-fsnotify-epoll").count(), 3, "{:?}", r.steps);
    for gone in ["eventpoll-tfd.img", "inotify-wd.img", "fanotify-mark.img", "eventpoll.img"] {
        assert!(!new.join(gone).exists(), "{gone}");
    }
    let files = entries(&new.join("files.img"));
    let merged: usize = files.iter().filter_map(|f| f.msg("epfd")).map(|e| e.get_all("tfd").count()).sum();
    assert_eq!(merged, tfds);
    assert!(files.iter().filter_map(|f| f.msg("ify")).any(|i| i.get_all("wd").count() > 0));
    assert!(files.iter().filter_map(|f| f.msg("ffy")).any(|i| i.get_all("mark").count() > 0));
}

/// Every present page of `orig` (a dump without parents) reads the same
/// through `other`'s pagemap (which may be a chain).
fn same_memory(orig: &Path, other: &Path, name: &str) {
    use crit::mem::{Found, Pagemap};
    let a = Pagemap::open(orig, name).unwrap().unwrap();
    let b = Pagemap::open(other, name).unwrap().unwrap();
    let mut pages = 0;
    for r in a.levels()[0].runs().to_vec() {
        if !r.in_file() {
            continue;
        }
        for i in 0..r.pages {
            let addr = r.vaddr + i * 4096;
            let (Found::Pages { level: la, offset: oa }, _) = a.find(addr) else { panic!("{addr:#x}") };
            let (Found::Pages { level: lb, offset: ob }, _) = b.find(addr) else {
                panic!("{addr:#x} not in {}", other.display())
            };
            let (mut x, mut y) = (vec![0u8; 4096], vec![0u8; 4096]);
            a.read_pages(la, oa, &mut x).unwrap();
            b.read_pages(lb, ob, &mut y).unwrap();
            assert!(x == y, "page {addr:#x} differs");
            pages += 1;
        }
    }
    assert!(pages > 10);
}

#[test]
fn a_pre_dump_chain_is_flattened() {
    let src = fixture("criu42-sleep");
    let pid = Checkpoint::open(&src).unwrap().tasks().unwrap()[0].pid;
    let tmp = TempDir::new("conv-flat");
    let top = crate::mem::three_level_chain(&src, tmp.path(), pid, false);
    let name = format!("pagemap-{pid}.img");
    assert!(crit::flatten::needs_parent(&top, &name).unwrap());
    let flat = tmp.path().join("flat");
    let r = convert::convert(&top, &flat, &to("4.2")).unwrap();
    assert!(r.steps.iter().any(|s| s.transform == "flatten-chain"), "{:?}", r.steps);
    assert!(std::fs::symlink_metadata(flat.join("parent")).is_err(), "no parent link left");
    assert!(!crit::flatten::needs_parent(&flat, &name).unwrap());
    for m in entries(&flat.join(&name)).iter().skip(1) {
        assert_eq!(m.u64("flags").unwrap() & 1, 0, "no PE_PARENT entry left");
    }
    same_memory(&src, &flat, &name);
    same_memory(&src, &top, &name);
    // The flattened pagemap and pages are what serve streams for the chain.
    let pm = crit::flatten::write_pagemap(&top, &name, Vec::new()).unwrap();
    assert_eq!(pm, std::fs::read(flat.join(&name)).unwrap());
}

#[test]
fn real_criu_restores_a_flattened_chain() {
    if !is_root() {
        eprintln!("SKIP: needs root to dump and restore with CRIU");
        return;
    }
    let Some(r) = reference() else { return };
    let tmp = TempDir::new("conv-flat-real");
    let dump = tmp.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let (mut child, pid) = spawn_sleep();
    let o = Command::new(r.criu())
        .args(["dump", "-v4", "-o", "dump.log", "-t", &pid.to_string(), "-D"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "dump: {}", errors_of(&dump.join("dump.log")));
    let _ = child.wait();
    let chain = tmp.path().join("chain");
    std::fs::create_dir(&chain).unwrap();
    let top = crate::mem::three_level_chain(&dump, &chain, pid, false);
    let flat = tmp.path().join("flat");
    convert::convert(&top, &flat, &to("4.1")).unwrap();
    assert!(restore(r, &flat), "CRIU 4.1.1 restores the flattened chain");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    kill(pid);
    assert_eq!(comm, "sleep\n");
}
