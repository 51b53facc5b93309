//! ELF core files from a checkpoint, one per process, that gdb loads with
//! the process's own binaries.
//!
//! The architecture comes from the images (`core_entry.mtype`), never from
//! the host: x86_64 and aarch64 are written.  The layout is the kernel's:
//! the ELF header, the program headers (a `PT_NOTE`, then `PT_LOAD`s in
//! address order), the notes, and the memory, each `PT_LOAD` at a
//! page-aligned offset.  Memory comes from [`crate::mem::Memory`]: dumped
//! pages (this dump or its parents), the mapped files where they are there
//! unchanged, zeros for untouched anonymous memory.  Zeros are holes of a
//! sparse file, the rest is copied with `copy_file_range` where the kernel
//! offers it.  Bytes that cannot be known (lazy pages, a mapped file that is
//! missing, vvar) get no file data: their `PT_LOAD` has `p_filesz` short of
//! `p_memsz` (a mapping split in several `PT_LOAD`s where known and unknown
//! bytes alternate), so that gdb reads such addresses from the binaries it
//! has instead of from made-up zeros.
//!
//! Notes: for the first thread `PRSTATUS`, then `PRPSINFO`, `AUXV` (the
//! saved auxiliary vector, pairs up to `AT_NULL`) and `FILE` (the file
//! mappings), then its register sets; each other thread's `PRSTATUS` and
//! register sets.  On x86_64 the register sets are `FPREGSET`,
//! `X86_XSTATE` (standard XSAVE layout, XCR0 in the software-reserved
//! bytes as Linux writes it) and `SIGINFO`; on aarch64 `FPREGSET`,
//! `ARM_TLS` and `SIGINFO`.

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, Task};
use crate::error::{Error, Result};
use crate::mem::{status, Content, Copied, Files, Memory, Piece, Vma, Why, PAGE_SIZE};
use crate::output::AtomicFile;
use crate::wire::{Message, Value};

const NT_PRSTATUS: u32 = 1;
const NT_PRFPREG: u32 = 2;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_X86_XSTATE: u32 = 0x202;
const NT_ARM_TLS: u32 = 0x401;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PN_XNUM: usize = 0xffff;

/// Options of [`write_core`].
#[derive(Clone, Debug, Default)]
pub struct CoreOptions {
    /// Where mapped files' contents come from.
    pub files: Files,
}

/// What [`write_core`] wrote.
#[derive(Clone, Debug)]
pub struct CoreReport {
    /// The process.
    pub pid: u32,
    /// The core file.
    pub path: PathBuf,
    /// The architecture.
    pub arch: Arch,
    /// Threads written.
    pub threads: usize,
    /// `PT_LOAD` segments written.
    pub segments: usize,
    /// The size of the file (its apparent size: zeros are holes).
    pub size: u64,
    /// Bytes copied and left as holes.
    pub copied: Copied,
    /// Unknown bytes (no file data in the core): address, length, why.
    pub unknown: Vec<(u64, u64, Why)>,
    /// Things worth telling the user (a mapped file not used, ...).
    pub warnings: Vec<String>,
}

/// The architectures a core can be written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86_64, 64-bit tasks.
    X86_64,
    /// AArch64.
    Aarch64,
}

/// The x86_64 `user_regs_struct`, in order, by `user_x86_regs_entry` names.
const X86_GPREGS: &[&str] = &[
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax", "ip",
    "cs", "flags", "sp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
];

/// XSAVE components of `user_x86_xsave_entry`: field, element size, its
/// XCR0 group (the bits gdb wants together), offset and size in the
/// standard (non-compacted) layout.
const XSAVE_PARTS: &[(&str, usize, u64, usize, usize)] = &[
    ("ymmh_space", 4, 0x04, 576, 256),
    ("bndreg_state", 8, 0x18, 960, 64),
    ("bndcsr_state", 8, 0x18, 1024, 64),
    ("opmask_reg", 8, 0xe0, 1088, 64),
    ("zmm_upper", 8, 0xe0, 1152, 512),
    ("hi16_zmm", 8, 0xe0, 1664, 1024),
    ("pkru", 4, 0x200, 2688, 8),
];

/// The size of the XSAVE area gdb expects for an XCR0 (the end of the
/// highest component group).
fn xsave_size(xcr0: u64) -> usize {
    if xcr0 & 0x200 != 0 {
        2696
    } else if xcr0 & 0xe0 != 0 {
        2688
    } else if xcr0 & 0x18 != 0 {
        1088
    } else if xcr0 & 0x04 != 0 {
        832
    } else {
        576
    }
}

impl Arch {
    /// The architecture of a thread's `core_entry`.
    pub fn of(core: &Message) -> Result<Arch> {
        match core.enum_name("mtype") {
            Some("X86_64") => {
                let mode = core.msg("thread_info").and_then(|t| t.msg("gpregs")).and_then(|g| g.enum_name("mode"));
                if mode == Some("COMPAT") {
                    return Err(Error::other("32-bit (compat) x86 tasks are not supported yet"));
                }
                Ok(Arch::X86_64)
            }
            Some("AARCH64") => Ok(Arch::Aarch64),
            Some(other) => Err(Error::other(format!("core files for {other} tasks are not supported"))),
            None => Err(Error::malformed(format!(
                "unknown architecture (mtype {})",
                core.enum_value("mtype").map(|v| v.to_string()).unwrap_or_else(|| "missing".into())
            ))),
        }
    }

    /// `e_machine`.
    pub fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// A name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// `elf_gregset_t` of a thread.
    fn gregs(self, core: &Message, w: &mut Warn) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Arch::X86_64 => {
                let g = core
                    .msg("thread_info")
                    .and_then(|t| t.msg("gpregs"))
                    .ok_or_else(|| Error::malformed("no thread_info.gpregs"))?;
                for name in X86_GPREGS {
                    out.extend_from_slice(&g.u64(name).unwrap_or(0).to_le_bytes());
                }
            }
            Arch::Aarch64 => {
                let g = core
                    .msg("ti_aarch64")
                    .and_then(|t| t.msg("gpregs"))
                    .ok_or_else(|| Error::malformed("no ti_aarch64.gpregs"))?;
                put_words(&mut out, g, "regs", 8, 31, w);
                for name in ["sp", "pc", "pstate"] {
                    out.extend_from_slice(&g.u64(name).unwrap_or(0).to_le_bytes());
                }
            }
        }
        Ok(out)
    }

    /// The register-set notes of a thread, after its PRSTATUS.
    fn regsets(self, core: &Message, notes: &mut Vec<Note>, w: &mut Warn) -> Result<()> {
        match self {
            Arch::X86_64 => {
                let Some(fp) = core.msg("thread_info").and_then(|t| t.msg("fpregs")) else {
                    w.add("a thread has no FPU state: no FPREGSET note");
                    return Ok(());
                };
                let legacy = x86_fxsave(fp, w);
                notes.push(Note::core(NT_PRFPREG, legacy.clone()));
                if let Some(xs) = fp.msg("xsave") {
                    notes.push(Note::linux(NT_X86_XSTATE, x86_xsave(legacy, xs, w)));
                }
            }
            Arch::Aarch64 => {
                let t = core.msg("ti_aarch64").ok_or_else(|| Error::malformed("no ti_aarch64"))?;
                if let Some(fp) = t.msg("fpsimd") {
                    let mut d = Vec::with_capacity(528);
                    put_words(&mut d, fp, "vregs", 8, 64, w);
                    d.extend_from_slice(&(fp.u64("fpsr").unwrap_or(0) as u32).to_le_bytes());
                    d.extend_from_slice(&(fp.u64("fpcr").unwrap_or(0) as u32).to_le_bytes());
                    d.extend_from_slice(&[0u8; 8]);
                    notes.push(Note::core(NT_PRFPREG, d));
                }
                notes.push(Note::linux(NT_ARM_TLS, t.u64("tls").unwrap_or(0).to_le_bytes().to_vec()));
            }
        }
        Ok(())
    }
}

/// Warnings gathered while writing.
#[derive(Default)]
struct Warn(Vec<String>);

impl Warn {
    fn add(&mut self, s: impl Into<String>) {
        let s = s.into();
        if !self.0.contains(&s) {
            self.0.push(s);
        }
    }
}

/// Append the `count` elements of repeated integer field `name`, `size`
/// bytes each; fewer are padded with zeros, more are cut (with a warning).
fn put_words(out: &mut Vec<u8>, m: &Message, name: &str, size: usize, count: usize, w: &mut Warn) {
    let vals: Vec<u64> = m.get_all(name).filter_map(Value::as_u64).collect();
    if vals.len() != count {
        w.add(format!("{name} has {} values, {count} expected", vals.len()));
    }
    for i in 0..count {
        let v = vals.get(i).copied().unwrap_or(0);
        out.extend_from_slice(&v.to_le_bytes()[..size]);
    }
}

/// The 512-byte FXSAVE area (`user_fpregs_struct`).
fn x86_fxsave(fp: &Message, w: &mut Warn) -> Vec<u8> {
    let mut d = Vec::with_capacity(512);
    for f in ["cwd", "swd", "twd", "fop"] {
        d.extend_from_slice(&(fp.u64(f).unwrap_or(0) as u16).to_le_bytes());
    }
    d.extend_from_slice(&fp.u64("rip").unwrap_or(0).to_le_bytes());
    d.extend_from_slice(&fp.u64("rdp").unwrap_or(0).to_le_bytes());
    d.extend_from_slice(&(fp.u64("mxcsr").unwrap_or(0) as u32).to_le_bytes());
    d.extend_from_slice(&(fp.u64("mxcsr_mask").unwrap_or(0) as u32).to_le_bytes());
    put_words(&mut d, fp, "st_space", 4, 32, w);
    put_words(&mut d, fp, "xmm_space", 4, 64, w);
    let pad: Vec<u64> = fp.get_all("padding").filter_map(Value::as_u64).collect();
    for i in 0..24 {
        d.extend_from_slice(&(pad.get(i).copied().unwrap_or(0) as u32).to_le_bytes());
    }
    d
}

/// The XSAVE area: the legacy area with XCR0 at byte 464 (Linux's
/// `xstate_fx_sw_bytes`), the header, and each component CRIU saved.
fn x86_xsave(mut legacy: Vec<u8>, xs: &Message, w: &mut Warn) -> Vec<u8> {
    let mut xcr0 = 0x3u64;
    for (name, _, group, _, _) in XSAVE_PARTS {
        if xs.get_all(name).next().is_some() {
            xcr0 |= group;
        }
    }
    if xcr0 & 0xe0 != 0 {
        xcr0 |= 0x04; // AVX-512 state comes with AVX's.
    }
    let size = xsave_size(xcr0);
    legacy.resize(size, 0);
    legacy[464..472].copy_from_slice(&xcr0.to_le_bytes());
    let bv = xs.u64("xstate_bv").unwrap_or(0) & xcr0;
    legacy[512..520].copy_from_slice(&bv.to_le_bytes());
    for (name, esize, group, off, len) in XSAVE_PARTS {
        if xcr0 & group == 0 {
            continue;
        }
        let vals: Vec<u64> = xs.get_all(name).filter_map(Value::as_u64).collect();
        if vals.is_empty() {
            continue;
        }
        let want = len / esize;
        if vals.len() != want {
            w.add(format!("xsave {name} has {} values, {want} expected", vals.len()));
        }
        for (i, v) in vals.iter().take(want).enumerate() {
            let at = off + i * esize;
            legacy[at..at + esize].copy_from_slice(&v.to_le_bytes()[..*esize]);
        }
    }
    legacy
}

/// One ELF note.
struct Note {
    name: &'static str,
    ty: u32,
    desc: Vec<u8>,
}

impl Note {
    fn core(ty: u32, desc: Vec<u8>) -> Note {
        Note { name: "CORE", ty, desc }
    }

    fn linux(ty: u32, desc: Vec<u8>) -> Note {
        Note { name: "LINUX", ty, desc }
    }

    /// The note as written: header, name and description, each padded to 4
    /// bytes (the sizes in the header are the unpadded ones).
    fn encode(&self, out: &mut Vec<u8>) {
        let namesz = self.name.len() + 1;
        out.extend_from_slice(&(namesz as u32).to_le_bytes());
        out.extend_from_slice(&(self.desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.ty.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.resize(out.len() + namesz.div_ceil(4) * 4 - self.name.len(), 0);
        out.extend_from_slice(&self.desc);
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The `elf_prstatus` of a thread (both architectures are LP64 Linux).
fn prstatus(arch: Arch, task: &Task, tid: u32, core: &Message, w: &mut Warn) -> Result<Vec<u8>> {
    let regs = arch.gregs(core, w)?;
    let mut d = vec![0u8; 112];
    let tc = core.msg("thread_core");
    // Pending signals of the thread, from its private queue.
    let mut pend = 0u64;
    if let Some(q) = tc.and_then(|t| t.msg("signals_p")) {
        for s in q.get_all("signals") {
            let Value::Msg(s) = s else { continue };
            if let Some(Value::Bytes(b)) = s.get("siginfo") {
                if let Some(signo) = b.get(..4).map(|x| i32::from_le_bytes([x[0], x[1], x[2], x[3]])) {
                    if (1..=64).contains(&signo) {
                        pend |= 1 << (signo - 1);
                    }
                }
            }
        }
    }
    put_u64(&mut d, 16, pend);
    let hold = tc.and_then(|t| t.u64("blk_sigset")).or_else(|| core.msg("tc").and_then(|t| t.u64("blk_sigset")));
    put_u64(&mut d, 24, hold.unwrap_or(0));
    put_u32(&mut d, 32, tid);
    put_u32(&mut d, 36, task.ppid);
    put_u32(&mut d, 40, task.pgid);
    put_u32(&mut d, 44, task.sid);
    d.extend_from_slice(&regs);
    d.extend_from_slice(&1u32.to_le_bytes()); // pr_fpvalid
    d.resize(d.len().div_ceil(8) * 8, 0);
    Ok(d)
}

/// The `elf_prpsinfo` of a process.
fn prpsinfo(task: &Task, core: &Message, psargs: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 136];
    let tc = core.msg("tc");
    let thc = core.msg("thread_core");
    // CRIU's task states: 1 alive, 2 dead, 3 stopped, 6 zombie.
    let (state, sname) = match tc.and_then(|t| t.u64("task_state")) {
        Some(3) => (3u8, b'T'),
        Some(6) | Some(2) => (4, b'Z'),
        _ => (0, b'R'),
    };
    d[0] = state;
    d[1] = sname;
    d[2] = (state == 4) as u8;
    d[3] = thc.and_then(|t| t.i64("sched_nice")).unwrap_or(0) as i8 as u8;
    put_u64(&mut d, 8, tc.and_then(|t| t.u64("flags")).unwrap_or(0));
    let creds = thc.and_then(|t| t.msg("creds"));
    put_u32(&mut d, 16, creds.and_then(|c| c.u64("uid")).unwrap_or(0) as u32);
    put_u32(&mut d, 20, creds.and_then(|c| c.u64("gid")).unwrap_or(0) as u32);
    put_u32(&mut d, 24, task.pid);
    put_u32(&mut d, 28, task.ppid);
    put_u32(&mut d, 32, task.pgid);
    put_u32(&mut d, 36, task.sid);
    if let Some(Value::Str(comm)) = tc.and_then(|t| t.get("comm")) {
        let n = comm.len().min(15);
        d[40..40 + n].copy_from_slice(&comm[..n]);
    }
    // As the kernel: at most 79 bytes of the arguments, NULs as spaces.
    let n = psargs.len().min(79);
    for (i, c) in psargs[..n].iter().enumerate() {
        d[56 + i] = if *c == 0 { b' ' } else { *c };
    }
    d
}

/// `NT_AUXV`: the saved vector's pairs, up to and including `AT_NULL`.
fn auxv(mm: &Message) -> Vec<u8> {
    let words: Vec<u64> = mm.get_all("mm_saved_auxv").filter_map(Value::as_u64).collect();
    let mut d = Vec::new();
    for pair in words.chunks(2) {
        let (t, v) = (pair[0], pair.get(1).copied().unwrap_or(0));
        d.extend_from_slice(&t.to_le_bytes());
        d.extend_from_slice(&v.to_le_bytes());
        if t == 0 {
            return d;
        }
    }
    d.extend_from_slice(&[0u8; 16]);
    d
}

/// `NT_FILE`: the file mappings, with their names.
fn file_note(mem: &Memory) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut names = Vec::new();
    for v in mem.vmas() {
        let Some(f) = mem.file_of(v) else { continue };
        if f.name.is_empty() {
            continue;
        }
        entries.push((v.start, v.end, v.pgoff / PAGE_SIZE));
        names.extend_from_slice(f.name.as_bytes());
        if f.deleted {
            names.extend_from_slice(b" (deleted)");
        }
        names.push(0);
    }
    let mut d = Vec::with_capacity(16 + entries.len() * 24 + names.len());
    d.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    d.extend_from_slice(&PAGE_SIZE.to_le_bytes());
    for (s, e, o) in entries {
        d.extend_from_slice(&s.to_le_bytes());
        d.extend_from_slice(&e.to_le_bytes());
        d.extend_from_slice(&o.to_le_bytes());
    }
    d.extend_from_slice(&names);
    d
}

/// One `PT_LOAD`.
struct Segment {
    vaddr: u64,
    memsz: u64,
    flags: u32,
    /// The pieces with file data (a prefix of the segment).
    data: Vec<Piece>,
    filesz: u64,
    offset: u64,
}

fn pf_flags(v: &Vma) -> u32 {
    let mut f = 0;
    if v.prot & 1 != 0 {
        f |= 4;
    }
    if v.prot & 2 != 0 {
        f |= 2;
    }
    if v.prot & 4 != 0 {
        f |= 1;
    }
    f
}

/// The `PT_LOAD`s of a mapping: known bytes as file data, unknown ones
/// as memory only; a new segment where known bytes follow unknown ones.
fn segments_of(mem: &Memory, v: &Vma, unknown: &mut Vec<(u64, u64, Why)>) -> Vec<Segment> {
    let flags = pf_flags(v);
    let pieces = mem.vma_contents(v);
    for p in &pieces {
        if let Content::Unavailable(w) = p.content {
            unknown.push((p.addr, p.len, w));
        }
    }
    if v.prot & 7 == 0 {
        // Inaccessible (guard pages): nothing to read there.
        return vec![Segment { vaddr: v.start, memsz: v.len(), flags, data: Vec::new(), filesz: 0, offset: 0 }];
    }
    let mut out: Vec<Segment> = Vec::new();
    let mut open = false; // whether the last segment still takes file data
    for p in pieces {
        let known = p.content.is_known();
        match out.last_mut() {
            Some(s) if known && open => {
                s.memsz += p.len;
                s.filesz += p.len;
                s.data.push(p);
            }
            Some(s) if !known => {
                s.memsz += p.len;
                open = false;
            }
            _ => {
                out.push(Segment {
                    vaddr: p.addr,
                    memsz: p.len,
                    flags,
                    filesz: if known { p.len } else { 0 },
                    data: if known { vec![p] } else { Vec::new() },
                    offset: 0,
                });
                open = known;
            }
        }
    }
    out
}

/// The file name of a process's core.
pub fn core_name(pid: u32) -> String {
    format!("core.{pid}")
}

/// Write the core of process `pid` to `path` (atomically).
pub fn write_core(ck: &Checkpoint, pid: u32, path: &Path, opts: &CoreOptions) -> Result<CoreReport> {
    let task = ck
        .tasks()?
        .into_iter()
        .find(|t| t.pid == pid)
        .ok_or_else(|| Error::other(format!("no process {pid} in pstree.img")))?;
    let main = ck.core(pid)?;
    let arch = Arch::of(&main).map_err(|e| e.in_file(format!("core-{pid}.img")))?;
    let mem = Memory::open(ck, pid, &opts.files)?;
    let mm = ck.mm(pid)?;
    let mut w = Warn::default();
    for f in mem.files() {
        if let Some(why) = &f.unavailable {
            w.add(format!("mapped file {} not used: {why}", f.name));
        }
    }

    // Threads: the main one first, as the kernel and gdb want it.
    let mut tids = vec![pid];
    tids.extend(task.threads.iter().copied().filter(|t| *t != pid));
    let mut notes = Vec::new();
    let (a, b) = (mm.u64("mm_arg_start").unwrap_or(0), mm.u64("mm_arg_end").unwrap_or(0));
    let mut psargs = vec![0u8; b.saturating_sub(a).min(80) as usize];
    mem.read(a, &mut psargs)?;
    for (i, tid) in tids.iter().enumerate() {
        let core = if i == 0 { main.clone() } else { ck.core(*tid)? };
        let ta = Arch::of(&core).map_err(|e| e.in_file(format!("core-{tid}.img")))?;
        if ta != arch {
            return Err(Error::malformed(format!("thread {tid} is {}, the process {}", ta.name(), arch.name())));
        }
        notes.push(Note::core(
            NT_PRSTATUS,
            prstatus(arch, &task, *tid, &core, &mut w).map_err(|e| e.in_file(format!("core-{tid}.img")))?,
        ));
        if i == 0 {
            notes.push(Note::core(NT_PRPSINFO, prpsinfo(&task, &core, &psargs)));
            notes.push(Note::core(NT_SIGINFO, vec![0u8; 128]));
            notes.push(Note::core(NT_AUXV, auxv(&mm)));
            notes.push(Note::core(NT_FILE, file_note(&mem)));
        }
        arch.regsets(&core, &mut notes, &mut w).map_err(|e| e.in_file(format!("core-{tid}.img")))?;
        if i != 0 {
            notes.push(Note::core(NT_SIGINFO, vec![0u8; 128]));
        }
    }
    let mut note_bytes = Vec::new();
    for n in &notes {
        n.encode(&mut note_bytes);
    }

    let mut unknown = Vec::new();
    let mut segs = Vec::new();
    for v in mem.vmas() {
        segs.extend(segments_of(&mem, v, &mut unknown));
    }
    let phnum = segs.len() + 1;
    let ehsize = 64u64;
    let phoff = ehsize;
    let notes_off = phoff + 56 * phnum as u64;
    let mut cur = notes_off + note_bytes.len() as u64;
    let shoff = if phnum >= PN_XNUM {
        let at = cur.div_ceil(8) * 8;
        cur = at + 64;
        at
    } else {
        0
    };
    // Every offset is page-aligned (p_offset = p_vaddr modulo p_align),
    // those of segments without file data too.
    for s in segs.iter_mut() {
        s.offset = cur.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        if s.filesz > 0 {
            cur = s.offset + s.filesz;
        }
    }
    let size = cur;

    let mut head = vec![0u8; notes_off as usize];
    head[..4].copy_from_slice(b"\x7fELF");
    head[4] = 2; // ELFCLASS64
    head[5] = 1; // little-endian
    head[6] = 1; // EV_CURRENT
    put_u16(&mut head, 16, 4); // ET_CORE
    put_u16(&mut head, 18, arch.machine());
    put_u32(&mut head, 20, 1);
    put_u64(&mut head, 32, phoff);
    put_u64(&mut head, 40, shoff);
    put_u16(&mut head, 52, ehsize as u16);
    put_u16(&mut head, 54, 56);
    put_u16(&mut head, 56, phnum.min(PN_XNUM) as u16);
    if shoff != 0 {
        put_u16(&mut head, 58, 64);
        put_u16(&mut head, 60, 1);
    }
    let mut ph = |i: usize, ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64| {
        let b = phoff as usize + 56 * i;
        put_u32(&mut head, b, ty);
        put_u32(&mut head, b + 4, flags);
        put_u64(&mut head, b + 8, off);
        put_u64(&mut head, b + 16, vaddr);
        put_u64(&mut head, b + 24, 0);
        put_u64(&mut head, b + 32, filesz);
        put_u64(&mut head, b + 40, memsz);
        put_u64(&mut head, b + 48, align);
    };
    ph(0, PT_NOTE, 0, notes_off, 0, note_bytes.len() as u64, 0, 4);
    for (i, s) in segs.iter().enumerate() {
        ph(i + 1, PT_LOAD, s.flags, s.offset, s.vaddr, s.filesz, s.memsz, PAGE_SIZE);
    }
    head.extend_from_slice(&note_bytes);

    let mut out = AtomicFile::create(path).map_err(|e| Error::from(e).in_file(path))?;
    let mut copied = Copied::default();
    {
        let f = out.file().map_err(|e| Error::from(e).in_file(path))?;
        crate::mem::write_at(f, &head, 0).map_err(|e| e.in_file(path))?;
        if shoff != 0 {
            let mut sh = [0u8; 64];
            put_u32(&mut sh, 44, phnum as u32); // sh_info: the real count
            crate::mem::write_at(f, &sh, shoff).map_err(|e| e.in_file(path))?;
        }
        for s in &segs {
            let c = mem.copy_pieces(&s.data, f, s.offset).map_err(|e| e.in_file(path))?;
            copied.pages += c.pages;
            copied.file += c.file;
            copied.holes += c.holes;
        }
        f.set_len(size).map_err(|e| Error::from(e).in_file(path))?;
    }
    out.commit().map_err(|e| Error::from(e).in_file(path))?;
    for v in mem.vmas() {
        if v.status & status::SOCKET != 0 {
            w.add(format!("{:x}-{:x}: a socket ring, whose contents CRIU does not dump", v.start, v.end));
        }
    }
    Ok(CoreReport {
        pid,
        path: path.to_path_buf(),
        arch,
        threads: tids.len(),
        segments: segs.len(),
        size,
        copied,
        unknown,
        warnings: w.0,
    })
}

/// The processes of a checkpoint that have memory (zombies have none).
pub fn processes_with_memory(ck: &Checkpoint) -> Result<Vec<Task>> {
    Ok(ck.tasks()?.into_iter().filter(|t| ck.has(&format!("mm-{}.img", t.pid))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_padding() {
        let mut b = Vec::new();
        Note::core(NT_AUXV, vec![1, 2, 3, 4, 5]).encode(&mut b);
        assert_eq!(&b[..12], &[5, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&b[12..20], b"CORE\0\0\0\0");
        assert_eq!(&b[20..25], &[1, 2, 3, 4, 5]);
        assert_eq!(b.len(), 28);
        let mut b = Vec::new();
        Note::linux(NT_X86_XSTATE, vec![0; 8]).encode(&mut b);
        assert_eq!(&b[12..20], b"LINUX\0\0\0");
    }

    #[test]
    fn xsave_sizes_are_gdbs() {
        assert_eq!(xsave_size(0x3), 576);
        assert_eq!(xsave_size(0x7), 832);
        assert_eq!(xsave_size(0x1f), 1088);
        assert_eq!(xsave_size(0xe7), 2688);
        assert_eq!(xsave_size(0x2e7), 2696);
        for (_, es, _, off, len) in XSAVE_PARTS {
            assert_eq!(len % es, 0);
            assert!(off + len <= 2696);
        }
    }
}
