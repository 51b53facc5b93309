//! Protobuf wire format and the dynamic message model.
//!
//! A [`Message`] is a list of `(field number, value)` pairs in field-number
//! order, driven by the static schema tables.  Fields the schema does not
//! know, and known fields whose wire form does not fit their type, are kept
//! as [`Value::Unknown`] with their number, so decode → encode gives back the
//! same bytes.  Presence is explicit: a field is present when it has a pair.

use crate::error::{Error, Result};
use crate::schema::{FieldDesc, Label, MsgId, Type};

/// Maximum nesting of messages accepted when decoding.
pub const MAX_DEPTH: usize = 64;

/// A field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// int32, int64, sint32, sint64, sfixed32, sfixed64.
    Int(i64),
    /// uint32, uint64, fixed32, fixed64.
    Uint(u64),
    /// bool.
    Bool(bool),
    /// float and double.
    Float(f64),
    /// An enum number (possibly one the schema does not name).
    Enum(i32),
    /// A string field's bytes (normally UTF-8, not checked).
    Str(Vec<u8>),
    /// A bytes field.
    Bytes(Vec<u8>),
    /// A nested message.
    Msg(Message),
    /// A field the schema does not know, or whose wire type does not match.
    Unknown(Unknown),
}

/// The wire form of an unknown field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Len(Vec<u8>),
    /// Wire type 5.
    Fixed32(u32),
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Its type.
    pub ty: MsgId,
    /// `(field number, value)` in field-number order; repeated fields have
    /// one pair per element, consecutive.
    pub fields: Vec<(u32, Value)>,
}

impl Message {
    /// An empty message of a type.
    pub fn new(ty: MsgId) -> Message {
        Message { ty, fields: Vec::new() }
    }

    /// The descriptor of a field by name (panics never: None if unknown).
    pub fn field_desc(&self, name: &str) -> Option<&'static FieldDesc> {
        self.ty.desc().field_by_name(name).map(|(_, f)| f)
    }

    /// Value of a field, by name: the first of a repeated field; the last
    /// of a singular field seen more than once (protobuf's rule, and what
    /// the JSON shows).
    pub fn get(&self, name: &str) -> Option<&Value> {
        let f = self.field_desc(name)?;
        let is = |(n, v): &&(u32, Value)| *n == f.number && !matches!(v, Value::Unknown(_));
        let found = if f.label == Label::Repeated { self.fields.iter().find(is) } else { self.fields.iter().rfind(is) };
        found.map(|(_, v)| v)
    }

    /// Mutable first value of a field, by name.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        let f = self.field_desc(name)?;
        self.fields.iter_mut().find(|(n, v)| *n == f.number && !matches!(v, Value::Unknown(_))).map(|(_, v)| v)
    }

    /// All values of a (repeated) field, by name.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Value> + 'a {
        let number = self.field_desc(name).map(|f| f.number).unwrap_or(0);
        self.fields
            .iter()
            .filter(move |(n, v)| number != 0 && *n == number && !matches!(v, Value::Unknown(_)))
            .map(|(_, v)| v)
    }

    /// Whether a field is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// An integer field as u64 (signed values are reinterpreted).
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(Value::as_u64)
    }

    /// An integer field as i64.
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    /// A bool field.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A string field (lossy for invalid UTF-8).
    pub fn str(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        match self.get(name)? {
            Value::Str(s) | Value::Bytes(s) => Some(String::from_utf8_lossy(s)),
            _ => None,
        }
    }

    /// A nested message field.
    pub fn msg(&self, name: &str) -> Option<&Message> {
        match self.get(name)? {
            Value::Msg(m) => Some(m),
            _ => None,
        }
    }

    /// An enum field's number.
    pub fn enum_value(&self, name: &str) -> Option<i32> {
        match self.get(name)? {
            Value::Enum(v) => Some(*v),
            _ => None,
        }
    }

    /// An enum field's name (None when absent or unnamed).
    pub fn enum_name(&self, name: &str) -> Option<&'static str> {
        let f = self.field_desc(name)?;
        let Type::Enum(e) = f.ty else { return None };
        e.desc().name_of(self.enum_value(name)?)
    }

    /// Set a singular field, replacing its value(s), keeping number order.
    pub fn set(&mut self, name: &str, value: Value) -> Result<()> {
        let f = self
            .field_desc(name)
            .ok_or_else(|| Error::value(format!("{} has no field {name}", self.ty.desc().name)))?;
        self.fields.retain(|(n, v)| *n != f.number || matches!(v, Value::Unknown(_)));
        self.insert_sorted(f.number, value);
        Ok(())
    }

    /// Append a value, keeping field-number order (after equal numbers).
    pub fn insert_sorted(&mut self, number: u32, value: Value) {
        let pos = self.fields.partition_point(|(n, _)| *n <= number);
        self.fields.insert(pos, (number, value));
    }

    /// Decode a message of type `ty` from its wire bytes.
    pub fn decode(ty: MsgId, buf: &[u8]) -> Result<Message> {
        decode_message(ty, buf, 0)
    }

    /// Encode to wire bytes, appending to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_message(self, out)
    }

    /// Encode to a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        self.encode(&mut v);
        v
    }

    /// Whether a required field is missing anywhere (no allocation).
    pub fn has_missing_required(&self) -> bool {
        let desc = self.ty.desc();
        for f in desc.fields {
            if f.label == Label::Required
                && !self.fields.iter().any(|(n, v)| *n == f.number && !matches!(v, Value::Unknown(_)))
            {
                return true;
            }
        }
        self.fields.iter().any(|(_, v)| matches!(v, Value::Msg(m) if m.has_missing_required()))
    }

    /// Names of required fields that are missing, recursively, as dotted paths.
    pub fn missing_required(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_missing("", &mut out);
        out
    }

    fn collect_missing(&self, prefix: &str, out: &mut Vec<String>) {
        for f in self.ty.desc().fields {
            let present = self.fields.iter().any(|(n, v)| *n == f.number && !matches!(v, Value::Unknown(_)));
            if f.label == Label::Required && !present {
                out.push(format!("{prefix}{}", f.name));
            }
        }
        let mut seen: Vec<(u32, usize)> = Vec::new();
        for (n, v) in &self.fields {
            if let Value::Msg(m) = v {
                let Some(idx) = self.ty.desc().field_index(*n) else { continue };
                let f = &self.ty.desc().fields[idx];
                let count = match seen.iter_mut().find(|(num, _)| num == n) {
                    Some(e) => {
                        e.1 += 1;
                        e.1 - 1
                    }
                    None => {
                        seen.push((*n, 1));
                        0
                    }
                };
                let p = if f.label == Label::Repeated {
                    format!("{prefix}{}[{count}].", f.name)
                } else {
                    format!("{prefix}{}.", f.name)
                };
                m.collect_missing(&p, out);
            }
        }
    }
}

impl Value {
    /// Integer-like value as u64.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(v) => Some(*v),
            Value::Int(v) => Some(*v as u64),
            Value::Enum(v) => Some(*v as i64 as u64),
            Value::Bool(b) => Some(*b as u64),
            _ => None,
        }
    }

    /// Integer-like value as i64.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Uint(v) => Some(*v as i64),
            Value::Int(v) => Some(*v),
            Value::Enum(v) => Some(*v as i64),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Varints

/// Read a varint at `*pos`, advancing it. Returns None on truncation or overflow.
#[inline(always)]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Append a varint.
#[inline]
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length of a varint.
#[inline]
pub fn varint_len(v: u64) -> usize {
    ((64 - (v | 1).leading_zeros() as usize) + 6) / 7
}

fn zigzag_decode(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

// ---------------------------------------------------------------------------
// Decoding

fn wire_type_of(ty: Type) -> u8 {
    match ty {
        Type::Double | Type::Fixed64 | Type::Sfixed64 => 1,
        Type::Float | Type::Fixed32 | Type::Sfixed32 => 5,
        Type::String | Type::Bytes | Type::Message(_) => 2,
        _ => 0,
    }
}

/// Turn a raw varint into a typed value; None when it does not fit the type
/// (the field is then kept as unknown, so nothing is lost).
fn varint_value(ty: Type, v: u64) -> Option<Value> {
    Some(match ty {
        Type::Int32 => {
            let i = v as i64;
            if i < i32::MIN as i64 || i > i32::MAX as i64 {
                return None;
            }
            Value::Int(i)
        }
        Type::Int64 => Value::Int(v as i64),
        Type::Uint32 => {
            if v > u32::MAX as u64 {
                return None;
            }
            Value::Uint(v)
        }
        Type::Uint64 => Value::Uint(v),
        Type::Sint32 => {
            if v > u32::MAX as u64 {
                return None;
            }
            Value::Int(zigzag_decode(v) as i32 as i64)
        }
        Type::Sint64 => Value::Int(zigzag_decode(v)),
        Type::Bool => match v {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return None,
        },
        Type::Enum(_) => {
            let i = v as i64;
            if i < i32::MIN as i64 || i > i32::MAX as i64 {
                return None;
            }
            Value::Enum(i as i32)
        }
        _ => return None,
    })
}

fn fixed32_value(ty: Type, v: u32) -> Option<Value> {
    Some(match ty {
        Type::Fixed32 => Value::Uint(v as u64),
        Type::Sfixed32 => Value::Int(v as i32 as i64),
        Type::Float => Value::Float(f32::from_bits(v) as f64),
        _ => return None,
    })
}

fn fixed64_value(ty: Type, v: u64) -> Option<Value> {
    Some(match ty {
        Type::Fixed64 => Value::Uint(v),
        Type::Sfixed64 => Value::Int(v as i64),
        Type::Double => Value::Float(f64::from_bits(v)),
        _ => return None,
    })
}

/// The value decode makes of a scalar field of type `ty` read with wire
/// type `wt` (0 varint, 1 fixed64, 5 fixed32; `raw` holds the bits), or
/// None where decode keeps it as unknown.  Packed elements of `ty` have
/// the wire type [`packed_wire_type`].
#[inline]
pub(crate) fn scalar_value(ty: Type, wt: u8, raw: u64) -> Option<Value> {
    match wt {
        0 if wire_type_of(ty) == 0 => varint_value(ty, raw),
        1 => fixed64_value(ty, raw),
        5 => fixed32_value(ty, u32::try_from(raw).ok()?),
        _ => None,
    }
}

/// The wire type of the elements of a packed run of `ty`.
#[inline]
pub(crate) fn packed_wire_type(ty: Type) -> u8 {
    wire_type_of(ty)
}

fn decode_message(ty: MsgId, buf: &[u8], depth: usize) -> Result<Message> {
    if depth > MAX_DEPTH {
        return Err(Error::malformed("messages nested too deeply"));
    }
    let desc = ty.desc();
    // Most fields take 2 to 10 bytes on the wire: size the list once.
    let mut fields: Vec<(u32, Value)> = Vec::with_capacity((buf.len() / 3).min(desc.fields.len() + 4));
    let mut pos = 0usize;
    let mut sorted = true;
    let mut last = 0u32;
    while pos < buf.len() {
        let start = pos;
        let key = read_varint(buf, &mut pos)
            .ok_or_else(|| Error::malformed(format!("bad field key at byte {start} of the message")))?;
        let number = key >> 3;
        let wt = (key & 7) as u8;
        if number == 0 || number > u32::MAX as u64 >> 3 {
            return Err(Error::malformed(format!("invalid field number {number} at byte {start} of the message")));
        }
        let number = number as u32;
        let field = desc.field_index(number).map(|i| &desc.fields[i]);
        let fname = || field.map(|f| f.name.to_string()).unwrap_or_else(|| format!("#{number}"));
        let truncated = || Error::malformed(format!("field {} truncated at byte {start} of the message", fname()));
        let mut push = |n: u32, v: Value, fields: &mut Vec<(u32, Value)>| {
            if n < last {
                sorted = false;
            }
            last = n;
            fields.push((n, v));
        };
        match wt {
            0 => {
                let v = read_varint(buf, &mut pos).ok_or_else(truncated)?;
                let val = field
                    .and_then(|f| if wire_type_of(f.ty) == 0 { varint_value(f.ty, v) } else { None })
                    .unwrap_or(Value::Unknown(Unknown::Varint(v)));
                push(number, val, &mut fields);
            }
            1 => {
                let b = buf.get(pos..pos + 8).ok_or_else(truncated)?;
                pos += 8;
                let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                let val = field.and_then(|f| fixed64_value(f.ty, v)).unwrap_or(Value::Unknown(Unknown::Fixed64(v)));
                push(number, val, &mut fields);
            }
            5 => {
                let b = buf.get(pos..pos + 4).ok_or_else(truncated)?;
                pos += 4;
                let v = u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
                let val = field.and_then(|f| fixed32_value(f.ty, v)).unwrap_or(Value::Unknown(Unknown::Fixed32(v)));
                push(number, val, &mut fields);
            }
            2 => {
                let len = read_varint(buf, &mut pos).ok_or_else(truncated)?;
                if len > (buf.len() - pos) as u64 {
                    return Err(Error::malformed(format!(
                        "field {} at byte {start} of the message claims {len} bytes, {} left",
                        fname(),
                        buf.len() - pos
                    )));
                }
                let data = &buf[pos..pos + len as usize];
                pos += len as usize;
                match field.map(|f| (f, f.ty)) {
                    Some((_, Type::String)) => push(number, Value::Str(data.to_vec()), &mut fields),
                    Some((_, Type::Bytes)) => push(number, Value::Bytes(data.to_vec()), &mut fields),
                    Some((f, Type::Message(sub))) => {
                        let m = decode_message(sub, data, depth + 1).map_err(|e| e.in_field(f.name))?;
                        push(number, Value::Msg(m), &mut fields);
                    }
                    Some((f, ty)) if f.label == Label::Repeated => {
                        // A packed run of scalars: unpack it; if any element
                        // does not fit, keep the whole run as unknown.
                        match unpack(ty, data) {
                            Some(vals) => {
                                for v in vals {
                                    push(number, v, &mut fields);
                                }
                            }
                            None => push(number, Value::Unknown(Unknown::Len(data.to_vec())), &mut fields),
                        }
                    }
                    _ => push(number, Value::Unknown(Unknown::Len(data.to_vec())), &mut fields),
                }
            }
            _ => {
                return Err(Error::malformed(format!(
                    "unsupported wire type {wt} for field {} at byte {start} of the message",
                    fname()
                )))
            }
        }
    }
    if !sorted {
        fields.sort_by_key(|(n, _)| *n);
    }
    Ok(Message { ty, fields })
}

/// Whether [`Message::decode`] of `buf` as a `ty` would succeed, without
/// making the message: the same walk over keys, lengths and nested
/// messages, with nothing kept.  (Values that do not fit their field
/// decode as unknown fields, not errors, so only the framing counts.)
pub fn decodes(ty: MsgId, buf: &[u8]) -> bool {
    decodes_at(ty, buf, 0)
}

fn decodes_at(ty: MsgId, buf: &[u8], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let desc = ty.desc();
    let mut pos = 0usize;
    while pos < buf.len() {
        let Some(key) = read_varint(buf, &mut pos) else { return false };
        let number = key >> 3;
        if number == 0 || number > u32::MAX as u64 >> 3 {
            return false;
        }
        let fits = match key & 7 {
            0 => read_varint(buf, &mut pos).is_some(),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                pos = pos.saturating_add(n);
                pos <= buf.len()
            }
            2 => {
                let Some(len) = read_varint(buf, &mut pos) else { return false };
                let Some(data) = usize::try_from(len).ok().and_then(|l| buf.get(pos..pos.checked_add(l)?)) else {
                    return false;
                };
                pos += data.len();
                match desc.field_index(number as u32).and_then(|i| desc.fields.get(i)).map(|f| f.ty) {
                    Some(Type::Message(sub)) => decodes_at(sub, data, depth + 1),
                    _ => true,
                }
            }
            _ => false,
        };
        if !fits {
            return false;
        }
    }
    true
}

fn unpack(ty: Type, data: &[u8]) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    let mut pos = 0;
    match wire_type_of(ty) {
        0 => {
            while pos < data.len() {
                let v = read_varint(data, &mut pos)?;
                out.push(varint_value(ty, v)?);
            }
        }
        1 => {
            if data.len() % 8 != 0 {
                return None;
            }
            for c in data.chunks_exact(8) {
                out.push(fixed64_value(ty, u64::from_le_bytes(c.try_into().ok()?))?);
            }
        }
        5 => {
            if data.len() % 4 != 0 {
                return None;
            }
            for c in data.chunks_exact(4) {
                out.push(fixed32_value(ty, u32::from_le_bytes(c.try_into().ok()?))?);
            }
        }
        _ => return None,
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Encoding

fn key(out: &mut Vec<u8>, number: u32, wt: u8) {
    write_varint(out, ((number as u64) << 3) | wt as u64);
}

fn encode_message(m: &Message, out: &mut Vec<u8>) {
    let desc = m.ty.desc();
    for (number, value) in &m.fields {
        let number = *number;
        let ty = desc.field_index(number).map(|i| desc.fields[i].ty);
        match value {
            Value::Unknown(u) => match u {
                Unknown::Varint(v) => {
                    key(out, number, 0);
                    write_varint(out, *v);
                }
                Unknown::Fixed64(v) => {
                    key(out, number, 1);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Unknown::Fixed32(v) => {
                    key(out, number, 5);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Unknown::Len(d) => {
                    key(out, number, 2);
                    write_varint(out, d.len() as u64);
                    out.extend_from_slice(d);
                }
            },
            Value::Msg(sub) => {
                key(out, number, 2);
                let mut tmp = Vec::new();
                encode_message(sub, &mut tmp);
                write_varint(out, tmp.len() as u64);
                out.extend_from_slice(&tmp);
            }
            Value::Str(d) | Value::Bytes(d) => {
                key(out, number, 2);
                write_varint(out, d.len() as u64);
                out.extend_from_slice(d);
            }
            Value::Bool(b) => {
                key(out, number, 0);
                out.push(*b as u8);
            }
            Value::Enum(v) => {
                key(out, number, 0);
                write_varint(out, *v as i64 as u64);
            }
            Value::Int(v) => match ty {
                Some(Type::Sint32) | Some(Type::Sint64) => {
                    key(out, number, 0);
                    write_varint(out, zigzag_encode(*v));
                }
                Some(Type::Sfixed32) => {
                    key(out, number, 5);
                    out.extend_from_slice(&(*v as i32).to_le_bytes());
                }
                Some(Type::Sfixed64) => {
                    key(out, number, 1);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                _ => {
                    key(out, number, 0);
                    write_varint(out, *v as u64);
                }
            },
            Value::Uint(v) => match ty {
                Some(Type::Fixed32) => {
                    key(out, number, 5);
                    out.extend_from_slice(&(*v as u32).to_le_bytes());
                }
                Some(Type::Fixed64) => {
                    key(out, number, 1);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                _ => {
                    key(out, number, 0);
                    write_varint(out, *v);
                }
            },
            Value::Float(f) => match ty {
                Some(Type::Float) => {
                    key(out, number, 5);
                    out.extend_from_slice(&(*f as f32).to_bits().to_le_bytes());
                }
                _ => {
                    key(out, number, 1);
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            write_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
            let mut p = 0;
            assert_eq!(read_varint(&b, &mut p), Some(v));
            assert_eq!(p, b.len());
        }
    }

    #[test]
    fn varint_overflow_is_rejected() {
        let b = [0xffu8; 11];
        let mut p = 0;
        assert_eq!(read_varint(&b, &mut p), None);
    }

    #[test]
    fn zigzag() {
        for v in [0i64, -1, 1, -2, i64::MIN, i64::MAX] {
            assert_eq!(zigzag_decode(zigzag_encode(v)), v);
        }
        assert_eq!(zigzag_encode(-1), 1);
    }
}
