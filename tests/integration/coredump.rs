//! `crit core`: ELF cores of the committed dumps, checked against the
//! images with gdb, readelf, eu-readelf and our own reading of the ELF.

use std::path::{Path, PathBuf};
use std::process::Command;

use crit::checkpoint::Checkpoint;
use crit::mem::{Files, Memory};
use crit::wire::{Message, Value};

use crate::util::*;

/// The fixture of a program dumped for these tests (tests/fixtures/README-core.md).
pub fn core_fixture() -> PathBuf {
    root().join("tests/fixtures/core-threads")
}

/// The pid of the fixture's process.
pub fn fixture_pid(images: &Path) -> u32 {
    Checkpoint::open(images).unwrap().tasks().unwrap()[0].pid
}

/// Whether a tool is installed; prints the SKIP line when it is not.
pub fn have(tool: &str, why: &str) -> bool {
    let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: {tool} is not installed ({why})");
    }
    ok
}

/// `crit core DIR -o OUT ARGS...`, which must succeed; the core's path.
pub fn make_core(images: &Path, out: &Path, args: &[&str]) -> PathBuf {
    let mut a = vec!["core", images.to_str().unwrap(), "-o", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = crit(&a);
    assert!(o.status.success(), "crit core: {}", String::from_utf8_lossy(&o.stderr));
    out.join(format!("core.{}", fixture_pid(images)))
}

/// A program header.
#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    pub ty: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// A note: owner, type, description.
pub type Note = (String, u32, Vec<u8>);

/// The machine, program headers and notes of a core.
pub fn parse_core(data: &[u8]) -> (u16, Vec<Phdr>, Vec<Note>) {
    assert_eq!(&data[..4], b"\x7fELF");
    assert_eq!(data[4], 2, "ELFCLASS64");
    assert_eq!(u16_at(data, 16), 4, "ET_CORE");
    let machine = u16_at(data, 18);
    let phoff = u64_at(data, 32) as usize;
    let phnum = u16_at(data, 56) as usize;
    assert_eq!(u16_at(data, 54), 56);
    let mut ph = Vec::new();
    for i in 0..phnum {
        let b = phoff + 56 * i;
        ph.push(Phdr {
            ty: u32_at(data, b),
            flags: u32_at(data, b + 4),
            offset: u64_at(data, b + 8),
            vaddr: u64_at(data, b + 16),
            filesz: u64_at(data, b + 32),
            memsz: u64_at(data, b + 40),
        });
    }
    let mut notes = Vec::new();
    for p in ph.iter().filter(|p| p.ty == 4) {
        let mut pos = p.offset as usize;
        let end = pos + p.filesz as usize;
        while pos < end {
            let namesz = u32_at(data, pos) as usize;
            let descsz = u32_at(data, pos + 4) as usize;
            let ty = u32_at(data, pos + 8);
            let name = String::from_utf8_lossy(&data[pos + 12..pos + 12 + namesz - 1]).into_owned();
            let d = pos + 12 + namesz.div_ceil(4) * 4;
            notes.push((name, ty, data[d..d + descsz].to_vec()));
            pos = d + descsz.div_ceil(4) * 4;
        }
        assert_eq!(pos, end, "notes fill the PT_NOTE exactly");
    }
    (machine, ph, notes)
}

fn words(m: &Message, name: &str) -> Vec<u64> {
    m.get_all(name).filter_map(Value::as_u64).collect()
}

/// The saved auxv pairs, up to and including AT_NULL.
fn saved_auxv(ck: &Checkpoint, pid: u32) -> Vec<(u64, u64)> {
    let w = words(&ck.mm(pid).unwrap(), "mm_saved_auxv");
    let mut v = Vec::new();
    for p in w.chunks(2) {
        v.push((p[0], p[1]));
        if p[0] == 0 {
            return v;
        }
    }
    // A vector saved without its terminator (all AT_VECTOR_SIZE slots used).
    v.push((0, 0));
    v
}

/// Runs of spaces as one (eu-readelf aligns its columns).
fn squeeze(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut sp = false;
    for c in s.chars() {
        if c == ' ' {
            if !sp {
                out.push(c);
            }
            sp = true;
        } else {
            out.push(c);
            sp = false;
        }
    }
    out
}

/// Every committed dump gives a core whose segments hold exactly the bytes
/// the memory reader reads (nothing shifted), whose auxv is the saved one
/// and whose notes have the right sizes: criu-coredump's faults, checked
/// on all fixtures (a short mapped file, shared anonymous, SysV and memfd
/// memory, a packet ring, zombies, threads).
#[test]
fn cores_of_every_fixture_hold_the_memory() {
    let tmp = TempDir::new("core-all");
    let mut dirs: Vec<PathBuf> = fixtures();
    dirs.push(core_fixture().join("images"));
    let mut cores = 0;
    for dir in dirs {
        let out = tmp.path().join(dir.file_name().unwrap());
        let o = crit(&["core", dir.to_str().unwrap(), "-o", out.to_str().unwrap(), "--no-files"]);
        assert!(o.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
        let ck = Checkpoint::open(&dir).unwrap();
        let mut expect = 0;
        for t in ck.tasks().unwrap() {
            let core = out.join(format!("core.{}", t.pid));
            if !ck.has(&format!("mm-{}.img", t.pid)) {
                assert!(!core.exists(), "{}: a zombie gets no core", dir.display());
                continue;
            }
            expect += 1;
            let data = std::fs::read(&core).unwrap();
            let (machine, ph, notes) = parse_core(&data);
            assert_eq!(machine, 62, "x86_64 images give an x86_64 core");
            let mem = Memory::open(&ck, t.pid, &Files::None).unwrap();
            // One or more PT_LOADs per mapping, in order, covering it.
            let loads: Vec<&Phdr> = ph.iter().filter(|p| p.ty == 1).collect();
            let covered: u64 = loads.iter().map(|p| p.memsz).sum();
            assert_eq!(covered, mem.vmas().iter().map(|v| v.len()).sum::<u64>(), "{}", dir.display());
            for p in &loads {
                assert_eq!(p.offset % 4096, 0);
                assert!(p.filesz <= p.memsz);
                if p.filesz == 0 {
                    continue;
                }
                let mut want = vec![0u8; p.filesz as usize];
                mem.read(p.vaddr, &mut want).unwrap();
                let got = &data[p.offset as usize..(p.offset + p.filesz) as usize];
                assert!(got == &want[..], "{}: segment at {:#x} differs", dir.display(), p.vaddr);
            }
            // Every dumped page is in the core.
            let dumped: u64 = mem.vmas().iter().map(|v| mem.tally(v).dumped_total()).sum();
            let in_core: u64 = loads.iter().map(|p| p.filesz).sum();
            assert!(in_core >= dumped);
            // Notes.
            let count = |ty: u32| notes.iter().filter(|n| n.1 == ty).count();
            assert_eq!(count(1), t.threads.len().max(1), "{}: a PRSTATUS per thread", dir.display());
            assert_eq!(count(3), 1);
            assert_eq!(count(6), 1);
            assert_eq!(count(0x46494c45), 1);
            assert_eq!(count(0x53494749), count(1), "a SIGINFO per thread");
            assert_eq!(count(2), count(1), "an FPREGSET per thread");
            for n in &notes {
                match n.1 {
                    1 => assert_eq!(n.2.len(), 336),
                    2 => assert_eq!(n.2.len(), 512),
                    3 => assert_eq!(n.2.len(), 136),
                    0x53494749 => assert_eq!(n.2.len(), 128),
                    0x202 => assert!([576, 832, 1088, 2688, 2696].contains(&n.2.len()), "{}", n.2.len()),
                    _ => {}
                }
            }
            let auxv = &notes.iter().find(|n| n.1 == 6).unwrap().2;
            let pairs: Vec<(u64, u64)> = auxv.chunks(16).map(|c| (u64_at(c, 0), u64_at(c, 8))).collect();
            assert_eq!(pairs, saved_auxv(&ck, t.pid), "{}: the auxv as saved", dir.display());
            assert_eq!(pairs.last().map(|p| p.0), Some(0));
            // PRSTATUS: pid and registers of each thread, in pstree order.
            let prs: Vec<&Vec<u8>> = notes.iter().filter(|n| n.1 == 1).map(|n| &n.2).collect();
            let mut tids = vec![t.pid];
            tids.extend(t.threads.iter().copied().filter(|x| *x != t.pid));
            for (d, tid) in prs.iter().zip(&tids) {
                assert_eq!(u32_at(d, 32), *tid);
                let c = ck.core(*tid).unwrap();
                let g = c.msg("thread_info").unwrap().msg("gpregs").unwrap();
                assert_eq!(u64_at(d, 112 + 16 * 8), g.u64("ip").unwrap(), "rip");
                assert_eq!(u64_at(d, 112 + 19 * 8), g.u64("sp").unwrap(), "rsp");
            }
        }
        cores += expect;
        let made = std::fs::read_dir(&out).unwrap().count();
        assert_eq!(made, expect, "{}: one file per process, no temporary left", dir.display());
    }
    assert!(cores >= 20, "{cores}");
}

/// The output depends on the images only: two runs give the same bytes,
/// wherever they run (no host files with --no-files).
#[test]
fn cores_are_reproducible() {
    let tmp = TempDir::new("core-repro");
    let images = core_fixture().join("images");
    let a = make_core(&images, &tmp.path().join("a"), &["--no-files"]);
    let b = make_core(&images, &tmp.path().join("b"), &["--no-files"]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    // With the files the text is in the core; without, gdb reads it from
    // the binary (no made-up zeros): the segment has no file data.
    let c = make_core(&images, &tmp.path().join("c"), &["--files-root", core_fixture().join("root").to_str().unwrap()]);
    let (_, pa, _) = parse_core(&std::fs::read(&a).unwrap());
    let (_, pc, _) = parse_core(&std::fs::read(&c).unwrap());
    let text = |ph: &[Phdr]| -> Vec<(u64, u64)> {
        ph.iter()
            .filter(|p| p.ty == 1 && p.flags & 1 != 0 && p.vaddr < 0x1000000)
            .map(|p| (p.filesz, p.memsz))
            .collect()
    };
    assert_eq!(text(&pc), vec![(0x8d000, 0x8d000)]);
    // Without the file: the dumped first page, then no data.
    assert_eq!(text(&pa), vec![(0x1000, 0x8d000)]);
    // The core is sparse: the three 8 MiB thread stacks are holes.
    let meta = std::fs::metadata(&c).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(meta.len() > 24 << 20 && meta.blocks() * 512 < 4 << 20, "{} bytes, {} blocks", meta.len(), meta.blocks());
}

/// gdb on the core of the committed threads fixture.
#[test]
fn gdb_reads_the_core() {
    if !have("gdb", "the gdb checks of crit core") {
        return;
    }
    let fx = core_fixture();
    let images = fx.join("images");
    let tmp = TempDir::new("core-gdb");
    let rootdir = fx.join("root");
    let core = make_core(&images, tmp.path(), &["--files-root", rootdir.to_str().unwrap()]);
    let pid = fixture_pid(&images);
    let ck = Checkpoint::open(&images).unwrap();
    let bin = rootdir.join("tmp/crit-core-fixtures/bin/core-threads");
    let cmds = [
        "set pagination off",
        "set width 0",
        "echo ==bt\\n",
        "thread apply all bt",
        "echo ==regs\\n",
        "thread apply all info registers",
        "echo ==xmm\\n",
        "thread apply all p/x $xmm1.v2_int64",
        "echo ==ymm\\n",
        "thread apply all p/x $ymm1.v4_int64",
        "echo ==strings\\n",
        "x/s heap_marker",
        "x/s shared_marker + 4196",
        "x/s short_map + 16",
        "x/16xb short_map + 4096",
        "echo ==auxv\\n",
        "info auxv",
        "echo ==end\\n",
    ];
    let mut a = vec!["-q".to_string(), "-batch".into(), "-nx".into()];
    for c in cmds {
        a.push("-ex".into());
        a.push(c.into());
    }
    a.push(bin.to_str().unwrap().into());
    a.push(core.to_str().unwrap().into());
    let o = Command::new("gdb").args(&a).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "gdb failed: {err}");
    for bad in ["Unexpected size", "malformed", "Cannot access memory", "warning: Error", "not in executable format"] {
        assert!(!out.contains(bad) && !err.contains(bad), "gdb said {bad:?}:\n{err}\n{out}");
    }
    let section = |name: &str| -> String {
        let s = out.find(&format!("=={name}\n")).unwrap_or_else(|| panic!("no {name} in {out}")) + name.len() + 3;
        let e = out[s..].find("\n==").map(|e| s + e + 1).unwrap_or(out.len());
        out[s..e].to_string()
    };
    // The command line, as the kernel would have put it.
    let cmdline = std::fs::read(fx.join("cmdline")).unwrap();
    let args: String = cmdline.iter().take(79).map(|c| if *c == 0 { ' ' } else { *c as char }).collect();
    let gen = format!("Core was generated by `{}", &args[..args.len().min(60)]);
    assert!(out.contains(&gen), "{gen:?} not in\n{out}");

    // Per thread blocks: "Thread N (... (LWP tid)):" then the lines.
    let blocks = |text: &str| -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = Vec::new();
        for line in text.lines() {
            if line.starts_with("Thread ") && line.contains("(LWP ") {
                let lwp = line.split("(LWP ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
                v.push((lwp, String::new()));
            } else if let Some(b) = v.last_mut() {
                b.1.push_str(line);
                b.1.push('\n');
            }
        }
        v
    };
    let threads: Vec<u32> = ck.tasks().unwrap()[0].threads.clone();
    assert_eq!(threads.len(), 4);

    // bt: the expected frames in every thread, innermost first.
    let bt = blocks(&section("bt"));
    assert_eq!(bt.len(), 4, "{}", section("bt"));
    let frames = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| {
                let f = l.split(" in ").nth(1).unwrap_or_else(|| l.split_whitespace().nth(1).unwrap());
                f.split_whitespace().next().unwrap().to_string()
            })
            .collect()
    };
    let expected: &[&[&str]] = &[
        &["main_wait", "main"],
        &["waiter_inner", "waiter", "start_thread"],
        &["sleeper_inner", "sleeper", "start_thread"],
        &["reg_holder_inner", "reg_holder", "start_thread"],
    ];
    let mut seen = vec![false; expected.len()];
    for (lwp, text) in &bt {
        let f = frames(text);
        let i = expected
            .iter()
            .position(|e| f.windows(e.len()).any(|w| w.iter().zip(e.iter()).all(|(a, b)| a == b)))
            .unwrap_or_else(|| panic!("thread {lwp}: unexpected frames {f:?}"));
        assert!(!seen[i], "two threads with {:?}", expected[i]);
        seen[i] = true;
        if i == 0 {
            assert_eq!(*lwp, pid, "the main thread runs main()");
        }
    }
    let reg_lwp = bt.iter().find(|(_, t)| frames(t).contains(&"reg_holder_inner".to_string())).unwrap().0;

    // info registers: every register gdb shows is the image's.
    let names: &[(&str, &str)] = &[
        ("rax", "ax"),
        ("rbx", "bx"),
        ("rcx", "cx"),
        ("rdx", "dx"),
        ("rsi", "si"),
        ("rdi", "di"),
        ("rbp", "bp"),
        ("rsp", "sp"),
        ("r8", "r8"),
        ("r9", "r9"),
        ("r10", "r10"),
        ("r11", "r11"),
        ("r12", "r12"),
        ("r13", "r13"),
        ("r14", "r14"),
        ("r15", "r15"),
        ("rip", "ip"),
        ("eflags", "flags"),
        ("cs", "cs"),
        ("ss", "ss"),
        ("ds", "ds"),
        ("es", "es"),
        ("fs", "fs"),
        ("gs", "gs"),
        ("fs_base", "fs_base"),
        ("gs_base", "gs_base"),
    ];
    let regs = blocks(&section("regs"));
    assert_eq!(regs.len(), 4);
    for (lwp, text) in &regs {
        let c = ck.core(*lwp).unwrap();
        let ti = c.msg("thread_info").unwrap();
        let g = ti.msg("gpregs").unwrap();
        let opmask = ti.msg("fpregs").and_then(|f| f.msg("xsave")).map(|x| words(x, "opmask_reg")).unwrap_or_default();
        let mut checked = 0;
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(name), Some(val)) = (it.next(), it.next()) else { continue };
            let Some(v) = val.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok()) else { continue };
            if let Some((_, img)) = names.iter().find(|(n, _)| *n == name) {
                assert_eq!(v, g.u64(img).unwrap(), "thread {lwp} {name}");
                checked += 1;
            } else if let Some(k) = name.strip_prefix('k').and_then(|k| k.parse::<usize>().ok()) {
                assert_eq!(v, opmask[k], "thread {lwp} {name}");
                checked += 1;
            }
        }
        assert!(checked >= 24, "thread {lwp}: {checked} registers checked in\n{text}");
        if *lwp == reg_lwp {
            assert!(text.contains("r12            0x6372697472656731"), "the known value in r12:\n{text}");
        }
    }

    // xmm1 and ymm1 (FPREGSET and X86_XSTATE) as the images have them.
    let xmm = blocks(&section("xmm"));
    let ymm = blocks(&section("ymm"));
    assert_eq!(xmm.len(), 4);
    for ((lwp, xt), (_, yt)) in xmm.iter().zip(&ymm) {
        let c = ck.core(*lwp).unwrap();
        let fp = c.msg("thread_info").unwrap().msg("fpregs").unwrap();
        let x = words(fp, "xmm_space");
        let lo = x[4] | x[5] << 32;
        let hi = x[6] | x[7] << 32;
        assert!(xt.contains(&format!("{{{lo:#x}, {hi:#x}}}")), "thread {lwp} xmm1 {xt}");
        if *lwp == reg_lwp {
            assert_eq!(lo, 0x63726974786d6d31, "the known value in xmm1");
        }
        let y = words(fp.msg("xsave").unwrap(), "ymmh_space");
        let (ylo, yhi) = (y[4] | y[5] << 32, y[6] | y[7] << 32);
        assert!(yt.contains(&format!("{{{lo:#x}, {hi:#x}, {ylo:#x}, {yhi:#x}}}")), "thread {lwp} ymm1 {yt}");
    }

    // Strings on the heap, in shared anonymous memory, in a written page of
    // a private file mapping, and the file's own bytes after it.
    let strings = section("strings");
    assert!(strings.contains("\"crit-heap-marker: the quick brown fox jumps over the lazy dog\""), "{strings}");
    assert!(strings.contains("\"crit-shared-marker: in anonymous shared memory\""), "{strings}");
    assert!(strings.contains("\"crit-cow-marker: a written page of a private file mapping\""), "{strings}");
    let file = std::fs::read(rootdir.join("tmp/crit-core-fixtures/work-core-threads/short.dat")).unwrap();
    let want: Vec<String> = file[4096..4104].iter().map(|b| format!("{b:#04x}")).collect();
    assert!(strings.contains(&want.join("\t")), "{want:?} in {strings}");

    // info auxv: each saved pair, in order.
    let auxv = section("auxv");
    let lines: Vec<&str> = auxv.lines().filter(|l| !l.trim().is_empty()).collect();
    let saved = saved_auxv(&ck, pid);
    assert_eq!(lines.len(), saved.len(), "{auxv}");
    for (line, (t, v)) in lines.iter().zip(&saved) {
        assert_eq!(line.split_whitespace().next().unwrap().parse::<u64>().unwrap(), *t, "{line}");
        let toks: Vec<&str> = line.split_whitespace().collect();
        assert!(toks.contains(&format!("{v:#x}").as_str()) || toks.contains(&v.to_string().as_str()), "{line}: {v:#x}");
    }
}

/// Without the mapped files the text is not in the core, and gdb takes it
/// from the binary: the same frames, the same instructions.
#[test]
fn gdb_reads_text_from_the_binary_when_the_core_has_none() {
    if !have("gdb", "the gdb checks of crit core") {
        return;
    }
    let fx = core_fixture();
    let images = fx.join("images");
    let tmp = TempDir::new("core-gdb-nofiles");
    let with = make_core(&images, &tmp.path().join("a"), &["--files-root", fx.join("root").to_str().unwrap()]);
    let without = make_core(&images, &tmp.path().join("b"), &["--no-files"]);
    let bin = fx.join("root/tmp/crit-core-fixtures/bin/core-threads");
    let gdb = |core: &Path| -> String {
        let o = Command::new("gdb")
            .args([
                "-q",
                "-batch",
                "-nx",
                "-ex",
                "set pagination off",
                "-ex",
                "thread apply all bt",
                "-ex",
                "thread apply all x/3i $pc",
            ])
            .arg(&bin)
            .arg(core)
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with('#') || l.contains("=>") || l.starts_with("   0x"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (a, b) = (gdb(&with), gdb(&without));
    assert!(a.contains("reg_holder_inner") && a.contains("syscall"), "{a}");
    assert_eq!(a, b);
}

/// readelf and eu-readelf accept the notes.
#[test]
fn readelf_and_eu_readelf_accept_the_core() {
    let tmp = TempDir::new("core-readelf");
    let images = core_fixture().join("images");
    let core = make_core(&images, tmp.path(), &["--no-files"]);
    let ck = Checkpoint::open(&images).unwrap();
    let pid = fixture_pid(&images);
    if have("readelf", "binutils") {
        let o = Command::new("readelf").arg("-hlnW").arg(&core).output().unwrap();
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.trim().is_empty(), "{err}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.matches("NT_PRSTATUS").count(), 4);
        for n in ["NT_PRPSINFO", "NT_AUXV", "NT_FILE", "NT_FPREGSET", "NT_X86_XSTATE", "NT_SIGINFO"] {
            assert!(out.contains(n), "{n} in {out}");
        }
        // binutils 2.40 says this of any NT_FILE, gdb's own included.
        for l in out.lines().filter(|l| l.contains("Cannot") || l.contains("rror") || l.contains("arning")) {
            assert!(l.contains("Cannot decode 64-bit note in 32-bit build"), "readelf: {l}");
        }
    }
    if have("eu-readelf", "elfutils") {
        let o = Command::new("eu-readelf").arg("-n").arg(&core).output().unwrap();
        let out = squeeze(&String::from_utf8_lossy(&o.stdout));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && err.trim().is_empty(), "{err}");
        assert_eq!(out.matches("PRSTATUS").count(), 4, "{out}");
        let mm = ck.mm(pid).unwrap();
        let g = ck.core(pid).unwrap().msg("thread_info").unwrap().msg("gpregs").unwrap().clone();
        assert!(out.contains(&format!("pid: {pid}")), "{out}");
        assert!(out.contains(&format!("rip: {:#018x}", g.u64("ip").unwrap())), "{out}");
        assert!(
            out.contains(&format!("fname: {}", ck.core(pid).unwrap().msg("tc").unwrap().str("comm").unwrap())),
            "{out}"
        );
        assert!(out.contains(&format!("SYSINFO_EHDR: {:#x}", words(&mm, "mm_saved_auxv")[1])), "{out}");
        assert!(out.contains("/tmp/crit-core-fixtures/work-core-threads/short.dat"), "NT_FILE: {out}");
        assert!(out.contains("X86_XSTATE"), "{out}");
    }
}

/// The architecture comes from the images: core images turned into
/// aarch64 ones give an aarch64 core, on this x86_64 host.
#[test]
fn aarch64_images_give_an_aarch64_core() {
    let tmp = TempDir::new("core-arm64");
    let src = core_fixture().join("images");
    let dir = tmp.path().join("images");
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let id = |n: &str| crit::schema::MsgId::by_name(n).unwrap();
    let ck = Checkpoint::open(&dir).unwrap();
    let task = ck.tasks().unwrap()[0].clone();
    for (k, tid) in task.threads.iter().enumerate() {
        let mut c = ck.core(*tid).unwrap();
        let mut g = Message::new(id("user_aarch64_regs_entry"));
        for i in 0..31u64 {
            g.insert_sorted(1, Value::Uint(0x1000 * (k as u64 + 1) + i));
        }
        g.set("sp", Value::Uint(0x7ffff000 - k as u64 * 0x1000)).unwrap();
        g.set("pc", Value::Uint(0x400100 + k as u64 * 4)).unwrap();
        g.set("pstate", Value::Uint(0x60000000)).unwrap();
        let mut fp = Message::new(id("user_aarch64_fpsimd_context_entry"));
        for i in 0..64u64 {
            fp.insert_sorted(1, Value::Uint(i));
        }
        fp.set("fpsr", Value::Uint(0x10)).unwrap();
        fp.set("fpcr", Value::Uint(0x20)).unwrap();
        let mut ti = Message::new(id("thread_info_aarch64"));
        ti.set("clear_tid_addr", Value::Uint(0)).unwrap();
        ti.set("tls", Value::Uint(0xdead0000 + k as u64)).unwrap();
        ti.set("gpregs", Value::Msg(g)).unwrap();
        ti.set("fpsimd", Value::Msg(fp)).unwrap();
        let n = c.field_desc("thread_info").unwrap().number;
        c.fields.retain(|(f, _)| *f != n);
        c.set("ti_aarch64", Value::Msg(ti)).unwrap();
        c.set("mtype", Value::Enum(3)).unwrap();
        let mut out = Vec::new();
        let mut w = crit::image::ImageWriter::new(&mut out, crit::magic::by_name("CORE").unwrap()).unwrap();
        w.write_message(&c).unwrap();
        w.finish().unwrap();
        std::fs::write(dir.join(format!("core-{tid}.img")), out).unwrap();
    }
    let core = make_core(&dir, &tmp.path().join("out"), &["--no-files"]);
    let data = std::fs::read(&core).unwrap();
    let (machine, _, notes) = parse_core(&data);
    assert_eq!(machine, 183, "EM_AARCH64");
    let pr: Vec<&Vec<u8>> = notes.iter().filter(|n| n.1 == 1).map(|n| &n.2).collect();
    assert_eq!(pr.len(), 4);
    assert!(pr.iter().all(|d| d.len() == 392));
    assert_eq!(u64_at(pr[1], 112 + 31 * 8 + 8), 0x400104, "pc of the second thread");
    assert_eq!(notes.iter().filter(|n| n.1 == 2 && n.2.len() == 528).count(), 4);
    assert_eq!(notes.iter().filter(|n| n.1 == 0x401 && n.0 == "LINUX").count(), 4);
    assert!(notes.iter().all(|n| n.1 != 0x202), "no x86 state");
    if have("eu-readelf", "elfutils") {
        let o = Command::new("eu-readelf").arg("-n").arg(&core).output().unwrap();
        let out = squeeze(&String::from_utf8_lossy(&o.stdout));
        assert!(o.status.success() && o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.contains("pc: 0x0000000000400100, pstate: 0x0000000060000000"), "{out}");
        assert!(out.contains("x30: 4126 sp: 0x000000007ffff000"), "{out}");
        assert!(out.contains("x0: 8192 x1: 8193"), "the second thread's registers: {out}");
        assert_eq!(out.matches("PRSTATUS").count(), 4);
    }
}
