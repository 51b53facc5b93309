//! The memory of a dumped process: any byte range, read through its
//! pagemap and pages.
//!
//! A [`Pagemap`] is one `pagemap-*.img` with its `pages-<id>.img`, and the
//! pagemaps of the same name in the parent dumps of an incremental chain
//! (the `parent` link of each image directory).  Its entries are kept as
//! sorted runs with their offsets in the pages file, so finding an address
//! is a binary search, and pages are read by range (`pread`), never the
//! whole file: memory use is bounded by the number of entries.
//!
//! [`Memory`] puts a process's mappings (`mm-<pid>.img`) over that: each
//! address is answered by the private pagemap, then by what backs the
//! mapping (the shared-memory pagemap of shared anonymous, SysV and memfd
//! memory; the mapped file, from the file system or a ghost image; zeros
//! for anonymous memory), as CRIU restores it.  What cannot be known is
//! said so ([`Why`]): lazy pages, pages missing from the parent chain, a
//! mapped file that is not there, areas CRIU never dumps.
//!
//! Entries follow CRIU's rules for old images: `in_parent` means
//! `PE_PARENT`, no `flags` means `PE_PRESENT`, no `nr_pages` means
//! `compat_nr_pages`; the pages file offset grows over present entries only.

pub mod view;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::image::{ImageReader, Role};
use crate::wire::{Message, Value};

/// The page size of the images (CRIU's `PAGE_SIZE` on x86_64 and most
/// arm64 systems; the images do not record it).
pub const PAGE_SIZE: u64 = 4096;

/// Pagemap entry flags.
pub mod pe {
    /// The pages are in the parent dump.
    pub const PARENT: u32 = 1;
    /// The pages may be restored lazily (from a page server).
    pub const LAZY: u32 = 2;
    /// The pages are in this dump's pages file.
    pub const PRESENT: u32 = 4;
}

/// `vma_entry.status` bits.
pub mod status {
    #![allow(missing_docs)]
    pub const REGULAR: u32 = 1 << 0;
    pub const STACK: u32 = 1 << 1;
    pub const VSYSCALL: u32 = 1 << 2;
    pub const VDSO: u32 = 1 << 3;
    pub const HEAP: u32 = 1 << 5;
    pub const FILE_PRIVATE: u32 = 1 << 6;
    pub const FILE_SHARED: u32 = 1 << 7;
    pub const ANON_SHARED: u32 = 1 << 8;
    pub const ANON_PRIVATE: u32 = 1 << 9;
    pub const SYSVIPC: u32 = 1 << 10;
    pub const SOCKET: u32 = 1 << 11;
    pub const VVAR: u32 = 1 << 12;
    pub const AIORING: u32 = 1 << 13;
    pub const MEMFD: u32 = 1 << 14;
    pub const SHSTK: u32 = 1 << 15;
    pub const GUARD: u32 = 1 << 16;
    pub const UPROBES: u32 = 1 << 17;
    pub const UNSUPP: u32 = 1 << 31;
}

/// How deep a parent chain may go (a loop is refused before that).
const MAX_CHAIN: usize = 256;

// ---------------------------------------------------------------------------
// Pagemaps

/// One pagemap entry, normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First address (or offset, in a shared-memory pagemap).
    pub vaddr: u64,
    /// Number of pages.
    pub pages: u64,
    /// `pe::*` flags, after CRIU's rules for old entries.
    pub flags: u32,
    /// Byte offset of the first page in the pages file (present runs only).
    pub offset: u64,
    /// Index of the entry in the image (0 is the head).
    pub entry: usize,
}

impl Run {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.vaddr + self.pages * PAGE_SIZE
    }

    /// Whether the pages are in this level's pages file.
    pub fn in_file(&self) -> bool {
        self.flags & pe::PRESENT != 0 && self.flags & pe::PARENT == 0
    }
}

/// One level of a chain: a pagemap image of one dump directory.
pub struct Level {
    /// The dump directory.
    pub dir: PathBuf,
    /// `pagemap_head.pages_id`.
    pub pages_id: u32,
    /// The pages file.
    pub pages_path: PathBuf,
    runs: Vec<Run>,
    pages: Option<File>,
}

impl Level {
    /// The runs, sorted by address.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// The pages file, open.
    pub fn pages_file(&self) -> Result<&File> {
        self.pages
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Other("no pages file".into())).in_file(&self.pages_path))
    }
}

/// Where the page holding an address is, in a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// In the pages file of `level` (0: this dump) at `offset`.
    Pages {
        /// The level.
        level: usize,
        /// Byte offset in that level's pages file.
        offset: u64,
    },
    /// A lazy entry: the pages are not in the images.
    Lazy,
    /// No entry covers the address.
    Hole,
    /// A `PE_PARENT` entry whose pages no parent has.
    MissingParent,
}

/// A pagemap and its parent chain.
pub struct Pagemap {
    /// The image name (`pagemap-<pid>.img`, `pagemap-shmem-<id>.img`).
    pub name: String,
    levels: Vec<Level>,
    broken: Option<String>,
}

fn err_in(e: Error, path: &Path) -> Error {
    e.in_file(path)
}

fn malformed_at(path: &Path, entry: usize, msg: String) -> Error {
    Error::malformed(msg).in_file(path).at_entry(entry)
}

/// Read one pagemap image of a directory; None when there is none.
fn load_level(dir: &Path, name: &str) -> Result<Option<Level>> {
    let path = dir.join(name);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err_in(e.into(), &path)),
    };
    let mut rd = ImageReader::open(BufReader::with_capacity(1 << 16, f)).map_err(|e| err_in(e, &path))?;
    if rd.kind().name != "PAGEMAP" {
        return Err(Error::other(format!("not a pagemap image (magic {})", rd.kind().name)).in_file(&path));
    }
    let mut pages_id = None;
    let mut runs = Vec::new();
    let mut offset = 0u64;
    while let Some(item) = rd.next_item().map_err(|e| err_in(e, &path))? {
        if item.role == Role::PagemapHead {
            pages_id = item.msg.u64("pages_id").map(|v| v as u32);
            continue;
        }
        let m = &item.msg;
        let vaddr = m.u64("vaddr").unwrap_or(0);
        let pages = m.u64("nr_pages").or_else(|| m.u64("compat_nr_pages")).unwrap_or(0);
        let mut flags = m.u64("flags").map(|f| f as u32);
        if m.bool("in_parent") == Some(true) {
            flags = Some(flags.unwrap_or(0) | pe::PARENT);
        }
        let flags = flags.unwrap_or(pe::PRESENT);
        if vaddr % PAGE_SIZE != 0 {
            return Err(malformed_at(&path, item.index, format!("vaddr {vaddr:#x} is not page-aligned")));
        }
        let len = pages.checked_mul(PAGE_SIZE).filter(|l| vaddr.checked_add(*l).is_some());
        let Some(len) = len else {
            return Err(malformed_at(
                &path,
                item.index,
                format!("{pages} pages at {vaddr:#x} overflow the address space"),
            ));
        };
        if pages == 0 {
            continue;
        }
        let run = Run { vaddr, pages, flags, offset, entry: item.index };
        if run.in_file() {
            offset = offset
                .checked_add(len)
                .ok_or_else(|| malformed_at(&path, item.index, "pages file offset overflows".into()))?;
        }
        runs.push(run);
    }
    let Some(pages_id) = pages_id else {
        return Err(Error::malformed("pagemap without a head").in_file(&path));
    };
    // CRIU writes entries in address order; accept any order, refuse overlaps.
    if runs.windows(2).any(|w| w[1].vaddr < w[0].vaddr) {
        runs.sort_by_key(|r| r.vaddr);
    }
    for w in runs.windows(2) {
        if w[1].vaddr < w[0].end() {
            return Err(malformed_at(
                &path,
                w[1].entry,
                format!("entry at {:#x} overlaps the entry at {:#x} (entry {})", w[1].vaddr, w[0].vaddr, w[0].entry),
            ));
        }
    }
    let pages_path = dir.join(format!("pages-{pages_id}.img"));
    let pages = match File::open(&pages_path) {
        Ok(f) => {
            let have = f.metadata().map_err(|e| err_in(e.into(), &pages_path))?.len();
            if have < offset {
                return Err(Error::new(ErrorKind::Truncated { what: "pages file", need: offset, got: have })
                    .in_file(&pages_path));
            }
            Some(f)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && offset == 0 => None,
        Err(e) => return Err(err_in(e.into(), &pages_path)),
    };
    Ok(Some(Level { dir: dir.to_path_buf(), pages_id, pages_path, runs, pages }))
}

impl Pagemap {
    /// Open pagemap image `name` of directory `dir` and the same image of
    /// its parents; None when `dir` has no such image.
    pub fn open(dir: &Path, name: &str) -> Result<Option<Pagemap>> {
        let Some(first) = load_level(dir, name)? else { return Ok(None) };
        let mut levels = vec![first];
        let mut seen = vec![std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())];
        let mut broken = None;
        while let Some(last) = levels.last() {
            // Only follow the chain while some entry needs it.
            if !last.runs.iter().any(|r| r.flags & pe::PARENT != 0) {
                break;
            }
            let link = last.dir.join("parent");
            if std::fs::symlink_metadata(&link).is_err() {
                break;
            }
            let canon = match std::fs::canonicalize(&link) {
                Ok(c) => c,
                Err(e) => {
                    // CRIU would refuse to restore; a reader can still read
                    // the rest: those pages are missing.
                    broken = Some(format!("{}: {e}", link.display()));
                    break;
                }
            };
            if seen.contains(&canon) {
                return Err(Error::other("the parent chain loops").in_file(&link));
            }
            if levels.len() >= MAX_CHAIN {
                return Err(Error::other(format!("the parent chain is longer than {MAX_CHAIN}")).in_file(&link));
            }
            seen.push(canon);
            match load_level(&link, name)? {
                Some(l) => levels.push(l),
                None => break,
            }
        }
        Ok(Some(Pagemap { name: name.to_string(), levels, broken }))
    }

    /// Why the parent chain ends before a level that entries need (a
    /// `parent` link that leads nowhere), if it does.
    pub fn broken_link(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// The levels: 0 is this dump, 1 its parent, ...
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Where the byte at `addr` is, and for how many bytes from `addr` on
    /// the answer continues in the same way (contiguous in the same file).
    pub fn find(&self, addr: u64) -> (Found, u64) {
        self.find_at(0, addr)
    }

    fn find_at(&self, level: usize, addr: u64) -> (Found, u64) {
        let Some(l) = self.levels.get(level) else { return (Found::MissingParent, u64::MAX - addr) };
        let i = l.runs.partition_point(|r| r.vaddr <= addr);
        let next = l.runs.get(i).map(|r| r.vaddr - addr).unwrap_or(u64::MAX - addr);
        let Some(r) = i.checked_sub(1).and_then(|j| l.runs.get(j)).filter(|r| addr < r.end()) else {
            return (Found::Hole, next);
        };
        let left = r.end() - addr;
        if r.flags & pe::PARENT != 0 {
            let (f, n) = self.find_at(level + 1, addr);
            let f = if f == Found::Hole { Found::MissingParent } else { f };
            return (f, n.min(left));
        }
        if r.flags & pe::PRESENT != 0 {
            return (Found::Pages { level, offset: r.offset + (addr - r.vaddr) }, left);
        }
        if r.flags & pe::LAZY != 0 {
            return (Found::Lazy, left);
        }
        // An entry with no usable flag: CRIU could not restore it either.
        (Found::MissingParent, left)
    }

    /// Read `buf.len()` bytes of level `level`'s pages file at `offset`.
    pub fn read_pages(&self, level: usize, offset: u64, buf: &mut [u8]) -> Result<()> {
        let l = self.levels.get(level).ok_or_else(|| Error::other("no such level"))?;
        let f = l.pages_file()?;
        f.read_exact_at(buf, offset).map_err(|e| {
            let e = if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::new(ErrorKind::Truncated { what: "pages file", need: offset + buf.len() as u64, got: 0 })
            } else {
                e.into()
            };
            e.in_file(&l.pages_path).at_offset(offset)
        })
    }
}

// ---------------------------------------------------------------------------
// Mappings

/// What a mapping is, as `crit mem --kind` selects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The main stack or another growsdown mapping.
    Stack,
    /// The brk heap.
    Heap,
    /// Backed by a file (private or shared; memfd included).
    File,
    /// `MAP_SHARED` (shared anonymous, SysV, memfd, shared files).
    Shared,
    /// Anonymous (private or shared).
    Anon,
    /// vdso, vvar, vsyscall and other areas of the kernel's.
    Special,
}

/// Every kind, for tables.
pub const KINDS: &[(Kind, &str)] = &[
    (Kind::Stack, "stack"),
    (Kind::Heap, "heap"),
    (Kind::File, "file"),
    (Kind::Shared, "shared"),
    (Kind::Anon, "anon"),
    (Kind::Special, "special"),
];

/// One mapping (`vma_entry`).
#[derive(Clone, Debug)]
pub struct Vma {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Offset in the mapped object, in bytes.
    pub pgoff: u64,
    /// File id, shared-memory id, ...
    pub shmid: u64,
    /// PROT_* bits.
    pub prot: u32,
    /// MAP_* bits.
    pub flags: u32,
    /// `status::*` bits.
    pub status: u32,
    /// Index in `mm.vmas`.
    pub index: usize,
    /// A name to show: the file path, `[heap]`, `[stack]`, ...
    pub name: String,
    backing: Backing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backing {
    /// Anonymous private memory: zeros where nothing was dumped.
    Anon,
    /// A shared-memory pagemap (index into `Memory::shmem`).
    Shmem(usize),
    /// A mapped file (index into `Memory::files`).
    File(usize),
    /// Nothing is known where nothing was dumped.
    Nothing(Why),
}

impl Vma {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping is empty (never, for a valid image).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// `rwxp` / `rw-s` as in /proc/PID/maps.
    pub fn perms(&self) -> String {
        let b = |bit: u32, c: char| if self.prot & bit != 0 { c } else { '-' };
        format!("{}{}{}{}", b(1, 'r'), b(2, 'w'), b(4, 'x'), if self.flags & 1 != 0 { 's' } else { 'p' })
    }

    /// Whether the mapping is of kind `k`.
    pub fn is(&self, k: Kind) -> bool {
        let s = self.status;
        match k {
            Kind::Stack => s & status::STACK != 0 || self.flags & 0x100 != 0,
            Kind::Heap => s & status::HEAP != 0,
            Kind::File => s & (status::FILE_PRIVATE | status::FILE_SHARED) != 0 && !self.is_anon_memfd(),
            Kind::Shared => self.flags & 1 != 0,
            Kind::Anon => {
                s & (status::ANON_PRIVATE | status::ANON_SHARED) != 0
                    && s & (status::VDSO | status::VVAR | status::VSYSCALL) == 0
                    || self.is_anon_memfd()
            }
            Kind::Special => s & (status::VDSO | status::VVAR | status::VSYSCALL | status::UPROBES) != 0,
        }
    }

    /// Shared anonymous memory, which CRIU 4 dumps as a memfd named
    /// `/dev/zero` (the kernel's name for it).
    fn is_anon_memfd(&self) -> bool {
        self.status & status::MEMFD != 0 && self.name == "/dev/zero"
    }

    /// The kinds of the mapping, by name.
    pub fn kind_names(&self) -> Vec<&'static str> {
        KINDS.iter().filter(|(k, _)| self.is(*k)).map(|(_, n)| *n).collect()
    }

    /// Whether CRIU keeps this mapping's contents only in the private
    /// pagemap (anything else is not dumped at all).
    fn special_why(&self) -> Option<Why> {
        let s = self.status;
        if s & (status::VVAR | status::VSYSCALL | status::SOCKET | status::UPROBES | status::UNSUPP) != 0 {
            Some(Why::NotDumped)
        } else {
            None
        }
    }
}

/// Why bytes are not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// Lazy pages: they are kept by a page server, not in the images.
    Lazy,
    /// In a parent dump that is not there or does not have them.
    MissingParent,
    /// From a mapped file that is not available (or differs).
    NoFile,
    /// CRIU never dumps the contents of this area (vvar, vsyscall,
    /// socket rings, uprobes), or its shared-memory image is missing.
    NotDumped,
    /// No mapping at that address.
    Unmapped,
}

impl Why {
    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            Why::Lazy => "lazy pages (not in the images)",
            Why::MissingParent => "in a parent dump that is missing",
            Why::NoFile => "from a mapped file that is not available",
            Why::NotDumped => "never dumped",
            Why::Unmapped => "not mapped",
        }
    }
}

/// What the bytes of a piece are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Content {
    /// Dumped pages, of this dump (level 0) or of a parent (1, 2, ...).
    Dumped {
        /// The level.
        level: usize,
    },
    /// The mapped file's contents.
    File,
    /// Zeros, known to be the contents (anonymous memory never written,
    /// holes of shared memory, file mappings past the end of the file).
    Zero,
    /// Not known.
    Unavailable(Why),
}

impl Content {
    /// Whether the bytes are known.
    pub fn is_known(&self) -> bool {
        !matches!(self, Content::Unavailable(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    None,
    /// Pages of a pagemap (None: the private one; Some(i): `shmem[i]`).
    Pages {
        map: Option<usize>,
        level: usize,
        offset: u64,
    },
    /// Bytes of `files[file]` at `offset`.
    File {
        file: usize,
        offset: u64,
    },
}

impl Src {
    fn advanced(self, n: u64) -> Src {
        match self {
            Src::None => Src::None,
            Src::Pages { map, level, offset } => Src::Pages { map, level, offset: offset + n },
            Src::File { file, offset } => Src::File { file, offset: offset + n },
        }
    }
}

/// A range of addresses whose bytes come from one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// First address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the bytes are.
    pub content: Content,
    src: Src,
}

impl Piece {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.addr + self.len
    }
}

fn push_piece(out: &mut Vec<Piece>, p: Piece) {
    if p.len == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.end() == p.addr && last.content == p.content && last.src.advanced(last.len) == p.src {
            last.len += p.len;
            return;
        }
    }
    out.push(p);
}

// ---------------------------------------------------------------------------
// Mapped files

/// Where the contents of mapped files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Files {
    /// Do not use files: their pages are unavailable.
    None,
    /// The files at the paths the images record, under this root
    /// (`/` for the live file system).
    Root(PathBuf),
}

impl Default for Files {
    fn default() -> Self {
        Files::Root(PathBuf::from("/"))
    }
}

/// A mapped file, and whether its contents can be used.
#[derive(Debug)]
pub struct MappedFile {
    /// `files.img` id.
    pub id: u32,
    /// The path the images record.
    pub name: String,
    /// Its size at dump time, if recorded.
    pub size: Option<u64>,
    /// Whether it was unlinked (its contents are in a ghost image).
    pub deleted: bool,
    /// Why its contents cannot be used, if they cannot.
    pub unavailable: Option<String>,
    data: Option<FileData>,
}

#[derive(Debug)]
enum FileData {
    /// A file: its bytes up to `len`.
    Plain { file: File, len: u64 },
    /// A ghost image: extents `(file offset, length, image offset)`,
    /// sorted; the rest of the file up to `len` is zeros.
    Ghost { file: File, extents: Vec<(u64, u64, u64)>, len: u64 },
}

impl FileData {
    fn len(&self) -> u64 {
        match self {
            FileData::Plain { len, .. } | FileData::Ghost { len, .. } => *len,
        }
    }

    /// Calls `f(image file, image offset or None for zeros, length)` for
    /// the pieces of `[off, off + len)` (which must lie below `len()`).
    fn walk(&self, off: u64, len: u64, mut f: impl FnMut(&File, Option<u64>, u64) -> Result<()>) -> Result<()> {
        match self {
            FileData::Plain { file, .. } => f(file, Some(off), len),
            FileData::Ghost { file, extents, .. } => {
                let mut a = off;
                let end = off + len;
                let mut i = extents.partition_point(|e| e.0 + e.1 <= a);
                while a < end {
                    match extents.get(i) {
                        Some(&(eo, el, io)) if eo <= a => {
                            let n = (eo + el).min(end) - a;
                            f(file, Some(io + (a - eo)), n)?;
                            a += n;
                            i += 1;
                        }
                        Some(&(eo, _, _)) => {
                            let n = eo.min(end) - a;
                            f(file, None, n)?;
                            a += n;
                        }
                        None => {
                            f(file, None, end - a)?;
                            a = end;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The ELF build-id of a file (the `NT_GNU_BUILD_ID` note of a `PT_NOTE`
/// segment), as CRIU records it.
pub fn elf_build_id(f: &File) -> Option<Vec<u8>> {
    let mut eh = [0u8; 64];
    f.read_exact_at(&mut eh[..52], 0).ok()?;
    if &eh[..4] != b"\x7fELF" || eh[5] != 1 {
        return None;
    }
    let is64 = eh[4] == 2;
    let u16_at = |b: &[u8], o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |b: &[u8], o: usize| b.get(o..o + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let u64_at = |b: &[u8], o: usize| b.get(o..o + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
    let (phoff, phentsize, phnum) = if is64 {
        f.read_exact_at(&mut eh, 0).ok()?;
        (u64_at(&eh, 32)?, u16_at(&eh, 54)? as u64, u16_at(&eh, 56)? as u64)
    } else {
        (u32_at(&eh, 28)? as u64, u16_at(&eh, 42)? as u64, u16_at(&eh, 44)? as u64)
    };
    if phentsize < if is64 { 56 } else { 32 } || phnum > 4096 {
        return None;
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    f.read_exact_at(&mut ph, phoff).ok()?;
    for i in 0..phnum as usize {
        let p = &ph[i * phentsize as usize..];
        if u32_at(p, 0)? != 4 {
            continue; // not PT_NOTE
        }
        let (off, size) =
            if is64 { (u64_at(p, 8)?, u64_at(p, 32)?) } else { (u32_at(p, 4)? as u64, u32_at(p, 16)? as u64) };
        if size > 1 << 20 {
            continue;
        }
        let mut notes = vec![0u8; size as usize];
        if f.read_exact_at(&mut notes, off).is_err() {
            continue;
        }
        let mut pos = 0usize;
        while pos + 12 <= notes.len() {
            let namesz = u32_at(&notes, pos)? as usize;
            let descsz = u32_at(&notes, pos + 4)? as usize;
            let ty = u32_at(&notes, pos + 8)?;
            let desc = pos + 12 + namesz.div_ceil(4) * 4;
            if ty == 3 && descsz > 0 && descsz <= 512 {
                return notes.get(desc..desc + descsz).map(|d| d.to_vec());
            }
            pos = desc + descsz.div_ceil(4) * 4;
        }
    }
    None
}

/// The path of image path `name` under `root`; None for names that leave
/// it (`..`) or are not absolute.
fn under_root(root: &Path, name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let mut out = root.to_path_buf();
    let mut any = false;
    for c in p.components() {
        match c {
            Component::RootDir => any = true,
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    any.then_some(out)
}

// ---------------------------------------------------------------------------
// A process's memory

/// What happened while reading: how many bytes of each content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Dumped bytes per level (0: this dump).
    pub dumped: Vec<u64>,
    /// Bytes from mapped files.
    pub file: u64,
    /// Known zeros.
    pub zero: u64,
    /// Unknown bytes, by reason.
    pub unavailable: Vec<(Why, u64)>,
}

impl Tally {
    /// Add a piece.
    pub fn add(&mut self, p: &Piece) {
        match p.content {
            Content::Dumped { level } => {
                if self.dumped.len() <= level {
                    self.dumped.resize(level + 1, 0);
                }
                self.dumped[level] += p.len;
            }
            Content::File => self.file += p.len,
            Content::Zero => self.zero += p.len,
            Content::Unavailable(w) => match self.unavailable.iter_mut().find(|(x, _)| *x == w) {
                Some(e) => e.1 += p.len,
                None => self.unavailable.push((w, p.len)),
            },
        }
    }

    /// Add another tally.
    pub fn merge(&mut self, o: &Tally) {
        if self.dumped.len() < o.dumped.len() {
            self.dumped.resize(o.dumped.len(), 0);
        }
        for (a, b) in self.dumped.iter_mut().zip(&o.dumped) {
            *a += b;
        }
        self.file += o.file;
        self.zero += o.zero;
        for (w, n) in &o.unavailable {
            match self.unavailable.iter_mut().find(|(x, _)| x == w) {
                Some(e) => e.1 += n,
                None => self.unavailable.push((*w, *n)),
            }
        }
    }

    /// All dumped bytes, in any level.
    pub fn dumped_total(&self) -> u64 {
        self.dumped.iter().sum()
    }

    /// All unknown bytes.
    pub fn unavailable_total(&self) -> u64 {
        self.unavailable.iter().map(|(_, n)| n).sum()
    }
}

/// How many bytes a copy wrote and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Bytes copied from pages files.
    pub pages: u64,
    /// Bytes copied from mapped files.
    pub file: u64,
    /// Bytes left as holes (zeros, or unknown).
    pub holes: u64,
}

/// The memory of one dumped process.
pub struct Memory {
    /// The process.
    pub pid: u32,
    vmas: Vec<Vma>,
    private: Option<Pagemap>,
    shmem: Vec<Pagemap>,
    files: Vec<MappedFile>,
}

/// The dump directory of a checkpoint (pages are read from files on disk).
fn dir_of(ck: &Checkpoint) -> Result<PathBuf> {
    ck.source().path_of("inventory.img").and_then(|p| p.parent().map(Path::to_path_buf)).ok_or_else(|| {
        Error::other(format!("{}: memory can only be read from a dump directory", ck.source().display()))
    })
}

impl Memory {
    /// Open the memory of process `pid` of a checkpoint, taking mapped
    /// files' contents from `files`.
    pub fn open(ck: &Checkpoint, pid: u32, files: &Files) -> Result<Memory> {
        let dir = dir_of(ck)?;
        let mm_name = format!("mm-{pid}.img");
        if !ck.has(&mm_name) {
            if crate::explore::is_dead(ck, pid) {
                return Err(Error::other(format!("process {pid} is a zombie: it has no memory")).in_file(&mm_name));
            }
            if !ck.tasks()?.iter().any(|t| t.pid == pid) {
                return Err(Error::other(format!("no process {pid} in pstree.img")));
            }
        }
        let mm = ck.mm(pid)?;
        let pm_name = format!("pagemap-{pid}.img");
        let private = Pagemap::open(&dir, &pm_name)?;
        if private.is_none() {
            // Without it nothing of the process's own memory is known.
            return Err(
                Error::other(format!("no {pm_name}: the memory of process {pid} was not dumped")).in_file(&pm_name)
            );
        }
        let mut mem = Memory { pid, vmas: Vec::new(), private, shmem: Vec::new(), files: Vec::new() };
        let lookup = FileLookup::new(ck, &dir, files)?;
        let mut shmem_ids: HashMap<u64, Option<usize>> = HashMap::new();
        let mut file_ids: HashMap<u32, usize> = HashMap::new();
        for (index, v) in mm.get_all("vmas").enumerate() {
            let Value::Msg(v) = v else { continue };
            let g = |n: &str| v.u64(n).unwrap_or(0);
            let (start, end) = (g("start"), g("end"));
            if end <= start || start % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 {
                return Err(Error::malformed(format!("mapping {start:#x}-{end:#x} is empty or not page-aligned"))
                    .in_file(&mm_name)
                    .in_field(&format!("vmas[{index}]")));
            }
            let st = g("status") as u32;
            let shmid = g("shmid");
            let mut name = String::new();
            let mut shm_key = None;
            let mut file = None;
            let mut unknown = None;
            if st & status::MEMFD != 0 {
                match lookup.memfd(shmid as u32) {
                    Some((n, id)) => {
                        name = n;
                        shm_key = Some(id);
                    }
                    None => {
                        name = format!("memfd (file {shmid})");
                        unknown = Some(Why::NotDumped);
                    }
                }
            } else if st & (status::SYSVIPC | status::ANON_SHARED) != 0 {
                shm_key = Some(shmid);
                name = if st & status::SYSVIPC != 0 { format!("SysV shm {shmid}") } else { "[shared anon]".into() };
            } else if st & (status::FILE_PRIVATE | status::FILE_SHARED) != 0 {
                let id = shmid as u32;
                let i = match file_ids.get(&id) {
                    Some(i) => *i,
                    None => {
                        let f = lookup.file(id);
                        mem.files.push(f);
                        file_ids.insert(id, mem.files.len() - 1);
                        mem.files.len() - 1
                    }
                };
                name = mem.files[i].name.clone();
                file = Some(i);
            }
            if name.is_empty() {
                name = if st & status::HEAP != 0 {
                    "[heap]".into()
                } else if st & status::STACK != 0 || g("flags") & 0x100 != 0 {
                    "[stack]".into()
                } else if st & status::VDSO != 0 {
                    "[vdso]".into()
                } else if st & status::VVAR != 0 {
                    "[vvar]".into()
                } else if st & status::VSYSCALL != 0 {
                    "[vsyscall]".into()
                } else if st & status::SOCKET != 0 {
                    "[socket ring]".into()
                } else if st & status::UPROBES != 0 {
                    "[uprobes]".into()
                } else {
                    String::new()
                };
            }
            let backing = if let Some(why) = unknown {
                Backing::Nothing(why)
            } else if let Some(key) = shm_key {
                let slot = match shmem_ids.get(&key) {
                    Some(s) => *s,
                    None => {
                        let s = Pagemap::open(&dir, &format!("pagemap-shmem-{key}.img"))?.map(|p| {
                            mem.shmem.push(p);
                            mem.shmem.len() - 1
                        });
                        shmem_ids.insert(key, s);
                        s
                    }
                };
                match slot {
                    Some(s) => Backing::Shmem(s),
                    None => Backing::Nothing(Why::NotDumped),
                }
            } else if let Some(i) = file {
                if mem.files[i].data.is_some() {
                    Backing::File(i)
                } else {
                    Backing::Nothing(Why::NoFile)
                }
            } else {
                Backing::Anon
            };
            mem.vmas.push(Vma {
                start,
                end,
                pgoff: g("pgoff"),
                shmid,
                prot: g("prot") as u32,
                flags: g("flags") as u32,
                status: st,
                index,
                name,
                backing,
            });
        }
        mem.vmas.sort_by_key(|v| v.start);
        for w in mem.vmas.windows(2) {
            if w[1].start < w[0].end {
                return Err(Error::malformed(format!(
                    "mappings {:#x}-{:#x} and {:#x}-{:#x} overlap",
                    w[0].start, w[0].end, w[1].start, w[1].end
                ))
                .in_file(&mm_name));
            }
        }
        Ok(mem)
    }

    /// The mappings, by address.
    pub fn vmas(&self) -> &[Vma] {
        &self.vmas
    }

    /// The mapped files.
    pub fn files(&self) -> &[MappedFile] {
        &self.files
    }

    /// The mapped file of a mapping, if it has one.
    pub fn file_of(&self, vma: &Vma) -> Option<&MappedFile> {
        if vma.status & (status::FILE_PRIVATE | status::FILE_SHARED) == 0 || vma.status & status::MEMFD != 0 {
            return None;
        }
        self.files.iter().find(|f| f.id as u64 == vma.shmid)
    }

    /// The private pagemap (None if the dump has no pagemap for the process).
    pub fn pagemap(&self) -> Option<&Pagemap> {
        self.private.as_ref()
    }

    /// The mapping holding `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<&Vma> {
        let i = self.vmas.partition_point(|v| v.start <= addr);
        i.checked_sub(1).and_then(|j| self.vmas.get(j)).filter(|v| addr < v.end)
    }

    fn map(&self, m: Option<usize>) -> Option<&Pagemap> {
        match m {
            None => self.private.as_ref(),
            Some(i) => self.shmem.get(i),
        }
    }

    /// The pieces of `[start, end)`, in address order, covering it
    /// exactly (gaps between mappings as `Unavailable(Unmapped)`).
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut a = start;
        let mut i = self.vmas.partition_point(|v| v.end <= a);
        while a < end {
            match self.vmas.get(i) {
                Some(v) if v.start <= a => {
                    let to = v.end.min(end);
                    self.vma_pieces(v, a, to, &mut out);
                    a = to;
                    i += 1;
                }
                next => {
                    let to = next.map(|v| v.start).unwrap_or(end).min(end);
                    push_piece(
                        &mut out,
                        Piece { addr: a, len: to - a, content: Content::Unavailable(Why::Unmapped), src: Src::None },
                    );
                    a = to;
                }
            }
        }
        out
    }

    /// The pieces of a whole mapping.
    pub fn vma_contents(&self, v: &Vma) -> Vec<Piece> {
        let mut out = Vec::new();
        self.vma_pieces(v, v.start, v.end, &mut out);
        out
    }

    fn vma_pieces(&self, v: &Vma, from: u64, to: u64, out: &mut Vec<Piece>) {
        let mut a = from;
        while a < to {
            let (content, src, n) = self.resolve(v, a);
            let n = n.min(to - a).max(1);
            push_piece(out, Piece { addr: a, len: n, content, src });
            a += n;
        }
    }

    /// What the byte at `a` (inside `v`) is, and for how long that holds.
    fn resolve(&self, v: &Vma, a: u64) -> (Content, Src, u64) {
        let left = v.end - a;
        if let Some(why) = v.special_why() {
            // vdso pages are in the private pagemap; these never are.
            return (Content::Unavailable(why), Src::None, left);
        }
        let mut limit = left;
        if let Some(pm) = &self.private {
            let (f, n) = pm.find(a);
            match f {
                Found::Pages { level, offset } => {
                    return (Content::Dumped { level }, Src::Pages { map: None, level, offset }, n.min(left))
                }
                Found::Lazy => return (Content::Unavailable(Why::Lazy), Src::None, n.min(left)),
                Found::MissingParent => return (Content::Unavailable(Why::MissingParent), Src::None, n.min(left)),
                Found::Hole => limit = n.min(left),
            }
        }
        let off = a - v.start + v.pgoff;
        match v.backing {
            Backing::Anon => (Content::Zero, Src::None, limit),
            Backing::Nothing(why) => (Content::Unavailable(why), Src::None, limit),
            Backing::Shmem(i) => {
                let Some(pm) = self.shmem.get(i) else {
                    return (Content::Unavailable(Why::NotDumped), Src::None, limit);
                };
                let (f, n) = pm.find(off);
                let n = n.min(limit);
                match f {
                    Found::Pages { level, offset } => {
                        (Content::Dumped { level }, Src::Pages { map: Some(i), level, offset }, n)
                    }
                    Found::Lazy => (Content::Unavailable(Why::Lazy), Src::None, n),
                    Found::MissingParent => (Content::Unavailable(Why::MissingParent), Src::None, n),
                    Found::Hole => (Content::Zero, Src::None, n),
                }
            }
            Backing::File(i) => {
                let len = self.files.get(i).and_then(|f| f.data.as_ref()).map(|d| d.len()).unwrap_or(0);
                if off < len {
                    (Content::File, Src::File { file: i, offset: off }, limit.min(len - off))
                } else {
                    (Content::Zero, Src::None, limit)
                }
            }
        }
    }

    /// Read the bytes of `pieces` (consecutive, starting at `pieces[0]`)
    /// into `buf` (as long as they are together); unknown bytes read as zeros.
    pub fn read_pieces(&self, pieces: &[Piece], buf: &mut [u8]) -> Result<()> {
        let base = pieces.first().map(|p| p.addr).unwrap_or(0);
        for p in pieces {
            let (Some(s), Some(e)) = ((p.addr - base).try_into().ok(), (p.end() - base).try_into().ok()) else {
                continue;
            };
            let Some(dst) = buf.get_mut(s..e) else { continue };
            self.read_piece(p, dst)?;
        }
        Ok(())
    }

    fn read_piece(&self, p: &Piece, dst: &mut [u8]) -> Result<()> {
        match p.src {
            Src::None => dst.fill(0),
            Src::Pages { map, level, offset } => match self.map(map) {
                Some(pm) => pm.read_pages(level, offset, dst)?,
                None => dst.fill(0),
            },
            Src::File { file, offset } => {
                let Some(f) = self.files.get(file) else {
                    dst.fill(0);
                    return Ok(());
                };
                let Some(d) = f.data.as_ref() else {
                    dst.fill(0);
                    return Ok(());
                };
                let mut pos = 0usize;
                d.walk(offset, dst.len() as u64, |file, at, n| {
                    let part = &mut dst[pos..pos + n as usize];
                    match at {
                        Some(o) => read_at_or_zero(file, part, o).map_err(|e| Error::from(e).in_file(&f.name))?,
                        None => part.fill(0),
                    }
                    pos += n as usize;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at `addr`; unknown bytes read as zeros.
    /// Returns the pieces read, to tell what was known.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<Vec<Piece>> {
        let end = addr
            .checked_add(buf.len() as u64)
            .ok_or_else(|| Error::other(format!("{} bytes at {addr:#x} wrap around the address space", buf.len())))?;
        let pieces = self.pieces(addr, end);
        self.read_pieces(&pieces, buf)?;
        Ok(pieces)
    }

    /// Copy the bytes of `pieces` into `out` at offset `at` (for
    /// `pieces[0].addr`), with `copy_file_range` where the kernel offers it;
    /// zeros and unknown bytes are left as holes (the caller sets the length).
    pub fn copy_pieces(&self, pieces: &[Piece], out: &File, at: u64) -> Result<Copied> {
        let base = pieces.first().map(|p| p.addr).unwrap_or(0);
        let mut c = Copied::default();
        for p in pieces {
            let dst = at + (p.addr - base);
            match p.src {
                Src::None => c.holes += p.len,
                Src::Pages { map, level, offset } => {
                    let Some(pm) = self.map(map) else {
                        c.holes += p.len;
                        continue;
                    };
                    let l = pm.levels.get(level).ok_or_else(|| Error::other("no such level"))?;
                    let f = l.pages_file()?;
                    copy_range(f, offset, out, dst, p.len).map_err(|e| e.in_file(&l.pages_path))?;
                    c.pages += p.len;
                }
                Src::File { file, offset } => {
                    let Some(mf) = self.files.get(file) else { continue };
                    let Some(d) = mf.data.as_ref() else { continue };
                    let mut pos = dst;
                    d.walk(offset, p.len, |f, at, n| {
                        match at {
                            Some(o) => {
                                copy_range(f, o, out, pos, n).map_err(|e| e.in_file(&mf.name))?;
                                c.file += n;
                            }
                            None => c.holes += n,
                        }
                        pos += n;
                        Ok(())
                    })?;
                }
            }
        }
        Ok(c)
    }

    /// What a mapping holds: bytes per content.
    pub fn tally(&self, v: &Vma) -> Tally {
        let mut t = Tally::default();
        for p in self.vma_contents(v) {
            t.add(&p);
        }
        t
    }
}

fn read_at_or_zero(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    let n = crate::fsio::read_full_at(f, buf, off)?;
    // The file shrank since it was checked: what is gone reads as zeros.
    buf[n..].fill(0);
    Ok(())
}

/// How much [`copy_range`] copies before it starts the write-back of it.
const WRITEBACK_CHUNK: u64 = 32 << 20;

/// Copy `len` bytes of `src` at `src_off` to `dst` at `dst_off`, in the
/// kernel where it can (`copy_file_range`, through `std::io::copy`).  Large
/// copies go in chunks, the write-back of each started as soon as it is
/// copied (`sync_file_range`), so that the final sync of an atomic output
/// has little left to wait for.
pub fn copy_range(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64) -> Result<()> {
    let mut s = src;
    let mut d = dst;
    s.seek(SeekFrom::Start(src_off))?;
    d.seek(SeekFrom::Start(dst_off))?;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(WRITEBACK_CHUNK);
        let mut t = Read::take(s, n);
        let got = io::copy(&mut t, &mut d)?;
        if got < n {
            let at = src_off + done + got;
            return Err(
                Error::new(ErrorKind::Truncated { what: "source file", need: src_off + len, got: at }).at_offset(at)
            );
        }
        if len > WRITEBACK_CHUNK {
            start_writeback(dst, dst_off + done, n);
        }
        done += n;
    }
    Ok(())
}

/// Start writing a range of a file back to its disk, without waiting (a
/// hint: errors are left to the final sync, which reports them).
fn start_writeback(f: &File, off: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (i64::try_from(off), i64::try_from(len)) else { return };
    // SAFETY: a plain system call on an open file descriptor; no memory is
    // passed to the kernel.
    unsafe {
        nix::libc::sync_file_range(f.as_raw_fd(), off, len, nix::libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Write `data` at offset `at` of `out`.
pub fn write_at(out: &File, data: &[u8], at: u64) -> Result<()> {
    let mut o = out;
    o.seek(SeekFrom::Start(at))?;
    o.write_all(data)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Finding the mapped files

struct FileLookup<'a> {
    ck: &'a Checkpoint,
    dir: PathBuf,
    files: &'a Files,
    remaps: HashMap<u32, (u32, i32)>,
}

impl<'a> FileLookup<'a> {
    fn new(ck: &'a Checkpoint, dir: &Path, files: &'a Files) -> Result<Self> {
        let mut remaps = HashMap::new();
        if ck.has("remap-fpath.img") {
            for m in ck.entries("remap-fpath.img")?.iter() {
                let orig = m.u64("orig_id").unwrap_or(0) as u32;
                remaps.insert(orig, (m.u64("remap_id").unwrap_or(0) as u32, m.enum_value("remap_type").unwrap_or(0)));
            }
        }
        Ok(FileLookup { ck, dir: dir.to_path_buf(), files, remaps })
    }

    /// The `reg_file_entry` of file id `id` (files.img or the legacy reg-files.img).
    fn reg(&self, id: u32) -> Option<Message> {
        if let Ok(files) = self.ck.files() {
            if let Some(f) = files.get(&id) {
                return f.msg("reg").cloned();
            }
        }
        if self.ck.has("reg-files.img") {
            if let Ok(v) = self.ck.entries("reg-files.img") {
                return v.iter().find(|m| m.u64("id") == Some(id as u64)).cloned();
            }
        }
        None
    }

    /// The name and shared-memory id of a memfd file id.
    fn memfd(&self, id: u32) -> Option<(String, u64)> {
        let files = self.ck.files().ok()?;
        let inode = files.get(&id)?.msg("memfd")?.u64("inode_id")?;
        let inodes = self.ck.entries("memfd.img").ok()?;
        let m = inodes.iter().find(|m| m.u64("inode_id") == Some(inode))?;
        let name = m.str("name").map(|s| s.into_owned()).unwrap_or_default();
        let shown = if name.starts_with('/') { name } else { format!("memfd:{name}") };
        Some((shown, m.u64("shmid")?))
    }

    fn file(&self, id: u32) -> MappedFile {
        let mut mf =
            MappedFile { id, name: format!("file {id}"), size: None, deleted: false, unavailable: None, data: None };
        let Some(reg) = self.reg(id) else {
            mf.unavailable = Some(format!("file {id} is not in files.img"));
            return mf;
        };
        mf.name = reg.str("name").map(|s| s.into_owned()).unwrap_or_default();
        mf.size = reg.u64("size");
        let build_id: Vec<u8> =
            reg.get_all("build_id").filter_map(|v| v.as_u64()).flat_map(|w| (w as u32).to_le_bytes()).collect();
        if let Some(&(remap, ty)) = self.remaps.get(&id) {
            if ty == 1 {
                mf.deleted = true;
                match self.ghost(remap) {
                    Ok(d) => mf.data = Some(d),
                    Err(e) => mf.unavailable = Some(format!("its ghost image: {e}")),
                }
                return mf;
            }
        }
        let Files::Root(root) = self.files else {
            mf.unavailable = Some("mapped files are not used".into());
            return mf;
        };
        let Some(path) = under_root(root, &mf.name) else {
            mf.unavailable = Some("the recorded path is not absolute or leaves the root".into());
            return mf;
        };
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                mf.unavailable = Some(format!("{}: {e}", path.display()));
                return mf;
            }
        };
        let len = match f.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => {
                mf.unavailable = Some(format!("{} is not a regular file", path.display()));
                return mf;
            }
            Err(e) => {
                mf.unavailable = Some(format!("{}: {e}", path.display()));
                return mf;
            }
        };
        if let Some(want) = mf.size {
            if want != len {
                mf.unavailable = Some(format!("{} has {len} bytes, the dumped file had {want}", path.display()));
                return mf;
            }
        }
        if !build_id.is_empty() {
            let have = elf_build_id(&f).map(|mut b| {
                b.resize(b.len().div_ceil(4) * 4, 0);
                b
            });
            if have.as_deref() != Some(&build_id[..]) {
                mf.unavailable = Some(format!("{} has another ELF build-id than the dumped file", path.display()));
                return mf;
            }
        }
        mf.data = Some(FileData::Plain { file: f, len });
        mf
    }

    /// The contents of a ghost file image.
    fn ghost(&self, remap: u32) -> Result<FileData> {
        let path = self.dir.join(format!("ghost-file-{remap:x}.img"));
        let f = File::open(&path).map_err(|e| err_in(e.into(), &path))?;
        let mut rd = ImageReader::open(BufReader::with_capacity(1 << 16, &f)).map_err(|e| err_in(e, &path))?;
        let Some(head) = rd.next_item().map_err(|e| err_in(e, &path))? else {
            return Err(Error::malformed("empty ghost image").in_file(&path));
        };
        let mut extents = Vec::new();
        let mut len = head.msg.u64("size").unwrap_or(0);
        if head.msg.bool("chunks") == Some(true) {
            while let Some(c) = rd.next_item().map_err(|e| err_in(e, &path))? {
                let (off, n) = (c.msg.u64("off").unwrap_or(0), c.msg.u64("len").unwrap_or(0));
                extents.push((off, n, rd.offset()));
                len = len.max(off + n);
            }
        } else {
            let at = rd.offset();
            let total = f.metadata().map_err(|e| err_in(e.into(), &path))?.len();
            let n = total.saturating_sub(at);
            extents.push((0, n, at));
            len = len.max(n);
        }
        extents.sort_by_key(|e| e.0);
        drop(rd);
        let file = File::open(&path).map_err(|e| err_in(e.into(), &path))?;
        Ok(FileData::Ghost { file, extents, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    fn first_pid(ck: &Checkpoint) -> u32 {
        ck.tasks().unwrap()[0].pid
    }

    /// The pagemap entries as the image has them, walked the simple way.
    fn entries(dir: &Path, name: &str) -> Vec<Message> {
        let f = File::open(dir.join(name)).unwrap();
        let mut rd = ImageReader::open(BufReader::new(f)).unwrap();
        let mut v = Vec::new();
        while let Some(it) = rd.next_item().unwrap() {
            if it.role == Role::PagemapEntry {
                v.push(it.msg);
            }
        }
        v
    }

    #[test]
    fn argv_of_the_core_fixture() {
        let dir = fixture("core-threads/images");
        let ck = Checkpoint::open(&dir).unwrap();
        let pid = first_pid(&ck);
        let mem = Memory::open(&ck, pid, &Files::None).unwrap();
        let mm = ck.mm(pid).unwrap();
        let (a, b) = (mm.u64("mm_arg_start").unwrap(), mm.u64("mm_arg_end").unwrap());
        let mut buf = vec![0u8; (b - a) as usize];
        let pieces = mem.read(a, &mut buf).unwrap();
        assert!(pieces.iter().all(|p| matches!(p.content, Content::Dumped { level: 0 })), "{pieces:?}");
        let want = std::fs::read(fixture("core-threads/cmdline")).unwrap();
        assert_eq!(buf, want);
        // The environment it was started with (tests/fixtures/README-core.md).
        let (a, b) = (mm.u64("mm_env_start").unwrap(), mm.u64("mm_env_end").unwrap());
        let mut env = vec![0u8; (b - a) as usize];
        mem.read(a, &mut env).unwrap();
        assert_eq!(env, b"PATH=/usr/bin:/bin\0CRIT_FIXTURE=core-threads\0");
    }

    #[test]
    fn argv_of_every_fixture_names_its_executable() {
        // Every fixture's argv[0] is the program it ran (README*.md).
        for d in std::fs::read_dir(fixture("")).unwrap() {
            let dir = d.unwrap().path();
            if !dir.join("inventory.img").exists() {
                continue;
            }
            let ck = Checkpoint::open(&dir).unwrap();
            for t in ck.tasks().unwrap() {
                if !ck.has(&format!("mm-{}.img", t.pid)) {
                    continue;
                }
                let mem = Memory::open(&ck, t.pid, &Files::None).unwrap();
                let mm = ck.mm(t.pid).unwrap();
                let (a, b) = (mm.u64("mm_arg_start").unwrap(), mm.u64("mm_arg_end").unwrap());
                let mut buf = vec![0u8; (b - a) as usize];
                mem.read(a, &mut buf).unwrap();
                assert_eq!(buf.last(), Some(&0), "{}", dir.display());
                let argv0 = String::from_utf8_lossy(buf.split(|c| *c == 0).next().unwrap()).into_owned();
                let exe = ck
                    .files()
                    .unwrap()
                    .get(&(mm.u64("exe_file_id").unwrap() as u32))
                    .unwrap()
                    .msg("reg")
                    .unwrap()
                    .str("name")
                    .unwrap()
                    .into_owned();
                let base = |s: &str| s.rsplit('/').next().unwrap().to_string();
                assert_eq!(base(&argv0), base(&exe), "{}: argv {buf:?}", dir.display());
            }
        }
    }

    #[test]
    fn pages_come_from_the_computed_offset() {
        for fx in ["criu41-threads", "criu42-sleep", "core-threads/images"] {
            let dir = fixture(fx);
            let ck = Checkpoint::open(&dir).unwrap();
            let pid = first_pid(&ck);
            let mem = Memory::open(&ck, pid, &Files::None).unwrap();
            let pm = mem.pagemap().unwrap();
            let pages = std::fs::read(&pm.levels()[0].pages_path).unwrap();
            let mut off = 0usize;
            for e in entries(&dir, &format!("pagemap-{pid}.img")) {
                let n = e.u64("nr_pages").or_else(|| e.u64("compat_nr_pages")).unwrap();
                let flags = e.u64("flags").unwrap_or(pe::PRESENT as u64) as u32;
                let vaddr = e.u64("vaddr").unwrap();
                if flags & pe::PRESENT == 0 {
                    continue;
                }
                for k in 0..n {
                    let mut buf = [0u8; 4096];
                    let p = mem.read(vaddr + k * 4096, &mut buf).unwrap();
                    assert_eq!(p[0].content, Content::Dumped { level: 0 });
                    assert_eq!(&buf[..], &pages[off..off + 4096], "{fx} page {:#x}", vaddr + k * 4096);
                    off += 4096;
                }
            }
            assert_eq!(off, pages.len(), "{fx}: every page of the pages file is somewhere");
            assert!(off >= 5 * 4096, "{fx}");
        }
    }

    #[test]
    fn both_forms_of_the_page_count() {
        // criu41 images carry compat_nr_pages only, criu42 ones nr_pages
        // (and compat_nr_pages 0): the runs come out with the same counts.
        for (fx, field) in [("criu41-threads", "compat_nr_pages"), ("criu42-sleep", "nr_pages")] {
            let dir = fixture(fx);
            let ck = Checkpoint::open(&dir).unwrap();
            let pid = first_pid(&ck);
            let es = entries(&dir, &format!("pagemap-{pid}.img"));
            if field == "compat_nr_pages" {
                assert!(es.iter().all(|e| !e.has("nr_pages") && e.u64("compat_nr_pages").unwrap() > 0), "{fx}");
            } else {
                assert!(
                    es.iter().all(|e| e.u64("compat_nr_pages") == Some(0) && e.u64("nr_pages").unwrap() > 0),
                    "{fx}"
                );
            }
            let pm = Pagemap::open(&dir, &format!("pagemap-{pid}.img")).unwrap().unwrap();
            let runs: Vec<u64> = pm.levels()[0].runs().iter().map(|r| r.pages).collect();
            assert_eq!(runs, es.iter().map(|e| e.u64(field).unwrap()).collect::<Vec<_>>(), "{fx}");
        }
    }

    #[test]
    fn holes_are_zeros_and_unmapped_is_said() {
        let dir = fixture("core-threads/images");
        let ck = Checkpoint::open(&dir).unwrap();
        let pid = first_pid(&ck);
        let mem = Memory::open(&ck, pid, &Files::None).unwrap();
        // The heap has 34 pages, 2 of them dumped: the rest are known zeros.
        let heap = mem.vmas().iter().find(|v| v.is(Kind::Heap)).unwrap();
        let t = mem.tally(heap);
        assert_eq!(t.dumped, vec![2 * 4096]);
        assert_eq!(t.zero, heap.len() - 2 * 4096);
        let hole = mem.vma_contents(heap).into_iter().find(|p| p.content == Content::Zero).unwrap();
        let mut buf = vec![0xffu8; 8192.min(hole.len as usize)];
        mem.read(hole.addr, &mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == 0));
        // Below the first mapping nothing is mapped.
        let p = mem.pieces(0, 0x1000);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].content, Content::Unavailable(Why::Unmapped));
        // Text pages were not dumped, and without files they are unknown.
        // (CRIU dumped one text page of the static binary: it was written.)
        let text = mem.vmas().iter().find(|v| v.prot & 4 != 0 && v.is(Kind::File)).unwrap();
        let t = mem.tally(text);
        assert_eq!(t.dumped, vec![4096]);
        assert_eq!(t.unavailable, vec![(Why::NoFile, text.len() - 4096)]);
        // vvar and vsyscall are never dumped.
        for v in mem.vmas().iter().filter(|v| v.status & (status::VVAR | status::VSYSCALL) != 0) {
            assert_eq!(mem.tally(v).unavailable, vec![(Why::NotDumped, v.len())]);
        }
    }

    #[test]
    fn shared_anonymous_memory_comes_from_its_shmem_pagemap() {
        let dir = fixture("core-threads/images");
        let ck = Checkpoint::open(&dir).unwrap();
        let pid = first_pid(&ck);
        let mem = Memory::open(&ck, pid, &Files::None).unwrap();
        let v = mem.vmas().iter().find(|v| v.is(Kind::Shared) && v.is(Kind::Anon)).unwrap().clone();
        let mut buf = vec![0u8; v.len() as usize];
        let pieces = mem.read(v.start, &mut buf).unwrap();
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert_eq!(pieces[0].content, Content::Zero);
        assert_eq!(pieces[1].content, Content::Dumped { level: 0 });
        let want = b"crit-shared-marker: in anonymous shared memory\0";
        assert_eq!(&buf[4096 + 100..4096 + 100 + want.len()], want);
    }

    #[test]
    fn file_pages_come_from_the_file_and_stop_at_its_end() {
        let fx = fixture("core-threads");
        let ck = Checkpoint::open(fx.join("images")).unwrap();
        let pid = first_pid(&ck);
        let mem = Memory::open(&ck, pid, &Files::Root(fx.join("root"))).unwrap();
        let v = mem.vmas().iter().find(|v| v.name.ends_with("/short.dat")).unwrap().clone();
        assert_eq!(v.len(), 3 * 4096);
        let mut buf = vec![0xeeu8; v.len() as usize];
        let pieces = mem.read(v.start, &mut buf).unwrap();
        let kinds: Vec<(u64, Content)> = pieces.iter().map(|p| (p.len, p.content)).collect();
        assert_eq!(
            kinds,
            vec![
                (4096, Content::Dumped { level: 0 }),
                (5000 - 4096, Content::File),
                (2 * 4096 - (5000 - 4096), Content::Zero)
            ]
        );
        let file = std::fs::read(fx.join("root").join(v.name.trim_start_matches('/'))).unwrap();
        assert_eq!(&buf[4096..5000], &file[4096..5000]);
        assert!(buf[5000..].iter().all(|b| *b == 0));
        assert_eq!(&buf[16..16 + 16], b"crit-cow-marker:");
        // The text is the binary's, checked by size and build-id.
        let text = mem.vmas().iter().find(|v| v.prot & 4 != 0 && v.is(Kind::File)).unwrap();
        assert_eq!(mem.tally(text).file, text.len() - 4096);
        let bin = std::fs::read(fx.join("root").join(text.name.trim_start_matches('/'))).unwrap();
        let mut t = vec![0u8; text.len() as usize];
        let pieces = mem.read(text.start, &mut t).unwrap();
        for p in pieces.iter().filter(|p| p.content == Content::File) {
            let (a, b) = ((p.addr - text.start) as usize, (p.end() - text.start) as usize);
            assert_eq!(&t[a..b], &bin[text.pgoff as usize + a..text.pgoff as usize + b]);
        }
    }

    #[test]
    fn a_file_of_another_size_is_not_used() {
        let tmp = std::env::temp_dir().join(format!("crit-mem-unit-{}", std::process::id()));
        let fx = fixture("core-threads");
        let ck = Checkpoint::open(fx.join("images")).unwrap();
        let pid = first_pid(&ck);
        let mem = Memory::open(&ck, pid, &Files::Root(fx.join("root"))).unwrap();
        let name = mem.vmas().iter().find(|v| v.name.ends_with("/short.dat")).unwrap().name.clone();
        let p = under_root(&tmp, &name).unwrap();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![b'x'; 4999]).unwrap();
        let mem = Memory::open(&ck, pid, &Files::Root(tmp.clone())).unwrap();
        let f = mem.files().iter().find(|f| f.name == name).unwrap();
        assert!(f.unavailable.as_deref().unwrap_or("").contains("4999 bytes"), "{f:?}");
        let v = mem.vmas().iter().find(|v| v.name == name).unwrap();
        assert_eq!(mem.tally(v).unavailable, vec![(Why::NoFile, 2 * 4096)]);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn ghost_files_are_read_from_their_images() {
        let dir = fixture("criu41-ghost");
        let ck = Checkpoint::open(&dir).unwrap();
        let pid = first_pid(&ck);
        let mem = Memory::open(&ck, pid, &Files::None).unwrap();
        let v = mem.vmas().iter().find(|v| v.is(Kind::Shared) && v.is(Kind::File)).unwrap();
        let f = mem.file_of(v).unwrap();
        assert!(f.deleted && f.unavailable.is_none(), "{f:?}");
        let t = mem.tally(v);
        assert_eq!(t.unavailable_total(), 0, "{t:?}");
    }

    #[test]
    fn names_under_a_root() {
        let r = Path::new("/r");
        assert_eq!(under_root(r, "/a/b"), Some(PathBuf::from("/r/a/b")));
        assert_eq!(under_root(r, "/a/../../etc"), None);
        assert_eq!(under_root(r, "rel"), None);
    }
}
