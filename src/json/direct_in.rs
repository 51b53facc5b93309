//! Encode: crit's JSON text straight to protobuf wire bytes, with no
//! message tree in between.
//!
//! [`DirectEncoder`] reads one JSON object key by key, matches each key
//! against the static descriptor (crit lists fields in number order, so
//! the field after the previous one is tried first) and appends the
//! field's wire form to one byte buffer as it goes: integers from the
//! parser's integer fast path, strings copied from the input, nested
//! messages written in place behind a length byte that is widened when
//! they turn out longer.  It gives exactly the bytes, and the errors, of
//! parsing into a [`Message`] with [`super::map::message_from_parser`] and
//! encoding that:
//!
//! - values in the forms crit's JSON does not use much (nice-mode text
//!   other than hex and flag names, floats, booleans, bytes, `str()` of
//!   non-strings, IP address lists, anything out of range) are read as a
//!   [`Json`] value and converted by the functions of [`super::map`], the
//!   same calls the message path makes;
//! - a key out of number order, a key given twice (the last one counts,
//!   as in Python) and the `"__unknown"` list make the message keep a
//!   record of each value's field number and byte span (built from the
//!   bytes written so far when the first such key comes), replaying on it
//!   what the message path does to its list of fields; the bytes are put
//!   in that order when the message ends;
//! - required fields are tracked as keys are seen, and the list of the
//!   missing ones (with their dotted paths) is made only when one is;
//! - the common case, fields of plain non-negative integers (or `"0x…"`
//!   texts), strings that need no decoding and enum names, in crit's own
//!   layout, goes through a tight loop on the parser's buffer
//!   (`quick_run`), which hands a field over to the general loop at its
//!   start, or right after its key, when it comes any other way; a
//!   message it takes whole is finished with one test, and the entries of
//!   an image that it takes whole go one after another in one run
//!   (`quick_entries`).

use std::io::Read;
use std::sync::OnceLock;

use super::map::{field_from_json, locate, scalar_or_msg, unknown_fields, UNKNOWN_KEY};
use super::maps;
use super::parse::{hex_at, leading_spaces, plain_text_len, uint_at, Json, KeyPattern, Parser};
use super::pyfmt;
use crate::error::{Error, ErrorKind, Result};
use crate::schema::{FieldDesc, Label, MessageDesc, MsgId, Type, MESSAGES};
use crate::wire::{self, Message, Value};

/// Results inside the walk: errors boxed, so that the hot paths move a
/// pointer, not a whole [`Error`].
type Res<T> = std::result::Result<T, Box<Error>>;

/// One value written into a message's bytes, once the message keeps
/// records: what the message path holds as one `(number, value)` pair.
#[derive(Clone, Copy, Debug)]
struct Rec {
    number: u32,
    /// Its bytes (key and data) in the output buffer.
    start: usize,
    end: usize,
    /// A value of the `"__unknown"` list (not a known field's value).
    unknown: bool,
    /// A nested message of a known field.
    msg: bool,
    /// 1 + index in [`DirectEncoder::missing`] of the required fields that
    /// nested message lacks; 0 when it lacks none.
    missing: usize,
}

/// The state of one message being written.
struct Frame {
    ty: MsgId,
    desc: &'static MessageDesc,
    plan: Option<&'static Plan>,
    /// Where its bytes start in the output buffer.
    start: usize,
    /// Fields whose key was seen, by index modulo 128 as the message path
    /// counts them: indexes 0–63, then 64–127.
    seen: [u64; 2],
    /// Keys came in field-number order.
    sorted: bool,
    /// Number of the previous known key.
    last: u32,
    /// The records, once kept.
    recs: Option<Vec<Rec>>,
    /// The bytes must be put in record order at the end.
    dirty: bool,
    /// A nested message lacks required fields.
    child_missing: bool,
}

/// What the fast path made of a value.
enum Fast {
    /// Written.
    Done,
    /// Read but not written: convert it the message path's way.
    Value(Json),
    /// Nothing read: read it as a [`Json`] value and convert it.
    Skip,
}

/// What the tight loop keeps of a message: the first word of
/// [`Frame::seen`], [`Frame::last`], and the index of the field after the
/// previous key.
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    seen: u64,
    last: u32,
    hint: usize,
    /// The end of the object was taken.
    closed: bool,
}

/// What a key names.
enum Key {
    Field(usize, &'static FieldDesc),
    Unknown,
    Other,
}

/// Reusable buffers of the direct encoder.
pub struct DirectEncoder {
    /// The entry's wire bytes.
    out: Buf,
    /// Keys with escapes.
    key: Vec<u8>,
    /// Enum names and nice-mode integer texts.
    text: Vec<u8>,
    /// Missing required fields of nested messages (paths relative to them).
    missing: Vec<Vec<String>>,
    /// Record lists to reuse.
    pool: Vec<Vec<Rec>>,
    /// A message for values converted the message path's way.
    tmp: Message,
    /// Bytes being put in record order.
    reorder: Vec<u8>,
    /// The plans of the message types.
    plans: &'static [OnceLock<Plan>],
}

impl Default for DirectEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DirectEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> Self {
        DirectEncoder {
            out: Buf::new(),
            key: Vec::new(),
            text: Vec::new(),
            missing: Vec::new(),
            pool: Vec::new(),
            tmp: Message::new(MsgId(0)),
            reorder: Vec::new(),
            plans: plans(),
        }
    }

    /// Parse the next JSON value, an object, into the wire bytes of a
    /// message of type `ty`: the bytes, values and errors of
    /// [`super::map::message_from_parser`] followed by
    /// [`Message::encode`], with a
    /// [`MissingRequired`](ErrorKind::MissingRequired) error where the
    /// message lacks a required field (as encode refuses it).  The bytes
    /// are valid until the next call.
    pub fn message<R: Read>(&mut self, p: &mut Parser<R>, ty: MsgId) -> Result<&[u8]> {
        Ok(self.entry(p, ty, false)?.get(FRAME..).unwrap_or(&[]))
    }

    /// [`DirectEncoder::message`] for an entry of an image, with room for
    /// its size in front (for [`crate::image::ImageWriter::write_framed`]);
    /// `pagemap_entry` applies the reading of crit ≤ 4.1's pagemap JSON
    /// that encode applies (`nr_pages` without `compat_nr_pages` goes to
    /// field 2).
    #[inline]
    pub(crate) fn entry<R: Read>(&mut self, p: &mut Parser<R>, ty: MsgId, pagemap_entry: bool) -> Result<&mut [u8]> {
        self.out.clear();
        self.missing.clear();
        let r = match self.quick_object(p, ty, 0, pagemap_entry) {
            Some(r) => r,
            None => self.general_object(p, ty, 0, pagemap_entry),
        };
        match r.map_err(|e| *e)? {
            None => Ok(self.out.bytes_mut()),
            Some(fields) => Err(Error::new(ErrorKind::MissingRequired { message: ty.desc().name, fields })),
        }
    }

    /// The entries of type `ty` that come next and that the tight loop
    /// takes whole, as [`DirectEncoder::entry`] would write them (with
    /// `pagemap_entry` as there), one after another from the parser's
    /// buffer: their number, and their bytes, each entry framed (its size
    /// in front).  The parser is left after the last one's `}`.  None are
    /// taken (0) where the next entry is not one the loop takes whole:
    /// [`DirectEncoder::entry`] is for that one.
    pub(crate) fn entries<R: Read>(&mut self, p: &mut Parser<R>, ty: MsgId, pagemap_entry: bool) -> (usize, &[u8]) {
        let Some(pl) = plan_in(self.plans, ty).filter(|p| p.quick_any) else { return (0, &[]) };
        let n = quick_entries(p, pl, pagemap_entry, &mut self.out);
        (n, self.out.bytes())
    }

    /// One message: its bytes appended to `out`; the required fields it
    /// lacks (dotted paths), if any.
    fn object<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        ty: MsgId,
        depth: usize,
        legacy: bool,
    ) -> Res<Option<Vec<String>>> {
        if depth > wire::MAX_DEPTH {
            return Err(p.error("messages nested too deeply").into());
        }
        if let Some(r) = self.quick_object(p, ty, depth, legacy) {
            return r;
        }
        self.general_object(p, ty, depth, legacy)
    }

    /// [`DirectEncoder::object`] by the tight loop, from the `{` on, where
    /// the message starts as crit writes it (None, with nothing read,
    /// otherwise): the rest of the message, if any, goes to the general
    /// loop.
    #[inline(always)]
    fn quick_object<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        ty: MsgId,
        depth: usize,
        legacy: bool,
    ) -> Option<Res<Option<Vec<String>>>> {
        let plan = plan_in(self.plans, ty);
        let pl = plan.filter(|p| p.quick_any)?;
        let indent = quick_open(p)?;
        let start = self.out.len();
        let mut m = Marks::default();
        let handed = quick_run(p, &pl.slots, indent, &mut self.out, &mut m);
        if m.closed && pl.plain_end(m.seen, legacy) {
            return Some(Ok(None));
        }
        Some(self.quick_rest(p, ty, plan, start, m, handed, indent, depth, legacy))
    }

    /// The rest of a message the tight loop began.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn quick_rest<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        ty: MsgId,
        plan: Option<&'static Plan>,
        start: usize,
        m: Marks,
        handed: Option<(usize, &'static FieldDesc)>,
        indent: usize,
        depth: usize,
        legacy: bool,
    ) -> Res<Option<Vec<String>>> {
        let mut st = self.frame(ty, plan, start, m);
        if m.closed {
            return Ok(self.finish(&mut st, legacy));
        }
        self.fields(p, st, m.hint, handed, indent, depth, legacy)
    }

    /// [`DirectEncoder::object`] by the general loop, from the start.
    #[inline(never)]
    fn general_object<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        ty: MsgId,
        depth: usize,
        legacy: bool,
    ) -> Res<Option<Vec<String>>> {
        let plan = plan_in(self.plans, ty);
        let desc = ty.desc();
        if p.skip_ws()? != Some(b'{') {
            let v = p.value()?;
            return Err(Error::value(format!("expected an object for {}, found {}", desc.name, v.type_name())).into());
        }
        p.expect(b'{', "'{'")?;
        let start = self.out.len();
        if p.skip_ws()? == Some(b'}') {
            p.expect(b'}', "'}'")?;
            let mut st = self.frame(ty, plan, start, Marks::default());
            return Ok(self.finish(&mut st, legacy));
        }
        // Indented JSON: where the next keys start on their lines.
        let indent = p.column();
        let st = self.frame(ty, plan, start, Marks::default());
        self.fields(p, st, 0, None, indent, depth, legacy)
    }

    /// The state of a message of type `ty` whose bytes start at `start`,
    /// with the marks of the fields the tight loop took.
    fn frame(&mut self, ty: MsgId, plan: Option<&'static Plan>, start: usize, m: Marks) -> Frame {
        let desc = ty.desc();
        Frame {
            ty,
            desc,
            plan,
            start,
            seen: [m.seen, 0],
            sorted: true,
            last: m.last,
            // Field bits alias past 128 fields: keep records from the start.
            recs: (desc.fields.len() > 128).then(|| self.pool.pop().unwrap_or_default()),
            dirty: false,
            child_missing: false,
        }
    }

    /// The general loop over the keys of a message, from the start of a
    /// key (or, `handed`, after the key of that field), to the end of the
    /// message; the tight loop takes over where it can.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn fields<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        mut st: Frame,
        mut hint: usize,
        mut handed: Option<(usize, &'static FieldDesc)>,
        indent: usize,
        depth: usize,
        legacy: bool,
    ) -> Res<Option<Vec<String>>> {
        let desc = st.desc;
        let keys = st.plan.map(|p| &p.keys[..]).unwrap_or(&[]);
        let quick = st.plan.filter(|p| p.quick_any);
        loop {
            let key = match handed.take() {
                // The tight loop took the key.
                Some((idx, f)) => Key::Field(idx, f),
                None => {
                    // The key of the field after the previous one, matched in
                    // the buffer; any other key is read and looked up.
                    // (Fields left out in between are skipped.)
                    let rest = keys.get(hint..).unwrap_or(&[]);
                    let next = match p.key_among(indent, rest) {
                        Some(i) => Some(i),
                        // After other white space.
                        None if p.skip_ws()? == Some(b'"') => p.key_among(indent, rest),
                        None => None,
                    };
                    match next.and_then(|i| Some((hint + i, desc.fields.get(hint + i)?))) {
                        Some((idx, f)) => Key::Field(idx, f),
                        None => self.other_key(p, desc, hint)?,
                    }
                }
            };
            match key {
                Key::Field(idx, f) => {
                    hint = idx + 1;
                    let again = if idx < 64 {
                        let bit = 1u64 << idx;
                        let was = st.seen[0] & bit != 0;
                        st.seen[0] |= bit;
                        was
                    } else {
                        see(&mut st.seen, idx) || idx >= 128
                    };
                    if again || f.number < st.last {
                        self.out_of_order(&mut st, f.number, again);
                    }
                    st.last = f.number;
                    self.field(p, f, depth, &mut st).map_err(|e| Box::new(locate(*e, p).in_field(f.name)))?;
                }
                Key::Unknown => self.unknown_key(p, &mut st)?,
                Key::Other => {
                    p.value()?;
                }
            }
            if !p.next_or_close(b'}')? {
                break;
            }
            if let Some(plan) = quick {
                if st.recs.is_none() {
                    let mut m = Marks { seen: st.seen[0], last: st.last, hint, closed: false };
                    handed = quick_run(p, &plan.slots, indent, &mut self.out, &mut m);
                    st.seen[0] = m.seen;
                    st.last = m.last;
                    hint = m.hint;
                    if m.closed {
                        break;
                    }
                }
            }
        }
        Ok(self.finish(&mut st, legacy))
    }

    /// A key other than the next fields', read and looked up.
    #[cold]
    #[inline(never)]
    fn other_key<R: Read>(&mut self, p: &mut Parser<R>, desc: &'static MessageDesc, hint: usize) -> Res<Key> {
        Ok(p.key_with(&mut self.key, |k| lookup(desc, hint, k))?)
    }

    /// The value of the `"__unknown"` key.
    #[cold]
    #[inline(never)]
    fn unknown_key<R: Read>(&mut self, p: &mut Parser<R>, st: &mut Frame) -> Res<()> {
        let v = p.value()?;
        self.unknown(st, &v).map_err(|e| Box::new(locate(e, p).in_field(UNKNOWN_KEY)))
    }

    /// A key given again (`again`: the last one counts) or out of number
    /// order: the message keeps records from now on.
    #[cold]
    fn out_of_order(&mut self, st: &mut Frame, number: u32, again: bool) {
        self.records(st);
        if again {
            if let Some(recs) = st.recs.as_mut() {
                recs.retain(|r| r.number != number);
            }
        }
        if number < st.last {
            st.sorted = false;
        }
        st.dirty = true;
    }

    #[inline]
    fn field<R: Read>(&mut self, p: &mut Parser<R>, f: &'static FieldDesc, depth: usize, st: &mut Frame) -> Res<()> {
        match (f.label, f.ty) {
            (Label::Repeated, Type::Message(sub)) => self.messages(p, f, sub, depth, st),
            (_, Type::Message(sub)) => self.nested(p, f, sub, depth, st),
            (Label::Repeated, _) => self.list(p, f, depth, st),
            (_, ty) => {
                let start = self.out.len();
                if self.varint(p, f.number, ty)? {
                    note(st, f.number, start, self.out.len());
                    return Ok(());
                }
                self.scalar(p, f, depth, st)
            }
        }
    }

    /// The most common value: a plain non-negative integer for a field
    /// written as a varint, in range.  False, with nothing read, otherwise.
    #[inline(always)]
    fn varint<R: Read>(&mut self, p: &mut Parser<R>, number: u32, ty: Type) -> Res<bool> {
        let (max, zigzag) = varint_kind(ty);
        if max == 0 {
            return Ok(false);
        }
        // Right after `"key": ` or `[`, `, ` as crit writes them; else (other
        // white space, or not a plain number) the general path reads it.
        match p.uint_fast(max) {
            Some(v) => {
                // The zigzag form of a non-negative number is twice it.
                self.out.varint(number, if zigzag { v << 1 } else { v });
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A repeated message field.
    fn messages<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        f: &'static FieldDesc,
        sub: MsgId,
        depth: usize,
        st: &mut Frame,
    ) -> Res<()> {
        if p.skip_ws()? != Some(b'[') {
            let v = p.value()?;
            return Err(Error::value(format!("expected a list, found {}", v.type_name())).into());
        }
        p.expect(b'[', "'['")?;
        if p.skip_ws()? == Some(b']') {
            return Ok(p.expect(b']', "']'")?);
        }
        let mut i = 0;
        loop {
            self.nested(p, f, sub, depth, st).map_err(|e| Box::new(e.in_index(i)))?;
            i += 1;
            if !p.next_or_close(b']')? {
                return Ok(());
            }
        }
    }

    /// A singular scalar field other than [`DirectEncoder::varint`]'s.
    fn scalar<R: Read>(&mut self, p: &mut Parser<R>, f: &'static FieldDesc, depth: usize, st: &mut Frame) -> Res<()> {
        let start = self.out.len();
        match self.fast(p, f)? {
            Fast::Done => {
                note(st, f.number, start, self.out.len());
                Ok(())
            }
            Fast::Value(v) => {
                let r = self.converted(f, &v, depth, st);
                self.reclaim(v);
                r
            }
            Fast::Skip => {
                let v = p.value()?;
                self.converted(f, &v, depth, st)
            }
        }
    }

    /// A nested message as the value of field `f`.
    fn nested<R: Read>(
        &mut self,
        p: &mut Parser<R>,
        f: &'static FieldDesc,
        sub: MsgId,
        depth: usize,
        st: &mut Frame,
    ) -> Res<()> {
        let start = self.out.len();
        let len_at = self.out.open_len(f.number);
        let missing = self.object(p, sub, depth + 1, false)?;
        self.out.close_len(len_at);
        let end = self.out.len();
        let Some(list) = missing else {
            if let Some(recs) = st.recs.as_mut() {
                recs.push(Rec { number: f.number, start, end, unknown: false, msg: true, missing: 0 });
            }
            return Ok(());
        };
        self.missing.push(list);
        let mi = self.missing.len();
        st.child_missing = true;
        if st.recs.is_none() {
            // The records made from the bytes end with this message.
            self.records(st);
            if let Some(r) = st.recs.as_mut().and_then(|r| r.last_mut()) {
                r.missing = mi;
            }
        } else if let Some(recs) = st.recs.as_mut() {
            recs.push(Rec { number: f.number, start, end, unknown: false, msg: true, missing: mi });
        }
        Ok(())
    }

    /// A repeated scalar field: a list read item by item; from the first
    /// item the fast path does not write, the rest are read as values and
    /// converted after the list, as the message path converts them.
    fn list<R: Read>(&mut self, p: &mut Parser<R>, f: &'static FieldDesc, depth: usize, st: &mut Frame) -> Res<()> {
        if f.opts.ipadd || p.skip_ws()? != Some(b'[') {
            let v = p.value()?;
            return self.converted(f, &v, depth, st);
        }
        p.expect(b'[', "'['")?;
        if p.skip_ws()? == Some(b']') {
            return Ok(p.expect(b']', "']'")?);
        }
        let mut n = 0usize;
        let mut rest: Vec<Json> = Vec::new();
        let indent = p.column();
        loop {
            if rest.is_empty() {
                let start = self.out.len();
                if !p.newline_indent(indent) {
                    p.skip_ws()?;
                }
                if self.varint(p, f.number, f.ty)? {
                    note(st, f.number, start, self.out.len());
                } else {
                    match self.fast(p, f)? {
                        Fast::Done => note(st, f.number, start, self.out.len()),
                        Fast::Value(v) => rest.push(v),
                        // The items of a list value are read at depth 1.
                        Fast::Skip => rest.push(p.value_at(1)?),
                    }
                }
            } else {
                rest.push(p.value_at(1)?);
            }
            n += 1;
            if !p.next_or_close(b']')? {
                break;
            }
        }
        let first = n - rest.len();
        for (k, item) in rest.iter().enumerate() {
            let v = scalar_or_msg(f, item, depth).map_err(|e| e.in_index(first + k))?;
            let mut m = std::mem::replace(&mut self.tmp, Message::new(st.ty));
            m.ty = st.ty;
            m.fields.clear();
            m.fields.push((f.number, v));
            self.put_values(st, &mut m);
            self.tmp = m;
        }
        Ok(())
    }

    /// Write a value of field `f` the fast way where it can.
    #[inline]
    fn fast<R: Read>(&mut self, p: &mut Parser<R>, f: &'static FieldDesc) -> Res<Fast> {
        let Some(b) = p.skip_ws()? else { return Ok(Fast::Skip) };
        let out = &mut self.out;
        Ok(match f.ty {
            Type::String if b == b'"' => {
                let len_at = out.open_len(f.number);
                p.string_with(&mut self.text, |s| out.put_slice(s))?;
                out.close_len(len_at);
                Fast::Done
            }
            Type::Enum(e) => match b {
                b'"' => {
                    // The number of the first value of that name.
                    let values = e.desc().values;
                    let found = p.string_with(&mut self.text, |name| {
                        values.iter().find(|v| same(v.0.as_bytes(), name)).map(|v| v.1).ok_or_else(|| name.to_vec())
                    })?;
                    match found {
                        Ok(v) => {
                            out.varint(f.number, v as i64 as u64);
                            Fast::Done
                        }
                        Err(name) => Fast::Value(Json::Str(name)),
                    }
                }
                b'-' | b'0'..=b'9' => match p.int_fast() {
                    Some((neg, mag)) => {
                        let n = signed(neg, mag);
                        match i32::try_from(n) {
                            Ok(v) => {
                                out.varint(f.number, v as i64 as u64);
                                Fast::Done
                            }
                            Err(_) => Fast::Value(Json::Int(n)),
                        }
                    }
                    None => Fast::Skip,
                },
                _ => Fast::Skip,
            },
            ty if ty.is_integer() => match b {
                b'0'..=b'9' if varint_kind(ty).0 > 0 => match p.int_fast() {
                    // The common case: a varint of a non-negative number.
                    Some((_, v)) if v <= varint_kind(ty).0 => {
                        out.varint(f.number, if varint_kind(ty).1 { v << 1 } else { v });
                        Fast::Done
                    }
                    Some((neg, mag)) => Fast::Value(Json::Int(signed(neg, mag))),
                    None => Fast::Skip,
                },
                b'-' | b'0'..=b'9' => match p.int_fast() {
                    Some((neg, mag)) => {
                        let n = signed(neg, mag);
                        if put_int(out, f.number, ty, n) {
                            Fast::Done
                        } else {
                            Fast::Value(Json::Int(n))
                        }
                    }
                    None => Fast::Skip,
                },
                b'"' if !f.opts.dev => {
                    // Hex, as nice mode writes it, from the buffer.
                    let hex = p.hex_fast();
                    let n = match hex {
                        Some(v) => Ok(v as i128),
                        None => p.string_with(&mut self.text, |text| nice_int(f, text).ok_or_else(|| text.to_vec()))?,
                    };
                    let (max, zigzag) = varint_kind(ty);
                    match n {
                        Ok(n) if max > 0 && (0..=max as i128).contains(&n) => {
                            out.varint(f.number, if zigzag { (n as u64) << 1 } else { n as u64 });
                            Fast::Done
                        }
                        Ok(n) if put_int(out, f.number, ty, n) => Fast::Done,
                        // Out of range: the message path's error.
                        Ok(n) => Fast::Value(Json::Int(n)),
                        Err(text) => Fast::Value(Json::Str(text)),
                    }
                }
                _ => Fast::Skip,
            },
            _ => Fast::Skip,
        })
    }

    /// Give a text buffer lent to a [`Json`] value back.
    fn reclaim(&mut self, v: Json) {
        if let Json::Str(b) = v {
            if b.capacity() >= self.text.capacity() {
                self.text = b;
            }
        }
    }

    /// Convert a value of field `f` as the message path does and write the
    /// values it makes.
    fn converted(&mut self, f: &'static FieldDesc, v: &Json, depth: usize, st: &mut Frame) -> Res<()> {
        let mut m = std::mem::replace(&mut self.tmp, Message::new(st.ty));
        m.ty = st.ty;
        m.fields.clear();
        let r = field_from_json(&mut m, f, v, depth);
        if r.is_ok() {
            self.put_values(st, &mut m);
        }
        self.tmp = m;
        Ok(r?)
    }

    /// Write the values of `m` (of the frame's type), one record each.
    fn put_values(&mut self, st: &mut Frame, m: &mut Message) {
        let Some(recs) = st.recs.as_mut() else {
            self.out.with_vec(|v| m.encode(v));
            return;
        };
        let all = std::mem::take(&mut m.fields);
        for (number, v) in all {
            let start = self.out.len();
            m.fields.clear();
            m.fields.push((number, v));
            self.out.with_vec(|v| m.encode(v));
            recs.push(Rec { number, start, end: self.out.len(), unknown: false, msg: false, missing: 0 });
        }
        m.fields.clear();
    }

    /// The `"__unknown"` list: each value inserted where the message path
    /// inserts it (after the fields numbered up to its number).
    fn unknown(&mut self, st: &mut Frame, v: &Json) -> Result<()> {
        self.records(st);
        st.dirty = true;
        let Some(recs) = st.recs.as_mut() else { return Ok(()) };
        let out = &mut self.out;
        let mut one = Message::new(st.ty);
        unknown_fields(v, |number, u| {
            let start = out.len();
            one.fields.clear();
            one.fields.push((number, Value::Unknown(u)));
            out.with_vec(|v| one.encode(v));
            let at = recs.partition_point(|r| r.number <= number);
            recs.insert(at, Rec { number, start, end: out.len(), unknown: true, msg: false, missing: 0 });
        })
    }

    /// Start keeping records: one per value written so far, read back from
    /// the bytes (each value is one wire field).
    fn records(&mut self, st: &mut Frame) {
        if st.recs.is_some() {
            return;
        }
        let mut recs = self.pool.pop().unwrap_or_default();
        recs.clear();
        let bytes = self.out.bytes().get(st.start..).unwrap_or(&[]);
        let mut pos = 0usize;
        while pos < bytes.len() {
            let start = pos;
            let Some(key) = wire::read_varint(bytes, &mut pos) else { break };
            let number = (key >> 3) as u32;
            let ok = match key & 7 {
                0 => wire::read_varint(bytes, &mut pos).is_some(),
                1 => {
                    pos += 8;
                    true
                }
                5 => {
                    pos += 4;
                    true
                }
                2 => match wire::read_varint(bytes, &mut pos) {
                    Some(n) => {
                        pos = pos.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                        true
                    }
                    None => false,
                },
                _ => false,
            };
            if !ok {
                break;
            }
            let pos_end = pos.min(bytes.len());
            let msg = matches!(field_of(st.desc, number).map(|f| f.ty), Some(Type::Message(_)));
            recs.push(Rec {
                number,
                start: st.start + start,
                end: st.start + pos_end,
                unknown: false,
                msg,
                missing: 0,
            });
        }
        st.recs = Some(recs);
    }

    /// End a message: its bytes in order, the pagemap rule applied; the
    /// required fields it lacks.
    #[inline]
    fn finish(&mut self, st: &mut Frame, legacy: bool) -> Option<Vec<String>> {
        let plan = st.plan;
        // The old pagemap form: nr_pages without compat_nr_pages.
        let legacy =
            legacy && plan.and_then(|p| p.legacy).is_some_and(|(c, n)| !Self::present(st, c) && Self::present(st, n));
        if !st.dirty && !legacy && !st.child_missing && st.recs.is_none() && st.desc.fields.len() <= 64 {
            let required = plan.map_or(0, |p| p.required);
            if required & !st.seen[0] == 0 {
                return None;
            }
        }
        self.finish_slow(st, legacy)
    }

    #[cold]
    fn finish_slow(&mut self, st: &mut Frame, legacy: bool) -> Option<Vec<String>> {
        if st.dirty && !st.sorted {
            if let Some(recs) = st.recs.as_mut() {
                // Stable, as the message path's sort.
                recs.sort_by_key(|r| r.number);
            }
        }
        if legacy {
            self.legacy_pagemap(st);
        }
        if st.dirty {
            if let Some(recs) = st.recs.as_ref() {
                self.reorder.clear();
                for r in recs {
                    self.reorder.extend_from_slice(self.out.bytes().get(r.start..r.end).unwrap_or(&[]));
                }
                self.out.truncate(st.start);
                self.out.put_slice(&self.reorder);
            }
        }
        let missing = self.missing_of(st);
        if let Some(mut recs) = st.recs.take() {
            recs.clear();
            self.pool.push(recs);
        }
        missing
    }

    /// Whether field `idx` of the message has a (known) value.
    fn present(st: &Frame, idx: usize) -> bool {
        if st.desc.fields.len() <= 128 {
            return seen(&st.seen, idx);
        }
        let Some(f) = st.desc.fields.get(idx) else { return false };
        st.recs.as_ref().is_some_and(|recs| recs.iter().any(|r| r.number == f.number && !r.unknown))
    }

    /// crit ≤ 4.1 called pagemap field 2 `nr_pages`: JSON with `nr_pages`
    /// and no `compat_nr_pages` has its count moved to field 2, as
    /// `transcode` does on the message path (the same steps, on records).
    fn legacy_pagemap(&mut self, st: &mut Frame) {
        let desc = st.desc;
        let (Some((ci, compat)), Some((ni, nr))) =
            (desc.field_by_name("compat_nr_pages"), desc.field_by_name("nr_pages"))
        else {
            return;
        };
        if Self::present(st, ci) || !Self::present(st, ni) {
            return;
        }
        self.records(st);
        let Some(recs) = st.recs.as_mut() else { return };
        let Some(r) = recs.iter().rev().find(|r| r.number == nr.number && !r.unknown) else { return };
        // The value as the message path holds it.
        let value = self
            .out
            .bytes()
            .get(r.start..r.end)
            .and_then(|b| Message::decode(st.ty, b).ok())
            .and_then(|m| m.u64(nr.name));
        let Some(n32) = value.and_then(|n| u32::try_from(n).ok()) else { return };
        let start = self.out.len();
        let one = Message { ty: st.ty, fields: vec![(compat.number, Value::Uint(n32 as u64))] };
        self.out.with_vec(|v| one.encode(v));
        recs.retain(|r| r.number != compat.number || r.unknown);
        let at = recs.partition_point(|r| r.number <= compat.number);
        recs.insert(
            at,
            Rec { number: compat.number, start, end: self.out.len(), unknown: false, msg: false, missing: 0 },
        );
        recs.retain(|r| r.number != nr.number);
        see(&mut st.seen, ci);
        unsee(&mut st.seen, ni);
        st.dirty = true;
    }

    /// The required fields a finished message lacks, as dotted paths: its
    /// own first, then those of its nested messages in field order.
    fn missing_of(&mut self, st: &Frame) -> Option<Vec<String>> {
        let desc = st.desc;
        let own = if desc.fields.len() <= 64 {
            plan(st.ty).map_or(0, |p| p.required) & !st.seen[0] != 0
        } else {
            desc.fields.iter().enumerate().any(|(i, f)| f.label == Label::Required && !Self::present(st, i))
        };
        if !own && !st.child_missing {
            return None;
        }
        let mut list = Vec::new();
        for (i, f) in desc.fields.iter().enumerate() {
            if f.label == Label::Required && !Self::present(st, i) {
                list.push(f.name.to_string());
            }
        }
        if st.child_missing {
            let mut counts: Vec<(u32, usize)> = Vec::new();
            for r in st.recs.iter().flatten().filter(|r| r.msg) {
                let Some(f) = field_of(desc, r.number) else { continue };
                let count = match counts.iter_mut().find(|(n, _)| *n == r.number) {
                    Some(c) => {
                        c.1 += 1;
                        c.1 - 1
                    }
                    None => {
                        counts.push((r.number, 1));
                        0
                    }
                };
                let Some(sub) = r.missing.checked_sub(1).and_then(|i| self.missing.get_mut(i)) else { continue };
                let prefix =
                    if f.label == Label::Repeated { format!("{}[{count}].", f.name) } else { format!("{}.", f.name) };
                list.extend(sub.drain(..).map(|s| format!("{prefix}{s}")));
            }
        }
        if list.is_empty() {
            None
        } else {
            Some(list)
        }
    }
}

/// What key `k` names in `desc`, trying field `hint` first.
#[inline]
fn lookup(desc: &'static MessageDesc, hint: usize, k: &[u8]) -> Key {
    if let Some(f) = desc.fields.get(hint) {
        if same(f.name.as_bytes(), k) {
            return Key::Field(hint, f);
        }
    }
    match desc.fields.iter().enumerate().find(|(_, f)| same(f.name.as_bytes(), k)) {
        Some((i, f)) => Key::Field(i, f),
        None if k == UNKNOWN_KEY.as_bytes() => Key::Unknown,
        None => Key::Other,
    }
}

/// Byte strings equal (short ones compared inline, a word at a time).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some((wa, ra)), Some((wb, rb))) = (a.split_first_chunk::<8>(), b.split_first_chunk::<8>()) {
        if wa != wb {
            return false;
        }
        a = ra;
        b = rb;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The start of a message as crit writes it: `{` (after nothing, a
/// space, or a newline and spaces) and its first key's `"` (right after
/// it, after a space, or on the next line): the `{` and the white space
/// taken, and the column of the key (where the message's keys start on
/// their lines) returned.  None, with nothing taken, for any other start
/// (other white space, `{}`, not an object, the end of the buffer): the
/// general path reads it.
#[inline(always)]
fn quick_open<R: Read>(p: &mut Parser<R>) -> Option<usize> {
    let o = open_at(p.buffered(), 0, p.column())?;
    p.consume_scanned(o.key, o.lines, o.line_at);
    Some(o.indent)
}

/// Where [`open_at`] found a message's first key.
struct Opened {
    /// The offset of the key's `"`.
    key: usize,
    /// The key's column.
    indent: usize,
    /// Newlines passed, and the offset after the last one (where no
    /// newline was passed: any).
    lines: u64,
    line_at: usize,
}

/// [`quick_open`] on the bytes `b` from offset `at`, whose column is
/// `col`; offsets are those of `b`.
#[inline(always)]
fn open_at(b: &[u8], at: usize, col: usize) -> Option<Opened> {
    let (brace, brace_col, nl_before) = token_at(b, at, col, b'{')?;
    let after = brace + 1;
    let (key, indent, nl_after) = token_at(b, after, brace_col + 1, b'"')?;
    let line_at = if nl_after { after + 1 } else { at + 1 };
    Some(Opened { key, indent, lines: nl_before as u64 + nl_after as u64, line_at })
}

/// The byte `want` at offset `at` of `b` (whose column is `col`), after
/// nothing, a space, or a newline and spaces: its offset, its column, and
/// whether a newline came before it.
#[inline(always)]
fn token_at(b: &[u8], at: usize, col: usize, want: u8) -> Option<(usize, usize, bool)> {
    match *b.get(at)? {
        c if c == want => Some((at, col, false)),
        b' ' if b.get(at + 1) == Some(&want) => Some((at + 1, col + 1, false)),
        b'\n' => {
            let k = leading_spaces(b.get(at + 1..)?);
            (b.get(at + 1 + k) == Some(&want)).then_some((at + 1 + k, k, true))
        }
        _ => None,
    }
}

/// The tight loop over the buffered bytes, from the start of a key: the
/// fields that come as crit writes them (the key matched as
/// [`Parser::key_among`] matches keys, of a [`Quick`] field not seen
/// before and in number order; a plain non-negative integer in range, or
/// a `"0x…"` text where the message path reads one; then `,` or the end of
/// the object, after white space or not), written to `out` as the general
/// loop writes them, with the same marks (`m`).  It stops at the first
/// field that comes otherwise: after its key if it matched one (returned:
/// its value is for the general loop to read), else before it, with
/// nothing of it taken; or after the end of the object (`m.closed`).
///
/// The hottest path, a field right after the previous one in raw JSON,
/// matches `, "name": ` (the separator and the key) in one go.
#[inline(never)]
fn quick_run<R: Read>(
    p: &mut Parser<R>,
    slots: &[Slot],
    indent: usize,
    out: &mut Buf,
    m: &mut Marks,
) -> Option<(usize, &'static FieldDesc)> {
    // Room for every field it can write (each at most once).
    let room = 16 * slots.len();
    if out.v.len() < out.len + room + Buf::SLACK {
        out.grow(room);
    }
    let mut s = Scan { pos: 0, lines: 0, line_at: 0, o: out.len };
    let handed = scan_fields(p.buffered(), &mut s, slots, indent, &mut out.v, m);
    out.len = s.o;
    p.consume_scanned(s.pos, s.lines, s.line_at);
    handed
}

/// Where the tight loop is: the offset in the buffered bytes, the
/// newlines passed (the last one right before offset `line_at`), and the
/// end of what it wrote.
#[derive(Clone, Copy)]
struct Scan {
    pos: usize,
    lines: u64,
    line_at: usize,
    o: usize,
}

/// The loop of [`quick_run`] over the bytes `b` from offset `s.pos` (the
/// start of a key), writing into `dst` from offset `s.o`, where there is
/// room for every field of `slots` and the slack (`room` bytes, which a
/// text longer than its share leaves there: it is handed over where it
/// cannot): `s` is left where it stopped.
#[inline(always)]
fn scan_fields(
    b: &[u8],
    s: &mut Scan,
    slots: &[Slot],
    indent: usize,
    dst: &mut [u8],
    m: &mut Marks,
) -> Option<(usize, &'static FieldDesc)> {
    let room = 16 * slots.len() + Buf::SLACK;
    let mut pos = s.pos;
    let mut lines = s.lines;
    let mut line_at = s.line_at;
    let mut handed = None;
    // The keys taken are of fields from `m.hint` on, which (the fields
    // sorted by number, and all seen ones before `m.hint` while no key
    // came out of order) are after the previous key's in number order.
    let mut bits = m.seen;
    let mut o = s.o;
    // At the start of a key: after nothing, a space, or a newline and the
    // indent.
    'keys: while let Some(rest) = b.get(pos..) {
        let (skip, newline) = match rest.first() {
            Some(b'"') => (0, false),
            Some(b' ') => (1, false),
            Some(b'\n') if rest.get(1..).is_some_and(|r| leading_spaces(r) == indent) => (1 + indent, true),
            _ => break,
        };
        let Some(head) = rest.get(skip..).and_then(|r| r.first_chunk::<40>()) else { break };
        // The next field's key, else one of the next few.
        let h = m.hint;
        let (mut cur, mut slot) = match slots.get(h) {
            Some(s) if s.key.matches(head) => (h, s),
            _ => match slots.iter().enumerate().skip(h + 1).take(7).find(|(_, s)| s.key.matches(head)) {
                Some(x) => x,
                None => break,
            },
        };
        if newline {
            lines += 1;
            line_at = pos + 1;
        }
        // Where the value starts.
        let mut vpos = pos + skip + slot.key.len();
        loop {
            let q = &slot.q;
            // The value's length, where its bytes end in `dst`, and how many
            // bytes after it end the object (0: a `,` follows); None to
            // hand the field over.  (Bytes written past `o` count only
            // once the field is taken.)
            let taken = 'value: {
                // Not a field the loop writes, or one seen already.
                if !bits & q.bit == 0 {
                    break 'value None;
                }
                let (n, end) = if q.text.is_some() {
                    match put_text(b.get(vpos..).unwrap_or(&[]), q, dst, o, room) {
                        Some(x) => x,
                        None => break 'value None,
                    }
                } else {
                    let Some(v) = b.get(vpos..).and_then(|r| r.first_chunk::<24>()) else { break 'value None };
                    let parsed = if v[0] == b'"' && q.hex { hex_at(v) } else { uint_at(v) };
                    let Some((val, n)) = parsed else { break 'value None };
                    if val > q.max {
                        break 'value None;
                    }
                    let Some(d) = dst.get_mut(o..).and_then(|d| d.first_chunk_mut::<16>()) else { break 'value None };
                    (n, o + put_varint(d, q, if q.zigzag { val << 1 } else { val }))
                };
                match b.get(vpos + n) {
                    Some(b',') => Some((n, end, 0)),
                    Some(b'}') => Some((n, end, 1)),
                    Some(b'\n') => {
                        let tail = b.get(vpos + n + 1..).unwrap_or(&[]);
                        let k = leading_spaces(tail);
                        (tail.get(k) == Some(&b'}')).then_some((n, end, 2 + k))
                    }
                    _ => None,
                }
            };
            let Some((n, end, close)) = taken else {
                // The general loop reads the value.
                pos = vpos;
                handed = Some((cur, slot.f));
                break 'keys;
            };
            o = end;
            bits |= q.bit;
            m.last = q.number;
            m.hint = cur + 1;
            // Where the `,` or the end is.
            let t = vpos + n;
            if close > 0 {
                if close > 1 {
                    lines += 1;
                    line_at = t + 1;
                }
                pos = t + close;
                m.closed = true;
                break 'keys;
            }
            // The separator and the next field's key, as raw JSON has them
            // (or the one after: one left out).
            pos = t + 1;
            let Some(head) = b.get(t..).and_then(|r| r.first_chunk::<40>()) else { continue 'keys };
            let h = m.hint;
            (cur, slot) = match slots.get(h) {
                Some(s) if s.sep.matches(head) => (h, s),
                _ => match slots.get(h + 1) {
                    Some(s) if s.sep.matches(head) => (h + 1, s),
                    _ => continue 'keys,
                },
            };
            vpos = t + slot.sep.len();
        }
    }
    m.seen = bits;
    *s = Scan { pos, lines, line_at, o };
    handed
}

/// The key of field `q` and the varint `v` into `d`, as `Buf::varint`
/// writes them (a value of one byte with its key in one store): the
/// bytes written.
#[inline(always)]
fn put_varint(d: &mut [u8; 16], q: &Quick, v: u64) -> usize {
    let Some(t) = d.first_chunk_mut::<8>() else { return 0 };
    if v < 0x80 {
        *t = (q.tag | v << q.tag_bits).to_le_bytes();
        q.tag_len + 1
    } else {
        *t = q.tag.to_le_bytes();
        varint_to(d, q.tag_len, v)
    }
}

/// A text value of field `q` at the start of `rest`, as [`DirectEncoder`]'s
/// general loop writes it (its `fast` path), where it is a plain one: `"`,
/// ASCII other than `"`, `\` and control characters, `"`.  A string goes in as its
/// bytes, an enum's name as the number of the first value of that name.
/// Written into `dst` from `o` if, after it, `room` bytes are left there:
/// the length of the value's text and the end of what was written.  None
/// for any other text, a name the enum does not have, or no room.
#[inline(always)]
fn put_text(rest: &[u8], q: &Quick, dst: &mut [u8], o: usize, room: usize) -> Option<(usize, usize)> {
    let body = rest.strip_prefix(b"\"")?;
    let len = plain_text_len(body)?;
    let text = body.get(..len)?;
    match q.text? {
        Text::String => {
            // Key, length (up to 5 bytes), bytes.
            let d = dst.get_mut(o..)?;
            if d.len() < 16 + len + room {
                return None;
            }
            let w = put_varint(d.first_chunk_mut::<16>()?, q, len as u64);
            d.get_mut(w..w + len)?.copy_from_slice(text);
            Some((len + 2, o + w + len))
        }
        Text::Enum(e) => {
            let v = e.desc().values.iter().find(|v| same(v.0.as_bytes(), text))?.1;
            let d = dst.get_mut(o..).and_then(|d| d.first_chunk_mut::<16>())?;
            Some((len + 2, o + put_varint(d, q, v as i64 as u64)))
        }
    }
}

/// The entries (of the type of `pl`; `legacy` as for
/// [`Plan::plain_end`]) that the tight loop takes whole, from the start of
/// the parser's buffered bytes: each opened as [`quick_open`] opens a
/// message, its fields all taken by [`scan_fields`] up to its `}`, and
/// finished as it is ([`Plan::plain_end`]); the next one after a `,`.
/// They are written to `out` (from its start), each framed: its size in
/// 4 bytes, then its bytes.  Stops before the first entry that comes
/// otherwise, with nothing of it taken or written (nor the `,` before
/// it): the parser is left after the last entry's `}`.  Returns the
/// number of entries taken.
#[inline(never)]
fn quick_entries<R: Read>(p: &mut Parser<R>, pl: &Plan, legacy: bool, out: &mut Buf) -> usize {
    let room = FRAME + 16 * pl.slots.len() + Buf::SLACK;
    let col = p.column();
    let b = p.buffered();
    let mut s = Scan { pos: 0, lines: 0, line_at: 0, o: 0 };
    // Where the last entry taken ends, and the number taken.
    let mut done = s;
    let mut n = 0;
    loop {
        let col = if s.lines > 0 { s.pos - s.line_at } else { col + s.pos };
        let Some(open) = open_at(b, s.pos, col) else { break };
        if open.lines > 0 {
            s.lines += open.lines;
            s.line_at = open.line_at;
        }
        s.pos = open.key;
        if out.v.len() < s.o + room {
            out.grow(room);
        }
        let frame = s.o;
        s.o += FRAME;
        let mut m = Marks::default();
        let handed = scan_fields(b, &mut s, &pl.slots, open.indent, &mut out.v, &mut m);
        if handed.is_some() || !m.closed || !pl.plain_end(m.seen, legacy) {
            break;
        }
        let size = (s.o - frame - FRAME) as u32;
        if let Some(d) = out.v.get_mut(frame..frame + FRAME) {
            d.copy_from_slice(&size.to_le_bytes());
        }
        n += 1;
        done = s;
        if b.get(s.pos) != Some(&b',') {
            break;
        }
        s.pos += 1;
    }
    out.len = done.o;
    p.consume_scanned(done.pos, done.lines, done.line_at);
    n
}

fn field_of(desc: &'static MessageDesc, number: u32) -> Option<&'static FieldDesc> {
    desc.field_index(number).and_then(|i| desc.fields.get(i))
}

/// Note a value just written, when the message keeps records.
#[inline(always)]
fn note(st: &mut Frame, number: u32, start: usize, end: usize) {
    if let Some(recs) = st.recs.as_mut() {
        recs.push(Rec { number, start, end, unknown: false, msg: false, missing: 0 });
    }
}

/// What the walk needs of each message type, made once: the key patterns
/// of its fields, and the bits of its required fields (by index, for
/// messages of up to 64 fields).
struct Plan {
    keys: Vec<KeyPattern>,
    required: u64,
    /// Indexes of `compat_nr_pages` and `nr_pages` (pagemap entries).
    legacy: Option<(usize, usize)>,
    /// Per field, what [`quick_run`] needs.
    slots: Vec<Slot>,
    /// Some field is one [`quick_run`] writes.
    quick_any: bool,
    /// [`Plan::plain_end`] can tell: at most 64 fields (their marks all in
    /// the first word of [`Frame::seen`]), `legacy`'s among them.
    small: bool,
    /// The bits of `legacy`'s fields (`compat_nr_pages` and `nr_pages`),
    /// and of the second alone: the old pagemap form is `nr_pages` without
    /// `compat_nr_pages`.  (0 and 1, never matched, without them.)
    legacy_mask: u64,
    legacy_form: u64,
}

impl Plan {
    /// Whether a message whose keys all came in order (no records) with
    /// the fields `seen` is finished as it is: no required field missing
    /// and (`legacy`: a pagemap entry) not in crit ≤ 4.1's form, as
    /// [`DirectEncoder::finish`] finds.  False when it cannot tell.
    #[inline(always)]
    fn plain_end(&self, seen: u64, legacy: bool) -> bool {
        let old_pagemap = legacy && seen & self.legacy_mask == self.legacy_form;
        self.small && self.required & !seen == 0 && !old_pagemap
    }
}

/// A field as [`quick_run`] sees it.
struct Slot {
    f: &'static FieldDesc,
    /// `"name": `.
    key: KeyPattern,
    /// `, "name": `.
    sep: KeyPattern,
    q: Quick,
}

/// A field as the tight loop sees it: a singular integer field (of the
/// first 64) whose non-negative values are written as varints.
#[derive(Clone, Copy, Debug, Default)]
struct Quick {
    /// The field's bit in [`Frame::seen`]; 0 for a field the loop leaves
    /// to the general one.
    bit: u64,
    number: u32,
    /// The field's wire key (wire type 0), as varint bytes, little-endian.
    tag: u64,
    /// Bytes of `tag` (at most 5), and as bits.
    tag_len: usize,
    tag_bits: u32,
    /// The largest value, and whether it is written in zigzag form.
    max: u64,
    zigzag: bool,
    /// A `"0x…"` text is read as its value (not for devices).
    hex: bool,
    /// The value is a text: a string's bytes, or an enum's name (the key
    /// in `tag` then has the string's wire type).
    text: Option<Text>,
}

/// The text values [`put_text`] takes.
#[derive(Clone, Copy, Debug)]
enum Text {
    String,
    Enum(crate::schema::EnumId),
}

impl Quick {
    fn of(idx: usize, f: &'static FieldDesc) -> Quick {
        let (max, zigzag) = varint_kind(f.ty);
        let text = match f.ty {
            Type::String => Some(Text::String),
            Type::Enum(e) => Some(Text::Enum(e)),
            _ => None,
        };
        if idx >= 64 || (max == 0 && text.is_none()) || f.label == Label::Repeated {
            return Quick::default();
        }
        let wire_type = matches!(text, Some(Text::String)) as u64 * 2;
        let mut b = [0u8; 16];
        let tag_len = varint_into(&mut b, 0, (f.number as u64) << 3 | wire_type);
        let mut w = [0u8; 8];
        for (x, y) in w.iter_mut().zip(&b) {
            *x = *y;
        }
        Quick {
            bit: 1u64 << idx,
            number: f.number,
            tag: u64::from_le_bytes(w),
            tag_len,
            tag_bits: 8 * tag_len as u32,
            max,
            zigzag,
            hex: !f.opts.dev,
            text,
        }
    }
}

/// The plans of the message types (each made the first time it is
/// needed), by [`MsgId`].
fn plans() -> &'static [OnceLock<Plan>] {
    static PLANS: OnceLock<Box<[OnceLock<Plan>]>> = OnceLock::new();
    PLANS.get_or_init(|| MESSAGES.iter().map(|_| OnceLock::new()).collect())
}

/// The plan of a message type.
#[inline]
fn plan(ty: MsgId) -> Option<&'static Plan> {
    plan_in(plans(), ty)
}

/// The plan of a message type among `plans` (from [`plans`]).
#[inline(always)]
fn plan_in(plans: &'static [OnceLock<Plan>], ty: MsgId) -> Option<&'static Plan> {
    let m = MESSAGES.get(ty.0 as usize)?;
    Some(plans.get(ty.0 as usize)?.get_or_init(|| {
        let legacy =
            m.field_by_name("compat_nr_pages").and_then(|(c, _)| m.field_by_name("nr_pages").map(|(n, _)| (c, n)));
        let slots: Vec<Slot> = m
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| Slot {
                f,
                key: KeyPattern::new(f.name),
                sep: KeyPattern::after(b", ", f.name),
                q: Quick::of(i, f),
            })
            .collect();
        Plan {
            // (The tight loop relies on the fields being in number order.)
            quick_any: m.fields.len() <= 128
                && m.fields.windows(2).all(|w| w.first().map(|f| f.number) < w.get(1).map(|f| f.number))
                && slots.iter().any(|s| s.q.bit != 0),
            slots,
            keys: m.fields.iter().map(|f| KeyPattern::new(f.name)).collect(),
            required: m
                .fields
                .iter()
                .enumerate()
                .filter(|(i, f)| *i < 64 && f.label == Label::Required)
                .fold(0u64, |a, (i, _)| a | 1u64 << i),
            legacy,
            small: m.fields.len() <= 64 && legacy.is_none_or(|(c, n)| c < 64 && n < 64),
            legacy_mask: legacy.map_or(0, |(c, n)| (1u64 << (c % 64)) | (1u64 << (n % 64))),
            legacy_form: legacy.map_or(1, |(_, n)| 1u64 << (n % 64)),
        }
    }))
}

/// Mark field `idx` seen (modulo 128); whether it was.
#[inline(always)]
fn see(bits: &mut [u64; 2], idx: usize) -> bool {
    let k = idx % 128;
    let (w, bit) = if k < 64 { (0, 1u64 << k) } else { (1, 1u64 << (k - 64)) };
    match bits.get_mut(w) {
        Some(x) => {
            let was = *x & bit != 0;
            *x |= bit;
            was
        }
        None => false,
    }
}

fn unsee(bits: &mut [u64; 2], idx: usize) {
    let k = idx % 128;
    if let Some(x) = bits.get_mut(k / 64) {
        *x &= !(1u64 << (k % 64));
    }
}

#[inline(always)]
fn seen(bits: &[u64; 2], idx: usize) -> bool {
    let k = idx % 128;
    bits.get(k / 64).is_some_and(|x| x & (1u64 << (k % 64)) != 0)
}

/// For the integer types whose non-negative values are written as
/// varints: the largest value, and whether in zigzag form; (0, _) for the
/// others.
#[inline(always)]
fn varint_kind(ty: Type) -> (u64, bool) {
    match ty {
        Type::Uint64 => (u64::MAX, false),
        Type::Int64 => (i64::MAX as u64, false),
        Type::Uint32 => (u32::MAX as u64, false),
        Type::Int32 => (i32::MAX as u64, false),
        Type::Sint32 => (i32::MAX as u64, true),
        Type::Sint64 => (i64::MAX as u64, true),
        _ => (0, false),
    }
}

#[inline]
fn signed(neg: bool, mag: u64) -> i128 {
    if neg {
        -(mag as i128)
    } else {
        mag as i128
    }
}

/// Bytes in front of an entry's message, for its size.
const FRAME: usize = 4;

/// The output bytes: a zero-filled vector written at a cursor, kept at
/// least [`Buf::SLACK`] bytes longer than what is written, so that a short
/// write is one copy of a fixed size.
struct Buf {
    v: Vec<u8>,
    len: usize,
    /// Bytes made elsewhere before they are copied in.
    spare: Vec<u8>,
}

impl Buf {
    const SLACK: usize = 32;

    fn new() -> Buf {
        Buf { v: vec![0; 256], len: FRAME, spare: Vec::new() }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    /// Empty, but for the room of an entry's size.
    fn clear(&mut self) {
        self.len = FRAME;
    }

    fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// What is written.
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.v.get(..self.len).unwrap_or(&[])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.v.get_mut(..self.len).unwrap_or(&mut [])
    }

    /// Write the first `n` (at most 16) bytes of `b`.
    #[inline(always)]
    fn put(&mut self, b: &[u8; 16], n: usize) {
        if self.v.len() < self.len + Self::SLACK {
            self.grow(0);
        }
        if let Some(dst) = self.v.get_mut(self.len..self.len + 16) {
            dst.copy_from_slice(b);
            self.len += n.min(16);
        }
    }

    /// Make room for `n` more bytes and the slack.
    #[cold]
    fn grow(&mut self, n: usize) {
        let size = (self.v.len() * 2).max(self.len + n + 2 * Self::SLACK);
        self.v.resize(size, 0);
    }

    /// Write `s`.
    #[inline]
    fn put_slice(&mut self, s: &[u8]) {
        if self.v.len() < self.len + s.len() + Self::SLACK {
            self.grow(s.len());
        }
        if let Some(dst) = self.v.get_mut(self.len..self.len + s.len()) {
            dst.copy_from_slice(s);
            self.len += s.len();
        }
    }

    /// Write what `f` appends to a vector.
    fn with_vec<T>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
        let mut spare = std::mem::take(&mut self.spare);
        spare.clear();
        let t = f(&mut spare);
        self.put_slice(&spare);
        self.spare = spare;
        t
    }

    /// A key (field `number`, wire type `wt`) and a varint.
    #[inline(always)]
    fn key_varint(&mut self, number: u32, wt: u8, v: u64) {
        if self.v.len() < self.len + Self::SLACK {
            self.grow(0);
        }
        let at = self.len;
        if let Some(w) = self.v.get_mut(at..at + 16) {
            let n = varint_to(w, 0, ((number as u64) << 3) | wt as u64);
            self.len = at + varint_to(w, n, v);
        }
    }

    /// A field of wire type 0.
    #[inline(always)]
    fn varint(&mut self, number: u32, v: u64) {
        self.key_varint(number, 0, v)
    }

    /// A key and the `k` low bytes of a fixed-size value.
    fn key_fixed(&mut self, number: u32, wt: u8, v: u64, k: usize) {
        let mut b = [0u8; 16];
        let n = varint_into(&mut b, 0, ((number as u64) << 3) | wt as u64);
        for (i, x) in v.to_le_bytes().iter().take(k).enumerate() {
            if let Some(y) = b.get_mut(n + i) {
                *y = *x;
            }
        }
        self.put(&b, n + k);
    }

    /// A key of wire type 2 and a placeholder length byte; the index of
    /// that byte, for [`Buf::close_len`].
    #[inline(always)]
    fn open_len(&mut self, number: u32) -> usize {
        self.key_varint(number, 2, 0);
        self.len - 1
    }

    /// Fill in the length byte at `at` for the bytes after it, widening it
    /// to a longer varint when they are 128 or more.
    #[inline]
    fn close_len(&mut self, at: usize) {
        let end = self.len;
        let n = end.saturating_sub(at + 1);
        if n < 0x80 {
            if let Some(b) = self.v.get_mut(at) {
                *b = n as u8;
            }
            return;
        }
        let mut b = [0u8; 16];
        let k = varint_into(&mut b, 0, n as u64);
        if self.v.len() < end + k + Self::SLACK {
            self.grow(k);
        }
        if at < end && end + k - 1 <= self.v.len() {
            self.v.copy_within(at + 1..end, at + k);
        }
        if let (Some(dst), Some(src)) = (self.v.get_mut(at..at + k), b.get(..k)) {
            dst.copy_from_slice(src);
        }
        self.len = end + k - 1;
    }
}

/// A varint into `w` from index `i`; the index after it.
#[inline(always)]
fn varint_to(w: &mut [u8], mut i: usize, mut v: u64) -> usize {
    loop {
        let b = v as u8 & 0x7f;
        v >>= 7;
        let Some(x) = w.get_mut(i) else { return i };
        i += 1;
        if v == 0 {
            *x = b;
            return i;
        }
        *x = b | 0x80;
    }
}

/// A varint into `b` from index `i`; the index after it.
#[inline(always)]
fn varint_into(b: &mut [u8; 16], mut i: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        if let Some(x) = b.get_mut(i) {
            *x = v as u8 | 0x80;
        }
        v >>= 7;
        i += 1;
    }
    if let Some(x) = b.get_mut(i) {
        *x = v as u8;
    }
    i + 1
}

/// Write an integer field's value (key and data) as the message path
/// encodes it; false, having written nothing, when the value is out of the
/// type's range.
#[inline]
fn put_int(out: &mut Buf, number: u32, ty: Type, n: i128) -> bool {
    match ty {
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            let Ok(v) = i32::try_from(n) else { return false };
            let v = v as i64;
            match ty {
                Type::Sint32 => out.varint(number, zigzag(v)),
                Type::Sfixed32 => out.key_fixed(number, 5, v as i32 as u32 as u64, 4),
                _ => out.varint(number, v as u64),
            }
        }
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            let Ok(v) = i64::try_from(n) else { return false };
            match ty {
                Type::Sint64 => out.varint(number, zigzag(v)),
                Type::Sfixed64 => out.key_fixed(number, 1, v as u64, 8),
                _ => out.varint(number, v as u64),
            }
        }
        Type::Uint32 | Type::Fixed32 => {
            let Ok(v) = u32::try_from(n) else { return false };
            match ty {
                Type::Fixed32 => out.key_fixed(number, 5, v as u64, 4),
                _ => out.varint(number, v as u64),
            }
        }
        _ => {
            let Ok(v) = u64::try_from(n) else { return false };
            match ty {
                Type::Fixed64 => out.key_fixed(number, 1, v, 8),
                _ => out.varint(number, v),
            }
        }
    }
    true
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The value of a nice-mode integer text in the forms crit writes: flag
/// names (`"O_RDWR | O_LARGEFILE"`) and plain hex (`"0x7f3a…"`).  None for
/// every other text, which the message path's conversion then reads (a
/// device, a dictionary name, decimal text, signs, underscores, …).
fn nice_int(f: &FieldDesc, s: &[u8]) -> Option<i128> {
    if f.opts.dev {
        return None;
    }
    if let Some(map) = f.opts.flags.and_then(maps::flag_map) {
        return flag_names(s, map).or_else(|| pyfmt::unmap_flags(std::str::from_utf8(s).ok()?, map).ok());
    }
    if f.opts.dict.is_some() {
        return None;
    }
    let digits = s.strip_prefix(b"0x")?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | d as u64;
    }
    Some(v as i128)
}

/// Flag names of `map` joined by `" | "`, as crit writes them (and
/// nothing else): the sum of their masks, as
/// [`pyfmt::unmap_flags`] adds them up.  None for any other text.
fn flag_names(s: &[u8], map: maps::FlagMap) -> Option<i128> {
    if s.is_empty() {
        return Some(0);
    }
    let mut sum: i128 = 0;
    let mut rest = s;
    loop {
        let (name, mask) = map.iter().find(|(n, _)| {
            rest.get(..n.len()).is_some_and(|r| same(r, n.as_bytes()))
                && matches!(rest.get(n.len()..), Some(b"") | Some([b' ', b'|', b' ', ..]))
        })?;
        sum += *mask as i128;
        match rest.get(name.len() + 3..) {
            Some(r) if !r.is_empty() => rest = r,
            Some(_) => return None,
            None => return Some(sum),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::map::message_from_parser;

    /// Both paths over one JSON text of a message of type `ty`.
    fn both(ty: MsgId, text: &str) -> (String, String) {
        let show = |r: Result<Vec<u8>>| match r {
            Ok(b) => format!("{b:02x?}"),
            Err(e) => format!("error: {e}"),
        };
        let mut p = Parser::new(text.as_bytes());
        let old = message_from_parser(&mut p, ty, None).and_then(|m| {
            if m.has_missing_required() {
                Err(Error::new(ErrorKind::MissingRequired { message: ty.desc().name, fields: m.missing_required() }))
            } else {
                Ok(m.to_bytes())
            }
        });
        let mut p = Parser::new(text.as_bytes());
        let mut d = DirectEncoder::new();
        let new = d.message(&mut p, ty).map(|b| b.to_vec());
        (show(old), show(new))
    }

    fn ty(name: &str) -> MsgId {
        MsgId::by_name(name).unwrap()
    }

    /// A run takes the plain entries up to the first other one, each
    /// framed as [`DirectEncoder::entry`] frames it, and leaves the parser
    /// after the last one's `}` (line and column kept).
    #[test]
    fn a_run_takes_the_plain_entries_and_stops_before_another() {
        let pm = ty("pagemap_entry");
        let plain = [
            r#"{"vaddr": 4096, "compat_nr_pages": 0, "flags": 4, "nr_pages": 1}"#,
            "{\n    \"vaddr\": \"0x7f0000001000\",\n    \"compat_nr_pages\": 0,\n    \"flags\": 2,\n    \"nr_pages\": 300\n}",
            r#"{"vaddr": 8192, "compat_nr_pages": 0, "flags": 6, "nr_pages": 16}"#,
        ];
        // Not for the loop: crit <= 4.1's form, a flag name, a float.
        let other = [
            r#"{"vaddr": 4096, "nr_pages": 1}"#,
            r#"{"vaddr": 4096, "compat_nr_pages": 0, "flags": "PE_PRESENT", "nr_pages": 1}"#,
            r#"{"vaddr": 4096.0}"#,
        ];
        for (k, last) in other.iter().enumerate() {
            // Separators of both layouts, and a plain entry after the
            // other one (the loop wants some bytes after a value).
            let (a, b) = plain.split_at(k + 1);
            let head = if b.is_empty() { a.join(", ") } else { format!("{},\n {}", a.join(", "), b.join(",\n ")) };
            let text = format!("{head}, {last}, {}]", plain[0]);
            let mut p = Parser::new(text.as_bytes());
            // (The buffer filled.)
            assert_eq!(p.skip_ws().unwrap(), Some(b'{'));
            let mut d = DirectEncoder::new();
            let (n, run) = d.entries(&mut p, pm, true);
            let run = run.to_vec();
            assert_eq!(n, plain.len(), "{text}");
            let mut want = Vec::new();
            for e in plain {
                let mut q = Parser::new(e.as_bytes());
                let b = DirectEncoder::new().message(&mut q, pm).unwrap().to_vec();
                want.extend_from_slice(&(b.len() as u32).to_le_bytes());
                want.extend_from_slice(&b);
            }
            assert_eq!(run, want);
            let end = head.len();
            assert_eq!(p.position(), end as u64, "{text}");
            let line = 1 + text[..end].matches('\n').count() as u64;
            let col = end - text[..end].rfind('\n').map_or(0, |i| i + 1) + 1;
            assert_eq!(p.line_col(), (line, col as u64));
            // And nothing of the other one is taken.
            assert!(p.next_or_close(b']').unwrap());
            assert_eq!(d.entries(&mut p, pm, true).0, 0);
            assert_eq!(p.position(), end as u64 + 1);
        }
    }

    #[test]
    fn same_bytes_and_errors_as_the_message_path() {
        let fe = ty("file_entry");
        let pm = ty("pagemap_entry");
        let cases: &[(MsgId, &str)] = &[
            (
                fe,
                r#"{"type": "REG", "id": 1, "reg": {"id": 1, "flags": "O_RDWR | O_LARGEFILE", "pos": 0, "fown": {"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0}, "name": "/x"}}"#,
            ),
            // Out of order, duplicated, unknown keys and "__unknown".
            (
                fe,
                r#"{"id": 2, "type": "REG", "id": 3, "zz": [1, {"a": 2}], "__unknown": [{"field": 1, "varint": 9}, {"field": 99, "len": "aGk=\n"}]}"#,
            ),
            (
                fe,
                r#"{"type": "REG", "id": 1, "reg": {"id": 1, "flags": 0, "pos": 0, "fown": {"uid": 0}, "name": "/x"}}"#,
            ),
            (
                fe,
                r#"{"type": "REG", "id": 1, "reg": {"id": 1, "flags": "O_NOPE", "pos": 0, "fown": {}, "name": "/x"}}"#,
            ),
            (fe, r#"{"type": 7, "id": -1}"#),
            (fe, r#"{"type": "NOPE", "id": 1}"#),
            (fe, r#"{"type": "REG", "id": 1, "reg": 5}"#),
            (pm, r#"{"vaddr": "0x400000", "nr_pages": 4, "flags": "PE_PRESENT"}"#),
            (pm, r#"{"vaddr": "0x400000", "nr_pages": 4294967296}"#),
            (pm, r#"{"vaddr": 1, "compat_nr_pages": 1, "nr_pages": 4, "nr_pages": 5}"#),
            (pm, r#"{"vaddr": 1.5, "compat_nr_pages": "0x-1", "flags": true}"#),
        ];
        for (t, text) in cases {
            let (old, new) = both(*t, text);
            assert_eq!(old, new, "{text}");
        }
    }

    #[test]
    fn long_nested_messages_and_strings_get_wide_lengths() {
        let name = "n".repeat(300);
        let text = format!(
            r#"{{"type": "REG", "id": 1, "reg": {{"id": 1, "flags": 0, "pos": 0, "fown": {{"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0}}, "name": "{name}"}}}}"#
        );
        let (old, new) = both(ty("file_entry"), &text);
        assert!(!old.starts_with("error"), "{old}");
        assert_eq!(old, new);
    }
}
