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

//!
//! Per message type and style, a table made on first use says for each
//! field key (number and wire type) what to read and how to write it (see
//! `Kind`): a plain integer is then one table look-up, one varint and
//! its digits, with no value in between.

use std::io::Write;
use std::sync::OnceLock;

use super::map::{write_bytes, write_scalar, Style};
use super::maps::{flag_map, FlagMap};
use super::out::{JsonOut, KEY_FIXED};
use super::pyfmt::{hex_into, map_flags_into};
use crate::error::Result;
use crate::schema::{FieldDesc, Label, MsgId, Opts, Type, MESSAGES};
use crate::wire::{packed_wire_type, read_varint, scalar_value, Value, MAX_DEPTH};

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

/// How the walk takes a field value that comes with a given field key
/// (number and wire type), in a given style: what to read and how to
/// write it.  The integer kinds write plain numbers, as [`write_scalar`]
/// writes them where no option of nice mode gives a text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Not for the walk: a number the type does not have, a wire type
    /// that does not fit the field, an address field in nice mode.
    GiveUp,
    /// A varint, the number as it is (`uint64`).
    Uint64,
    /// A varint that must fit 32 bits (`uint32`).
    Uint32,
    /// A varint read as a signed 64-bit number (`int64`).
    Int64,
    /// A varint that must be a signed 32-bit number (`int32`).
    Int32,
    /// A zigzag varint (`sint64`).
    Sint64,
    /// A zigzag varint that must fit 32 bits (`sint32`).
    Sint32,
    /// A varint of 0 or 1.
    Bool,
    /// A varint that must be a signed 32-bit number: the enum's name, or
    /// the number where the enum has no name for it.
    Enum,
    /// An integer with wire type 0 written as hex text (nice mode: the
    /// field's `hex` option or one inherited).
    Hex,
    /// An integer with wire type 0 written as the names of its flags
    /// (nice mode: the field's `flags` option, with a known map).
    Flags,
    /// Any other scalar with wire type 0: through its value and
    /// [`write_scalar`] (the texts of nice mode).
    Varint,
    /// Any scalar with wire type 1, the same way (fixed64, sfixed64,
    /// double).
    Fixed64,
    /// Any scalar with wire type 5, the same way (fixed32, sfixed32,
    /// float).
    Fixed32,
    /// A nested message.
    Message,
    /// A string.
    String,
    /// Bytes.
    Bytes,
    /// A packed run of a repeated scalar field.
    Packed,
}

/// What to do with one field key: the field, the kind, and whether the
/// field is repeated.
#[derive(Clone, Copy, Debug)]
struct Step {
    slot: &'static Slot,
    kind: Kind,
    list: bool,
}

/// One field of a message type: its descriptor and its member text
/// `, "name": `, which is also in `fixed` (zeros after it) where it fits,
/// for a copy of known size (see [`JsonOut::member_held`]).
#[derive(Debug)]
struct Slot {
    desc: &'static FieldDesc,
    text: &'static [u8],
    fixed: [u8; KEY_FIXED],
    /// The map of the field's `flags` option.
    flags: Option<FlagMap>,
}

/// The field of the steps that give up.
static NO_FIELD: FieldDesc = FieldDesc {
    name: "",
    number: 0,
    label: Label::Optional,
    ty: Type::Bool,
    packed: false,
    opts: Opts::NONE,
    default: None,
};
static NO_SLOT: Slot = Slot { desc: &NO_FIELD, text: b"", fixed: [0; KEY_FIXED], flags: None };
const GIVE_UP: Step = Step { slot: &NO_SLOT, kind: Kind::GiveUp, list: false };

/// What the walk looks up, by message type, each part made on first use
/// and kept for the life of the process: the fields (slots) of the type,
/// and its steps by style (raw, nice, nice with hex inherited), each a
/// table by field key `number << 3 | wire type` up to the largest field
/// number of the type (keys past it: give up).
struct Plans {
    slots: Vec<OnceLock<&'static [Slot]>>,
    steps: Vec<[OnceLock<&'static [Step]>; 3]>,
}

impl Plans {
    fn get() -> &'static Plans {
        static PLANS: OnceLock<Plans> = OnceLock::new();
        PLANS.get_or_init(|| Plans {
            slots: MESSAGES.iter().map(|_| OnceLock::new()).collect(),
            steps: MESSAGES.iter().map(|_| Default::default()).collect(),
        })
    }

    /// The steps of type `ty` in a style (`hex`: inherited from enclosing
    /// fields, which only nice mode heeds).
    #[inline(always)]
    fn steps(&self, ty: MsgId, style: Style, hex: bool) -> Option<&'static [Step]> {
        let by_style = ok!(self.steps.get(ty.0 as usize));
        let (i, nice, hex) = match (style.nice, hex) {
            (false, _) => (0, false, false),
            (true, false) => (1, true, false),
            (true, true) => (2, true, true),
        };
        let cell = ok!(by_style.get(i));
        Some(cell.get_or_init(|| self.make_steps(ty, nice, hex)))
    }

    #[cold]
    fn make_steps(&self, ty: MsgId, nice: bool, hex: bool) -> &'static [Step] {
        let slots = match self.slots.get(ty.0 as usize) {
            Some(cell) => *cell.get_or_init(|| make_slots(ty)),
            None => &[],
        };
        // Field numbers are small (below 40 in CRIU's schema): fields past
        // 1024 (there are none) would take the message path.
        let max = slots.iter().map(|s| s.desc.number).max().unwrap_or(0).min(1024) as usize;
        let mut t = vec![GIVE_UP; (max + 1) * 8];
        for slot in slots {
            let f = slot.desc;
            for wt in 0..8u8 {
                let key = (f.number as usize) << 3 | wt as usize;
                if let Some(s) = t.get_mut(key) {
                    *s = Step { slot, kind: kind_of(f, wt, nice, hex), list: f.label == Label::Repeated };
                }
            }
        }
        Box::leak(t.into_boxed_slice())
    }
}

/// The slots of the fields of `ty`.
#[cold]
fn make_slots(ty: MsgId) -> &'static [Slot] {
    let slots: Vec<Slot> = ty
        .desc()
        .fields
        .iter()
        .map(|f| {
            let mut text = Vec::new();
            text.extend_from_slice(b", \"");
            text.extend_from_slice(f.name.as_bytes());
            text.extend_from_slice(b"\": ");
            let mut fixed = [0u8; KEY_FIXED];
            if let Some(d) = fixed.get_mut(..text.len()) {
                d.copy_from_slice(&text);
            }
            Slot { desc: f, text: Box::leak(text.into_boxed_slice()), fixed, flags: f.opts.flags.and_then(flag_map) }
        })
        .collect();
    Box::leak(slots.into_boxed_slice())
}

/// The kind of a value of field `f` that comes with wire type `wt`.
fn kind_of(f: &FieldDesc, wt: u8, nice: bool, hex: bool) -> Kind {
    match f.ty {
        Type::Message(_) if wt == 2 => return Kind::Message,
        Type::String if wt == 2 => return Kind::String,
        Type::Bytes if wt == 2 => return Kind::Bytes,
        Type::Message(_) | Type::String | Type::Bytes => return Kind::GiveUp,
        _ => {}
    }
    if nice && f.opts.ipadd {
        // Addresses are written from the whole list.
        return Kind::GiveUp;
    }
    if wt == 2 && f.label == Label::Repeated {
        return Kind::Packed;
    }
    if wt != packed_wire_type(f.ty) {
        return Kind::GiveUp;
    }
    // Integers as plain numbers: raw mode, or no option that gives a text
    // (the test of `write_scalar`).
    let plain = !nice || !(hex || f.opts.hex || f.opts.dev || f.opts.flags.is_some() || f.opts.dict.is_some());
    if !plain && f.ty.is_integer() && wt == 0 {
        // The texts of nice mode, in the order `write_scalar` tries them.
        return if hex || f.opts.hex {
            Kind::Hex
        } else if f.opts.dev {
            Kind::Varint
        } else if let Some(name) = f.opts.flags {
            if flag_map(name).is_some() {
                Kind::Flags
            } else {
                Kind::Hex
            }
        } else {
            Kind::Varint
        };
    }
    match (f.ty, wt) {
        (Type::Uint64, 0) if plain => Kind::Uint64,
        (Type::Uint32, 0) if plain => Kind::Uint32,
        (Type::Int64, 0) if plain => Kind::Int64,
        (Type::Int32, 0) if plain => Kind::Int32,
        (Type::Sint64, 0) if plain => Kind::Sint64,
        (Type::Sint32, 0) if plain => Kind::Sint32,
        (Type::Bool, 0) => Kind::Bool,
        (Type::Enum(_), 0) => Kind::Enum,
        (_, 0) => Kind::Varint,
        (_, 1) => Kind::Fixed64,
        (_, 5) => Kind::Fixed32,
        _ => Kind::GiveUp,
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
    let cx = Ctx { plans: Plans::get(), style, hex, depth: 0 };
    if cx.plans.steps(ty, style, hex).and_then(|steps| walk(out, steps, data, &cx)).is_some() {
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
    EntryWriter::new(style).write(out, ty, data)
}

/// [`write_entry`] for the entries of an image one after another, with
/// the look-ups for their type made once.
pub struct EntryWriter {
    style: Style,
    plans: &'static Plans,
    /// The type last written and its steps.
    last: Option<(MsgId, Option<&'static [Step]>)>,
}

impl EntryWriter {
    /// A writer of entries in `style`.
    pub fn new(style: Style) -> EntryWriter {
        EntryWriter { style, plans: Plans::get(), last: None }
    }

    /// [`write_entry`]: the entry of type `ty` with wire bytes `data`, or
    /// false, having written nothing.
    #[inline(always)]
    pub fn write<W: Write>(&mut self, out: &mut JsonOut<W>, ty: MsgId, data: &[u8]) -> Result<bool> {
        let steps = match self.last {
            Some((t, steps)) if t == ty => steps,
            _ => {
                let steps = self.plans.steps(ty, self.style, false);
                self.last = Some((ty, steps));
                steps
            }
        };
        let Some(steps) = steps else { return Ok(false) };
        let mark = out.mark();
        out.elem_held();
        out.begin_object_held();
        let cx = Ctx { plans: self.plans, style: self.style, hex: false, depth: 0 };
        if walk(out, steps, data, &cx).is_some() {
            out.end_object_held();
            // The entry is whole: now the buffer may go out.
            out.spill()?;
            return Ok(true);
        }
        out.rewind(mark)?;
        Ok(false)
    }
}

/// A varint, with the one-byte case first.
#[inline(always)]
fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    match data.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Some(b as u64)
        }
        _ => long_varint(data, pos),
    }
}

/// A varint of any length: where eight bytes are there to read and it
/// ends within them, from one word (the 7-bit groups gathered pairwise,
/// then by fours, then by eights); else [`read_varint`], with its
/// results.
#[inline(always)]
fn long_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    if let Some(w) = data.get(*pos..).and_then(|rest| rest.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*w);
        let ends = !x & 0x8080_8080_8080_8080;
        if ends != 0 {
            // The stop bit of the last byte, then everything up to it.
            let stop = ends.trailing_zeros();
            let x = x & (u64::MAX >> (63 - stop)) & 0x7f7f_7f7f_7f7f_7f7f;
            let x = (x & 0x007f_007f_007f_007f) | (x & 0x7f00_7f00_7f00_7f00) >> 1;
            let x = (x & 0x0000_3fff_0000_3fff) | (x & 0x3fff_0000_3fff_0000) >> 2;
            let x = (x & 0x0000_0000_0fff_ffff) | (x & 0x0fff_ffff_0000_0000) >> 4;
            *pos += (stop as usize + 1) / 8;
            return Some(x);
        }
    }
    read_varint(data, pos)
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

/// Start the value of field `f`: its key, or for a repeated field the
/// next element of its list (opening the list on the first).  `more`:
/// whether the object has members already (then true).
#[inline(always)]
fn open<W: Write>(out: &mut JsonOut<W>, f: &Step, in_list: &mut bool, more: &mut bool) {
    if f.list {
        if !*in_list {
            member(out, f, more);
            out.begin_array_held();
            *in_list = true;
        }
        out.elem_held();
    } else {
        member(out, f, more);
    }
}

/// The key of field `f`.
#[inline(always)]
fn member<W: Write>(out: &mut JsonOut<W>, f: &Step, more: &mut bool) {
    if *more {
        out.member_more_held(f.slot.text, &f.slot.fixed);
    } else {
        out.member_held(f.slot.text, &f.slot.fixed);
        *more = true;
    }
}

/// What the walk of one message passes on: the plans, the style, the
/// `hex` inherited from enclosing fields and the depth.
struct Ctx<'p> {
    plans: &'p Plans,
    style: Style,
    hex: bool,
    depth: usize,
}

/// One scalar value of field `f` from its wire bits, through its value
/// (its key is written).
#[inline(never)]
fn scalar<W: Write>(out: &mut JsonOut<W>, f: &'static FieldDesc, wt: u8, raw: u64, cx: &Ctx) -> Option<()> {
    // Only scalars come out (nothing to drop: spare the drop's test).
    let v = std::mem::ManuallyDrop::new(ok!(scalar_value(f.ty, wt, raw)));
    ok!(write_scalar(out, f, &v, cx.style, cx.hex).ok());
    Some(())
}

/// The number an integer field of type `f` holds, from a varint: the
/// value the message path makes of it, as `write_scalar` widens it.
#[inline(always)]
fn int_value(f: &FieldDesc, raw: u64) -> Option<i128> {
    // Only scalars come out (nothing to drop: spare the drop's test).
    match *std::mem::ManuallyDrop::new(ok!(scalar_value(f.ty, 0, raw))) {
        Value::Uint(u) => Some(u as i128),
        Value::Int(i) => Some(i as i128),
        _ => give_up(),
    }
}

/// Zigzag decoding.
#[inline(always)]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A signed 32-bit number from a varint (which holds it sign-extended to
/// 64 bits), if it is one.
#[inline(always)]
fn int32(v: u64) -> Option<i64> {
    let i = v as i64;
    if i < i32::MIN as i64 || i > i32::MAX as i64 {
        return give_up();
    }
    Some(i)
}

/// Write the members of one message, whose type has the steps `steps`
/// in the style of `cx`; None to give up.
fn walk<W: Write>(out: &mut JsonOut<W>, steps: &'static [Step], data: &[u8], cx: &Ctx) -> Option<()> {
    if cx.depth > MAX_DEPTH {
        return give_up();
    }
    // The number of the field being written (0 before the first), whether
    // its list is open, and whether the object has members yet.
    let mut last = 0u64;
    let mut in_list = false;
    let mut more = false;
    let mut pos = 0usize;
    while let Some(&b) = data.get(pos) {
        let key = if b < 0x80 {
            pos += 1;
            b as u64
        } else {
            ok!(long_varint(data, &mut pos))
        };
        let step = ok!(usize::try_from(key).ok().and_then(|k| steps.get(k)));
        let number = key >> 3;
        if number > last {
            last = number;
        } else if number < last || !step.list {
            // Out of order, or a second value of a singular field (which
            // would replace the first: the message path does that).
            return give_up();
        }
        // The key first: where the value then does not fit, the walk gives
        // up, and that takes the key back too.
        if !step.list {
            member(out, step, &mut more);
        } else if step.kind == Kind::Packed {
            ok!(packed(out, step, data, &mut pos, cx, &mut in_list, &mut more));
            ok!(close_list(out, number, data, pos, &mut in_list));
            continue;
        } else {
            open(out, step, &mut in_list, &mut more);
        }
        match plain(out, step.kind, data, &mut pos) {
            Plain::Done => {}
            Plain::Other => ok!(value(out, step, data, &mut pos, cx)),
            Plain::GiveUp => return give_up(),
        }
        if in_list {
            ok!(close_list(out, number, data, pos, &mut in_list));
        }
    }
    if in_list {
        out.end_array_held();
    }
    Some(())
}

/// What [`plain`] did.
enum Plain {
    /// Wrote the value.
    Done,
    /// Nothing: the kind is not a plain one.
    Other,
    /// Nothing: the value does not fit.
    GiveUp,
}

/// Read and write a value of a plain kind (integers and bools).
#[inline(always)]
fn plain<W: Write>(out: &mut JsonOut<W>, kind: Kind, data: &[u8], pos: &mut usize) -> Plain {
    macro_rules! get {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return Plain::GiveUp,
            }
        };
    }
    match kind {
        Kind::Uint64 => out.uint_held(get!(varint(data, pos))),
        Kind::Uint32 => {
            let v = get!(varint(data, pos));
            if v > u32::MAX as u64 {
                return Plain::GiveUp;
            }
            out.uint_held(v);
        }
        Kind::Int64 => out.sint_held(get!(varint(data, pos)) as i64),
        Kind::Int32 => out.sint_held(get!(int32(get!(varint(data, pos))))),
        Kind::Sint64 => out.sint_held(unzigzag(get!(varint(data, pos)))),
        Kind::Sint32 => {
            let v = get!(varint(data, pos));
            if v > u32::MAX as u64 {
                return Plain::GiveUp;
            }
            out.sint_held(unzigzag(v) as i32 as i64);
        }
        Kind::Bool => {
            let text: &[u8] = match get!(varint(data, pos)) {
                0 => b"false",
                1 => b"true",
                _ => return Plain::GiveUp,
            };
            out.buf().extend_from_slice(text);
        }
        _ => return Plain::Other,
    }
    Plain::Done
}

/// After a value of repeated field number `number`: close its list
/// where the next field is another one (or there is none), so that the
/// walk never has to test for an open list but here.
#[inline(always)]
fn close_list<W: Write>(out: &mut JsonOut<W>, number: u64, data: &[u8], pos: usize, in_list: &mut bool) -> Option<()> {
    let next = match data.get(pos) {
        Some(&b) if b < 0x80 => Some(b as u64 >> 3),
        _ => {
            let mut p = pos;
            long_varint(data, &mut p).map(|k| k >> 3)
        }
    };
    if *in_list && next != Some(number) {
        out.end_array_held();
        *in_list = false;
    }
    Some(())
}

/// The value of field `step` of the kinds other than plain integers and
/// packed runs (its key is written); None to give up.
#[inline(never)]
fn value<W: Write>(out: &mut JsonOut<W>, step: &Step, data: &[u8], pos: &mut usize, cx: &Ctx) -> Option<()> {
    let fd = step.slot.desc;
    match step.kind {
        Kind::Enum => {
            let v = ok!(int32(ok!(varint(data, pos))));
            let name = match fd.ty {
                Type::Enum(e) => e.desc().name_of(v as i32),
                _ => None,
            };
            match name {
                Some(name) => ok!(out.write_ident(name).ok()),
                // A value the schema does not name: kept as its number.
                None => out.sint_held(v),
            }
        }
        Kind::Hex => {
            let n = ok!(int_value(fd, ok!(varint(data, pos))));
            let buf = out.buf();
            buf.push(b'"');
            hex_into(buf, n);
            buf.push(b'"');
        }
        Kind::Flags => {
            let n = ok!(int_value(fd, ok!(varint(data, pos))));
            let map = ok!(step.slot.flags);
            let buf = out.buf();
            buf.push(b'"');
            map_flags_into(buf, n, map);
            buf.push(b'"');
        }
        Kind::Varint => ok!(scalar(out, fd, 0, ok!(varint(data, pos)), cx)),
        Kind::Fixed64 => ok!(scalar(out, fd, 1, ok!(fixed::<8>(data, pos)), cx)),
        Kind::Fixed32 => ok!(scalar(out, fd, 5, ok!(fixed::<4>(data, pos)), cx)),
        Kind::Message => {
            let Type::Message(sub) = fd.ty else { return give_up() };
            let body = ok!(delimited(data, pos));
            out.begin_object_held();
            let inner = Ctx { plans: cx.plans, style: cx.style, hex: cx.hex || fd.opts.hex, depth: cx.depth + 1 };
            ok!(walk(out, ok!(cx.plans.steps(sub, inner.style, inner.hex)), body, &inner));
            out.end_object_held();
        }
        Kind::String => ok!(out.write_str(ok!(delimited(data, pos))).ok()),
        Kind::Bytes => ok!(write_bytes(out, fd, ok!(delimited(data, pos))).ok()),
        _ => return give_up(),
    }
    Some(())
}

/// The elements of a packed run (an empty run adds nothing, not even the
/// key, as in the message path).  Rare in images: kept out of the walk.
#[inline(never)]
fn packed<W: Write>(
    out: &mut JsonOut<W>,
    f: &Step,
    data: &[u8],
    pos: &mut usize,
    cx: &Ctx,
    in_list: &mut bool,
    more: &mut bool,
) -> Option<()> {
    let body = ok!(delimited(data, pos));
    let fd = f.slot.desc;
    let mut p = 0usize;
    match packed_wire_type(fd.ty) {
        0 => {
            while p < body.len() {
                let raw = ok!(varint(body, &mut p));
                open(out, f, in_list, more);
                ok!(scalar(out, fd, 0, raw, cx));
            }
        }
        1 => {
            if body.len() % 8 != 0 {
                return give_up();
            }
            while p < body.len() {
                let raw = ok!(fixed::<8>(body, &mut p));
                open(out, f, in_list, more);
                ok!(scalar(out, fd, 1, raw, cx));
            }
        }
        5 => {
            if body.len() % 4 != 0 {
                return give_up();
            }
            while p < body.len() {
                let raw = ok!(fixed::<4>(body, &mut p));
                open(out, f, in_list, more);
                ok!(scalar(out, fd, 5, raw, cx));
            }
        }
        _ => return give_up(),
    }
    Some(())
}
