//! Atomic output files: written to a temporary file in the same directory,
//! synced, then renamed over the target, so an error leaves no partial
//! output and never touches an existing file.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; becomes visible at [`AtomicFile::commit`].
///
/// A target that is not a regular file (`/dev/null`, a terminal, a named
/// pipe, `/dev/stdout` on a pipe) is written in place: there is nothing to
/// replace atomically, and renaming over it would destroy the device.  A
/// symbolic link to a file keeps being a link: the file it points to is
/// replaced.
pub struct AtomicFile {
    target: PathBuf,
    /// The temporary file, or None when writing the target in place.
    tmp: Option<PathBuf>,
    file: Option<BufWriter<File>>,
    /// Bytes written through [`Write`], and how many of them the disk
    /// has been asked to start writing (see [`AtomicFile::note_written`]).
    written: u64,
    kicked: u64,
}

/// Ask the disk to start writing every this many bytes, so that the sync
/// at the commit waits for the last few only.
const KICK: u64 = 8 << 20;

impl AtomicFile {
    /// Create the temporary file next to `target`.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        match fs::metadata(target) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = fs::OpenOptions::new().write(true).open(target)?;
                return Ok(AtomicFile {
                    target: target.to_path_buf(),
                    tmp: None,
                    file: Some(BufWriter::with_capacity(1 << 16, f)),
                    written: 0,
                    kicked: 0,
                });
            }
            _ => {}
        }
        let is_link = fs::symlink_metadata(target).map(|m| m.file_type().is_symlink()).unwrap_or(false);
        let target = match is_link {
            true => fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf()),
            false => target.to_path_buf(),
        };
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let mut last_err = None;
        for attempt in 0..100u32 {
            let tmp = dir.join(format!(".{name}.crit-{}-{attempt}.tmp", std::process::id()));
            match fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => {
                    return Ok(AtomicFile {
                        target,
                        tmp: Some(tmp),
                        file: Some(BufWriter::with_capacity(1 << 16, f)),
                        written: 0,
                        kicked: 0,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
    }

    /// Fill the file from a pipe with splice(2), calling `progress` with
    /// each run of bytes moved; returns the byte count.
    ///
    /// The file is opened for direct I/O while the data allows it: page
    /// aligned pipe buffers (the pages CRIU passes) then go from the pipe
    /// to the disk with no copy at all, instead of being copied into the
    /// page cache and written back at the sync.  At the first run the
    /// kernel refuses for direct I/O (a short tail, data written in
    /// unaligned pieces, a file system without it) the rest goes through
    /// the page cache.  Where the pipe cannot be spliced, it is copied.
    pub fn splice_from(&self, pipe: &File, mut progress: impl FnMut(u64)) -> io::Result<u64> {
        use std::os::fd::AsFd;
        let Some(w) = self.file.as_ref() else { return Err(io::Error::other("file already committed")) };
        let f = w.get_ref();
        let mut direct = set_direct(f, true);
        let mut total = 0u64;
        let r = loop {
            match nix::fcntl::splice(
                pipe.as_fd(),
                None,
                f.as_fd(),
                None,
                1 << 20,
                nix::fcntl::SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(0) => break Ok(total),
                Ok(n) => {
                    total += n as u64;
                    progress(n as u64);
                }
                Err(nix::errno::Errno::EINTR) => {}
                // Nothing was taken from the pipe: go on through the cache.
                Err(nix::errno::Errno::EINVAL) if direct => {
                    set_direct(f, false);
                    direct = false;
                }
                Err(nix::errno::Errno::EINVAL) if total == 0 => {
                    let mut r = pipe;
                    let mut out = f;
                    let n = io::copy(&mut r, &mut out)?;
                    progress(n);
                    break Ok(n);
                }
                Err(e) => break Err(e.into()),
            }
        };
        if direct {
            set_direct(f, false);
        }
        r
    }

    /// The temporary file itself, for positioned, sparse or zero-copy
    /// writes (`&File` is `Write + Seek`); what was buffered is flushed first.
    pub fn file(&mut self) -> io::Result<&File> {
        match self.file.as_mut() {
            Some(w) => {
                w.flush()?;
                Ok(w.get_ref())
            }
            None => Err(io::Error::other("file already committed")),
        }
    }

    /// Flush, sync and rename over the target; on failure the temporary
    /// file is removed and the target left as it was.  A target written in
    /// place is only flushed.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(tmp) = self.tmp.take() else {
            return match self.file.take() {
                Some(mut w) => w.flush(),
                None => Ok(()),
            };
        };
        let r = (|| {
            if let Some(w) = self.file.take() {
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
            }
            fs::rename(&tmp, &self.target)
        })();
        match r {
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
            Ok(()) => {
                // Make the rename itself durable (best effort).
                if let Some(dir) = tmp.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(())
            }
        }
    }
}

/// Turn direct I/O on or off for a file; whether the kernel agreed.
fn set_direct(f: &File, on: bool) -> bool {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let Ok(bits) = fcntl(f, FcntlArg::F_GETFL) else { return false };
    let mut flags = OFlag::from_bits_truncate(bits);
    flags.set(OFlag::O_DIRECT, on);
    fcntl(f, FcntlArg::F_SETFL(flags)).is_ok()
}

impl AtomicFile {
    /// Count bytes written; every [`KICK`] bytes, start the disk writing
    /// what has reached the page cache (sync_file_range, which does not
    /// wait), so the writing overlaps the work that makes the bytes.
    fn note_written(&mut self, n: usize) {
        self.written += n as u64;
        if self.tmp.is_none() || self.written - self.kicked < KICK {
            return;
        }
        if let Some(w) = self.file.as_ref() {
            use std::os::fd::AsRawFd;
            let fd = w.get_ref().as_raw_fd();
            // SAFETY: a plain system call on a descriptor we own; it only
            // starts write-back of the file's dirty pages from `kicked` on.
            unsafe {
                nix::libc::sync_file_range(fd, self.kicked as i64, 0, nix::libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        self.kicked = self.written;
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.file.as_mut() {
            Some(f) => f.write(buf)?,
            None => return Err(io::Error::other("file already committed")),
        };
        self.note_written(n);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(buf)?,
            None => return Err(io::Error::other("file already committed")),
        }
        self.note_written(buf.len());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            if let Some(tmp) = &self.tmp {
                let _ = fs::remove_file(tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;

    fn scratch(tag: &str) -> PathBuf {
        // Under target/ (a real disk file system, where direct I/O is
        // possible) rather than a tmpfs /tmp.
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("output-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// Feed `data` into a pipe the way CRIU does: pages spliced from a file
    /// (page aligned buffers) when `spliced`, else written in `piece`-byte
    /// writes; splice it into an atomic file and return what landed there
    /// and the sum of the progress reports.
    fn through_pipe(dir: &Path, data: &[u8], spliced: bool, piece: usize) -> (Vec<u8>, u64) {
        let src = dir.join("src");
        fs::write(&src, data).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let _ = nix::fcntl::fcntl(w.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
        let feeder = {
            let src = src.clone();
            std::thread::spawn(move || {
                let w = File::from(w);
                if spliced {
                    let f = File::open(&src).unwrap();
                    while nix::fcntl::splice(
                        f.as_fd(),
                        None,
                        w.as_fd(),
                        None,
                        1 << 20,
                        nix::fcntl::SpliceFFlags::empty(),
                    )
                    .unwrap()
                        > 0
                    {}
                } else {
                    let mut all = Vec::new();
                    File::open(&src).unwrap().read_to_end(&mut all).unwrap();
                    for c in all.chunks(piece) {
                        (&w).write_all(c).unwrap();
                    }
                }
            })
        };
        let target = dir.join("out.img");
        let out = AtomicFile::create(&target).unwrap();
        let mut reported = 0;
        let n = out.splice_from(&File::from(r), |k| reported += k).unwrap();
        feeder.join().unwrap();
        out.commit().unwrap();
        assert_eq!(n, data.len() as u64);
        (fs::read(&target).unwrap(), reported)
    }

    #[test]
    fn splice_from_keeps_every_byte_with_and_without_direct_io() {
        let dir = scratch("splice");
        let mut data = vec![0u8; (3 << 20) + 4096 * 5 + 123];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 31 + i / 4096) as u8;
        }
        // Aligned pages then a short tail; pages only; unaligned writes;
        // an empty stream.
        for (len, spliced, piece) in
            [(data.len(), true, 0), (3 << 20, true, 0), (data.len(), false, 1000), (8192, false, 4096), (0, true, 0)]
        {
            let (got, reported) = through_pipe(&dir, &data[..len], spliced, piece);
            assert_eq!(got.len(), len, "length, {len} bytes spliced={spliced}");
            assert!(got == data[..len], "content, {len} bytes spliced={spliced}");
            assert_eq!(reported, len as u64, "progress, {len} bytes");
        }
        // The temporary files are gone and the file is open normally after.
        let left: Vec<_> = fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fifo_target_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = scratch("fifo");
        let fifo = dir.join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(&fifo).unwrap())
        };
        let mut out = AtomicFile::create(&fifo).unwrap();
        out.write_all(b"through the pipe").unwrap();
        out.commit().unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_target_stays_a_link_to_the_new_file() {
        let dir = scratch("link");
        let real = dir.join("real.json");
        let link = dir.join("link.json");
        fs::write(&real, b"old").unwrap();
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        let mut out = AtomicFile::create(&link).unwrap();
        out.write_all(b"new").unwrap();
        // Nothing changes before the commit.
        assert_eq!(fs::read(&real).unwrap(), b"old");
        out.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        let _ = fs::remove_dir_all(&dir);
    }
}
