//! Decode: protobuf wire bytes straight to crit's JSON, with no message
//! tree in between.
//!
//! The walk reads the fields of one message in wire order against its
//! static descriptor and writes each as it comes, with the formatting of
//! [`super::map`] (the same functions).  It covers what CRIU writes: fields
//! in number order, each singular field once, every field known and of its
//! wire type.  Anything else (fields out of order, a singular field seen
//! twice, an unknown field number, a wire type or value that does not fit
//! the field, a packed run that does not unpack, the address form of an
//! `ipadd` field in nice mode, a message that does not parse at all) makes
//! it give up: what it wrote is taken back and it returns false, and the
//! caller decodes the message into a [`Message`](crate::wire::Message) and
//! writes that with [`super::map::write_fields`].  When the walk succeeds,
//! its text is byte for byte the text of that path.

use std::io::Write;
use std::sync::OnceLock;

use super::map::{write_bytes, write_scalar, Style};
use super::out::JsonOut;
use crate::error::Result;
use crate::schema::{FieldDesc, Label, MsgId, Type, MESSAGES};
use crate::wire::{packed_wire_type, read_varint, scalar_value, MAX_DEPTH};

/// `?` for the walk, with the giving-up side marked cold: the optimiser
/// then lays the walk out (and inlines the writers) for the common path
/// instead of guessing at each of its many branches.
macro_rules! ok {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return give_up(),
        }
    };
}

/// The walk does not apply (rare).
#[cold]
#[inline(never)]
fn give_up<T>() -> Option<T> {
    None
}

/// The member texts `, "name": ` of the fields of each message type, made
/// on first use of the type (and kept for the life of the process): a key
/// is then one copy, most often of a fixed size (see
/// [`JsonOut::member_held`]).
struct Keys {
    /// By message type.
    of: Vec<OnceLock<Box<[Key]>>>,
}

/// Bytes copied at once for a member text (and kept readable after each).
const KEY_COPY: usize = 32;

/// One member text.
struct Key {
    text: &'static [u8],
    /// `text` and what follows it, [`KEY_COPY`] + 2 bytes.
    padded: &'static [u8],
}

impl Keys {
    fn get() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| Keys { of: MESSAGES.iter().map(|_| OnceLock::new()).collect() })
    }

    /// The member texts of the fields of `ty`, in field order.
    #[inline(always)]
    fn of(&self, ty: MsgId) -> Option<&[Key]> {
        let cell = ok!(self.of.get(ty.0 as usize));
        Some(cell.get_or_init(|| Self::make(ty)))
    }

    #[cold]
    fn make(ty: MsgId) -> Box<[Key]> {
        let fields = ty.desc().fields;
        let mut text = Vec::new();
        let mut spans = Vec::with_capacity(fields.len());
        for f in fields {
            let a = text.len();
            text.extend_from_slice(b", \"");
            text.extend_from_slice(f.name.as_bytes());
            text.extend_from_slice(b"\": ");
            spans.push((a, text.len()));
        }
        // Room after the last text for a copy of fixed size past it.
        text.extend_from_slice(&[0; KEY_COPY + 2]);
        let text: &'static [u8] = Box::leak(text.into_boxed_slice());
        spans
            .iter()
            .map(|&(a, b)| Key {
                text: text.get(a..b).unwrap_or_default(),
                padded: text.get(a..a + KEY_COPY + 2).unwrap_or_default(),
            })
            .collect()
    }
}

/// Write the members of a message of type `ty`, given its wire bytes, into
/// the open JSON object: exactly what [`super::map::write_fields`] writes
/// for the decoded message (`hex` as there: inherited from enclosing
/// fields).  Returns false, having written nothing, where the walk does not
/// apply; the caller then takes the message path.  (The walk never
/// flushes the output, so taking its text back cannot fail; if it did,
/// that is an error.)
pub fn write_fields<W: Write>(out: &mut JsonOut<W>, ty: MsgId, data: &[u8], style: Style, hex: bool) -> Result<bool> {
    let mark = out.mark();
    if walk(out, Keys::get(), ty, data, style, hex, 0).is_some() {
        return Ok(true);
    }
    out.rewind(mark)?;
    Ok(false)
}

/// Write one entry of an image as the next element of the open JSON list:
/// `{`, its members, `}`, then the output is flushed if its buffer is
/// full.  Returns false, having written nothing (not even the separator),
/// where the walk does not apply.
pub fn write_entry<W: Write>(out: &mut JsonOut<W>, ty: MsgId, data: &[u8], style: Style) -> Result<bool> {
    let mark = out.mark();
    out.elem_held();
    let done = out.begin_object().is_ok()
        && walk(out, Keys::get(), ty, data, style, false, 0).is_some()
        && out.end_object().is_ok();
    if done {
        // The entry is whole: now the buffer may go out.
        out.spill()?;
        return Ok(true);
    }
    out.rewind(mark)?;
    Ok(false)
}

/// A varint, with the one-byte case first.
#[inline(always)]
fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    match data.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Some(b as u64)
        }
        _ => read_varint(data, pos),
    }
}

/// The bytes of a length-delimited field.
#[inline(always)]
fn delimited<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = ok!(varint(data, pos));
    let start = *pos;
    let end = ok!(usize::try_from(len).ok().and_then(|l| start.checked_add(l)));
    let body = ok!(data.get(start..end));
    *pos = end;
    Some(body)
}

/// Little-endian fixed-width bits of `N` bytes.
#[inline(always)]
fn fixed<const N: usize>(data: &[u8], pos: &mut usize) -> Option<u64> {
    let end = ok!(pos.checked_add(N));
    let b: [u8; N] = ok!(data.get(*pos..end).and_then(|b| b.try_into().ok()));
    *pos = end;
    let mut v = [0u8; 8];
    v[..N].copy_from_slice(&b);
    Some(u64::from_le_bytes(v))
}

/// Start the value of field `f`: its key (`key`, its member text), or for
/// a repeated field the next element of its list (opening the list on the
/// first).
#[inline(always)]
fn open<W: Write>(out: &mut JsonOut<W>, f: &Field, in_list: &mut bool) -> Option<()> {
    if f.desc.label == Label::Repeated {
        if !*in_list {
            out.member_held::<KEY_COPY>(f.key.text, f.key.padded);
            ok!(out.begin_array().ok());
            *in_list = true;
        }
        out.elem_held();
    } else {
        out.member_held::<KEY_COPY>(f.key.text, f.key.padded);
    }
    Some(())
}

/// A field being written: its descriptor and member text.
struct Field<'a> {
    desc: &'static FieldDesc,
    key: &'a Key,
}

/// One scalar of field `f` from its wire bits.
#[inline(always)]
fn scalar<W: Write>(
    out: &mut JsonOut<W>,
    f: &Field,
    wt: u8,
    raw: u64,
    style: Style,
    hex: bool,
    in_list: &mut bool,
) -> Option<()> {
    // Only scalars come out (nothing to drop: spare the drop's test).
    let v = std::mem::ManuallyDrop::new(ok!(scalar_value(f.desc.ty, wt, raw)));
    ok!(open(out, f, in_list));
    ok!(write_scalar(out, f.desc, &v, style, hex).ok());
    Some(())
}

/// Write the members of one message; None to give up.
fn walk<W: Write>(
    out: &mut JsonOut<W>,
    keys: &Keys,
    ty: MsgId,
    data: &[u8],
    style: Style,
    hex: bool,
    depth: usize,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return give_up();
    }
    let fields = ty.desc().fields;
    let texts = ok!(keys.of(ty));
    // The field being written (fields are sorted by number, as the wire
    // should be), its number (0 before the first), and whether its list is
    // open.
    let mut cur = 0usize;
    let mut last = 0u32;
    let mut in_list = false;
    let mut pos = 0usize;
    while pos < data.len() {
        let key = ok!(varint(data, &mut pos));
        let number = key >> 3;
        let wt = (key & 7) as u8;
        if number == 0 || number > (u32::MAX >> 3) as u64 {
            return give_up();
        }
        let number = number as u32;
        if number != last {
            if number < last {
                return give_up();
            }
            if in_list {
                ok!(out.end_array().ok());
                in_list = false;
            }
            while ok!(fields.get(cur)).number < number {
                cur += 1;
            }
            last = number;
        }
        let fd = ok!(fields.get(cur));
        if fd.number != number {
            return give_up();
        }
        let f = Field { desc: fd, key: ok!(texts.get(cur)) };
        match fd.ty {
            Type::Message(sub) => {
                if wt != 2 {
                    return give_up();
                }
                let body = ok!(delimited(data, &mut pos));
                ok!(open(out, &f, &mut in_list));
                ok!(out.begin_object().ok());
                ok!(walk(out, keys, sub, body, style, hex || fd.opts.hex, depth + 1));
                ok!(out.end_object().ok());
            }
            Type::String => {
                if wt != 2 {
                    return give_up();
                }
                let body = ok!(delimited(data, &mut pos));
                ok!(open(out, &f, &mut in_list));
                ok!(out.write_str(body).ok());
            }
            Type::Bytes => {
                if wt != 2 {
                    return give_up();
                }
                let body = ok!(delimited(data, &mut pos));
                ok!(open(out, &f, &mut in_list));
                ok!(write_bytes(out, fd, body).ok());
            }
            _ => {
                if style.nice && fd.opts.ipadd {
                    // Addresses are written from the whole list.
                    return give_up();
                }
                let raw = match wt {
                    0 => ok!(varint(data, &mut pos)),
                    1 => ok!(fixed::<8>(data, &mut pos)),
                    5 => ok!(fixed::<4>(data, &mut pos)),
                    2 if fd.label == Label::Repeated => {
                        let body = ok!(delimited(data, &mut pos));
                        ok!(packed(out, &f, body, style, hex, &mut in_list));
                        continue;
                    }
                    _ => return give_up(),
                };
                ok!(scalar(out, &f, wt, raw, style, hex, &mut in_list));
            }
        }
        if fd.label != Label::Repeated {
            // A second value of this singular field would replace this one
            // (the message path does that): past it, the same number finds
            // no field.
            cur += 1;
        }
    }
    if in_list {
        ok!(out.end_array().ok());
    }
    Some(())
}

/// The elements of a packed run (an empty run adds nothing, not even the
/// key, as in the message path).  Rare in images: kept out of the walk.
#[inline(never)]
fn packed<W: Write>(
    out: &mut JsonOut<W>,
    f: &Field,
    body: &[u8],
    style: Style,
    hex: bool,
    in_list: &mut bool,
) -> Option<()> {
    let mut p = 0usize;
    match packed_wire_type(f.desc.ty) {
        0 => {
            while p < body.len() {
                let raw = ok!(varint(body, &mut p));
                ok!(scalar(out, f, 0, raw, style, hex, in_list));
            }
        }
        1 => {
            if body.len() % 8 != 0 {
                return give_up();
            }
            while p < body.len() {
                let raw = ok!(fixed::<8>(body, &mut p));
                ok!(scalar(out, f, 1, raw, style, hex, in_list));
            }
        }
        5 => {
            if body.len() % 4 != 0 {
                return give_up();
            }
            while p < body.len() {
                let raw = ok!(fixed::<4>(body, &mut p));
                ok!(scalar(out, f, 5, raw, style, hex, in_list));
            }
        }
        _ => return give_up(),
    }
    Some(())
}
