//! Atomic output files: written to a temporary file in the same directory,
//! synced, then renamed over the target, so an error leaves no partial
//! output and never touches an existing file.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; becomes visible at [`AtomicFile::commit`].
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Create the temporary file next to `target`.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
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
                        target: target.to_path_buf(),
                        tmp,
                        file: Some(BufWriter::with_capacity(1 << 16, f)),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
    }

    /// Fill the file from a pipe with splice(2) (zero-copy), falling back
    /// to a copy where splice is not possible; returns the byte count.
    pub fn splice_from(&self, pipe: &File) -> io::Result<u64> {
        use std::os::fd::AsFd;
        let Some(w) = self.file.as_ref() else { return Err(io::Error::other("file already committed")) };
        let f = w.get_ref();
        let mut total = 0u64;
        loop {
            match nix::fcntl::splice(
                pipe.as_fd(),
                None,
                f.as_fd(),
                None,
                1 << 20,
                nix::fcntl::SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EINVAL) if total == 0 => {
                    let mut r = pipe;
                    let mut out = f;
                    return io::copy(&mut r, &mut out);
                }
                Err(e) => return Err(e.into()),
            }
        }
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
    /// file is removed and the target left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let r = (|| {
            if let Some(w) = self.file.take() {
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
            }
            fs::rename(&self.tmp, &self.target)
        })();
        match r {
            Err(e) => {
                let _ = fs::remove_file(&self.tmp);
                Err(e)
            }
            Ok(()) => {
                // Make the rename itself durable (best effort).
                if let Some(dir) = self.tmp.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(())
            }
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(buf),
            None => Err(io::Error::other("file already committed")),
        }
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
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
