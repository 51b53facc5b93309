//! The image directory model: one checkpoint, opened once, read lazily.
//!
//! A [`Checkpoint`] reads its images from a [`Source`] (a dump directory;
//! container checkpoint archives plug in the same way).  Small images are
//! decoded once and cached; large ones are streamed through
//! [`Checkpoint::reader`] and never held whole.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{Error, ErrorKind, Result};
use crate::fsio::{read_full, read_full_at};
use crate::image::ImageReader;
use crate::wire::Message;

/// Where the images of a checkpoint come from.
pub trait Source {
    /// Open an image by file name, or None if there is no such image.
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Read + '_>>>;
    /// The names of all files.
    fn names(&self) -> io::Result<Vec<String>>;
    /// Size of a file in bytes, if it exists.
    fn size(&self, name: &str) -> Option<u64>;
    /// How to name this source in messages.
    fn display(&self) -> String;
    /// The path of a file on disk, if the source is a directory.
    fn path_of(&self, _name: &str) -> Option<PathBuf> {
        None
    }
    /// Read up to `buf.len()` bytes of a file from `offset`; fewer only at
    /// its end.  The default reads its way there; sources that can seek do.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut r = self.open(name)?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {name}")))?;
        io::copy(&mut (&mut r).take(offset), &mut io::sink())?;
        read_full(&mut r, buf)
    }
    /// What kind of source this is, for reports.
    fn info(&self) -> SourceInfo {
        SourceInfo { kind: "directory", format: "dump directory".into(), bytes: None, image_root: None }
    }
}

/// What a [`Source`] is, for reports (`crit stats`).
#[derive(Clone, Debug)]
pub struct SourceInfo {
    /// `directory` or `archive`.
    pub kind: &'static str,
    /// `dump directory`, `container checkpoint directory`, `tar`, `tar.gz`, `tar.zst`.
    pub format: String,
    /// Size of the archive file.
    pub bytes: Option<u64>,
    /// Where the images are inside a container checkpoint (`checkpoint/`).
    pub image_root: Option<String>,
}

/// A dump directory.
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// A directory source.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSource { dir: dir.into() }
    }

    fn checked(&self, name: &str) -> Option<PathBuf> {
        // Image names are plain file names: nothing may leave the directory.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        Some(self.dir.join(name))
    }

    /// Open an image read-only, refusing what could make a checkpoint
    /// handed over by someone else read other files of the machine or
    /// block: a symlink that leads out of the directory (resolved first,
    /// then opened with O_NOFOLLOW, so a link swapped in meanwhile fails),
    /// and anything but a regular file (O_NONBLOCK: a FIFO does not block).
    fn open_inside(&self, p: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let real = std::fs::canonicalize(p)?;
        if !real.starts_with(std::fs::canonicalize(&self.dir)?) {
            let msg = format!("{} is a symlink that leads out of the checkpoint directory", p.display());
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, msg));
        }
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(flags.bits()).open(&real)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", p.display())));
        }
        Ok(f)
    }
}

impl Source for DirSource {
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        let Some(p) = self.checked(name) else { return Ok(None) };
        match self.open_inside(&p) {
            Ok(f) => Ok(Some(Box::new(BufReader::with_capacity(1 << 16, f)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn names(&self) -> io::Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    fn size(&self, name: &str) -> Option<u64> {
        self.open_inside(&self.checked(name)?).and_then(|f| f.metadata()).ok().map(|m| m.len())
    }

    fn display(&self) -> String {
        self.dir.display().to_string()
    }

    fn path_of(&self, name: &str) -> Option<PathBuf> {
        // A path, not a read: the `parent` link of an incremental dump
        // leads out of the directory by design.
        self.checked(name)
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let p = self.checked(name).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {name}")))?;
        read_full_at(&self.open_inside(&p)?, buf, offset)
    }
}

/// A process of the checkpoint, from `pstree.img`.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its pid (as dumped, in its own pid namespace).
    pub pid: u32,
    /// Parent pid (0 for the root).
    pub ppid: u32,
    /// Process group.
    pub pgid: u32,
    /// Session.
    pub sid: u32,
    /// Thread ids (the first is normally `pid`).
    pub threads: Vec<u32>,
}

/// A checkpoint: a set of images.
///
/// ```
/// use crit::checkpoint::Checkpoint;
///
/// # fn main() -> crit::Result<()> {
/// let ck = Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/criu41-threads"))?;
/// let tasks = ck.tasks()?;
/// assert_eq!(tasks.len(), 1);
/// assert_eq!(tasks[0].threads.len(), 5);
/// // Every thread has its own core-TID.img.
/// for &tid in &tasks[0].threads {
///     assert!(ck.core(tid)?.msg("thread_core").is_some());
/// }
/// // The process's open files, by files.img id.
/// assert!(!ck.files()?.is_empty());
/// # Ok(())
/// # }
/// ```
pub struct Checkpoint {
    src: Box<dyn Source>,
    cache: RefCell<HashMap<String, Rc<Vec<Message>>>>,
    files: RefCell<Option<Rc<HashMap<u32, Message>>>>,
}

impl Checkpoint {
    /// Open a dump directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::from(e).in_file(path))?;
        if meta.is_dir() {
            if crate::archive::ContainerDir::detect(path) {
                return Ok(Checkpoint::from_source(Box::new(crate::archive::ContainerDir::new(path))));
            }
            return Ok(Checkpoint::from_source(Box::new(DirSource::new(path))));
        }
        // A container checkpoint archive (.tar, .tar.gz, .tar.zst).
        Ok(Checkpoint::from_source(Box::new(crate::archive::ArchiveSource::open(path)?)))
    }

    /// A checkpoint over any source.
    pub fn from_source(src: Box<dyn Source>) -> Checkpoint {
        Checkpoint { src, cache: RefCell::new(HashMap::new()), files: RefCell::new(None) }
    }

    /// The source.
    pub fn source(&self) -> &dyn Source {
        &*self.src
    }

    /// Whether an image exists.
    pub fn has(&self, name: &str) -> bool {
        self.src.size(name).is_some()
    }

    fn missing(&self, name: &str) -> Error {
        Error::new(ErrorKind::Other(format!("no image {name} in {}", self.src.display()))).in_file(name)
    }

    /// A streaming reader of an image.
    pub fn reader(&self, name: &str) -> Result<ImageReader<Box<dyn Read + '_>>> {
        let r = self.src.open(name).map_err(|e| Error::from(e).in_file(name))?.ok_or_else(|| self.missing(name))?;
        ImageReader::open(r).map_err(|e| e.in_file(name))
    }

    /// All entries (messages only, payloads skipped) of a small image,
    /// decoded once and cached.
    pub fn entries(&self, name: &str) -> Result<Rc<Vec<Message>>> {
        if let Some(v) = self.cache.borrow().get(name) {
            return Ok(v.clone());
        }
        let mut rd = self.reader(name)?;
        let mut v = Vec::new();
        while let Some(item) = rd.next_item().map_err(|e| e.in_file(name))? {
            v.push(item.msg);
        }
        let v = Rc::new(v);
        self.cache.borrow_mut().insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// The first entry of an image.
    pub fn first(&self, name: &str) -> Result<Message> {
        self.entries(name)?.first().cloned().ok_or_else(|| Error::malformed("the image has no entries").in_file(name))
    }

    /// The process tree, in `pstree.img` order.
    pub fn tasks(&self) -> Result<Vec<Task>> {
        let v = self.entries("pstree.img")?;
        Ok(v.iter()
            .map(|m| Task {
                pid: m.u64("pid").unwrap_or(0) as u32,
                ppid: m.u64("ppid").unwrap_or(0) as u32,
                pgid: m.u64("pgid").unwrap_or(0) as u32,
                sid: m.u64("sid").unwrap_or(0) as u32,
                threads: m.get_all("threads").filter_map(|v| v.as_u64()).map(|t| t as u32).collect(),
            })
            .collect())
    }

    /// The core of a thread.
    pub fn core(&self, tid: u32) -> Result<Message> {
        self.first(&format!("core-{tid}.img"))
    }

    /// The mm of a process.
    pub fn mm(&self, pid: u32) -> Result<Message> {
        self.first(&format!("mm-{pid}.img"))
    }

    /// The ids of a process.
    pub fn ids(&self, pid: u32) -> Result<Message> {
        self.first(&format!("ids-{pid}.img"))
    }

    /// The `files.img` entries by id (empty if there is no files.img).
    pub fn files(&self) -> Result<Rc<HashMap<u32, Message>>> {
        if let Some(f) = self.files.borrow().as_ref() {
            return Ok(f.clone());
        }
        let mut map = HashMap::new();
        if self.has("files.img") {
            let mut rd = self.reader("files.img")?;
            while let Some(item) = rd.next_item().map_err(|e| e.in_file("files.img"))? {
                if let Some(id) = item.msg.u64("id") {
                    map.entry(id as u32).or_insert(item.msg);
                }
            }
        }
        let map = Rc::new(map);
        *self.files.borrow_mut() = Some(map.clone());
        Ok(map)
    }
}
