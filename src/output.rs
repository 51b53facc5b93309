//! Atomic output files: written to a temporary file in the same directory,
//! synced, then renamed over the target, so an error leaves no partial
//! output and never touches an existing file.
//!
//! Large outputs are written by a second thread, with direct I/O where the
//! file system allows it.  The output has to reach the disk before the
//! rename anyway (it is synced first), so going through the page cache
//! would only add a copy of every byte and the work of managing those
//! pages; with direct I/O the disk takes the bytes from our own blocks, and
//! the thread lets that overlap the work that makes the next ones.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A file being written; becomes visible at [`AtomicFile::commit`].
///
/// A target that is not a regular file (`/dev/null`, a terminal, a named
/// pipe, `/dev/stdout` on a pipe) is written in place: there is nothing to
/// replace atomically, and renaming over it would destroy the device.  A
/// symbolic link to a file keeps being a link: the file it points to is
/// replaced.
///
/// Bytes written through [`Write`] are gathered in blocks of [`BLOCK`]
/// bytes.  An output that stays smaller is written at the commit, in one
/// piece.  From the first full block of a temporary file on, full blocks go
/// to a writer thread, at most [`IN_FLIGHT`] at a time (so memory stays at
/// a few blocks whatever the size), which writes them with direct I/O while
/// the kernel accepts it and through the page cache after.  An error of
/// that thread is returned by the next write, flush or commit.
pub struct AtomicFile {
    target: PathBuf,
    /// The temporary file, or None when writing the target in place.
    tmp: Option<PathBuf>,
    /// None once committed.
    file: Option<Arc<File>>,
    /// Bytes not yet handed on.
    block: Block,
    /// The writer thread, once started.
    pipe: Option<Pipeline>,
    /// Blocks may go to a writer thread with direct I/O: a temporary file
    /// whose descriptor was never lent out ([`AtomicFile::file`]).
    may_pipe: bool,
    /// Bytes handed on (to the file or the thread).
    written: u64,
    /// Write-back started up to here (see [`Kicker`]).
    kick: Kicker,
}

/// Bytes gathered before they are written.
pub const BLOCK: usize = 1 << 20;

/// Full blocks queued for the writer thread besides the one it writes.
pub const IN_FLIGHT: usize = 1;

/// Alignment of blocks in memory and of their sizes and file offsets, as
/// direct I/O needs (the largest logical block size of common disks).
const ALIGN: usize = 4096;

/// Ask the disk to start writing every this many bytes, so that the sync
/// at the commit waits for the last few only.
const KICK: u64 = 8 << 20;

/// A block of memory whose bytes start at an [`ALIGN`]ed address.
struct Block {
    mem: Vec<u8>,
    /// Where the aligned bytes start in `mem`.
    off: usize,
    /// Bytes held.
    len: usize,
}

impl Block {
    fn new() -> Block {
        let mem = vec![0u8; BLOCK + ALIGN];
        let off = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Block { mem, off, len: 0 }
    }

    /// An empty block with no memory yet (for outputs that never write).
    fn none() -> Block {
        Block { mem: Vec::new(), off: 0, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        self.mem.get(self.off..self.off + self.len).unwrap_or_default()
    }

    /// Copy in as much of `buf` as fits; how much that was.
    fn fill(&mut self, buf: &[u8]) -> usize {
        if self.mem.is_empty() {
            *self = Block::new();
        }
        let at = self.off + self.len;
        let room = self.mem.get_mut(at..self.off + BLOCK).unwrap_or_default();
        let n = room.len().min(buf.len());
        if let (Some(to), Some(from)) = (room.get_mut(..n), buf.get(..n)) {
            to.copy_from_slice(from);
        }
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len >= BLOCK
    }
}

/// The writer thread and its two queues: full blocks to it, written
/// blocks back.
struct Pipeline {
    full: SyncSender<Block>,
    empty: Receiver<Block>,
    thread: JoinHandle<io::Result<()>>,
    /// Blocks made so far (the one being filled included).
    blocks: usize,
    /// Whether it started with direct I/O on.
    direct: bool,
}

/// Starts write-back of what reached the page cache every [`KICK`] bytes
/// (sync_file_range, which does not wait), so the writing overlaps the
/// work that makes the bytes and the sync at the commit waits for little.
#[derive(Clone, Copy, Default)]
struct Kicker {
    kicked: u64,
}

impl Kicker {
    fn note(&mut self, f: &File, written: u64) {
        if written.saturating_sub(self.kicked) < KICK {
            return;
        }
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a descriptor we own; it only
        // starts write-back of the file's dirty pages from `kicked` on.
        unsafe {
            nix::libc::sync_file_range(f.as_raw_fd(), self.kicked as i64, 0, nix::libc::SYNC_FILE_RANGE_WRITE);
        }
        self.kicked = written;
    }
}

impl AtomicFile {
    /// Create the temporary file next to `target`.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let new = |target: PathBuf, tmp: Option<PathBuf>, f: File| AtomicFile {
            target,
            may_pipe: tmp.is_some(),
            tmp,
            file: Some(Arc::new(f)),
            block: Block::none(),
            pipe: None,
            written: 0,
            kick: Kicker::default(),
        };
        match fs::metadata(target) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = fs::OpenOptions::new().write(true).open(target)?;
                return Ok(new(target.to_path_buf(), None, f));
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
                Ok(f) => return Ok(new(target, Some(tmp), f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
    }

    fn committed() -> io::Error {
        io::Error::other("file already committed")
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
    pub fn splice_from(&mut self, pipe: &File, mut progress: impl FnMut(u64)) -> io::Result<u64> {
        use std::os::fd::AsFd;
        self.hand_on_all()?;
        let f = self.file.as_deref().ok_or_else(Self::committed)?;
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
        self.written += total;
        // What follows is not block aligned in the file any more.
        self.may_pipe = false;
        r
    }

    /// The temporary file itself, for positioned, sparse or zero-copy
    /// writes (`&File` is `Write + Seek`); what was buffered is written
    /// first, and from now on writes through [`Write`] are plain ones.
    pub fn file(&mut self) -> io::Result<&File> {
        self.may_pipe = false;
        self.hand_on_all()?;
        self.file.as_deref().ok_or_else(Self::committed)
    }

    /// Flush, sync and rename over the target; on failure the temporary
    /// file is removed and the target left as it was.  A target written in
    /// place is only flushed.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(tmp) = self.tmp.take() else {
            let r = self.hand_on_all();
            self.file = None;
            return r;
        };
        let r = (|| {
            self.hand_on_all()?;
            if let Some(f) = self.file.take() {
                f.sync_all()?;
            }
            fs::rename(&tmp, &self.target)
        })();
        match r {
            Err(e) => {
                self.file = None;
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

    /// Wait for the writer thread to write all it has, and stop it; its
    /// error, if it had one.
    fn stop_pipe(&mut self) -> io::Result<()> {
        let Some(p) = self.pipe.take() else { return Ok(()) };
        drop(p.full);
        let r = p.thread.join().unwrap_or_else(|_| Err(io::Error::other("the output writer thread failed")));
        if p.direct {
            if let Some(f) = self.file.as_deref() {
                set_direct(f, false);
            }
        }
        r
    }

    /// Everything written so far into the file (the thread stopped, the
    /// last block written through the page cache).
    fn hand_on_all(&mut self) -> io::Result<()> {
        self.stop_pipe()?;
        if self.block.len > 0 {
            self.write_block_here()?;
        }
        Ok(())
    }

    /// Write the current block into the file from this thread (through
    /// the page cache), and empty it.
    fn write_block_here(&mut self) -> io::Result<()> {
        let f = self.file.as_deref().ok_or_else(Self::committed)?;
        let mut w = f;
        w.write_all(self.block.bytes())?;
        self.written += self.block.len as u64;
        self.block.len = 0;
        if self.tmp.is_some() {
            self.kick.note(f, self.written);
        }
        Ok(())
    }

    /// The current block is full: hand it on.
    fn hand_on_block(&mut self) -> io::Result<()> {
        let aligned = self.written % ALIGN as u64 == 0;
        if self.pipe.is_none() && self.may_pipe && aligned {
            self.start_pipe()?;
        }
        let Some(p) = self.pipe.as_mut() else {
            // Written here and now.
            return self.write_block_here();
        };
        let n = self.block.len as u64;
        let full = std::mem::replace(&mut self.block, Block::none());
        // The full block first, then a block to fill: a new one while there
        // are fewer than the thread can hold, else one it has written.
        let next = match p.full.send(full) {
            Ok(()) if p.blocks < IN_FLIGHT + 2 => {
                p.blocks += 1;
                Some(Block::new())
            }
            Ok(()) => p.empty.recv().ok(),
            Err(_) => None,
        };
        match next {
            Some(mut b) => {
                b.len = 0;
                self.block = b;
                self.written += n;
                Ok(())
            }
            // The thread stopped: its error.
            None => {
                let r = self.stop_pipe();
                self.may_pipe = false;
                Err(r.err().unwrap_or_else(|| io::Error::other("the output writer thread stopped")))
            }
        }
    }

    /// Start the writer thread, with direct I/O if the file takes it.
    fn start_pipe(&mut self) -> io::Result<()> {
        let f = self.file.clone().ok_or_else(Self::committed)?;
        let direct = set_direct(&f, true);
        let (full, todo) = sync_channel::<Block>(IN_FLIGHT);
        let (done, empty) = channel::<Block>();
        let start = self.written;
        let kick = self.kick;
        let thread = std::thread::Builder::new()
            .name("crit-output".into())
            .spawn(move || write_blocks(&f, todo, done, direct, start, kick));
        match thread {
            Ok(thread) => {
                self.pipe = Some(Pipeline { full, empty, thread, blocks: 1, direct });
                Ok(())
            }
            Err(_) => {
                // No thread: written here, through the page cache.
                if let Some(f) = self.file.as_deref() {
                    set_direct(f, false);
                }
                self.may_pipe = false;
                Ok(())
            }
        }
    }
}

/// The writer thread: write each block in turn and send it back; direct
/// I/O until the kernel refuses it; `at` is the file offset of the first.
fn write_blocks(
    f: &File,
    todo: Receiver<Block>,
    done: std::sync::mpsc::Sender<Block>,
    mut direct: bool,
    mut at: u64,
    mut kick: Kicker,
) -> io::Result<()> {
    for b in todo {
        let mut rest = b.bytes();
        while !rest.is_empty() {
            let mut w = f;
            match w.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    rest = rest.get(n..).unwrap_or_default();
                    at += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Not for direct I/O here (nothing was written): go on
                // through the page cache.
                Err(e) if direct && e.raw_os_error() == Some(nix::libc::EINVAL) => {
                    set_direct(f, false);
                    direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        if !direct {
            kick.note(f, at);
        }
        // The other side gone means it stops too.
        let _ = done.send(b);
    }
    Ok(())
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
    /// Copy `buf` into the block if it fits with room to spare (the
    /// common case: a small write); whether it did.
    #[inline(always)]
    fn take_small(&mut self, buf: &[u8]) -> bool {
        let b = &mut self.block;
        let at = b.off + b.len;
        if b.len + buf.len() >= BLOCK {
            return false;
        }
        match b.mem.get_mut(at..at + buf.len()) {
            Some(room) => {
                room.copy_from_slice(buf);
                b.len += buf.len();
                true
            }
            None => false,
        }
    }

    /// Write what [`AtomicFile::take_small`] did not take.
    #[cold]
    fn write_more(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() {
            return Err(Self::committed());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.block.fill(buf);
        if self.block.is_full() {
            self.hand_on_block()?;
        }
        Ok(n)
    }
}

impl Write for AtomicFile {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.take_small(buf) {
            return Ok(buf.len());
        }
        self.write_more(buf)
    }

    #[inline]
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if self.take_small(buf) {
            return Ok(());
        }
        while !buf.is_empty() {
            let n = self.write_more(buf)?;
            buf = buf.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Everything written so far goes to the file (what follows may then
    /// be written through the page cache, being out of block alignment).
    fn flush(&mut self) -> io::Result<()> {
        match self.file {
            Some(_) => self.hand_on_all(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            // Not committed: stop the thread, then remove what it wrote.
            let _ = self.stop_pipe();
            self.file = None;
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
        let mut out = AtomicFile::create(&target).unwrap();
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

    /// Bytes that differ from block to block and within them.
    fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Write `data` in pieces of the sizes `pieces` cycles through,
    /// calling `flush` after the piece of index `flush_at` if given.
    fn write_in_pieces(out: &mut AtomicFile, data: &[u8], pieces: &[usize], flush_at: Option<usize>) {
        let mut at = 0;
        for (i, &p) in pieces.iter().cycle().enumerate() {
            if at >= data.len() {
                break;
            }
            let end = (at + p).min(data.len());
            out.write_all(&data[at..end]).unwrap();
            at = end;
            if flush_at == Some(i) {
                out.flush().unwrap();
            }
        }
    }

    #[test]
    fn large_outputs_through_the_writer_thread_keep_every_byte() {
        // Under target/ (direct I/O) and in /dev/shm (a tmpfs: the page
        // cache path) when there is one.
        let mut dirs = vec![scratch("large")];
        let shm = PathBuf::from("/dev/shm").join(format!("crit-output-test-{}", std::process::id()));
        if fs::create_dir_all(&shm).is_ok() {
            dirs.push(shm);
        }
        for dir in &dirs {
            let target = dir.join("out.json");
            fs::write(&target, b"old").unwrap();
            // Many blocks and a tail; exactly four blocks; one block less a
            // byte (never reaches the thread); writes bigger than a block;
            // a flush in the middle, out of block alignment.
            let cases: [(usize, &[usize], Option<usize>); 5] = [
                (5 * BLOCK + 12345, &[65536, 1, 4095, 7], None),
                (4 * BLOCK, &[65536], None),
                (BLOCK - 1, &[1000], None),
                (3 * BLOCK + 3, &[3 * BLOCK / 2 + 1], None),
                (6 * BLOCK + 100, &[100_001], Some(3)),
            ];
            for (n, (len, pieces, flush_at)) in cases.into_iter().enumerate() {
                let data = pattern(len, n as u64 + 7);
                let mut out = AtomicFile::create(&target).unwrap();
                write_in_pieces(&mut out, &data, pieces, flush_at);
                // The target is untouched until the commit.
                assert_eq!(fs::read(&target).unwrap().len(), if n == 0 { 3 } else { cases[n - 1].0 });
                out.commit().unwrap();
                let got = fs::read(&target).unwrap();
                assert_eq!(got.len(), len, "case {n} in {}", dir.display());
                assert!(got == data, "case {n} in {}: content differs", dir.display());
            }
            assert_eq!(fs::read_dir(dir).unwrap().count(), 1, "temporary files left in {}", dir.display());
            let _ = fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn an_output_dropped_while_the_thread_writes_leaves_the_target_alone() {
        let dir = scratch("drop");
        let target = dir.join("out.json");
        fs::write(&target, b"old").unwrap();
        let mut out = AtomicFile::create(&target).unwrap();
        write_in_pieces(&mut out, &pattern(5 * BLOCK, 3), &[BLOCK / 3], None);
        drop(out);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "the temporary file was left");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn positioned_writes_after_streamed_blocks() {
        use std::os::unix::fs::FileExt;
        let dir = scratch("file");
        let target = dir.join("out.bin");
        let mut data = pattern(3 * BLOCK + 77, 11);
        let mut out = AtomicFile::create(&target).unwrap();
        write_in_pieces(&mut out, &data, &[50_000], None);
        // Patch a header in place, then go on appending.
        out.file().unwrap().write_all_at(b"HEAD", 0).unwrap();
        data[..4].copy_from_slice(b"HEAD");
        let tail = pattern(2 * BLOCK + 5, 12);
        write_in_pieces(&mut out, &tail, &[70_000], None);
        data.extend_from_slice(&tail);
        out.commit().unwrap();
        assert!(fs::read(&target).unwrap() == data);
        let _ = fs::remove_dir_all(&dir);
    }
}
