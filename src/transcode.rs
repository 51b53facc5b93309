//! Whole-image conversions between the binary format and crit's JSON,
//! streamed entry by entry: `decode`, `encode` and `info`.

use std::io::{Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::image::{round_up, ExtraSpec, ImageReader, ImageWriter, RawEntry, Role};
use crate::json::direct::EntryWriter;
use crate::json::direct_in::DirectEncoder;
use crate::json::map::{write_b64, write_fields, write_message, Style};
use crate::json::out::B64Lines;
use crate::json::parse::{Json, Parser};
use crate::json::{message_from_json, pyfmt, JsonOut};
use crate::magic::{self, Body, ImageKind, Payload};
use crate::schema::{msg, MsgId};
use crate::wire::Message;

/// Options of [`decode`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// Nice mode (`-f nice`, crit's `--pretty`): indented, options applied.
    pub nice: bool,
    /// Show payload sizes instead of payloads (crit's `show --nopl`).
    pub no_payload: bool,
}

/// crit's `human_readable`: `5B`, `1KB`, `2.9KB`.
pub fn human_size(n: u64) -> String {
    let mut x = n as f64;
    for unit in ["", "K", "M", "G", "T", "P", "E", "Z"] {
        if x < 1024.0 {
            return if x.trunc() == x { format!("{}{unit}B", x as u64) } else { format!("{x:.1}{unit}B") };
        }
        x /= 1024.0;
    }
    format!("{x:.1}YB")
}

/// Decode an image to crit's JSON.  Writes no trailing newline.
pub fn decode<R: Read, W: Write>(input: R, output: W, opts: DecodeOptions) -> Result<W> {
    // Entries are read a few bytes at a time: from a buffer of our own
    // (which a buffered input fills with one read, without copying twice).
    let mut rd = ImageReader::open(std::io::BufReader::with_capacity(1 << 16, input))?;
    let kind = rd.kind();
    let style = Style { nice: opts.nice };
    let mut out = JsonOut::new(output, opts.nice);
    out.begin_object()?;
    out.key("magic")?;
    out.write_str(kind.name.as_bytes())?;
    out.key("entries")?;
    out.begin_array()?;
    if rd.bare_entries() {
        // No payloads: each entry is written straight from its bytes (as
        // they are in the input's buffer, where they are whole there).
        let mut w = EntryWriter::new(style);
        loop {
            if rd.each_raw_buffered(|raw| write_raw_entry(&mut w, &mut out, raw, style))? > 0 {
                continue;
            }
            match rd.next_raw()? {
                Some(raw) => write_raw_entry(&mut w, &mut out, raw, style)?,
                None => break,
            }
        }
    }
    while let Some(item) = rd.next_item()? {
        let idx = item.index;
        out.elem()?;
        out.begin_object()?;
        write_fields(&mut out, &item.msg, style, false)?;
        write_extra(&mut rd, &mut out, &item.msg, item.role, item.extra, opts).map_err(|e| e.at_entry(idx))?;
        out.end_object()?;
    }
    out.end_array()?;
    out.end_object()?;
    out.finish()
}

/// Write an entry of an image without payloads straight from its bytes,
/// or, where that walk does not apply, from its decoded message.
#[inline(always)]
fn write_raw_entry<W: Write>(w: &mut EntryWriter, out: &mut JsonOut<W>, raw: RawEntry<'_>, style: Style) -> Result<()> {
    if !w.write(out, raw.ty, raw.bytes)? {
        write_decoded_entry(out, raw, style)?;
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn write_decoded_entry<W: Write>(out: &mut JsonOut<W>, raw: RawEntry<'_>, style: Style) -> Result<()> {
    let m = raw.decode()?;
    out.elem()?;
    out.begin_object()?;
    write_fields(out, &m, style, false)?;
    out.end_object()
}

fn write_extra<R: Read, W: Write>(
    rd: &mut ImageReader<R>,
    out: &mut JsonOut<W>,
    m: &Message,
    role: Role,
    spec: ExtraSpec,
    opts: DecodeOptions,
) -> Result<()> {
    if spec == ExtraSpec::None {
        return Ok(());
    }
    let ghost = matches!(role, Role::GhostFile | Role::GhostChunk);
    if opts.no_payload {
        let size = rd.skip_extra()?;
        if !ghost {
            out.key("extra")?;
            out.write_str(format!("... <{}>", human_size(size)).as_bytes())?;
        }
        let _ = m;
        return Ok(());
    }
    out.key("extra")?;
    match spec {
        ExtraSpec::None => {}
        ExtraSpec::Blob(n) => stream_b64(rd, out, n)?,
        ExtraSpec::Shm(n) => {
            stream_b64(rd, out, n)?;
            rd.stream_bytes(round_up(n, 4) - n, "padding", |_| Ok(()))?;
        }
        ExtraSpec::GhostRaw => {
            out.raw("\"")?;
            let mut e = B64Lines::new();
            rd.stream_to_end(|b| {
                e.feed(out.buf(), b)?;
                out.spill()
            })?;
            e.finish(out.buf())?;
            out.raw("\"")?;
        }
        ExtraSpec::Tcp(a, b) => {
            out.begin_object()?;
            out.key("inq")?;
            stream_b64(rd, out, a)?;
            out.key("outq")?;
            stream_b64(rd, out, b)?;
            out.end_object()?;
        }
        ExtraSpec::Sem(n) => {
            let vals = rd.read_sems(n)?;
            out.begin_array()?;
            for v in vals {
                out.elem()?;
                out.int(v)?;
            }
            out.end_array()?;
        }
        ExtraSpec::Msg(q) => {
            let msgs = rd.read_msgs(q)?;
            out.begin_array()?;
            for (m, data) in &msgs {
                out.elem()?;
                // crit writes these raw, also in nice mode.
                write_message(out, m, Style { nice: false }, false)?;
                out.elem()?;
                write_b64(out, data)?;
            }
            out.end_array()?;
        }
    }
    rd.payload_consumed();
    Ok(())
}

fn stream_b64<R: Read, W: Write>(rd: &mut ImageReader<R>, out: &mut JsonOut<W>, n: u64) -> Result<()> {
    out.raw("\"")?;
    let mut e = B64Lines::new();
    rd.stream_bytes(n, "payload", |b| {
        e.feed(out.buf(), b)?;
        out.spill()
    })?;
    e.finish(out.buf())?;
    out.raw("\"")
}

/// Count the entries of an image as `crit info` reports them: payloads
/// skipped properly, the pagemap head not counted.
pub fn info<R: Read>(input: R) -> Result<(&'static ImageKind, usize)> {
    let mut rd = ImageReader::open(std::io::BufReader::with_capacity(1 << 16, input))?;
    let kind = rd.kind();
    let n = rd.count_entries_buffered()?;
    let n = if kind.body == Body::Pagemap { n.saturating_sub(1) } else { n };
    Ok((kind, n))
}

/// The JSON text of `crit info`.
pub fn info_json(kind: &ImageKind, count: usize) -> String {
    format!("{{\n    \"magic\": \"{}\",\n    \"count\": {count}\n}}\n", kind.name)
}

/// Encode crit's JSON (raw or nice, ours or crit's) to an image.
///
/// The JSON is read as a stream: each element of `entries` is parsed,
/// encoded and written before the next one is read.
pub fn encode<R: Read, W: Write>(input: R, output: W) -> Result<W> {
    encode_with(input, output, true)
}

/// [`encode`] through [`Message`]s: every entry parsed into a message,
/// then encoded.  `encode` writes the entries of images without payloads
/// straight from the JSON text ([`crate::json::direct_in`]); this is the
/// path that is tested against, with the same bytes and errors.
pub fn encode_through_messages<R: Read, W: Write>(input: R, output: W) -> Result<W> {
    encode_with(input, output, false)
}

fn encode_with<R: Read, W: Write>(input: R, output: W, direct: bool) -> Result<W> {
    let mut p = Parser::new(input);
    match p.skip_ws()? {
        Some(b'{') => {}
        _ => return Err(Error::new(ErrorKind::NotJson)),
    }
    p.expect(b'{', "'{'")?;
    let mut kind: Option<&'static ImageKind> = None;
    let mut early: Vec<Json> = Vec::new();
    let mut seen_entries = false;
    let mut enc: Option<Encoder<W>> = None;
    let mut output = Some(output);
    if p.skip_ws()? == Some(b'}') {
        return Err(p.error("no \"magic\" key"));
    }
    loop {
        let key = p.key()?;
        match key.as_str() {
            "magic" => {
                let v = p.value()?;
                let Json::Str(name) = &v else {
                    return Err(p.error("\"magic\" must be a string"));
                };
                let name = String::from_utf8_lossy(name).into_owned();
                let k = magic::by_name(&name).ok_or_else(|| Error::value(format!("unknown magic name {name:?}")))?;
                if k.body == Body::Undecodable {
                    return Err(Error::new(ErrorKind::NoHandler(k.name)));
                }
                kind = Some(k);
                if let Some(w) = output.take() {
                    let mut e = Encoder::new(w, k)?.with_direct(direct);
                    for (i, j) in early.drain(..).enumerate() {
                        e.entry(&j).map_err(|err| err.at_entry(i))?;
                    }
                    enc = Some(e);
                }
            }
            "entries" => {
                seen_entries = true;
                p.expect(b'[', "a list of entries")?;
                if p.skip_ws()? == Some(b']') {
                    p.expect(b']', "']'")?;
                } else {
                    let mut i = 0usize;
                    loop {
                        if let Some(e) = enc.as_mut() {
                            // Entries the direct encoder takes whole, in a run.
                            let n = e.entries_from(&mut p).map_err(|err| err.at_entry(i))?;
                            if n > 0 {
                                i += n;
                                if !p.next_or_close(b']')? {
                                    break;
                                }
                                continue;
                            }
                        }
                        let line_col = Some(p.line_col());
                        match enc.as_mut() {
                            Some(e) => e.entry_from(&mut p).map_err(|mut err| {
                                if err.loc.line_col.is_none() {
                                    err.loc.line_col = line_col;
                                }
                                err.at_entry(i)
                            })?,
                            None => early.push(p.value()?),
                        }
                        i += 1;
                        if !p.next_or_close(b']')? {
                            break;
                        }
                    }
                }
            }
            _ => {
                p.value()?;
            }
        }
        if !p.next_or_close(b'}')? {
            break;
        }
    }
    p.expect_end()?;
    if kind.is_none() {
        return Err(Error::value("the JSON has no \"magic\" key"));
    }
    if !seen_entries {
        return Err(Error::value("the JSON has no \"entries\" list"));
    }
    match enc {
        Some(e) => e.finish(),
        None => Err(Error::other("internal: no encoder")),
    }
}

/// Encodes entries of one image, one JSON value at a time.
pub struct Encoder<W: Write> {
    w: ImageWriter<W>,
    kind: &'static ImageKind,
    index: usize,
    ghost_chunks: bool,
    /// Writes entries straight from the JSON text, for kinds without payloads.
    direct: Option<DirectEncoder>,
    /// Entries to go before [`Encoder::entries_from`] tries a run again,
    /// and how many it lets go by after the next run that takes none.
    skip_runs: usize,
    run_retry: usize,
}

/// Entries [`Encoder::entries_from`] lets go by after a run that took
/// none; twice as many after each next one that takes none, up to
/// [`RUN_RETRY_MAX`].
const RUN_RETRY: usize = 8;
const RUN_RETRY_MAX: usize = 1024;

impl<W: Write> Encoder<W> {
    /// Start an image of `kind`.
    pub fn new(w: W, kind: &'static ImageKind) -> Result<Self> {
        let direct = matches!(kind.body, Body::Pagemap | Body::Entries(_, Payload::None)).then(DirectEncoder::new);
        Ok(Encoder {
            w: ImageWriter::new(w, kind)?,
            kind,
            index: 0,
            ghost_chunks: false,
            direct,
            skip_runs: 0,
            run_retry: RUN_RETRY,
        })
    }

    /// `false`: [`Encoder::entry_from`] parses every entry into a message
    /// (by default it writes entries of kinds without payloads straight
    /// from the JSON text).
    pub fn with_direct(mut self, on: bool) -> Self {
        if !on {
            self.direct = None;
        }
        self
    }

    fn role(&self) -> (Role, MsgId) {
        match self.kind.body {
            Body::Pagemap if self.index == 0 => (Role::PagemapHead, msg::PAGEMAP_HEAD),
            Body::Pagemap => (Role::PagemapEntry, msg::PAGEMAP_ENTRY),
            Body::Ghost if self.index == 0 => (Role::GhostFile, msg::GHOST_FILE_ENTRY),
            Body::Ghost => (Role::GhostChunk, msg::GHOST_CHUNK_ENTRY),
            Body::Entries(ty, _) => (Role::Entry, ty),
            Body::Undecodable => (Role::Entry, msg::INVENTORY_ENTRY),
        }
    }

    /// Encode one JSON entry (with its `extra`).
    pub fn entry(&mut self, j: &Json) -> Result<()> {
        let (role, ty) = self.role();
        if role == Role::GhostChunk && !self.ghost_chunks {
            // crit ignores entries after a non-chunked ghost file.
            self.index += 1;
            return Ok(());
        }
        let m = message_from_json(ty, j)?;
        self.finish_entry(role, m, j.get("extra"))
    }

    /// Encode the next entry of a JSON stream, parsed straight into its
    /// message (no JSON tree of the entry is built).
    pub fn entry_from<R: Read>(&mut self, p: &mut Parser<R>) -> Result<()> {
        let (role, ty) = self.role();
        if role == Role::GhostChunk && !self.ghost_chunks {
            p.value()?;
            self.index += 1;
            return Ok(());
        }
        if let Some(d) = self.direct.as_mut() {
            let framed = d.entry(p, ty, role == Role::PagemapEntry)?;
            self.w.write_framed(framed)?;
            self.index += 1;
            return Ok(());
        }
        let mut extra = None;
        let m = crate::json::map::message_from_parser(p, ty, Some(&mut extra))?;
        self.finish_entry(role, m, extra.as_ref())
    }

    /// The entries that come next, as many as [`Encoder::entry_from`]
    /// would write straight from the JSON text with the tight loop of the
    /// direct encoder, taken and written in one run: their number (0 when
    /// the next entry is not one of them; that one is for
    /// [`Encoder::entry_from`]).
    pub fn entries_from<R: Read>(&mut self, p: &mut Parser<R>) -> Result<usize> {
        if self.skip_runs > 0 {
            self.skip_runs -= 1;
            return Ok(0);
        }
        let (role, ty) = self.role();
        let Some(d) = self.direct.as_mut() else { return Ok(0) };
        if role != Role::Entry && role != Role::PagemapEntry {
            return Ok(0);
        }
        let (n, framed) = d.entries(p, ty, role == Role::PagemapEntry);
        if n == 0 {
            // Entries of this image may not be for the loop: look again
            // some entries on.
            self.skip_runs = self.run_retry;
            self.run_retry = (self.run_retry * 2).min(RUN_RETRY_MAX);
            return Ok(0);
        }
        self.run_retry = RUN_RETRY;
        self.w.write_framed_run(framed, n)?;
        self.index += n;
        Ok(n)
    }

    fn finish_entry(&mut self, role: Role, mut m: Message, extra: Option<&Json>) -> Result<()> {
        if role == Role::PagemapEntry {
            legacy_pagemap_entry(&mut m);
        }
        if m.has_missing_required() {
            return Err(Error::new(ErrorKind::MissingRequired {
                message: m.ty.desc().name,
                fields: m.missing_required(),
            }));
        }
        self.w.write_message(&m)?;
        let r = self.extra(role, &m, extra).map_err(|e| e.in_field("extra"));
        self.index += 1;
        r
    }

    fn extra(&mut self, role: Role, m: &Message, extra: Option<&Json>) -> Result<()> {
        let u = |name: &str| m.u64(name).unwrap_or(0);
        match role {
            Role::PagemapHead | Role::PagemapEntry => Ok(()),
            Role::GhostFile => {
                if m.bool("chunks") == Some(true) {
                    self.ghost_chunks = true;
                    return Ok(());
                }
                let data = blob(extra)?.ok_or_else(|| Error::value("missing: a ghost file needs its contents"))?;
                self.w.write_raw(&data)
            }
            Role::GhostChunk => self.sized_blob(extra, u("len"), "len"),
            Role::Entry => {
                let Body::Entries(_, payload) = self.kind.body else { return Ok(()) };
                match payload {
                    Payload::None => Ok(()),
                    Payload::Blob(f) => self.sized_blob(extra, u(f), f),
                    Payload::Blob2(a, b) => {
                        self.sized_blob(extra, u(a).saturating_add(u(b)), "keys_bytes + values_bytes")
                    }
                    Payload::Tcp => {
                        let (inq, outq) = match extra {
                            Some(x @ Json::Obj(_)) => (x.get("inq"), x.get("outq")),
                            None => (None, None),
                            Some(other) => {
                                return Err(Error::value(format!(
                                    "expected {{\"inq\", \"outq\"}}, found {}",
                                    other.type_name()
                                )))
                            }
                        };
                        self.sized_blob(inq, u("inq_len"), "inq_len").map_err(|e| e.in_field("inq"))?;
                        self.sized_blob(outq, u("outq_len"), "outq_len").map_err(|e| e.in_field("outq"))
                    }
                    Payload::Sem => {
                        let n = u("nsems");
                        let vals: Vec<u16> = match extra {
                            Some(Json::Arr(a)) => a
                                .iter()
                                .enumerate()
                                .map(|(i, v)| match v {
                                    Json::Int(x) if (0..=u16::MAX as i128).contains(x) => Ok(*x as u16),
                                    _ => Err(Error::value("expected a semaphore value (0..65535)").in_index(i)),
                                })
                                .collect::<Result<_>>()?,
                            None if n == 0 => Vec::new(),
                            _ => return Err(Error::value("expected a list of semaphore values")),
                        };
                        if vals.len() as u64 != n {
                            return Err(Error::value(format!(
                                "number of semaphores mismatch: {} values, nsems is {n}",
                                vals.len()
                            )));
                        }
                        self.w.write_extra(&crate::image::Extra::Sem(vals))
                    }
                    Payload::Msg => {
                        let items: &[Json] = match extra {
                            Some(Json::Arr(a)) => a,
                            None => &[],
                            Some(other) => {
                                return Err(Error::value(format!("expected a list, found {}", other.type_name())))
                            }
                        };
                        if items.len() % 2 != 0 {
                            return Err(Error::value("expected pairs of message header and data"));
                        }
                        let q = u("qnum");
                        if (items.len() / 2) as u64 != q {
                            return Err(Error::value(format!("{} messages, qnum is {q}", items.len() / 2)));
                        }
                        let mut msgs = Vec::new();
                        for (i, pair) in items.chunks(2).enumerate() {
                            let hm = message_from_json(msg::IPC_MSG, &pair[0]).map_err(|e| e.in_index(2 * i))?;
                            let missing = hm.missing_required();
                            if !missing.is_empty() {
                                return Err(Error::new(ErrorKind::MissingRequired {
                                    message: "ipc_msg",
                                    fields: missing,
                                })
                                .in_index(2 * i));
                            }
                            let data = blob(Some(&pair[1])).map_err(|e| e.in_index(2 * i + 1))?.unwrap_or_default();
                            let msize = hm.u64("msize").unwrap_or(0);
                            if (data.len() as u64) < msize {
                                return Err(Error::value(format!("{} bytes of data, msize is {msize}", data.len()))
                                    .in_index(2 * i + 1));
                            }
                            msgs.push((hm, data));
                        }
                        self.w.write_extra(&crate::image::Extra::Msgs(msgs))
                    }
                    Payload::Shm => {
                        if m.bool("in_pagemaps") == Some(true) {
                            // The contents are in pagemap-shmem and pages images.
                            return Ok(());
                        }
                        let size = u("size");
                        let data = blob(extra)?.unwrap_or_default();
                        if (data.len() as u64) < size {
                            return Err(Error::value(format!("{} bytes of contents, size is {size}", data.len())));
                        }
                        self.w.write_raw(&data[..size as usize])?;
                        self.w.write_zeros(round_up(size, 4) - size)
                    }
                }
            }
        }
    }

    fn sized_blob(&mut self, extra: Option<&Json>, n: u64, field: &str) -> Result<()> {
        let data = blob(extra)?.unwrap_or_default();
        if data.len() as u64 != n {
            return Err(Error::value(format!("{} bytes of payload, but {field} is {n}", data.len())));
        }
        self.w.write_raw(&data)
    }

    /// Flush and give the writer back.
    pub fn finish(self) -> Result<W> {
        self.w.finish()
    }
}

/// crit before 4.2 named pagemap field 2 `nr_pages` (4.2 renamed it
/// `compat_nr_pages` and added a 64-bit `nr_pages` as field 5).  JSON that
/// has `nr_pages` but no `compat_nr_pages` comes from such a crit: its
/// count belongs in field 2, which gives back the image it was made from
/// (and CRIU 4.2 reads field 2 when field 5 is absent).
fn legacy_pagemap_entry(m: &mut Message) {
    if m.has("compat_nr_pages") {
        return;
    }
    let Some(n) = m.u64("nr_pages") else { return };
    if let Ok(n32) = u32::try_from(n) {
        let _ = m.set("compat_nr_pages", crate::wire::Value::Uint(n32 as u64));
        let five = m.field_desc("nr_pages").map(|f| f.number).unwrap_or(5);
        m.fields.retain(|(num, _)| *num != five);
    }
}

/// A payload string: base64, decoded leniently as crit does; a `--nopl`
/// placeholder is refused.
fn blob(extra: Option<&Json>) -> Result<Option<Vec<u8>>> {
    match extra {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) => {
            if s.starts_with(b"... <") {
                return Err(Error::value("the payload was left out (--nopl output cannot be encoded)"));
            }
            pyfmt::b64_decode(s).map(Some).map_err(Error::value)
        }
        Some(other) => Err(Error::value(format!("expected a base64 string, found {}", other.type_name()))),
    }
}
