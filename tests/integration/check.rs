//! `crit check`: every real dump checks clean; corrupted copies of them
//! (made here, in scratch directories) are each caught with the right
//! finding: image, entry and field; the JSON shape and the exit codes.

use std::fs;
use std::path::{Path, PathBuf};

use crit::check::{self, Finding, Report, Severity, Version};
use crit::checkpoint::Checkpoint;
use crit::image::{Extra, ImageReader, ImageWriter};
use crit::schema::Type;
use crit::wire::{Message, Value};

use crate::util::*;

// ---------------------------------------------------------------------------
// Helpers

/// The dumps of real CRIU runs.
fn dumps() -> Vec<PathBuf> {
    fixtures()
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("criu41-") || n.starts_with("criu42-")
        })
        .collect()
}

fn run_check(dir: &Path) -> Report {
    let ck = Checkpoint::open(dir).unwrap();
    check::check(&ck).unwrap()
}

/// A scratch copy of a fixture.
fn copy_fixture(name: &str) -> TempDir {
    let tmp = TempDir::new(&format!("check-{name}"));
    for p in images(&root().join("tests/fixtures").join(name)) {
        fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    tmp
}

/// The first image (sorted) whose name starts with `prefix`.
fn file(dir: &Path, prefix: &str) -> String {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v.into_iter().next().unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()))
}

/// Decode an image, let `f` change (or drop, returning false) each entry,
/// and write it back with the payloads.
fn rewrite(dir: &Path, name: &str, mut f: impl FnMut(usize, &mut Message) -> bool) {
    let path = dir.join(name);
    let data = fs::read(&path).unwrap();
    let mut rd = ImageReader::open(&data[..]).unwrap();
    let kind = rd.kind();
    let mut entries: Vec<(Message, Extra)> = Vec::new();
    while let Some(item) = rd.next_item().unwrap() {
        let extra = rd.read_extra().unwrap();
        entries.push((item.msg, extra));
    }
    let mut w = ImageWriter::new(Vec::new(), kind).unwrap();
    for (i, (mut m, extra)) in entries.into_iter().enumerate() {
        if f(i, &mut m) {
            w.write_message(&m).unwrap();
            w.write_extra(&extra).unwrap();
        }
    }
    fs::write(&path, w.finish().unwrap()).unwrap();
}

/// The entries of an image.
fn entries(dir: &Path, name: &str) -> Vec<Message> {
    let data = fs::read(dir.join(name)).unwrap();
    let mut rd = ImageReader::open(&data[..]).unwrap();
    let mut v = Vec::new();
    while let Some(item) = rd.next_item().unwrap() {
        v.push(item.msg);
    }
    v
}

/// Set a scalar field, with the value type its schema gives.
fn set(m: &mut Message, name: &str, v: i64) {
    let ty = m.field_desc(name).unwrap_or_else(|| panic!("{} has no {name}", m.ty.desc().name)).ty;
    let val = match ty {
        Type::Enum(_) => Value::Enum(v as i32),
        Type::Bool => Value::Bool(v != 0),
        t if t.is_signed() => Value::Int(v),
        _ => Value::Uint(v as u64),
    };
    m.set(name, val).unwrap();
}

/// A nested message field.
fn sub<'a>(m: &'a mut Message, name: &str) -> &'a mut Message {
    match m.get_mut(name) {
        Some(Value::Msg(s)) => s,
        _ => panic!("no message field {name}"),
    }
}

/// The `i`-th message of a repeated field.
fn nth<'a>(m: &'a mut Message, name: &str, i: usize) -> &'a mut Message {
    let number = m.field_desc(name).unwrap().number;
    match m.fields.iter_mut().filter(|(n, _)| *n == number).nth(i) {
        Some((_, Value::Msg(s))) => s,
        _ => panic!("no {name}[{i}]"),
    }
}

/// Remove every value of a field.
fn clear(m: &mut Message, name: &str) {
    let number = m.field_desc(name).unwrap().number;
    m.fields.retain(|(n, _)| *n != number);
}

/// What a case must produce.
struct Want {
    severity: Severity,
    check: &'static str,
    image: String,
    entry: Option<usize>,
    field: Option<String>,
    /// The only error of the report.
    alone: bool,
}

fn err(check: &'static str, image: impl Into<String>, entry: Option<usize>, field: Option<&str>) -> Want {
    Want { severity: Severity::Error, check, image: image.into(), entry, field: field.map(str::to_string), alone: true }
}

fn warn(check: &'static str, image: impl Into<String>, entry: Option<usize>, field: Option<&str>) -> Want {
    Want {
        severity: Severity::Warning,
        check,
        image: image.into(),
        entry,
        field: field.map(str::to_string),
        alone: false,
    }
}

impl Want {
    fn not_alone(mut self) -> Want {
        self.alone = false;
        self
    }

    fn matches(&self, f: &Finding) -> bool {
        f.severity == self.severity
            && f.check == self.check
            && f.image == self.image
            && f.entry == self.entry
            && f.field.as_deref() == self.field.as_deref()
    }
}

fn show(r: &Report) -> String {
    r.findings.iter().map(|f| format!("  {f}\n")).collect()
}

struct Case {
    name: &'static str,
    fixture: &'static str,
    /// Damage the copy; returns what the check must find.
    damage: fn(&Path) -> Want,
}

// ---------------------------------------------------------------------------
// The corruptions

static CASES: &[Case] = &[
    Case {
        name: "missing core image",
        fixture: "criu41-tree",
        damage: |d| {
            let pid = entries(d, "pstree.img")[1].u64("pid").unwrap();
            fs::remove_file(d.join(format!("core-{pid}.img"))).unwrap();
            err("missing-image", format!("core-{pid}.img"), None, None)
        },
    },
    Case {
        name: "missing mm image",
        fixture: "criu41-pipes",
        damage: |d| {
            let mm = file(d, "mm-");
            fs::remove_file(d.join(&mm)).unwrap();
            // The exe and mapped-file references go with it; nothing else.
            err("missing-image", mm, None, None)
        },
    },
    Case {
        name: "dangling file id in fdinfo",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "fdinfo-2.img", |i, m| {
                if i == 3 {
                    set(m, "id", 9999)
                }
                true
            });
            err("file-id", "fdinfo-2.img", Some(3), Some("id"))
        },
    },
    Case {
        name: "fdinfo type differs from the file's",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "fdinfo-2.img", |i, m| {
                if i == 3 {
                    set(m, "type", 9)
                }
                true
            });
            err("file-id", "fdinfo-2.img", Some(3), Some("id"))
        },
    },
    Case {
        name: "fd number twice in a table",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "fdinfo-2.img", |i, m| {
                if i == 1 {
                    set(m, "fd", 0)
                }
                true
            });
            err("fd", "fdinfo-2.img", Some(1), Some("fd"))
        },
    },
    Case {
        name: "truncated pages file",
        fixture: "criu41-ipc",
        damage: |d| {
            let f = fs::OpenOptions::new().write(true).open(d.join("pages-1.img")).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len - 4096).unwrap();
            err("pages", "pages-1.img", None, None)
        },
    },
    Case {
        name: "missing pages file",
        fixture: "criu41-ipc",
        damage: |d| {
            fs::remove_file(d.join("pages-2.img")).unwrap();
            err("missing-image", "pages-2.img", None, None)
        },
    },
    Case {
        name: "two page maps share a pages file",
        fixture: "criu41-tree",
        damage: |d| {
            let pm = file(d, "pagemap-");
            let (first, second) = {
                let mut v: Vec<String> = fs::read_dir(d)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("pagemap-"))
                    .collect();
                v.sort();
                (v[0].clone(), v[1].clone())
            };
            assert_eq!(pm, first);
            let id = entries(d, &first)[0].u64("pages_id").unwrap() as i64;
            rewrite(d, &second, |i, m| {
                if i == 0 {
                    set(m, "pages_id", id)
                }
                true
            });
            // The pages file it used to name is now read by nobody (a warning).
            err("pages", second, Some(0), Some("pages_id"))
        },
    },
    Case {
        name: "overlapping pagemap entries",
        fixture: "criu41-ipc",
        damage: |d| {
            let pm = file(d, "pagemap-2");
            let v1 = entries(d, &pm)[1].u64("vaddr").unwrap() as i64;
            rewrite(d, &pm, |i, m| {
                if i == 2 {
                    set(m, "vaddr", v1)
                }
                true
            });
            err("pagemap", pm, Some(2), Some("vaddr"))
        },
    },
    Case {
        name: "pagemap entry outside the mappings",
        fixture: "criu41-ipc",
        damage: |d| {
            let pm = file(d, "pagemap-2");
            rewrite(d, &pm, |i, m| {
                if i == 1 {
                    set(m, "vaddr", 0x1000)
                }
                true
            });
            err("pagemap", pm, Some(1), Some("vaddr"))
        },
    },
    Case {
        name: "unaligned pagemap entry",
        fixture: "criu42-sleep",
        damage: |d| {
            let pm = file(d, "pagemap-");
            let v = entries(d, &pm)[1].u64("vaddr").unwrap() as i64;
            rewrite(d, &pm, |i, m| {
                if i == 1 {
                    set(m, "vaddr", v + 8)
                }
                true
            });
            err("pagemap", pm, Some(1), Some("vaddr"))
        },
    },
    Case {
        name: "parent pages without a parent snapshot",
        fixture: "criu41-ipc",
        damage: |d| {
            let pm = file(d, "pagemap-2");
            rewrite(d, &pm, |i, m| {
                if i == 1 {
                    set(m, "flags", 1)
                }
                true
            });
            // The pages file now holds a page nothing reads: a warning too.
            err("parent", pm, Some(1), Some("flags"))
        },
    },
    Case {
        name: "parent snapshot without the pages",
        fixture: "criu41-ipc",
        damage: |d| {
            let pm = file(d, "pagemap-2");
            rewrite(d, &pm, |i, m| {
                if i == 1 {
                    set(m, "flags", 1)
                }
                true
            });
            let parent = d.join("parent.d");
            fs::create_dir(&parent).unwrap();
            fs::copy(d.join(&pm), parent.join(&pm)).unwrap();
            rewrite(&parent, &pm, |i, _| i == 0); // the head only
            std::os::unix::fs::symlink("parent.d", d.join("parent")).unwrap();
            err("parent", pm, Some(1), Some("vaddr"))
        },
    },
    Case {
        name: "wrong magic",
        fixture: "criu41-timers",
        damage: |d| {
            let core = file(d, "core-");
            let mut data = fs::read(d.join(&core)).unwrap();
            let mm = crit::magic::by_name("MM").unwrap().magic;
            data[4..8].copy_from_slice(&mm.to_le_bytes());
            fs::write(d.join(&core), data).unwrap();
            err("bad-magic", core, None, None)
        },
    },
    Case {
        name: "unknown magic",
        fixture: "criu41-timers",
        damage: |d| {
            let ids = file(d, "ids-");
            let mut data = fs::read(d.join(&ids)).unwrap();
            data[4..8].copy_from_slice(&0x1234_5678u32.to_le_bytes());
            fs::write(d.join(&ids), data).unwrap();
            // Nothing else: the damage is not reported again as missing ids.
            err("bad-magic", ids, None, None)
        },
    },
    Case {
        name: "no head magic in a version 2 set",
        fixture: "criu41-timers",
        damage: |d| {
            let fs_img = file(d, "fs-");
            let data = fs::read(d.join(&fs_img)).unwrap();
            fs::write(d.join(&fs_img), &data[4..]).unwrap();
            err("bad-magic", fs_img, None, None)
        },
    },
    Case {
        name: "truncated entry",
        fixture: "criu41-unix",
        damage: |d| {
            let n = entries(d, "files.img").len();
            let f = fs::OpenOptions::new().write(true).open(d.join("files.img")).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len - 3).unwrap();
            // References into the damaged image are not reported again.
            err("truncated", "files.img", Some(n - 1), None)
        },
    },
    Case {
        name: "trailing garbage",
        fixture: "criu41-unix",
        damage: |d| {
            let ids = file(d, "ids-");
            let mut data = fs::read(d.join(&ids)).unwrap();
            data.extend_from_slice(b"\xde\xad\xbe\xef\x01\x02");
            fs::write(d.join(&ids), data).unwrap();
            err("trailing-garbage", ids, Some(1), None)
        },
    },
    Case {
        name: "garbage that decodes as an empty entry",
        fixture: "criu41-unix",
        damage: |d| {
            let mm = file(d, "mm-");
            let mut data = fs::read(d.join(&mm)).unwrap();
            data.extend_from_slice(&[0, 0, 0, 0]);
            fs::write(d.join(&mm), data).unwrap();
            err("required-field", mm, Some(1), Some("mm_start_code,mm_end_code,mm_start_data,mm_end_data,mm_start_stack,mm_start_brk,mm_brk,mm_arg_start,mm_arg_end,mm_env_start,mm_env_end,exe_file_id")).not_alone()
        },
    },
    Case {
        name: "required field missing",
        fixture: "criu41-tree",
        damage: |d| {
            rewrite(d, "pstree.img", |i, m| {
                if i == 2 {
                    clear(m, "sid")
                }
                true
            });
            err("required-field", "pstree.img", Some(2), Some("sid")).not_alone()
        },
    },
    Case {
        name: "pstree parent missing",
        fixture: "criu41-tree",
        damage: |d| {
            rewrite(d, "pstree.img", |i, m| {
                if i == 1 {
                    set(m, "ppid", 4242)
                }
                true
            });
            err("pstree", "pstree.img", Some(1), Some("ppid"))
        },
    },
    Case {
        name: "pstree child before its parent",
        fixture: "criu41-tree",
        damage: |d| {
            let mut v = entries(d, "pstree.img");
            v.swap(1, 2);
            let mut it = v.into_iter();
            rewrite(d, "pstree.img", |_, m| {
                *m = it.next().unwrap();
                true
            });
            err("pstree", "pstree.img", Some(1), Some("ppid"))
        },
    },
    Case {
        name: "two root tasks",
        fixture: "criu41-tree",
        damage: |d| {
            rewrite(d, "pstree.img", |i, m| {
                if i == 3 {
                    set(m, "ppid", 0)
                }
                true
            });
            err("pstree", "pstree.img", Some(3), Some("ppid")).not_alone()
        },
    },
    Case {
        name: "session leader missing",
        fixture: "criu41-tree",
        damage: |d| {
            // The grandchild of the root moves to the session of its uncle.
            let v = entries(d, "pstree.img");
            let uncle = v[3].u64("pid").unwrap() as i64;
            rewrite(d, "pstree.img", |i, m| {
                if i == 2 {
                    set(m, "sid", uncle)
                }
                true
            });
            err("pstree", "pstree.img", Some(2), Some("sid")).not_alone()
        },
    },
    Case {
        name: "thread without a core",
        fixture: "criu41-threads",
        damage: |d| {
            let t = entries(d, "pstree.img")[0].get_all("threads").nth(2).and_then(Value::as_u64).unwrap();
            fs::remove_file(d.join(format!("core-{t}.img"))).unwrap();
            err("missing-image", format!("core-{t}.img"), Some(0), Some("threads[2]"))
        },
    },
    Case {
        name: "core without a thread",
        fixture: "criu41-threads",
        damage: |d| {
            let t = entries(d, "pstree.img")[0].get_all("threads").nth(4).and_then(Value::as_u64).unwrap();
            let number = entries(d, "pstree.img")[0].field_desc("threads").unwrap().number;
            rewrite(d, "pstree.img", |_, m| {
                m.fields.retain(|(n, v)| !(*n == number && v.as_u64() == Some(t)));
                true
            });
            warn("threads", format!("core-{t}.img"), None, None)
        },
    },
    Case {
        name: "thread leader not first",
        fixture: "criu41-threads",
        damage: |d| {
            let number = entries(d, "pstree.img")[0].field_desc("threads").unwrap().number;
            rewrite(d, "pstree.img", |_, m| {
                let mut ts: Vec<(u32, Value)> = m.fields.iter().filter(|(n, _)| *n == number).cloned().collect();
                ts.reverse();
                m.fields.retain(|(n, _)| *n != number);
                for (n, v) in ts {
                    m.insert_sorted(n, v);
                }
                true
            });
            // The leader, now last, is also a second thread with a task's pid.
            err("threads", "pstree.img", Some(0), Some("threads[0]")).not_alone()
        },
    },
    Case {
        name: "zombie with two threads",
        fixture: "criu41-tree",
        damage: |d| {
            let v = entries(d, "pstree.img");
            let (i, _) = v
                .iter()
                .enumerate()
                .find(|(_, p)| {
                    let c = entries(d, &format!("core-{}.img", p.u64("pid").unwrap()));
                    c[0].msg("tc").and_then(|tc| tc.u64("task_state")) == Some(2)
                })
                .unwrap();
            rewrite(d, "pstree.img", |j, m| {
                if j == i {
                    m.insert_sorted(5, Value::Uint(31999));
                }
                true
            });
            err("threads", "pstree.img", Some(i), Some("threads"))
        },
    },
    Case {
        name: "bad task state",
        fixture: "criu41-timers",
        damage: |d| {
            let core = file(d, "core-");
            rewrite(d, &core, |_, m| {
                set(sub(m, "tc"), "task_state", 9);
                true
            });
            err("core", core, Some(0), Some("tc.task_state"))
        },
    },
    Case {
        name: "a sigaction short",
        fixture: "criu41-timers",
        damage: |d| {
            let core = file(d, "core-");
            let number = entries(d, &core)[0].msg("tc").unwrap().field_desc("sigactions").unwrap().number;
            rewrite(d, &core, |_, m| {
                let tc = sub(m, "tc");
                let pos = tc.fields.iter().position(|(n, _)| *n == number).unwrap();
                tc.fields.remove(pos);
                true
            });
            err("core", core, Some(0), Some("tc.sigactions"))
        },
    },
    Case {
        name: "thread without registers",
        fixture: "criu41-threads",
        damage: |d| {
            let t = entries(d, "pstree.img")[0].get_all("threads").nth(1).and_then(Value::as_u64).unwrap();
            let core = format!("core-{t}.img");
            rewrite(d, &core, |_, m| {
                clear(m, "thread_info");
                true
            });
            err("core", core, Some(0), Some("thread_info"))
        },
    },
    Case {
        name: "unix peer missing",
        fixture: "criu41-unix",
        damage: |d| {
            let v = entries(d, "files.img");
            let i = v.iter().position(|m| m.msg("usk").is_some_and(|u| u.u64("peer") != Some(0))).unwrap();
            rewrite(d, "files.img", |j, m| {
                if j == i {
                    set(sub(m, "usk"), "peer", 777)
                }
                true
            });
            err("unix-peer", "files.img", Some(i), Some("usk.peer"))
        },
    },
    Case {
        name: "socket queue of a missing socket",
        fixture: "criu41-unix",
        damage: |d| {
            rewrite(d, "sk-queues.img", |i, m| {
                if i == 0 {
                    set(m, "id_for", 999)
                }
                true
            });
            err("sk-queue", "sk-queues.img", Some(0), Some("id_for"))
        },
    },
    Case {
        name: "pipe data for a missing pipe",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "pipes-data.img", |i, m| {
                if i == 0 {
                    set(m, "pipe_id", 31337)
                }
                true
            });
            err("pipe", "pipes-data.img", Some(0), Some("pipe_id"))
        },
    },
    Case {
        name: "fifo data for a missing fifo",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "fifo-data.img", |i, m| {
                if i == 0 {
                    set(m, "pipe_id", 31337)
                }
                true
            });
            err("pipe", "fifo-data.img", Some(0), Some("pipe_id"))
        },
    },
    Case {
        name: "tcp stream image missing",
        fixture: "criu42-tcp",
        damage: |d| {
            let v = entries(d, "files.img");
            let i = v.iter().position(|m| m.msg("isk").is_some_and(|s| s.u64("ino") == Some(0x8ccc))).unwrap();
            fs::remove_file(d.join("tcp-stream-8ccc.img")).unwrap();
            err("tcp-stream", "files.img", Some(i), Some("isk.ino"))
        },
    },
    Case {
        name: "tcp stream image of no socket",
        fixture: "criu42-tcp",
        damage: |d| {
            let name = file(d, "tcp-stream-");
            fs::copy(d.join(&name), d.join("tcp-stream-1.img")).unwrap();
            warn("tcp-stream", "tcp-stream-1.img", None, None)
        },
    },
    Case {
        name: "ghost file missing",
        fixture: "criu41-ghost",
        damage: |d| {
            fs::remove_file(d.join("ghost-file-1.img")).unwrap();
            err("missing-image", "ghost-file-1.img", Some(0), Some("remap_id"))
        },
    },
    Case {
        name: "remap of a missing file",
        fixture: "criu41-ghost",
        damage: |d| {
            rewrite(d, "remap-fpath.img", |i, m| {
                if i == 0 {
                    set(m, "orig_id", 999)
                }
                true
            });
            err("remap", "remap-fpath.img", Some(0), Some("orig_id"))
        },
    },
    Case {
        name: "exe file missing",
        fixture: "criu42-sleep",
        damage: |d| {
            let mm = file(d, "mm-");
            rewrite(d, &mm, |_, m| {
                set(m, "exe_file_id", 999);
                true
            });
            err("file-id", mm, Some(0), Some("exe_file_id"))
        },
    },
    Case {
        name: "cwd missing",
        fixture: "criu42-sleep",
        damage: |d| {
            let fs_img = file(d, "fs-");
            rewrite(d, &fs_img, |_, m| {
                set(m, "cwd_id", 999);
                true
            });
            err("file-id", fs_img, Some(0), Some("cwd_id"))
        },
    },
    Case {
        name: "file mapping of a memfd id",
        fixture: "criu41-files",
        damage: |d| {
            let mm = file(d, "mm-");
            let memfd = entries(d, "files.img")
                .iter()
                .find(|m| m.enum_name("type") == Some("MEMFD"))
                .unwrap()
                .u64("id")
                .unwrap() as i64;
            rewrite(d, &mm, |_, m| {
                set(nth(m, "vmas", 0), "shmid", memfd);
                true
            });
            err("file-id", mm, Some(0), Some("vmas[0].shmid"))
        },
    },
    Case {
        name: "mappings overlap",
        fixture: "criu42-sleep",
        damage: |d| {
            let mm = file(d, "mm-");
            let start0 = entries(d, &mm)[0]
                .get_all("vmas")
                .next()
                .map(|v| match v {
                    Value::Msg(v) => v.u64("start").unwrap(),
                    _ => 0,
                })
                .unwrap() as i64;
            rewrite(d, &mm, |_, m| {
                set(nth(m, "vmas", 1), "start", start0);
                true
            });
            err("vma", mm, Some(0), Some("vmas[1].start"))
        },
    },
    Case {
        name: "memfd inode missing",
        fixture: "criu41-files",
        damage: |d| {
            fs::remove_file(d.join("memfd.img")).unwrap();
            let i = entries(d, "files.img").iter().position(|m| m.enum_name("type") == Some("MEMFD")).unwrap();
            err("memfd", "files.img", Some(i), Some("memfd.inode_id")).not_alone()
        },
    },
    Case {
        name: "memfd contents missing",
        fixture: "criu41-files",
        damage: |d| {
            let pm = file(d, "pagemap-shmem-");
            fs::remove_file(d.join(pm)).unwrap();
            // Its pages file is then an orphan (a warning).
            err("memfd", "memfd.img", Some(0), Some("shmid"))
        },
    },
    Case {
        name: "SysV segment missing",
        fixture: "criu41-ipc",
        damage: |d| {
            fs::remove_file(d.join("ipcns-shm-9.img")).unwrap();
            let mm = file(d, "mm-");
            let i = entries(d, &mm)[0]
                .get_all("vmas")
                .position(|v| matches!(v, Value::Msg(v) if v.u64("status").unwrap() & (1 << 10) != 0))
                .unwrap();
            Want { field: Some(format!("vmas[{i}].shmid")), ..err("shmem", mm, Some(0), None) }
        },
    },
    Case {
        name: "namespace image missing",
        fixture: "criu41-namespaces",
        damage: |d| {
            fs::remove_file(d.join("utsns-12.img")).unwrap();
            err("namespace", "ids-1.img", Some(0), Some("uts_ns_id")).not_alone()
        },
    },
    Case {
        name: "seccomp filter index out of range",
        fixture: "criu41-seccomp",
        damage: |d| {
            let core = file(d, "core-");
            rewrite(d, &core, |_, m| {
                set(sub(m, "thread_core"), "seccomp_filter", 99);
                true
            });
            err("seccomp", core, Some(0), Some("thread_core.seccomp_filter"))
        },
    },
    Case {
        name: "seccomp filter chain loops",
        fixture: "criu41-seccomp",
        damage: |d| {
            rewrite(d, "seccomp.img", |_, m| {
                set(nth(m, "seccomp_filters", 0), "prev", 1);
                true
            });
            err("seccomp", "seccomp.img", Some(0), Some("seccomp_filters[1].prev")).not_alone()
        },
    },
    Case {
        name: "POSIX timer nanoseconds out of range",
        fixture: "criu41-timers",
        damage: |d| {
            let core = file(d, "core-");
            rewrite(d, &core, |_, m| {
                set(nth(sub(sub(m, "tc"), "timers"), "posix", 0), "insec", 2_000_000_000);
                true
            });
            err("timer", core, Some(0), Some("tc.timers.posix[0].insec"))
        },
    },
    Case {
        name: "POSIX timer for a missing thread",
        fixture: "criu41-timers",
        damage: |d| {
            let core = file(d, "core-");
            let c = &entries(d, &core)[0];
            let i = c
                .msg("tc")
                .unwrap()
                .msg("timers")
                .unwrap()
                .get_all("posix")
                .position(|p| matches!(p, Value::Msg(p) if p.u64("it_sigev_notify") == Some(4)))
                .unwrap();
            rewrite(d, &core, |_, m| {
                set(nth(sub(sub(m, "tc"), "timers"), "posix", i), "notify_thread_id", 4242);
                true
            });
            Want { field: Some(format!("tc.timers.posix[{i}].notify_thread_id")), ..err("timer", core, Some(0), None) }
        },
    },
    Case {
        name: "itimer microseconds out of range",
        fixture: "criu41-timers",
        damage: |d| {
            let core = file(d, "core-");
            rewrite(d, &core, |_, m| {
                set(sub(sub(sub(m, "tc"), "timers"), "real"), "iusec", 1_000_000);
                true
            });
            err("timer", core, Some(0), Some("tc.timers.real.iusec"))
        },
    },
    Case {
        name: "short siginfo",
        fixture: "criu41-fdtypes",
        damage: |d| {
            let core = file(d, "core-");
            rewrite(d, &core, |_, m| {
                let s = nth(sub(sub(m, "tc"), "signals_s"), "signals", 0);
                if let Some(Value::Bytes(b)) = s.get_mut("siginfo") {
                    b.truncate(100);
                }
                true
            });
            err("signal", core, Some(0), Some("tc.signals_s.signals[0].siginfo"))
        },
    },
    Case {
        name: "tty without its info",
        fixture: "criu41-tty",
        damage: |d| {
            let i = entries(d, "files.img").iter().position(|m| m.msg("tty").is_some()).unwrap();
            rewrite(d, "files.img", |j, m| {
                if j == i {
                    set(sub(m, "tty"), "tty_info_id", 99)
                }
                true
            });
            err("tty", "files.img", Some(i), Some("tty.tty_info_id"))
        },
    },
    Case {
        name: "pty master without termios",
        fixture: "criu41-tty",
        damage: |d| {
            let i = entries(d, "tty-info.img").iter().position(|m| m.u64("id").unwrap() % 2 == 1).unwrap();
            rewrite(d, "tty-info.img", |j, m| {
                if j == i {
                    clear(m, "winsize")
                }
                true
            });
            err("tty", "tty-info.img", Some(i), Some("termios"))
        },
    },
    Case {
        name: "epoll target fd missing",
        fixture: "criu41-fdtypes",
        damage: |d| {
            let i = entries(d, "files.img").iter().position(|m| m.msg("epfd").is_some()).unwrap();
            rewrite(d, "files.img", |j, m| {
                if j == i {
                    set(nth(sub(m, "epfd"), "tfd", 0), "tfd", 999)
                }
                true
            });
            err("fd", "files.img", Some(i), Some("epfd.tfd[0].tfd"))
        },
    },
    Case {
        name: "file lock on a closed fd",
        fixture: "criu41-files",
        damage: |d| {
            rewrite(d, "filelocks.img", |i, m| {
                if i == 0 {
                    set(m, "fd", 99)
                }
                true
            });
            err("fd", "filelocks.img", Some(0), Some("fd"))
        },
    },
    Case {
        name: "file lock of a missing task",
        fixture: "criu41-files",
        damage: |d| {
            rewrite(d, "filelocks.img", |i, m| {
                if i == 0 {
                    set(m, "pid", 4242)
                }
                true
            });
            err("fd", "filelocks.img", Some(0), Some("pid"))
        },
    },
    Case {
        name: "duplicate file id",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "files.img", |i, m| {
                if i == 1 {
                    set(m, "id", 1);
                    set(sub(m, "reg"), "id", 1);
                }
                true
            });
            err("file-entry", "files.img", Some(1), Some("reg.id")).not_alone()
        },
    },
    Case {
        name: "file entry id mismatch",
        fixture: "criu41-pipes",
        damage: |d| {
            rewrite(d, "files.img", |i, m| {
                if i == 0 {
                    set(sub(m, "reg"), "id", 77)
                }
                true
            });
            err("file-entry", "files.img", Some(0), Some("reg.id"))
        },
    },
    Case {
        name: "file entry without its message",
        fixture: "criu41-pipes",
        damage: |d| {
            let i = entries(d, "files.img").iter().position(|m| m.msg("pipe").is_some()).unwrap();
            rewrite(d, "files.img", |j, m| {
                if j == i {
                    clear(m, "pipe")
                }
                true
            });
            err("file-entry", "files.img", Some(i), Some("pipe")).not_alone()
        },
    },
    Case {
        name: "unsupported image version",
        fixture: "criu42-sleep",
        damage: |d| {
            rewrite(d, "inventory.img", |_, m| {
                set(m, "img_version", 3);
                true
            });
            err("inventory", "inventory.img", Some(0), Some("img_version"))
        },
    },
    Case {
        name: "per-pid fdinfo layout",
        fixture: "criu42-sleep",
        damage: |d| {
            rewrite(d, "inventory.img", |_, m| {
                set(m, "fdinfo_per_id", 0);
                true
            });
            err("inventory", "inventory.img", Some(0), Some("fdinfo_per_id"))
        },
    },
    Case {
        name: "core with a second entry",
        fixture: "criu42-sleep",
        damage: |d| {
            let core = file(d, "core-");
            let mut data = fs::read(d.join(&core)).unwrap();
            let body = data[8..].to_vec();
            data.extend_from_slice(&body);
            fs::write(d.join(&core), data).unwrap();
            warn("entry-count", core, Some(1), None)
        },
    },
    Case {
        name: "pages file nothing reads",
        fixture: "criu42-sleep",
        damage: |d| {
            fs::write(d.join("pages-7.img"), [0u8; 4096]).unwrap();
            warn("orphan", "pages-7.img", None, None)
        },
    },
];

#[test]
fn every_corruption_is_caught_with_the_right_finding() {
    let mut failures = Vec::new();
    for c in CASES {
        let tmp = copy_fixture(c.fixture);
        let want = (c.damage)(tmp.path());
        let r = run_check(tmp.path());
        for f in &r.findings {
            if !check::CHECKS.iter().any(|(n, _)| *n == f.check) {
                failures.push(format!("{}: check {} is not in CHECKS", c.name, f.check));
            }
        }
        if !r.findings.iter().any(|f| want.matches(f)) {
            failures.push(format!(
                "{}: wanted {} [{}] {} entry {:?} field {:?}, got:\n{}",
                c.name,
                if want.severity == Severity::Error { "error" } else { "warning" },
                want.check,
                want.image,
                want.entry,
                want.field,
                show(&r)
            ));
            continue;
        }
        if want.severity == Severity::Error && r.ok() {
            failures.push(format!("{}: the report says ok", c.name));
        }
        if want.alone && r.errors() != 1 {
            failures.push(format!("{}: wanted that error alone, got:\n{}", c.name, show(&r)));
        }
        if want.severity == Severity::Warning && !r.ok() {
            failures.push(format!("{}: wanted only warnings, got:\n{}", c.name, show(&r)));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Real dumps

#[test]
fn every_fixture_checks_clean() {
    let mut bad = Vec::new();
    for d in dumps() {
        let r = run_check(&d);
        if !r.findings.is_empty() {
            bad.push(format!("{}:\n{}", d.display(), show(&r)));
        }
        // What the report counts is what the images hold.
        let pstree = entries(&d, "pstree.img");
        assert_eq!(r.tasks, pstree.len(), "{}", d.display());
        assert_eq!(r.threads, pstree.iter().map(|p| p.get_all("threads").count()).sum::<usize>(), "{}", d.display());
        assert_eq!(r.files, entries(&d, "files.img").len(), "{}", d.display());
        assert_eq!(r.img_version, Some(2));
    }
    assert!(bad.is_empty(), "fixtures with findings:\n{}", bad.join("\n"));
}

#[test]
fn the_version_lower_bound_fits_the_criu_that_wrote_each_fixture() {
    // criu41-* were written by CRIU 4.1.1, criu42-* by CRIU 4.2: the bound
    // must not exceed the writer, and here the images tell it exactly.
    for d in dumps() {
        let n = d.file_name().unwrap().to_string_lossy().into_owned();
        let want = if n.starts_with("criu42-") { Version(4, 2) } else { Version(4, 1) };
        let r = run_check(&d);
        assert_eq!(r.criu_at_least(), Some(want), "{n}: evidence {:?}", r.evidence);
        let top = &r.evidence[0];
        assert_eq!(top.version, want);
        if n == "criu42-uprobe" {
            assert!(r.evidence.iter().any(|e| e.what.contains("allow_uprobes")), "{:?}", r.evidence);
        }
        if n.starts_with("criu42-") {
            assert!(r.evidence.iter().any(|e| e.what.contains("nr_pages")), "{n}: {:?}", r.evidence);
        }
        assert!(r.evidence.iter().any(|e| e.what == "files.img" && e.version == Version(3, 4)), "{n}");
    }
}

#[test]
fn legacy_per_type_file_images_are_accepted() {
    // The layout of CRIU < 3.4: one image per file type, no files.img.
    for fx in ["criu41-pipes", "criu41-unix", "criu41-fdtypes", "criu41-tty"] {
        let tmp = copy_fixture(fx);
        let d = tmp.path();
        let files = entries(d, "files.img");
        let mut per: Vec<(&'static str, Vec<Message>)> = Vec::new();
        for f in &files {
            let (kind, field) = match f.enum_name("type").unwrap() {
                "REG" => ("REG_FILES", "reg"),
                "PIPE" => ("PIPES", "pipe"),
                "FIFO" => ("FIFO", "fifo"),
                "UNIXSK" => ("UNIXSK", "usk"),
                "EVENTFD" => ("EVENTFD_FILE", "efd"),
                "EVENTPOLL" => ("EVENTPOLL_FILE", "epfd"),
                "SIGNALFD" => ("SIGNALFD", "sgfd"),
                "TIMERFD" => ("TIMERFD", "tfd"),
                "INOTIFY" => ("INOTIFY_FILE", "ify"),
                "TTY" => ("TTY_FILES", "tty"),
                other => panic!("{fx}: no legacy image for {other}"),
            };
            let m = f.msg(field).unwrap().clone();
            match per.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, v)) => v.push(m),
                None => per.push((kind, vec![m])),
            }
        }
        fs::remove_file(d.join("files.img")).unwrap();
        for (kind, msgs) in &per {
            let k = crit::magic::by_name(kind).unwrap();
            let mut w = ImageWriter::new(Vec::new(), k).unwrap();
            for m in msgs {
                w.write_message(m).unwrap();
            }
            fs::write(d.join(k.files[0]), w.finish().unwrap()).unwrap();
        }
        let r = run_check(d);
        assert!(r.findings.is_empty(), "{fx} in the per-type layout:\n{}", show(&r));
        assert_eq!(r.files, files.len(), "{fx}");
        assert!(!r.evidence.iter().any(|e| e.what == "files.img"));

        // And a dangling id is still found in that layout.
        rewrite(d, "fdinfo-2.img", |i, m| {
            if i == 0 {
                set(m, "id", 9999)
            }
            true
        });
        let r = run_check(d);
        assert!(
            r.findings.iter().any(|f| f.check == "file-id" && f.image == "fdinfo-2.img" && f.entry == Some(0)),
            "{fx}:\n{}",
            show(&r)
        );
    }
}

#[test]
fn per_type_images_next_to_files_img_are_reported_as_ignored() {
    let tmp = copy_fixture("criu41-pipes");
    let d = tmp.path();
    let reg = entries(d, "files.img").into_iter().find_map(|f| f.msg("reg").cloned()).unwrap();
    let k = crit::magic::by_name("REG_FILES").unwrap();
    let mut w = ImageWriter::new(Vec::new(), k).unwrap();
    w.write_message(&reg).unwrap();
    fs::write(d.join("reg-files.img"), w.finish().unwrap()).unwrap();
    let r = run_check(d);
    assert!(r.ok());
    assert!(r.findings.iter().any(|f| f.check == "orphan" && f.image == "reg-files.img"), "{}", show(&r));
}

#[test]
fn a_good_parent_snapshot_satisfies_parent_entries() {
    let tmp = copy_fixture("criu41-ipc");
    let d = tmp.path();
    let pm = file(d, "pagemap-2");
    // The parent: the dump as it was.
    let parent = d.join("parent.d");
    fs::create_dir(&parent).unwrap();
    for p in images(d) {
        fs::copy(&p, parent.join(p.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink("parent.d", d.join("parent")).unwrap();
    let n = entries(d, &pm).len();
    rewrite(d, &pm, |i, m| {
        if i > 0 {
            set(m, "flags", 1);
        }
        true
    });
    let r = run_check(d);
    assert!(r.ok(), "{}", show(&r));
    assert!(!r.findings.iter().any(|f| f.check == "parent"), "{}", show(&r));
    // No page is present any more: the pages file is all surplus.
    let pages = format!("pages-{}.img", entries(d, &pm)[0].u64("pages_id").unwrap());
    assert!(
        r.findings.iter().any(|f| f.check == "pages" && f.image == pages && f.severity == Severity::Warning),
        "{n}\n{}",
        show(&r)
    );
}

#[test]
fn a_zombie_needs_only_its_core() {
    // criu41-tree has a zombie: CRIU wrote only its core, and its pstree
    // thread is not its pid (what CRIU 4.1.1 writes for zombies).
    let d = root().join("tests/fixtures/criu41-tree");
    let v = entries(&d, "pstree.img");
    let z = v
        .iter()
        .find(|p| {
            entries(&d, &format!("core-{}.img", p.u64("pid").unwrap()))[0].msg("tc").and_then(|tc| tc.u64("task_state"))
                == Some(2)
        })
        .expect("the zombie");
    let pid = z.u64("pid").unwrap();
    assert!(!d.join(format!("mm-{pid}.img")).exists());
    assert!(run_check(&d).findings.is_empty());
    // The same task alive needs everything else.
    let tmp = copy_fixture("criu41-tree");
    rewrite(tmp.path(), &format!("core-{pid}.img"), |_, m| {
        set(sub(m, "tc"), "task_state", 1);
        true
    });
    let r = run_check(tmp.path());
    for img in ["ids", "mm", "pagemap", "fs"] {
        let want = format!("{img}-{pid}.img");
        assert!(r.findings.iter().any(|f| f.check == "missing-image" && f.image == want), "{want}:\n{}", show(&r));
    }
}

// ---------------------------------------------------------------------------
// The command

fn cli_check(dir: &Path, json: bool) -> std::process::Output {
    let d = dir.to_str().unwrap();
    if json {
        crit(&["check", d, "--json"])
    } else {
        crit(&["check", d])
    }
}

#[test]
fn exit_codes() {
    let clean = root().join("tests/fixtures/criu42-sleep");
    let out = cli_check(&clean, false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("crit check: {}: clean;", clean.display())), "{text}");
    assert!(text.contains("written by CRIU >= 4.2"), "{text}");

    // Problems found: 1, a damaged image included.
    let tmp = copy_fixture("criu42-sleep");
    let core = file(tmp.path(), "core-");
    let f = fs::OpenOptions::new().write(true).open(tmp.path().join(&core)).unwrap();
    f.set_len(20).unwrap();
    let out = cli_check(tmp.path(), false);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().starts_with(&format!("error: {core}, entry 0: ")), "{text}");
    assert!(text.contains("[truncated]"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 error"));

    // A missing image: 1.
    let tmp2 = copy_fixture("criu42-sleep");
    fs::remove_file(tmp2.path().join("pstree.img")).unwrap();
    assert_eq!(cli_check(tmp2.path(), false).status.code(), Some(1));

    // Only warnings: 0.
    fs::write(tmp2.path().join("pstree.img"), fs::read(clean.join("pstree.img")).unwrap()).unwrap();
    fs::write(tmp2.path().join("pages-9.img"), [0u8; 4096]).unwrap();
    let out = cli_check(tmp2.path(), false);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 errors, 1 warning"));

    // The checkpoint itself cannot be opened: 2.
    let out = cli_check(&tmp.path().join("no-such-dir"), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir"));
    let out = cli_check(&clean.join("core-16502.img"), true);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_output_shape() {
    use crit::json::Json;
    let get = |j: &Json, k: &str| j.get(k).cloned().unwrap_or_else(|| panic!("no key {k}"));
    let int = |j: Json| match j {
        Json::Int(i) => i,
        other => panic!("not an int: {other:?}"),
    };
    let string = |j: Json| match j {
        Json::Str(s) => String::from_utf8(s).unwrap(),
        other => panic!("not a string: {other:?}"),
    };

    let clean = root().join("tests/fixtures/criu41-threads");
    let out = cli_check(&clean, true);
    assert_eq!(out.status.code(), Some(0));
    let j = crit::json::parse::parse_slice(&out.stdout).unwrap();
    let Json::Obj(members) = &j else { panic!("not an object") };
    let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "checkpoint",
            "ok",
            "errors",
            "warnings",
            "images",
            "tasks",
            "threads",
            "files",
            "img_version",
            "criu_at_least",
            "evidence",
            "findings"
        ]
    );
    assert_eq!(get(&j, "ok"), Json::Bool(true));
    assert_eq!(int(get(&j, "threads")), 5);
    assert_eq!(int(get(&j, "img_version")), 2);
    assert_eq!(string(get(&j, "criu_at_least")), "4.1");
    assert_eq!(get(&j, "findings"), Json::Arr(vec![]));
    let Json::Arr(ev) = get(&j, "evidence") else { panic!() };
    assert!(!ev.is_empty());
    for e in &ev {
        let Json::Obj(m) = e else { panic!() };
        assert_eq!(m.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["version", "image", "what"]);
    }

    // A damaged copy: each finding names severity, check, image, entry, field.
    let tmp = copy_fixture("criu41-threads");
    let d = tmp.path();
    let t = entries(d, "pstree.img")[0].get_all("threads").nth(3).and_then(Value::as_u64).unwrap();
    fs::remove_file(d.join(format!("core-{t}.img"))).unwrap();
    rewrite(d, "fdinfo-2.img", |i, m| {
        if i == 0 {
            set(m, "id", 4321)
        }
        true
    });
    let out = cli_check(d, true);
    assert_eq!(out.status.code(), Some(1));
    let j = crit::json::parse::parse_slice(&out.stdout).unwrap();
    assert_eq!(get(&j, "ok"), Json::Bool(false));
    assert_eq!(int(get(&j, "errors")), 2);
    let Json::Arr(fs_) = get(&j, "findings") else { panic!() };
    assert_eq!(fs_.len(), 2);
    for f in &fs_ {
        let Json::Obj(m) = f else { panic!() };
        assert_eq!(
            m.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["severity", "check", "image", "entry", "field", "expected", "found"]
        );
    }
    let by = |check: &str| {
        fs_.iter().find(|f| f.get("check") == Some(&Json::Str(check.as_bytes().to_vec()))).cloned().unwrap()
    };
    let fid = by("file-id");
    assert_eq!(string(get(&fid, "severity")), "error");
    assert_eq!(string(get(&fid, "image")), "fdinfo-2.img");
    assert_eq!(int(get(&fid, "entry")), 0);
    assert_eq!(string(get(&fid, "field")), "id");
    assert!(string(get(&fid, "expected")).contains("4321"));
    let miss = by("missing-image");
    assert_eq!(string(get(&miss, "image")), format!("core-{t}.img"));
    assert_eq!(int(get(&miss, "entry")), 0);
    assert_eq!(string(get(&miss, "field")), "threads[3]");
    // A finding with no entry has null there.
    let tmp2 = copy_fixture("criu42-sleep");
    fs::remove_file(tmp2.path().join(file(tmp2.path(), "fs-"))).unwrap();
    let out = cli_check(tmp2.path(), true);
    let j = crit::json::parse::parse_slice(&out.stdout).unwrap();
    let Json::Arr(fs_) = get(&j, "findings") else { panic!() };
    assert_eq!(fs_.len(), 1);
    assert_eq!(get(&fs_[0], "entry"), Json::Null);
    assert_eq!(get(&fs_[0], "field"), Json::Null);
}

#[test]
fn check_writes_nothing() {
    let tmp = copy_fixture("criu41-ghost");
    let d = tmp.path();
    let snapshot = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = images(d)
            .iter()
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = snapshot(d);
    let out = cli_check(d, false);
    assert_eq!(out.status.code(), Some(0));
    let out = cli_check(d, true);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(before, snapshot(d));
    assert_eq!(fs::read_dir(d).unwrap().count(), before.len());
}

#[test]
fn the_docs_describe_every_check() {
    let doc = fs::read_to_string(root().join("docs/check.md")).unwrap();
    for (name, _) in check::CHECKS {
        assert!(doc.contains(&format!("`{name}`")), "docs/check.md does not describe {name}");
    }
}

// ---------------------------------------------------------------------------
// Against the real CRIU

#[test]
fn what_check_calls_an_error_criu_restore_refuses() {
    if !is_root() {
        eprintln!("SKIP: needs root to dump and restore with CRIU");
        return;
    }
    let Some(r) = reference() else { return };
    use std::process::{Command, Stdio};
    let tmp = TempDir::new("check-e2e");
    let dir = tmp.path().join("dump");
    fs::create_dir(&dir).unwrap();
    let mut child = dumpable(Command::new("setsid").args(["sleep", "1000"])).spawn().unwrap();
    let pid = child.id();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dump = Command::new(r.criu())
        .args(["dump", "-t", &pid.to_string(), "-v4", "-o", "dump.log", "-D"])
        .arg(&dir)
        .output()
        .unwrap();
    if !dump.status.success() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("criu dump failed: {}", fs::read_to_string(dir.join("dump.log")).unwrap_or_default());
    }
    let _ = child.wait();
    fs::remove_file(dir.join("dump.log")).unwrap();

    // A fresh dump checks clean.
    let r0 = run_check(&dir);
    assert!(r0.findings.is_empty(), "fresh dump:\n{}", show(&r0));

    // The pid is free again once a failed (or killed) restore has gone.
    let wait_gone = || {
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("pid {pid} still taken");
    };
    // Whether criu restore succeeds.  CRIU 4.1.1 does not fail on a short
    // pages file: its restorer retries the read forever, so a restore still
    // running after a few seconds counts as refused (and is ended).
    let restore = |d: &Path| -> bool {
        wait_gone();
        let mut c = Command::new(r.criu())
            .args(["restore", "-d", "-v4", "-o", "restore.log", "-D"])
            .arg(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let ok = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st.success();
            }
            if start.elapsed() > std::time::Duration::from_secs(3) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                let _ = c.kill();
                let _ = c.wait();
                wait_gone();
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        if ok {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            wait_gone();
        }
        ok
    };
    let copy = |tag: &str| -> PathBuf {
        let d = tmp.path().join(tag);
        fs::create_dir(&d).unwrap();
        for p in images(&dir) {
            fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
        d
    };
    // Errors check reports, each refused by criu restore.
    let dangling = copy("dangling");
    rewrite(&dangling, "fdinfo-2.img", |i, m| {
        if i == 0 {
            set(m, "id", 9999)
        }
        true
    });
    let short = copy("short-pages");
    let f = fs::OpenOptions::new().write(true).open(short.join("pages-1.img")).unwrap();
    f.set_len(f.metadata().unwrap().len() - 4096).unwrap();
    let no_core = copy("no-core");
    fs::remove_file(no_core.join(format!("core-{pid}.img"))).unwrap();
    for (d, check) in [(&dangling, "file-id"), (&short, "pages"), (&no_core, "missing-image")] {
        let rep = run_check(d);
        assert!(
            rep.findings.iter().any(|f| f.check == check && f.severity == Severity::Error),
            "{}:\n{}",
            d.display(),
            show(&rep)
        );
        assert!(!restore(d), "criu restore accepted {} although check found: {}", d.display(), show(&rep));
    }
    // And the clean dump restores.
    assert!(
        restore(&dir),
        "criu restore of the clean dump failed: {}",
        fs::read_to_string(dir.join("restore.log")).unwrap_or_default()
    );
}

#[test]
fn damaged_images_never_make_check_fail_or_panic() {
    // Deterministic random damage: flipped bytes and cuts in every kind of
    // image; the check must still return a report, with an error for cuts
    // of protobuf images.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    for fx in ["criu41-tree", "criu41-unix", "criu41-tty", "criu42-tcp", "criu41-ghost"] {
        let tmp = copy_fixture(fx);
        let d = tmp.path();
        let imgs: Vec<PathBuf> = images(d).into_iter().filter(|p| !is_raw_image(p)).collect();
        for round in 0..40 {
            let p = &imgs[next(imgs.len())];
            let orig = fs::read(p).unwrap();
            let mut data = orig.clone();
            let cut = round % 2 == 0 && data.len() > 9;
            if cut {
                data.truncate(8 + next(data.len() - 9));
            } else {
                for _ in 0..4 {
                    let i = next(data.len());
                    data[i] ^= 1 << next(8);
                }
            }
            fs::write(p, &data).unwrap();
            let r = run_check(d);
            // A cut between two entries leaves a shorter, well-formed image.
            let at_boundary = {
                let mut rd = ImageReader::open(&orig[..]).unwrap();
                let mut starts = vec![];
                while let Ok(Some(it)) = rd.next_item() {
                    starts.push(it.offset as usize);
                }
                starts.contains(&data.len())
            };
            if cut && !at_boundary {
                let name = p.file_name().unwrap().to_string_lossy();
                // A ghost file's raw contents may end anywhere.
                if !(name.starts_with("ghost-file-") && r.ok()) {
                    assert!(!r.ok(), "{fx}: {name} cut to {} of {} bytes, no error", data.len(), orig.len());
                }
            }
            fs::write(p, &orig).unwrap();
        }
    }
}
