//! Container checkpoint archives, read in place.
//!
//! Podman, CRI-O, containerd and the kubelet export a checkpoint as one tar
//! file, plain, gzip- or zstd-compressed: the CRIU images under
//! `checkpoint/`, and beside them the engine's own files (`config.dump`,
//! `spec.dump`, `stats-dump`, `rootfs-diff.tar`, ...).  [`ArchiveSource`]
//! is a [`Source`] over such a file: nothing is extracted to disk.
//!
//! Opening makes one pass over the archive and builds an index of the
//! members: name, kind, size and where the data starts in the (decompressed)
//! tar stream.  Every member name is checked on the way: a name that is
//! absolute or has a `..` component, and a link whose target leaves the
//! archive root, make the whole archive refused.
//!
//! A plain tar is then read with seeks.  A compressed one cannot be seeked:
//! members up to [`CACHE_MEMBER_MAX`] bytes are kept in memory from the
//! index pass (at most [`CACHE_TOTAL_MAX`] bytes in all), and a larger member
//! (the pages) is read by decompressing the stream again up to it.  The last
//! decompressor used is kept at its position, so reads that move forward
//! through the archive do not start over.  Memory stays bounded by the
//! cache, whatever the size of the archive.
//!
//! [`ContainerDir`] is the same layout unpacked: a directory whose images are
//! in `checkpoint/`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::checkpoint::{DirSource, Source, SourceInfo};
use crate::error::{Error, Result};
use crate::fsio::{read_full, read_full_at};

/// Largest member kept in memory from the index pass of a compressed archive.
pub const CACHE_MEMBER_MAX: u64 = 4 << 20;
/// Most bytes kept in memory, over all members, for a compressed archive.
pub const CACHE_TOTAL_MAX: u64 = 64 << 20;
/// Most symlinks followed to find a member.
const MAX_LINK_HOPS: usize = 16;

/// How the tar stream is stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// The usual file suffix of this kind of archive.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
        }
    }

    /// The kind of a file from its first bytes, if it looks like an archive.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Some(Compression::None)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// Regular file data at `offset`, `size` bytes.
    File,
    /// A directory.
    Dir,
    /// A symbolic link, its target resolved to an archive path.
    Symlink(String),
    /// A hard link to an earlier member.
    Hardlink(String),
    /// A device, fifo or other member without data we read.
    Other,
}

#[derive(Clone, Debug)]
struct Member {
    kind: Kind,
    offset: u64,
    size: u64,
    data: Option<Rc<[u8]>>,
}

/// A decompressor kept at a position of the tar stream.
struct Parked {
    rd: Box<dyn Read>,
    pos: u64,
}

/// A container checkpoint archive, opened for reading.
pub struct ArchiveSource {
    path: PathBuf,
    file_size: u64,
    compression: Compression,
    members: HashMap<String, Member>,
    /// Where the images are: `checkpoint/` normally, `` for a bare dump.
    root: String,
    parked: RefCell<Option<Parked>>,
    cached_bytes: u64,
}

/// Why a member name is refused.
fn refuse(path: &Path, name: &str, why: &str) -> Error {
    Error::other(format!("archive member {name:?} {why}: refused, members must stay inside the archive root"))
        .in_file(path)
}

/// The components of a member name, `.` and empty ones dropped; None when
/// the name is absolute or has a `..` component.
fn clean_components(name: &str) -> Option<Vec<&str>> {
    if name.starts_with('/') {
        return None;
    }
    let mut v = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => v.push(c),
        }
    }
    Some(v)
}

/// Resolve a symlink target against the directory of the link, lexically;
/// None when the result would leave the archive root.
fn resolve_link(link_dir: &[&str], target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut v: Vec<&str> = link_dir.to_vec();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                v.pop()?;
            }
            c => v.push(c),
        }
    }
    Some(v.join("/"))
}

fn skip(r: &mut dyn Read, n: u64) -> io::Result<()> {
    let got = io::copy(&mut r.take(n), &mut io::sink())?;
    if got < n {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ends inside a member"));
    }
    Ok(())
}

impl ArchiveSource {
    /// Open an archive: detect its compression, index and check every
    /// member, and find the images.
    pub fn open(path: impl AsRef<Path>) -> Result<ArchiveSource> {
        let path = path.as_ref();
        let io_err = |e: io::Error| Error::from(e).in_file(path);
        let mut f = File::open(path).map_err(io_err)?;
        let file_size = f.metadata().map_err(io_err)?.len();
        let mut head = [0u8; 512];
        let n = read_full(&mut f, &mut head).map_err(io_err)?;
        let compression = Compression::sniff(&head[..n]).ok_or_else(|| {
            Error::other("not a checkpoint directory or archive (.tar, .tar.gz or .tar.zst)").in_file(path)
        })?;
        let mut src = ArchiveSource {
            path: path.to_path_buf(),
            file_size,
            compression,
            members: HashMap::new(),
            root: String::new(),
            parked: RefCell::new(None),
            cached_bytes: 0,
        };
        src.index().map_err(|e| {
            if e.loc.file.is_some() {
                e
            } else {
                Error::other(format!("cannot read the archive: {}", e.kind)).in_file(path)
            }
        })?;
        src.root = src.find_root()?;
        Ok(src)
    }

    /// A new decompressing reader from the start of the file.
    fn decoder(&self) -> io::Result<Box<dyn Read>> {
        let f = BufReader::with_capacity(1 << 16, File::open(&self.path)?);
        Ok(match self.compression {
            Compression::None => Box::new(f),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
        })
    }

    fn index(&mut self) -> Result<()> {
        // A progress line (on a terminal) for large archives: members and
        // bytes of the archive file read.
        let live = std::sync::Arc::new(crate::progress::Shared::default());
        let _display = live.draw("reading archive");
        if self.compression == Compression::None {
            let f = File::open(&self.path)?;
            let mut ar = tar::Archive::new(BufReader::with_capacity(1 << 16, f));
            let entries = ar.entries_with_seek()?;
            for e in entries {
                let mut e = e?;
                live.add_bytes(e.header().size().unwrap_or(0) + 512);
                self.add(&mut e, false)?;
                live.file_done();
            }
        } else {
            let f = Counted { inner: BufReader::with_capacity(1 << 16, File::open(&self.path)?), live: live.clone() };
            let rd: Box<dyn Read> = match self.compression {
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
                _ => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
            };
            let mut ar = tar::Archive::new(rd);
            for e in ar.entries()? {
                let mut e = e?;
                self.add(&mut e, true)?;
                live.file_done();
            }
        }
        Ok(())
    }

    fn add<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, cache: bool) -> Result<()> {
        let ty = e.header().entry_type();
        if ty.is_pax_global_extensions() {
            return Ok(());
        }
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let comps = clean_components(&raw).ok_or_else(|| {
            refuse(&self.path, &raw, if raw.starts_with('/') { "has an absolute name" } else { "has a '..' component" })
        })?;
        if comps.is_empty() {
            // The archive root itself ("./").
            return Ok(());
        }
        let name = comps.join("/");
        let link_target =
            || -> Option<String> { e.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()) };
        let kind = if ty.is_symlink() {
            let target = link_target().unwrap_or_default();
            let resolved = resolve_link(&comps[..comps.len() - 1], &target)
                .ok_or_else(|| refuse(&self.path, &raw, &format!("is a symlink to {target:?}, outside the archive")))?;
            Kind::Symlink(resolved)
        } else if ty.is_hard_link() {
            let target = link_target().unwrap_or_default();
            let t = clean_components(&target).filter(|c| !c.is_empty()).ok_or_else(|| {
                refuse(&self.path, &raw, &format!("is a hard link to {target:?}, outside the archive"))
            })?;
            Kind::Hardlink(t.join("/"))
        } else if ty.is_dir() {
            Kind::Dir
        } else if ty.is_gnu_sparse() {
            return Err(Error::other(format!("archive member {raw:?} is a sparse file, which is not supported"))
                .in_file(&self.path));
        } else if ty.is_file() || ty.is_contiguous() {
            Kind::File
        } else {
            Kind::Other
        };
        let size = if matches!(kind, Kind::File) { e.size() } else { 0 };
        let offset = e.raw_file_position();
        if !cache && offset.saturating_add(size) > self.file_size {
            return Err(Error::other(format!(
                "the archive is truncated: member {raw:?} ends past the end of the file"
            ))
            .in_file(&self.path));
        }
        let mut data = None;
        if cache
            && matches!(kind, Kind::File)
            && size <= CACHE_MEMBER_MAX
            && self.cached_bytes + size <= CACHE_TOTAL_MAX
        {
            let mut v = Vec::with_capacity(size as usize);
            e.read_to_end(&mut v)?;
            if v.len() as u64 != size {
                return Err(Error::other(format!("archive member {raw:?} is truncated")).in_file(&self.path));
            }
            self.cached_bytes += size;
            data = Some(Rc::from(v.into_boxed_slice()));
        }
        // A later member of the same name replaces an earlier one, as tar does.
        if let Some(old) = self.members.insert(name, Member { kind, offset, size, data }) {
            if let Some(d) = old.data {
                self.cached_bytes -= d.len() as u64;
            }
        }
        Ok(())
    }

    /// The directory holding the images: `checkpoint/` when it has an
    /// inventory, else the shallowest directory that has one.
    fn find_root(&self) -> Result<String> {
        let mut best: Option<&str> = None;
        for name in self.members.keys() {
            let Some(dir) = name.strip_suffix("inventory.img") else { continue };
            if !(dir.is_empty() || dir.ends_with('/')) || self.resolve(name).is_none() {
                continue;
            }
            if dir == "checkpoint/" {
                return Ok(dir.to_string());
            }
            let depth = |d: &str| d.matches('/').count();
            best = match best {
                Some(b) if (depth(b), b) <= (depth(dir), dir) => Some(b),
                _ => Some(dir),
            };
        }
        best.map(str::to_string)
            .ok_or_else(|| Error::other("the archive has no CRIU images (no inventory.img)").in_file(&self.path))
    }

    /// The regular-file member a name leads to, links followed.
    fn resolve(&self, name: &str) -> Option<&Member> {
        let mut cur = name;
        for _ in 0..MAX_LINK_HOPS {
            let m = self.members.get(cur)?;
            match &m.kind {
                Kind::File => return Some(m),
                Kind::Symlink(t) | Kind::Hardlink(t) => cur = t,
                Kind::Dir | Kind::Other => return None,
            }
        }
        None
    }

    /// The member of an image name: under the image root, else at the top
    /// (where the engines put `stats-dump`, `config.dump`, `spec.dump`).
    fn lookup(&self, name: &str) -> Option<&Member> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        self.resolve(&format!("{}{name}", self.root)).or_else(|| self.resolve(name))
    }

    /// A decompressor positioned at `at` in the tar stream.
    fn positioned(&self, at: u64) -> io::Result<Box<dyn Read>> {
        let parked = self.parked.borrow_mut().take();
        let (mut rd, pos) = match parked {
            Some(p) if p.pos <= at => (p.rd, p.pos),
            _ => (self.decoder()?, 0),
        };
        skip(&mut rd, at - pos)?;
        Ok(rd)
    }

    /// How the archive is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The directory of the images inside the archive (`checkpoint/`).
    pub fn image_root(&self) -> &str {
        &self.root
    }

    /// Bytes of members held in memory.
    pub fn cached_bytes(&self) -> u64 {
        self.cached_bytes
    }
}

/// Reads one member of a compressed archive by decompressing up to it.
struct StreamMember<'a> {
    src: &'a ArchiveSource,
    rd: Option<Box<dyn Read>>,
    pos: u64,
    end: u64,
}

impl Read for StreamMember<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let Some(rd) = self.rd.as_mut() else { return Ok(0) };
        let want = (buf.len() as u64).min(left) as usize;
        let n = rd.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ends inside a member"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Drop for StreamMember<'_> {
    fn drop(&mut self) {
        if let Some(rd) = self.rd.take() {
            *self.src.parked.borrow_mut() = Some(Parked { rd, pos: self.pos });
        }
    }
}

impl Source for ArchiveSource {
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        let Some(m) = self.lookup(name) else { return Ok(None) };
        if let Some(d) = &m.data {
            return Ok(Some(Box::new(Cursor::new(d.clone()))));
        }
        if self.compression == Compression::None {
            let mut f = File::open(&self.path)?;
            f.seek(SeekFrom::Start(m.offset))?;
            return Ok(Some(Box::new(BufReader::with_capacity(1 << 16, f).take(m.size))));
        }
        let rd = self.positioned(m.offset)?;
        Ok(Some(Box::new(StreamMember { src: self, rd: Some(rd), pos: m.offset, end: m.offset + m.size })))
    }

    fn names(&self) -> io::Result<Vec<String>> {
        let mut v: Vec<String> = Vec::new();
        for name in self.members.keys() {
            let Some(base) = name.strip_prefix(self.root.as_str()) else { continue };
            if !base.contains('/') && self.resolve(name).is_some() {
                v.push(base.to_string());
            }
        }
        if !self.root.is_empty() {
            // CRIU's service images that the engines keep at the top.
            for name in self.members.keys() {
                if !name.contains('/')
                    && crate::magic::by_file_name(name).is_some()
                    && self.resolve(name).is_some()
                    && !v.iter().any(|n| n == name)
                {
                    v.push(name.clone());
                }
            }
        }
        v.sort();
        Ok(v)
    }

    fn size(&self, name: &str) -> Option<u64> {
        self.lookup(name).map(|m| m.size)
    }

    fn display(&self) -> String {
        self.path.display().to_string()
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let m = self.lookup(name).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {name}")))?;
        if offset >= m.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(m.size - offset) as usize;
        if let Some(d) = &m.data {
            let start = offset as usize;
            let part = d.get(start..start + want).unwrap_or(&[]);
            buf[..part.len()].copy_from_slice(part);
            return Ok(part.len());
        }
        if self.compression == Compression::None {
            let f = File::open(&self.path)?;
            return read_full_at(&f, &mut buf[..want], m.offset + offset);
        }
        let start = m.offset + offset;
        let mut rd =
            StreamMember { src: self, rd: Some(self.positioned(start)?), pos: start, end: start + want as u64 };
        read_full(&mut rd, &mut buf[..want])
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "archive",
            format: self.compression.suffix().to_string(),
            bytes: Some(self.file_size),
            image_root: Some(self.root.clone()),
        }
    }
}

/// An unpacked container checkpoint: a directory with the images in
/// `checkpoint/` and the engine's files (`config.dump`, `spec.dump`,
/// `stats-dump`) beside it.
pub struct ContainerDir {
    dir: PathBuf,
    images: DirSource,
    top: DirSource,
}

impl ContainerDir {
    /// Whether a directory is laid out so: no inventory.img of its own, one
    /// in `checkpoint/`.
    pub fn detect(dir: &Path) -> bool {
        !dir.join("inventory.img").exists() && dir.join("checkpoint/inventory.img").is_file()
    }

    /// The source over such a directory.
    pub fn new(dir: impl Into<PathBuf>) -> ContainerDir {
        let dir = dir.into();
        ContainerDir { images: DirSource::new(dir.join("checkpoint")), top: DirSource::new(&dir), dir }
    }
}

impl Source for ContainerDir {
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        match self.images.open(name)? {
            Some(r) => Ok(Some(r)),
            None => self.top.open(name),
        }
    }

    fn names(&self) -> io::Result<Vec<String>> {
        let mut v = self.images.names()?;
        for n in self.top.names()? {
            if crate::magic::by_file_name(&n).is_some() && !v.contains(&n) {
                v.push(n);
            }
        }
        v.sort();
        Ok(v)
    }

    fn size(&self, name: &str) -> Option<u64> {
        self.images.size(name).or_else(|| self.top.size(name))
    }

    fn display(&self) -> String {
        self.dir.display().to_string()
    }

    fn path_of(&self, name: &str) -> Option<PathBuf> {
        if self.images.size(name).is_some() {
            self.images.path_of(name)
        } else {
            self.top.path_of(name)
        }
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.images.size(name).is_some() {
            self.images.read_at(name, offset, buf)
        } else {
            self.top.read_at(name, offset, buf)
        }
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "directory",
            format: "container checkpoint directory".into(),
            bytes: None,
            image_root: Some("checkpoint/".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(clean_components("./checkpoint//core-1.img"), Some(vec!["checkpoint", "core-1.img"]));
        assert_eq!(clean_components("checkpoint/"), Some(vec!["checkpoint"]));
        assert_eq!(clean_components("/etc/passwd"), None);
        assert_eq!(clean_components("a/../b"), None);
        assert_eq!(clean_components(".."), None);
    }

    #[test]
    fn links_are_resolved_inside() {
        assert_eq!(resolve_link(&["checkpoint"], "pages-1.img").as_deref(), Some("checkpoint/pages-1.img"));
        assert_eq!(resolve_link(&["checkpoint"], "../spec.dump").as_deref(), Some("spec.dump"));
        assert_eq!(resolve_link(&["checkpoint"], "../../etc/passwd"), None);
        assert_eq!(resolve_link(&[], "../x"), None);
        assert_eq!(resolve_link(&["a"], "/etc/passwd"), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Some(Compression::Gzip));
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Compression::Zstd));
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(Compression::sniff(&tar), Some(Compression::None));
        assert_eq!(Compression::sniff(b"\x19\x43\x56\x54"), None);
    }
}

/// A reader that counts what it reads into a progress display.
struct Counted<R> {
    inner: R,
    live: std::sync::Arc<crate::progress::Shared>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.live.add_bytes(n as u64);
        Ok(n)
    }
}

impl<R: io::BufRead> io::BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.live.add_bytes(amt as u64);
        self.inner.consume(amt)
    }
}
