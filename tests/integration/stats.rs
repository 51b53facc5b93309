//! `crit stats` on every fixture: golden files (tests/golden/views/*/stats.*,
//! `CRIT_BLESS=1` rewrites them), every number checked against a count made
//! here by a simple loop over the decoded images or the files on disk, and
//! the same numbers from container checkpoint archives.

use std::path::Path;

use crit::checkpoint::Checkpoint;
use crit::json::Json;

use crate::util::*;
use crate::views::{arr, entries, golden, int, make_archive, relative, render, string, views_golden_dir};

fn stats_json(ck: &Checkpoint) -> Json {
    let (out, notes) = render(ck, "stats", true);
    assert!(notes.is_empty(), "{}: {notes:?}", ck.source().display());
    crit::json::parse::parse_slice(out.as_bytes()).unwrap()
}

fn at<'a>(j: &'a Json, path: &str) -> &'a Json {
    let mut cur = j;
    for k in path.split('.') {
        cur = cur.get(k).unwrap_or_else(|| panic!("no {path} in stats"));
    }
    cur
}

fn n(j: &Json, path: &str) -> i128 {
    int(Some(at(j, path)))
}

fn named(fx: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    images(fx).into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix)).collect()
}

#[test]
fn stats_match_goldens() {
    let mut failures = Vec::new();
    for fx in fixtures() {
        let ck = Checkpoint::open(&fx).unwrap();
        for (json, file) in [(false, "stats.txt"), (true, "stats.json")] {
            let (out, notes) = render(&ck, "stats", json);
            if !notes.is_empty() {
                failures.push(format!("{} stats: {notes:?}", fx.display()));
            }
            golden(&views_golden_dir(&fx).join(file), &relative(&out), &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stats_agree_with_independent_counts() {
    for fx in fixtures() {
        let name = fx.file_name().unwrap().to_string_lossy().into_owned();
        let ck = Checkpoint::open(&fx).unwrap();
        let s = stats_json(&ck);
        let ctx = |what: &str| format!("{name}: {what}");

        // Tasks: pstree entries; threads: core images with a thread part
        // (a dead task's core has none); dead: task_state 2.
        let pstree = entries(&fx.join("pstree.img"));
        assert_eq!(n(&s, "tasks.processes"), pstree.len() as i128, "{}", ctx("processes"));
        let cores: Vec<Json> = named(&fx, "core-").iter().map(|p| entries(p).remove(0)).collect();
        let threads = cores.iter().filter(|c| c.get("thread_core").is_some()).count();
        assert_eq!(n(&s, "tasks.threads"), threads as i128, "{}", ctx("threads"));
        let dead = cores.iter().filter(|c| int(c.get("tc").and_then(|t| t.get("task_state"))) == 2).count();
        assert_eq!(n(&s, "tasks.dead"), dead as i128, "{}", ctx("dead"));

        // Pages: what is present in the pagemaps is what the pages files
        // hold, by size; and what CRIU says it wrote.
        let pages_bytes: u64 = named(&fx, "pages-").iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
        let present = n(&s, "memory.total.pages_present") + n(&s, "memory.shared.pages_present");
        assert_eq!(present * 4096, pages_bytes as i128, "{}", ctx("present pages"));
        assert_eq!(n(&s, "images.pages_bytes"), pages_bytes as i128);
        if let Some(Json::Obj(_)) = s.get("dump_stats") {
            let written = n(&s, "dump_stats.pages_written")
                + match at(&s, "dump_stats").get("shpages_written") {
                    Some(Json::Int(i)) => *i,
                    _ => 0,
                };
            assert_eq!(written, present, "{}", ctx("pages written by CRIU"));
        }
        // Image files and bytes on disk.
        let all = images(&fx);
        assert_eq!(n(&s, "images.files"), all.len() as i128);
        let bytes: u64 = all.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
        assert_eq!(n(&s, "images.bytes"), bytes as i128);
        // Mapped bytes: the VMAs of every mm image.
        let mapped: i128 = named(&fx, "mm-")
            .iter()
            .flat_map(|p| entries(p))
            .flat_map(|mm| arr(mm.get("vmas")))
            .map(|v| int(v.get("end")) - int(v.get("start")))
            .sum();
        assert_eq!(n(&s, "memory.total.mapped_bytes"), mapped, "{}", ctx("mapped"));

        // Files by type, and sockets, counted from files.img.
        let files = entries(&fx.join("files.img"));
        let by_type = at(&s, "files.by_type");
        for f in &files {
            let ty = string(f.get("type"));
            let want = files.iter().filter(|g| string(g.get("type")) == ty).count();
            assert_eq!(int(by_type.get(&ty)), want as i128, "{}", ctx(&ty));
        }
        let socks = files.iter().filter(|f| string(f.get("type")).ends_with("SK")).count();
        let counted: i128 = arr(s.get("sockets")).iter().map(|x| int(x.get("count"))).sum();
        assert_eq!(counted, socks as i128, "{}", ctx("sockets"));
        // fds: every fdinfo entry (no fixture shares an fd table).
        let fds: usize = named(&fx, "fdinfo-").iter().map(|p| entries(p).len()).sum();
        assert_eq!(n(&s, "files.fds"), fds as i128, "{}", ctx("fds"));
        // Ghost files: one ghost-file image each.
        assert_eq!(n(&s, "files.ghost_files"), named(&fx, "ghost-file-").len() as i128, "{}", ctx("ghosts"));

        // Queued bytes.
        for (img, key) in [("pipes-data.img", "pipes"), ("fifo-data.img", "fifos")] {
            let want: i128 = if fx.join(img).exists() {
                entries(&fx.join(img)).iter().map(|e| int(e.get("bytes"))).sum()
            } else {
                0
            };
            assert_eq!(n(&s, &format!("queued.{key}.bytes")), want, "{}", ctx(key));
        }
        let q = if fx.join("sk-queues.img").exists() { entries(&fx.join("sk-queues.img")) } else { Vec::new() };
        let qs = at(&s, "queued").get("socket packets (sk-queues)").unwrap();
        assert_eq!(int(qs.get("count")), q.len() as i128);
        assert_eq!(int(qs.get("bytes")), q.iter().map(|e| int(e.get("length"))).sum::<i128>());
        let tcp: i128 = named(&fx, "tcp-stream-").iter().map(|p| int(entries(p)[0].get("inq_len"))).sum();
        assert_eq!(int(at(&s, "queued").get("tcp receive queues").and_then(|x| x.get("bytes"))), tcp);

        // SysV IPC.
        let shm: Vec<Json> = named(&fx, "ipcns-shm-").iter().flat_map(|p| entries(p)).collect();
        let ipc = at(&s, "ipc");
        assert_eq!(int(ipc.get("shared memory segments").and_then(|x| x.get("count"))), shm.len() as i128);
        let msgq: Vec<Json> = named(&fx, "ipcns-msg-").iter().flat_map(|p| entries(p)).collect();
        assert_eq!(
            int(ipc.get("queued messages").and_then(|x| x.get("count"))),
            msgq.iter().map(|e| int(e.get("qnum"))).sum::<i128>()
        );

        // POSIX timers, from the cores.
        let posix: usize = cores
            .iter()
            .map(|c| arr(c.get("tc").and_then(|t| t.get("timers")).and_then(|t| t.get("posix"))).len())
            .sum();
        assert_eq!(int(at(&s, "timers").get("posix timers")), posix as i128, "{}", ctx("posix timers"));
    }
}

#[test]
fn stats_of_documented_fixtures() {
    // What tests/fixtures/README.md says the programs set up.
    let s = stats_json(&Checkpoint::open(root().join("tests/fixtures/criu41-timers")).unwrap());
    assert_eq!(int(at(&s, "timers").get("posix timers")), 4);
    assert_eq!(int(at(&s, "timers").get("interval timers armed")), 3);
    let s = stats_json(&Checkpoint::open(root().join("tests/fixtures/criu41-namespaces")).unwrap());
    for (kind, own) in
        [("pid", 1), ("net", 1), ("ipc", 1), ("uts", 1), ("mnt", 1), ("time", 1), ("user", 0), ("cgroup", 0)]
    {
        assert_eq!(n(&s, &format!("namespaces.{kind}.own")), own, "{kind}");
    }
    let s = stats_json(&Checkpoint::open(root().join("tests/fixtures/criu41-ipc")).unwrap());
    let ipc = at(&s, "ipc");
    assert_eq!(int(ipc.get("semaphore sets").and_then(|x| x.get("semaphores"))), 3);
    assert_eq!(int(ipc.get("queued messages").and_then(|x| x.get("bytes"))), 13 + 47);
    let s = stats_json(&Checkpoint::open(root().join("tests/fixtures/criu41-pipes")).unwrap());
    assert_eq!(n(&s, "queued.pipes.bytes"), 11 + 3000 + 13);
    assert_eq!(n(&s, "queued.fifos.bytes"), 14);
    let s = stats_json(&Checkpoint::open(root().join("tests/fixtures/criu41-tree")).unwrap());
    assert_eq!((n(&s, "tasks.processes"), n(&s, "tasks.dead")), (6, 1));
}

#[test]
fn stats_of_archives_are_those_of_the_directory() {
    let tmp = TempDir::new("stats-archive");
    for name in ["criu41-tree", "criu41-ipc", "criu42-tcp"] {
        let fx = root().join("tests/fixtures").join(name);
        let want = stats_json(&Checkpoint::open(&fx).unwrap());
        for kind in ["tar", "tar.gz", "tar.zst"] {
            let p = make_archive(&fx, tmp.path(), kind, 0);
            let got = stats_json(&Checkpoint::open(&p).unwrap());
            let (Json::Obj(a), Json::Obj(b)) = (&got, &want) else { panic!() };
            for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
                assert_eq!(ka, kb);
                if ka != "source" && ka != "container" {
                    assert_eq!(va, vb, "{name}.{kind}: {ka}");
                }
            }
            assert_eq!(string(at(&got, "source").get("format")), kind);
            assert_eq!(n(&got, "source.archive_bytes"), std::fs::metadata(&p).unwrap().len() as i128);
            assert_eq!(string(at(&got, "source").get("image_root")), "checkpoint/");
            let c = at(&got, "container");
            assert_eq!(string(c.get("engine")), "Podman");
            assert_eq!(string(c.get("name")), "fixture-web");
            assert_eq!(string(c.get("image")), "docker.io/library/busybox:latest");
            assert_eq!(string(c.get("runtime")), "crun");
            assert_eq!(string(c.get("created")), "2025-01-02T03:04:05.678Z");
            assert_eq!(at(&want, "container"), &Json::Null);
        }
    }
}

#[test]
fn cli_stats() {
    let fx = root().join("tests/fixtures/criu41-ghost");
    let ck = Checkpoint::open(&fx).unwrap();
    for (args, json) in
        [(vec!["stats", fx.to_str().unwrap()], false), (vec!["stats", fx.to_str().unwrap(), "--json"], true)]
    {
        let out = crit(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), render(&ck, "stats", json).0);
    }
    let s = stats_json(&ck);
    assert_eq!(n(&s, "files.ghost_files"), 4);
    assert!(n(&s, "files.ghost_bytes") > 0);
}
