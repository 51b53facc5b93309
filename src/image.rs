//! The codec: image framing, entries and their payloads.
//!
//! [`ImageReader`] reads an image from any [`Read`] (pipes included: it never
//! seeks), entry by entry, with the payload of each entry left in the stream
//! until the caller reads, streams or skips it.  [`ImageWriter`] writes the
//! magic words, entries and payloads back.  Memory use is bounded by the
//! largest single entry, never by the image.

use std::io::{self, Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::fsio::read_full;
use crate::magic::{self, Body, Head, ImageKind, Payload, IMG_COMMON, IMG_SERVICE};
use crate::schema::{msg, MsgId};
use crate::wire::{Message, Value};

/// What an entry is, within its image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// An ordinary entry.
    Entry,
    /// The `pagemap_head` that starts a pagemap.
    PagemapHead,
    /// A `pagemap_entry`.
    PagemapEntry,
    /// The `ghost_file_entry` that starts a ghost file.
    GhostFile,
    /// A `ghost_chunk_entry` of a chunked ghost file.
    GhostChunk,
}

/// The payload that follows an entry, as its message describes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExtraSpec {
    /// No payload.
    None,
    /// That many raw bytes.
    Blob(u64),
    /// TCP queues: `inq` bytes then `outq` bytes.
    Tcp(u64, u64),
    /// `nsems` u16 semaphore values, padded to 8 bytes.
    Sem(u64),
    /// `qnum` SysV messages.
    Msg(u64),
    /// SysV shm contents inline: `size` bytes padded to 4.
    Shm(u64),
    /// The raw contents of a non-chunked ghost file, up to the end.
    GhostRaw,
}

/// One decoded entry.
#[derive(Debug)]
pub struct Item {
    /// Index of the entry in the image (0-based, as in the JSON list).
    pub index: usize,
    /// Offset of its size prefix in the file.
    pub offset: u64,
    /// What it is.
    pub role: Role,
    /// The message.
    pub msg: Message,
    /// The payload that follows it.
    pub extra: ExtraSpec,
}

/// One entry as its undecoded message bytes: see [`ImageReader::next_raw`].
#[derive(Debug)]
pub struct RawEntry<'a> {
    /// Index of the entry in the image (0-based, as in the JSON list).
    pub index: usize,
    /// Offset of its size prefix in the file.
    pub offset: u64,
    /// What it is.
    pub role: Role,
    /// The type of its message.
    pub ty: MsgId,
    /// The message's wire bytes.
    pub bytes: &'a [u8],
}

impl RawEntry<'_> {
    /// The decoded message; its errors are located as
    /// [`ImageReader::next_item`] locates them.
    pub fn decode(&self) -> Result<Message> {
        Message::decode(self.ty, self.bytes).map_err(|e| e.at_offset(self.offset + 4).at_entry(self.index))
    }
}

/// A payload read into memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Extra {
    /// No payload.
    None,
    /// Raw bytes.
    Blob(Vec<u8>),
    /// TCP queues.
    Tcp {
        /// Receive queue.
        inq: Vec<u8>,
        /// Send queue.
        outq: Vec<u8>,
    },
    /// Semaphore values.
    Sem(Vec<u16>),
    /// SysV messages: `ipc_msg` and its data.
    Msgs(Vec<(Message, Vec<u8>)>),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Body,
    GhostChunks,
    Done,
}

/// Reads an image entry by entry.
pub struct ImageReader<R: Read> {
    r: R,
    /// The bytes of the entry being decoded (reused: no allocation per entry).
    scratch: Vec<u8>,
    /// How many bytes of `scratch` the entry being decoded holds.
    frame: usize,
    kind: &'static ImageKind,
    head: Option<u32>,
    offset: u64,
    index: usize,
    /// Index of the entry being read (its payload included), for errors.
    current: usize,
    state: State,
    pending: ExtraSpec,
}

/// The role and message type of entry `index` of an image of `kind`.
#[inline]
fn role_and_type(kind: &ImageKind, index: usize) -> (Role, MsgId) {
    match kind.body {
        Body::Pagemap if index == 0 => (Role::PagemapHead, msg::PAGEMAP_HEAD),
        Body::Pagemap => (Role::PagemapEntry, msg::PAGEMAP_ENTRY),
        Body::Ghost if index == 0 => (Role::GhostFile, msg::GHOST_FILE_ENTRY),
        Body::Ghost => (Role::GhostChunk, msg::GHOST_CHUNK_ENTRY),
        Body::Entries(ty, _) => (Role::Entry, ty),
        Body::Undecodable => (Role::Entry, msg::INVENTORY_ENTRY),
    }
}

/// Entries up to this size are read into a buffer sized up front.
const SMALL_ENTRY: u64 = 1 << 16;

/// Round `x` up to a multiple of `y` (a power of two).
pub fn round_up(x: u64, y: u64) -> u64 {
    // Saturating: a size read from the input may be anything.
    x.div_ceil(y).saturating_mul(y)
}

impl<R: Read> ImageReader<R> {
    /// Read the magic words and set up for the entries.
    ///
    /// Errors: [`ErrorKind::UnknownMagic`] (crit's "Unknown magic"),
    /// [`ErrorKind::NoHandler`] for magics with no entries (kdat, raw data).
    pub fn open(mut r: R) -> Result<Self> {
        let mut b = [0u8; 4];
        let n = read_full(&mut r, &mut b)?;
        if n < 4 {
            return Err(Error::new(ErrorKind::Truncated { what: "magic", need: 4, got: n as u64 }).at_offset(0));
        }
        let mut offset = 4;
        let mut m = u32::from_le_bytes(b);
        let mut head = None;
        if m == IMG_COMMON || m == IMG_SERVICE {
            head = Some(m);
            let n = read_full(&mut r, &mut b)?;
            if n < 4 {
                return Err(Error::new(ErrorKind::Truncated { what: "magic", need: 4, got: n as u64 }).at_offset(4));
            }
            m = u32::from_le_bytes(b);
            offset = 8;
        }
        let kind =
            magic::by_magic(m).ok_or_else(|| Error::new(ErrorKind::UnknownMagic(m as i32)).at_offset(offset - 4))?;
        if kind.body == Body::Undecodable {
            return Err(Error::new(ErrorKind::NoHandler(kind.name)).at_offset(offset - 4));
        }
        Ok(ImageReader {
            r,
            scratch: Vec::new(),
            frame: 0,
            kind,
            head,
            offset,
            index: 0,
            current: 0,
            state: State::Body,
            pending: ExtraSpec::None,
        })
    }

    /// The image kind.
    pub fn kind(&self) -> &'static ImageKind {
        self.kind
    }

    /// The head magic found, if any.
    pub fn head_magic(&self) -> Option<u32> {
        self.head
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Give back the underlying reader.
    pub fn into_inner(self) -> R {
        self.r
    }

    fn err_here(&self, e: Error) -> Error {
        e.at_offset(self.offset).at_entry(self.current)
    }

    /// Read exactly `n` bytes, without trusting `n` for the allocation.
    fn read_vec(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
        let got = (&mut self.r).take(n).read_to_end(&mut v)? as u64;
        if got < n {
            return Err(self.err_here(Error::new(ErrorKind::Truncated { what, need: n, got })));
        }
        self.offset += n;
        Ok(v)
    }

    /// Stream exactly `n` bytes to `sink`, in pieces.
    pub fn stream_bytes(
        &mut self,
        n: u64,
        what: &'static str,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut buf = vec![0u8; (n.min(1 << 16)) as usize];
        let mut left = n;
        let start = self.offset;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let got = read_full(&mut self.r, &mut buf[..want])?;
            if got == 0 {
                let e = Error::new(ErrorKind::Truncated { what, need: n, got: n - left }).at_offset(start);
                return Err(self.err_here(e));
            }
            self.offset += got as u64;
            left -= got as u64;
            sink(&buf[..got])?;
        }
        Ok(())
    }

    /// Stream everything up to the end of the input to `sink`; returns the count.
    pub fn stream_to_end(&mut self, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            let got = read_full(&mut self.r, &mut buf)?;
            if got == 0 {
                return Ok(total);
            }
            self.offset += got as u64;
            total += got as u64;
            sink(&buf[..got])?;
        }
    }

    /// The next entry, or None at a clean end of the image.  A payload of the
    /// previous entry that was not read is skipped first.
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        let Some((start, role, ty)) = self.read_frame()? else { return Ok(None) };
        // Offsets inside the message ("at byte K") count from its start.
        let msg = Message::decode(ty, self.frame_bytes()).map_err(|e| e.at_offset(start + 4).at_entry(self.index))?;
        let extra = self.extra_of(role, &msg);
        if role == Role::GhostFile {
            self.state = if extra == ExtraSpec::None { State::GhostChunks } else { State::Done };
        }
        let item = Item { index: self.index, offset: start, role, msg, extra };
        self.index += 1;
        self.pending = extra;
        Ok(Some(item))
    }

    /// Whether no entry of this image carries a payload (pagemaps, and
    /// entries of kinds without one), so that [`ImageReader::next_raw`]
    /// can read them.
    pub fn bare_entries(&self) -> bool {
        matches!(self.kind.body, Body::Pagemap | Body::Entries(_, Payload::None))
    }

    /// The next entry of an image of [bare entries](ImageReader::bare_entries),
    /// undecoded: its message bytes (in the reader's buffer, valid until
    /// the next read), or None at a clean end.  Errors of the framing are
    /// those of [`ImageReader::next_item`], with the same location;
    /// [`RawEntry::decode`] gives the message and its errors as `next_item`
    /// would.  On other images this is an error.
    pub fn next_raw(&mut self) -> Result<Option<RawEntry<'_>>> {
        if !self.bare_entries() {
            return Err(Error::other(format!("internal: entries of {} images carry payloads", self.kind.name)));
        }
        let Some((offset, role, ty)) = self.read_frame()? else { return Ok(None) };
        let index = self.index;
        self.index += 1;
        Ok(Some(RawEntry { index, offset, role, ty, bytes: self.frame_bytes() }))
    }

    /// The bytes of the entry last read.
    fn frame_bytes(&self) -> &[u8] {
        self.scratch.get(..self.frame).unwrap_or_default()
    }

    /// Read the next entry's size and bytes into the buffer: its offset,
    /// role and type, or None at a clean end.
    fn read_frame(&mut self) -> Result<Option<(u64, Role, MsgId)>> {
        if self.pending != ExtraSpec::None {
            self.skip_extra()?;
        }
        if self.state == State::Done {
            return Ok(None);
        }
        let start = self.offset;
        self.current = self.index;
        let mut b = [0u8; 4];
        let n = read_full(&mut self.r, &mut b)?;
        if n == 0 {
            self.state = State::Done;
            return Ok(None);
        }
        if n < 4 {
            return Err(self.err_here(Error::new(ErrorKind::Truncated { what: "entry size", need: 4, got: n as u64 })));
        }
        self.offset += 4;
        let size = u32::from_le_bytes(b) as u64;
        let got = if size <= SMALL_ENTRY {
            // Small: read straight into the buffer (grown to the largest
            // such entry, not cleared in between).
            let n = size as usize;
            if self.scratch.len() < n {
                self.scratch.resize(n, 0);
            }
            self.frame = match self.scratch.get_mut(..n) {
                Some(b) => read_full(&mut self.r, b)?,
                None => 0,
            };
            self.frame as u64
        } else {
            // The size is not trusted for the allocation: the buffer grows
            // with what is there.
            self.scratch.clear();
            let got = (&mut self.r).take(size).read_to_end(&mut self.scratch)? as u64;
            self.frame = self.scratch.len();
            got
        };
        if got < size {
            let e = Error::new(ErrorKind::Truncated { what: "entry", need: size, got });
            return Err(self.err_here(e).at_offset(start));
        }
        self.offset += size;
        let (role, ty) = self.role_and_type();
        Ok(Some((start, role, ty)))
    }

    fn role_and_type(&self) -> (Role, MsgId) {
        role_and_type(self.kind, self.index)
    }

    fn extra_of(&self, role: Role, m: &Message) -> ExtraSpec {
        let u = |name: &str| m.u64(name).unwrap_or(0);
        match role {
            Role::GhostFile => {
                if m.bool("chunks") == Some(true) {
                    ExtraSpec::None
                } else {
                    ExtraSpec::GhostRaw
                }
            }
            Role::GhostChunk => ExtraSpec::Blob(u("len")),
            Role::PagemapHead | Role::PagemapEntry => ExtraSpec::None,
            Role::Entry => match self.kind.body {
                Body::Entries(_, p) => match p {
                    Payload::None => ExtraSpec::None,
                    Payload::Blob(f) => ExtraSpec::Blob(u(f)),
                    Payload::Blob2(a, b) => ExtraSpec::Blob(u(a).saturating_add(u(b))),
                    Payload::Tcp => ExtraSpec::Tcp(u("inq_len"), u("outq_len")),
                    Payload::Sem => ExtraSpec::Sem(u("nsems")),
                    Payload::Msg => ExtraSpec::Msg(u("qnum")),
                    Payload::Shm => {
                        if m.bool("in_pagemaps") == Some(true) {
                            ExtraSpec::None
                        } else {
                            ExtraSpec::Shm(u("size"))
                        }
                    }
                },
                _ => ExtraSpec::None,
            },
        }
    }

    /// Skip the payload of the last entry; returns its size as crit's
    /// `--nopl` reports it.
    pub fn skip_extra(&mut self) -> Result<u64> {
        let spec = std::mem::replace(&mut self.pending, ExtraSpec::None);
        let idx = self.index.saturating_sub(1);
        let r = (|| -> Result<u64> {
            Ok(match spec {
                ExtraSpec::None => 0,
                ExtraSpec::Blob(n) => {
                    self.stream_bytes(n, "payload", |_| Ok(()))?;
                    n
                }
                ExtraSpec::Tcp(a, b) => {
                    self.stream_bytes(a, "TCP receive queue", |_| Ok(()))?;
                    self.stream_bytes(b, "TCP send queue", |_| Ok(()))?;
                    a + b
                }
                ExtraSpec::Sem(n) => {
                    self.stream_bytes(round_up(2 * n, 8), "semaphore values", |_| Ok(()))?;
                    2 * n
                }
                ExtraSpec::Shm(n) => {
                    self.stream_bytes(round_up(n, 4), "shared memory contents", |_| Ok(()))?;
                    n
                }
                ExtraSpec::Msg(q) => {
                    let mut total = 0;
                    for _ in 0..q {
                        match self.read_ipc_msg_inner(true)? {
                            Some((size, m, _)) => total += size + m.u64("msize").unwrap_or(0),
                            None => break,
                        }
                    }
                    total
                }
                ExtraSpec::GhostRaw => self.stream_to_end(|_| Ok(()))?,
            })
        })();
        r.map_err(|e| e.at_entry(idx))
    }

    /// Read the payload of the last entry into memory.
    pub fn read_extra(&mut self) -> Result<Extra> {
        let spec = std::mem::replace(&mut self.pending, ExtraSpec::None);
        let idx = self.index.saturating_sub(1);
        let r = (|| -> Result<Extra> {
            Ok(match spec {
                ExtraSpec::None => Extra::None,
                ExtraSpec::Blob(n) => Extra::Blob(self.read_vec(n, "payload")?),
                ExtraSpec::Tcp(a, b) => {
                    let inq = self.read_vec(a, "TCP receive queue")?;
                    let outq = self.read_vec(b, "TCP send queue")?;
                    Extra::Tcp { inq, outq }
                }
                ExtraSpec::Sem(n) => Extra::Sem(self.read_sems(n)?),
                ExtraSpec::Shm(n) => {
                    let v = self.read_vec(n, "shared memory contents")?;
                    self.read_vec(round_up(n, 4) - n, "padding")?;
                    Extra::Blob(v)
                }
                ExtraSpec::Msg(q) => Extra::Msgs(self.read_msgs(q)?),
                ExtraSpec::GhostRaw => {
                    let mut v = Vec::new();
                    self.stream_to_end(|b| {
                        v.extend_from_slice(b);
                        Ok(())
                    })?;
                    Extra::Blob(v)
                }
            })
        })();
        r.map_err(|e| e.at_entry(idx))
    }

    /// Read `nsems` semaphore values and their padding (payload `Sem`).
    pub fn read_sems(&mut self, nsems: u64) -> Result<Vec<u16>> {
        self.pending = ExtraSpec::None;
        let data = self.read_vec(2 * nsems, "semaphore values")?;
        self.read_vec(round_up(2 * nsems, 8) - 2 * nsems, "padding")?;
        Ok(data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
    }

    /// Read `qnum` SysV messages (payload `Msg`).  Like CRIU, a queue that
    /// ends early (clean end of file) ends the list.
    pub fn read_msgs(&mut self, qnum: u64) -> Result<Vec<(Message, Vec<u8>)>> {
        self.pending = ExtraSpec::None;
        let mut out = Vec::new();
        for _ in 0..qnum {
            match self.read_ipc_msg_inner(false)? {
                Some((_, m, d)) => out.push((m, d)),
                None => break,
            }
        }
        Ok(out)
    }

    /// Mark the pending payload as consumed by the caller's own reads.
    pub fn payload_consumed(&mut self) {
        self.pending = ExtraSpec::None;
    }

    fn read_ipc_msg_inner(&mut self, skip: bool) -> Result<Option<(u64, Message, Vec<u8>)>> {
        let mut b = [0u8; 4];
        let n = read_full(&mut self.r, &mut b)?;
        if n == 0 {
            return Ok(None);
        }
        if n < 4 {
            return Err(self.err_here(Error::new(ErrorKind::Truncated {
                what: "message size",
                need: 4,
                got: n as u64,
            })));
        }
        self.offset += 4;
        let size = u32::from_le_bytes(b) as u64;
        let at = self.offset;
        let buf = self.read_vec(size, "ipc_msg")?;
        let m = Message::decode(msg::IPC_MSG, &buf).map_err(|e| self.err_here(e.in_field("extra").at_offset(at)))?;
        let msize = m.u64("msize").unwrap_or(0);
        let rounded = round_up(msize, 8);
        let data = if skip {
            self.stream_bytes(rounded, "message data", |_| Ok(()))?;
            Vec::new()
        } else {
            let d = self.read_vec(msize, "message data")?;
            self.read_vec(rounded - msize, "padding")?;
            d
        };
        Ok(Some((size, m, data)))
    }

    /// Count the entries left (payloads skipped), as `crit info` does for a
    /// well-formed image.
    pub fn count_entries(&mut self) -> Result<usize> {
        let mut n = 0;
        while self.next_item()?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

impl<R: io::BufRead> ImageReader<R> {
    /// [`ImageReader::count_entries`] without making the messages where
    /// the image has no payloads: each entry's framing is checked (see
    /// [`crate::wire::decodes`]), and only one that fails is decoded, for
    /// its error.  The same count and errors, at a fraction of the cost.
    pub fn count_entries_buffered(&mut self) -> Result<usize> {
        if !self.bare_entries() {
            return self.count_entries();
        }
        let mut n = 0;
        while let Some(raw) = self.next_raw_buffered()? {
            if !crate::wire::decodes(raw.ty, raw.bytes) {
                raw.decode()?;
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<R: io::BufRead> ImageReader<R> {
    /// [`ImageReader::next_raw`] for a buffered input: an entry whose frame
    /// is whole in the input's buffer is taken from there in one copy;
    /// anything else (a buffer to refill first, the end, a frame cut short,
    /// a large entry) goes the way of `next_raw`, with its results.
    pub fn next_raw_buffered(&mut self) -> Result<Option<RawEntry<'_>>> {
        if self.bare_entries() && self.state == State::Body && self.pending == ExtraSpec::None {
            if let Some(n) = self.frame_from_buffer() {
                let start = self.offset;
                self.current = self.index;
                self.offset += 4 + n as u64;
                self.frame = n;
                let (role, ty) = self.role_and_type();
                let index = self.index;
                self.index += 1;
                return Ok(Some(RawEntry { index, offset: start, role, ty, bytes: self.frame_bytes() }));
            }
        }
        self.next_raw()
    }

    /// For an image of [bare entries](ImageReader::bare_entries) read
    /// from a buffered input: hand each entry whose frame is whole in the
    /// input's buffer to `each`, in order, straight from that buffer (no
    /// copy), as [`ImageReader::next_raw`] would return it, and consume
    /// those frames.  Returns how many entries were handed over: 0 where
    /// the buffer (refilled first if it was empty) holds no whole frame
    /// (or a large one), at the end of the input, after an error of the
    /// input, and on other images; [`ImageReader::next_raw`] then reads
    /// the next entry, with its results.  The first error of `each` ends
    /// the run (its entry counts as read) and is returned.
    pub fn each_raw_buffered(&mut self, mut each: impl FnMut(RawEntry<'_>) -> Result<()>) -> Result<usize> {
        if !(self.bare_entries() && self.state == State::Body && self.pending == ExtraSpec::None) {
            return Ok(0);
        }
        let Ok(buf) = self.r.fill_buf() else { return Ok(0) };
        let first = self.index;
        let (mut index, mut offset, mut used) = (first, self.offset, 0usize);
        let mut result = Ok(());
        // Only the first entry of an image may have a role of its own.
        let (role, ty) = role_and_type(self.kind, usize::MAX);
        while let Some(head) = buf.get(used..).and_then(|rest| rest.first_chunk::<4>()) {
            let size = u32::from_le_bytes(*head);
            if size as u64 > SMALL_ENTRY {
                break;
            }
            let start = used + 4;
            let end = start + size as usize;
            let Some(bytes) = buf.get(start..end) else { break };
            let (role, ty) = if index == 0 { role_and_type(self.kind, 0) } else { (role, ty) };
            let entry = RawEntry { index, offset, role, ty, bytes };
            index += 1;
            offset += 4 + size as u64;
            used = end;
            if let Err(e) = each(entry) {
                result = Err(e);
                break;
            }
        }
        self.r.consume(used);
        if index > first {
            self.current = index - 1;
        }
        self.index = index;
        self.offset = offset;
        result.map(|()| index - first)
    }

    /// Copy the next frame's message bytes out of the input's buffer into
    /// `scratch` and consume the frame, if the buffer holds all of it: the
    /// message's size.
    fn frame_from_buffer(&mut self) -> Option<usize> {
        let buf = self.r.fill_buf().ok()?;
        let size = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as u64;
        if size > SMALL_ENTRY {
            return None;
        }
        let n = size as usize;
        let body = buf.get(4..4 + n)?;
        if self.scratch.len() < n {
            self.scratch.resize(n, 0);
        }
        self.scratch.get_mut(..n)?.copy_from_slice(body);
        self.r.consume(4 + n);
        Some(n)
    }
}

/// An iterator adapter over entries with their payloads loaded.
impl<R: Read> Iterator for ImageReader<R> {
    type Item = Result<(Item, Extra)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(Some(item)) => Some(self.read_extra().map(|x| (item, x))),
            Ok(None) => None,
            Err(e) => {
                self.state = State::Done;
                self.pending = ExtraSpec::None;
                Some(Err(e))
            }
        }
    }
}

/// Writes an image.
///
/// ```
/// use crit::image::{ImageReader, ImageWriter};
/// use crit::wire::Value;
///
/// # fn main() -> crit::Result<()> {
/// // The entry of a bundled pstree.img, with another pid, in a new image.
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/criu42-sleep/pstree.img");
/// let mut rd = ImageReader::open(std::fs::File::open(path)?)?;
/// let mut entry = rd.next_item()?.expect("an entry").msg;
/// entry.set("pid", Value::Uint(42))?;
/// let mut w = ImageWriter::new(Vec::new(), rd.kind())?;
/// w.write_message(&entry)?;
/// let bytes = w.finish()?;
///
/// let mut back = ImageReader::open(&bytes[..])?;
/// assert_eq!(back.kind().name, "PSTREE");
/// assert_eq!(back.next_item()?.expect("an entry").msg.u64("pid"), Some(42));
/// assert!(back.next_item()?.is_none());
/// # Ok(())
/// # }
/// ```
pub struct ImageWriter<W: Write> {
    w: W,
    kind: &'static ImageKind,
    index: usize,
    scratch: Vec<u8>,
}

impl<W: Write> ImageWriter<W> {
    /// Start an image of `kind`, writing its head and type magic.
    pub fn new(mut w: W, kind: &'static ImageKind) -> Result<Self> {
        match kind.head {
            Head::None => {}
            Head::Common => w.write_all(&IMG_COMMON.to_le_bytes())?,
            Head::Service => w.write_all(&IMG_SERVICE.to_le_bytes())?,
        }
        w.write_all(&kind.magic.to_le_bytes())?;
        Ok(ImageWriter { w, kind, index: 0, scratch: Vec::new() })
    }

    /// The image kind.
    pub fn kind(&self) -> &'static ImageKind {
        self.kind
    }

    /// Write one entry (size prefix and message).
    pub fn write_message(&mut self, m: &Message) -> Result<()> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        m.encode(&mut bytes);
        let r = self.write_entry(&bytes);
        self.scratch = bytes;
        r
    }

    /// Write one entry given as its message's wire bytes (size prefix, then
    /// the bytes), as [`ImageWriter::write_message`] writes a message.
    pub fn write_entry(&mut self, bytes: &[u8]) -> Result<()> {
        let len =
            u32::try_from(bytes.len()).map_err(|_| Error::value("entry larger than 4 GiB").at_entry(self.index))?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(bytes)?;
        self.index += 1;
        Ok(())
    }

    /// [`ImageWriter::write_entry`] for bytes made with room for the size
    /// prefix in front: `framed` is 4 bytes (overwritten with the size),
    /// then the message's wire bytes, written with one call.
    pub fn write_framed(&mut self, framed: &mut [u8]) -> Result<()> {
        let Some((head, body)) = framed.split_first_chunk_mut::<4>() else {
            return Err(Error::other("internal: an entry without room for its size"));
        };
        let len =
            u32::try_from(body.len()).map_err(|_| Error::value("entry larger than 4 GiB").at_entry(self.index))?;
        *head = len.to_le_bytes();
        self.w.write_all(framed)?;
        self.index += 1;
        Ok(())
    }

    /// Write `n` entries made as for [`ImageWriter::write_framed`], one
    /// after another in `framed`, their sizes filled in.
    pub fn write_framed_run(&mut self, framed: &[u8], n: usize) -> Result<()> {
        self.w.write_all(framed)?;
        self.index += n;
        Ok(())
    }

    /// Write payload bytes.
    pub fn write_raw(&mut self, data: &[u8]) -> Result<()> {
        self.w.write_all(data)?;
        Ok(())
    }

    /// Write `n` zero bytes.
    pub fn write_zeros(&mut self, n: u64) -> Result<()> {
        const Z: [u8; 64] = [0; 64];
        let mut left = n;
        while left > 0 {
            let k = left.min(64) as usize;
            self.w.write_all(&Z[..k])?;
            left -= k as u64;
        }
        Ok(())
    }

    /// Write a payload held in memory, for an entry of role `role`.
    pub fn write_extra(&mut self, extra: &Extra) -> Result<()> {
        match extra {
            Extra::None => Ok(()),
            Extra::Blob(b) => self.write_raw(b),
            Extra::Tcp { inq, outq } => {
                self.write_raw(inq)?;
                self.write_raw(outq)
            }
            Extra::Sem(v) => {
                for s in v {
                    self.write_raw(&s.to_le_bytes())?;
                }
                let n = 2 * v.len() as u64;
                self.write_zeros(round_up(n, 8) - n)
            }
            Extra::Msgs(ms) => {
                for (m, data) in ms {
                    self.write_message(m)?;
                    self.index -= 1;
                    let msize = m.u64("msize").unwrap_or(data.len() as u64);
                    let take = (msize as usize).min(data.len());
                    self.write_raw(&data[..take])?;
                    self.write_zeros(round_up(msize, 8) - take as u64)?;
                }
                Ok(())
            }
        }
    }

    /// Flush and give back the writer.
    pub fn finish(mut self) -> Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }
}

/// Whether a message field holds `true`.
pub fn flag(m: &Message, name: &str) -> bool {
    matches!(m.get(name), Some(Value::Bool(true)))
}
