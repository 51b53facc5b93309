//! The mapping between messages and crit's JSON, raw and nice.
//!
//! Decode: present fields in field-number order; enums by name; bytes as
//! `encodebytes` base64 (unix socket names as quoted-printable); in nice
//! mode, the `(criu)` options pick hex, `MAJ:MIN`, flag names, dictionary
//! names and IP address strings.  Fields the schema does not know travel
//! under the key [`UNKNOWN_KEY`], so nothing is lost.
//!
//! Encode: every form crit accepts, field by field (crit's `dict2pb`).

use std::io::Write;

use super::maps;
use super::out::{B64Lines, JsonOut};
use super::parse::Json;
use super::pyfmt;
use crate::error::{Error, Result};
use crate::schema::{FieldDesc, Label, MsgId, Type};
use crate::wire::{Message, Unknown, Value};

/// The JSON key under which fields unknown to the schema are kept.
///
/// Its value is a list of `{"field": N, "<wire type>": value}` objects,
/// wire type one of `varint`, `fixed64`, `fixed32` (integers) or `len`
/// (base64 of the raw bytes).  crit ignores the key; we encode it back.
pub const UNKNOWN_KEY: &str = "__unknown";

/// How to render.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Nice mode (crit's `--pretty`): options such as hex apply.
    pub nice: bool,
}

/// Write the members of a message into an open JSON object.
pub fn write_fields<W: Write>(out: &mut JsonOut<W>, m: &Message, style: Style, hex: bool) -> Result<()> {
    let desc = m.ty.desc();
    let mut unknown: Vec<(u32, &Unknown)> = Vec::new();
    let fields = &m.fields;
    let mut i = 0;
    while i < fields.len() {
        let number = fields[i].0;
        let mut j = i;
        while j < fields.len() && fields[j].0 == number {
            j += 1;
        }
        let group = &fields[i..j];
        i = j;
        let Some(fi) = desc.field_index(number) else {
            for (n, v) in group {
                if let Value::Unknown(u) = v {
                    unknown.push((*n, u));
                }
            }
            continue;
        };
        let f = &desc.fields[fi];
        let mut n_known = 0usize;
        let mut last: Option<&Value> = None;
        for (n, v) in group {
            match v {
                Value::Unknown(u) => unknown.push((*n, u)),
                v => {
                    n_known += 1;
                    last = Some(v);
                }
            }
        }
        let Some(last) = last else { continue };
        let known = group.iter().map(|(_, v)| v).filter(|v| !matches!(v, Value::Unknown(_)));
        out.key_ident(f.name)?;
        if f.label == Label::Repeated {
            if style.nice && f.opts.ipadd && (n_known == 1 || n_known == 4) {
                if let Some(addr) = ip_text(known.clone()) {
                    out.begin_array()?;
                    out.elem()?;
                    out.write_str(addr.as_bytes())?;
                    out.end_array()?;
                    continue;
                }
            }
            out.begin_array()?;
            for v in known {
                out.elem()?;
                write_value(out, f, v, style, hex)?;
            }
            out.end_array()?;
        } else {
            // A singular field seen more than once: the last one counts.
            write_value(out, f, last, style, hex)?;
        }
    }
    if !unknown.is_empty() {
        out.key(UNKNOWN_KEY)?;
        out.begin_array()?;
        for (n, u) in unknown {
            out.elem()?;
            out.begin_object()?;
            out.key("field")?;
            out.int(n)?;
            match u {
                Unknown::Varint(v) => {
                    out.key("varint")?;
                    out.int(*v)?;
                }
                Unknown::Fixed64(v) => {
                    out.key("fixed64")?;
                    out.int(*v)?;
                }
                Unknown::Fixed32(v) => {
                    out.key("fixed32")?;
                    out.int(*v)?;
                }
                Unknown::Len(d) => {
                    out.key("len")?;
                    write_b64(out, d)?;
                }
            }
            out.end_object()?;
        }
        out.end_array()?;
    }
    Ok(())
}

/// A whole message as a JSON object.
pub fn write_message<W: Write>(out: &mut JsonOut<W>, m: &Message, style: Style, hex: bool) -> Result<()> {
    out.begin_object()?;
    write_fields(out, m, style, hex)?;
    out.end_object()
}

/// Bytes as crit's base64 string.
pub fn write_b64<W: Write>(out: &mut JsonOut<W>, data: &[u8]) -> Result<()> {
    out.raw("\"")?;
    let mut e = B64Lines::new();
    e.feed(out.buf(), data)?;
    e.finish(out.buf())?;
    out.raw("\"")
}

fn ip_text<'a>(vals: impl Iterator<Item = &'a Value>) -> Option<String> {
    let words: Option<Vec<u32>> = vals.map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok())).collect();
    let words = words?;
    match words.len() {
        1 => Some(pyfmt::ipv4(words[0])),
        4 => Some(pyfmt::ipv6([words[0], words[1], words[2], words[3]])),
        // crit crashes on 2 or 3 words and drops words past 4: we print
        // the raw numbers instead, losing nothing.
        _ => None,
    }
}

fn write_value<W: Write>(out: &mut JsonOut<W>, f: &FieldDesc, v: &Value, style: Style, hex: bool) -> Result<()> {
    match v {
        Value::Msg(m) => write_message(out, m, style, hex || f.opts.hex),
        Value::Bytes(b) => write_bytes(out, f, b),
        Value::Str(s) => out.write_str(s),
        Value::Unknown(_) => Ok(()),
        v => write_scalar(out, f, v, style, hex),
    }
}

/// A bytes field's value: base64, or quoted-printable for unix socket names.
pub(crate) fn write_bytes<W: Write>(out: &mut JsonOut<W>, f: &FieldDesc, b: &[u8]) -> Result<()> {
    if f.opts.conv == Some("unix_name") {
        out.write_str(pyfmt::qp_encode(b).as_bytes())
    } else {
        write_b64(out, b)
    }
}

/// A scalar value (enum, bool, float or integer) of field `f`; `hex` is
/// the option inherited from the enclosing fields.  Other values write
/// nothing.
#[inline(always)]
pub(crate) fn write_scalar<W: Write>(
    out: &mut JsonOut<W>,
    f: &FieldDesc,
    v: &Value,
    style: Style,
    hex: bool,
) -> Result<()> {
    // Plain numbers first: raw mode, or no option that gives a text.
    let plain = !style.nice || !int_text_options(f, hex);
    match v {
        Value::Uint(u) if plain => out.uint(*u),
        Value::Int(i) if plain => out.sint(*i),
        v => write_scalar_text(out, f, v, style, hex),
    }
}

/// Whether nice mode may print an integer of field `f` as text (see
/// [`write_nice_int`]); `hex` is the inherited option.
#[inline(always)]
fn int_text_options(f: &FieldDesc, hex: bool) -> bool {
    hex || f.opts.hex || f.opts.dev || f.opts.flags.is_some() || f.opts.dict.is_some()
}

fn write_scalar_text<W: Write>(out: &mut JsonOut<W>, f: &FieldDesc, v: &Value, style: Style, hex: bool) -> Result<()> {
    match v {
        Value::Enum(n) => {
            let name = match f.ty {
                Type::Enum(e) => e.desc().name_of(*n),
                _ => None,
            };
            match name {
                Some(name) => out.write_ident(name),
                // A value the schema does not name: kept as its number.
                None => out.int(*n),
            }
        }
        Value::Bool(b) => out.raw(if *b { "true" } else { "false" }),
        Value::Float(x) => out.raw(&py_float(*x)),
        Value::Int(i) => {
            if style.nice && write_nice_int(out, f, *i as i128, hex || f.opts.hex)? {
                return Ok(());
            }
            out.sint(*i)
        }
        Value::Uint(u) => {
            if style.nice && write_nice_int(out, f, *u as i128, hex || f.opts.hex)? {
                return Ok(());
            }
            out.uint(*u)
        }
        _ => Ok(()),
    }
}

/// Write the nice-mode text of an integer field and return true, or write
/// nothing and return false for a plain number.
fn write_nice_int<W: Write>(out: &mut JsonOut<W>, f: &FieldDesc, n: i128, hex: bool) -> Result<bool> {
    // Hex, device and flag texts are ASCII with nothing to escape.
    let quoted = |out: &mut JsonOut<W>, text: &dyn Fn(&mut Vec<u8>)| {
        let buf = out.buf();
        buf.push(b'"');
        text(buf);
        buf.push(b'"');
    };
    if hex {
        quoted(out, &|b| pyfmt::hex_into(b, n));
        return Ok(true);
    }
    if f.opts.dev {
        let text = if f.opts.odev { pyfmt::odev(n as u64) } else { pyfmt::dev(n) };
        out.write_str(text.as_bytes())?;
        return Ok(true);
    }
    if let Some(name) = f.opts.flags {
        match maps::flag_map(name) {
            Some(map) => quoted(out, &|b| pyfmt::map_flags_into(b, n, map)),
            None => quoted(out, &|b| pyfmt::hex_into(b, n)),
        }
        return Ok(true);
    }
    if let Some(d) = f.opts.dict {
        if let Some(name) = maps::dict(d, f.name).and_then(|d| pyfmt::dict_name(n, d)) {
            out.write_ident(name)?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn py_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x:?}")
    }
}

// ---------------------------------------------------------------------------
// JSON → message

/// Build a message of type `ty` from a JSON object, as crit's `dict2pb`
/// does; `skip` names keys handled elsewhere (such as `extra`).
pub fn message_from_json(ty: MsgId, j: &Json) -> Result<Message> {
    message_from_json_at(ty, j, 0)
}

fn message_from_json_at(ty: MsgId, j: &Json, depth: usize) -> Result<Message> {
    if depth > crate::wire::MAX_DEPTH {
        return Err(Error::value("messages nested too deeply"));
    }
    let Json::Obj(_) = j else {
        return Err(Error::value(format!("expected an object for {}, found {}", ty.desc().name, j.type_name())));
    };
    let desc = ty.desc();
    let mut m = Message::new(ty);
    for f in desc.fields {
        let Some(v) = j.get(f.name) else { continue };
        field_from_json(&mut m, f, v, depth).map_err(|e| e.in_field(f.name))?;
    }
    if let Some(u) = j.get(UNKNOWN_KEY) {
        unknown_from_json(&mut m, u).map_err(|e| e.in_field(UNKNOWN_KEY))?;
    }
    Ok(m)
}

pub(crate) fn field_from_json(m: &mut Message, f: &'static FieldDesc, v: &Json, depth: usize) -> Result<()> {
    if f.label == Label::Repeated {
        let Json::Arr(items) = v else {
            return Err(Error::value(format!("expected a list, found {}", v.type_name())));
        };
        if f.opts.ipadd {
            if let Some(Json::Str(s)) = items.first() {
                let text = String::from_utf8_lossy(s);
                let words = pyfmt::parse_ip(text.trim())
                    .ok_or_else(|| Error::value(format!("{text:?} is not an IP address")).in_index(0))?;
                for w in words {
                    m.fields.push((f.number, Value::Uint(w as u64)));
                }
                return Ok(());
            }
        }
        for (i, item) in items.iter().enumerate() {
            let val = scalar_or_msg(f, item, depth).map_err(|e| e.in_index(i))?;
            m.fields.push((f.number, val));
        }
        Ok(())
    } else {
        let val = scalar_or_msg(f, v, depth)?;
        m.fields.push((f.number, val));
        Ok(())
    }
}

pub(crate) fn scalar_or_msg(f: &'static FieldDesc, v: &Json, depth: usize) -> Result<Value> {
    match f.ty {
        Type::Message(sub) => Ok(Value::Msg(message_from_json_at(sub, v, depth + 1)?)),
        Type::Bytes => {
            let Json::Str(s) = v else {
                return Err(Error::value(format!("expected a string, found {}", v.type_name())));
            };
            if f.opts.conv == Some("unix_name") {
                Ok(Value::Bytes(pyfmt::qp_decode(s)))
            } else {
                Ok(Value::Bytes(pyfmt::b64_decode(s).map_err(Error::value)?))
            }
        }
        Type::String => Ok(Value::Str(py_str(v))),
        Type::Bool => Ok(Value::Bool(v.truthy())),
        Type::Enum(e) => match v {
            Json::Str(s) => {
                let name = String::from_utf8_lossy(s);
                e.desc()
                    .number_of(&name)
                    .map(Value::Enum)
                    .ok_or_else(|| Error::value(format!("{name:?} is not a value of enum {}", e.desc().name)))
            }
            // A number: the form we write for values the schema does not name.
            Json::Int(i) => {
                i32::try_from(*i).map(Value::Enum).map_err(|_| Error::value(format!("enum value {i} out of range")))
            }
            _ => Err(Error::value(format!("expected an enum name, found {}", v.type_name()))),
        },
        Type::Float | Type::Double => match v {
            Json::Int(i) => Ok(Value::Float(*i as f64)),
            Json::Float(x) => Ok(Value::Float(*x)),
            _ => Err(Error::value(format!("expected a number, found {}", v.type_name()))),
        },
        ty => {
            let n = int_from_json(f, v)?;
            int_value(ty, n)
        }
    }
}

/// An integer field's value from any form crit accepts.
fn int_from_json(f: &FieldDesc, v: &Json) -> Result<i128> {
    match v {
        Json::Int(i) => Ok(*i),
        Json::Float(x) if x.is_finite() => Ok(x.trunc() as i128),
        Json::Bool(b) => Ok(*b as i128),
        Json::Str(s) => {
            let s = String::from_utf8_lossy(s);
            let bad = || Error::value(format!("invalid value {s:?}"));
            if f.opts.dev {
                return pyfmt::parse_dev(&s, f.opts.odev).ok_or_else(bad);
            }
            if let Some(map) = f.opts.flags.and_then(maps::flag_map) {
                return pyfmt::unmap_flags(&s, map).map_err(|e| Error::value(format!("invalid flags {s:?}: {e}")));
            }
            if let Some(d) = f.opts.dict.and_then(|d| maps::dict(d, f.name)) {
                return pyfmt::dict_value(&s, d).ok_or_else(bad);
            }
            // Our own extension: hex text Python prints for negatives (0x-5).
            if let Some(rest) = s.trim().strip_prefix("0x-") {
                return pyfmt::int0(&format!("0x{rest}")).map(|v| -v).ok_or_else(bad);
            }
            pyfmt::int0(&s).ok_or_else(bad)
        }
        _ => Err(Error::value(format!("expected an integer, found {}", v.type_name()))),
    }
}

fn int_value(ty: Type, n: i128) -> Result<Value> {
    let range = |lo: i128, hi: i128| -> Result<()> {
        if n < lo || n > hi {
            Err(Error::value(format!("value {n} out of range")))
        } else {
            Ok(())
        }
    };
    Ok(match ty {
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            range(i32::MIN as i128, i32::MAX as i128)?;
            Value::Int(n as i64)
        }
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            range(i64::MIN as i128, i64::MAX as i128)?;
            Value::Int(n as i64)
        }
        Type::Uint32 | Type::Fixed32 => {
            range(0, u32::MAX as i128)?;
            Value::Uint(n as u64)
        }
        _ => {
            range(0, u64::MAX as i128)?;
            Value::Uint(n as u64)
        }
    })
}

/// Python's `str(v)` for the JSON value types.
fn py_str(v: &Json) -> Vec<u8> {
    match v {
        Json::Str(s) => s.clone(),
        Json::Int(i) => i.to_string().into_bytes(),
        Json::Float(x) => py_float(*x).into_bytes(),
        Json::Bool(b) => (if *b { "True" } else { "False" }).as_bytes().to_vec(),
        Json::Null => b"None".to_vec(),
        other => format!("{other:?}").into_bytes(),
    }
}

fn unknown_from_json(m: &mut Message, u: &Json) -> Result<()> {
    unknown_fields(u, |number, val| m.insert_sorted(number, Value::Unknown(val)))
}

/// The fields of an [`UNKNOWN_KEY`] list, handed to `put` one by one in
/// list order (an error stops at the first bad one).
pub(crate) fn unknown_fields(u: &Json, mut put: impl FnMut(u32, Unknown)) -> Result<()> {
    let Json::Arr(items) = u else {
        return Err(Error::value("expected a list of unknown fields"));
    };
    for (i, it) in items.iter().enumerate() {
        let err = |s: &str| Error::value(s.to_string()).in_index(i);
        let number = match it.get("field") {
            Some(Json::Int(n)) if *n > 0 && *n < (1 << 29) => *n as u32,
            _ => return Err(err("expected a field number in \"field\"")),
        };
        let int = |k: &str, max: u64| -> Option<u64> {
            match it.get(k) {
                Some(Json::Int(n)) if *n >= 0 && *n <= max as i128 => Some(*n as u64),
                _ => None,
            }
        };
        let val = if let Some(v) = int("varint", u64::MAX) {
            Unknown::Varint(v)
        } else if let Some(v) = int("fixed64", u64::MAX) {
            Unknown::Fixed64(v)
        } else if let Some(v) = int("fixed32", u32::MAX as u64) {
            Unknown::Fixed32(v as u32)
        } else if let Some(Json::Str(s)) = it.get("len") {
            Unknown::Len(pyfmt::b64_decode(s).map_err(|e| err(&e))?)
        } else {
            return Err(err("expected one of varint, fixed64, fixed32 or len"));
        };
        put(number, val);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Streaming: JSON text straight into a message.

/// Parse the next JSON value, an object, straight into a message of type
/// `ty`: no tree of the object is built, keys are matched against the
/// schema as they come.  Field values are converted exactly as
/// [`message_from_json`] converts them (crit's `dict2pb` rules).  At the
/// top level (`extra` given) the `extra` member is kept as a value for the
/// payload; other unknown keys are skipped.
pub fn message_from_parser<R: std::io::Read>(
    p: &mut super::parse::Parser<R>,
    ty: MsgId,
    extra: Option<&mut Option<Json>>,
) -> Result<Message> {
    let mut key = Vec::with_capacity(32);
    parse_message(p, ty, extra, 0, &mut key)
}

fn parse_message<R: std::io::Read>(
    p: &mut super::parse::Parser<R>,
    ty: MsgId,
    mut extra: Option<&mut Option<Json>>,
    depth: usize,
    key: &mut Vec<u8>,
) -> Result<Message> {
    if depth > crate::wire::MAX_DEPTH {
        return Err(p.error("messages nested too deeply"));
    }
    let desc = ty.desc();
    match p.skip_ws()? {
        Some(b'{') => {}
        _ => {
            let v = p.value()?;
            return Err(Error::value(format!("expected an object for {}, found {}", desc.name, v.type_name())));
        }
    }
    p.expect(b'{', "'{'")?;
    let mut m = Message::new(ty);
    let mut seen: u128 = 0;
    let mut sorted = true;
    let mut last = 0u32;
    if p.skip_ws()? == Some(b'}') {
        p.expect(b'}', "'}'")?;
        return Ok(m);
    }
    loop {
        p.key_into(key)?;
        let found = desc.fields.iter().enumerate().find(|(_, f)| f.name.as_bytes() == key.as_slice());
        match found {
            Some((idx, f)) => {
                let bit = 1u128 << (idx % 128);
                if seen & bit != 0 || idx >= 128 {
                    // A repeated key: the last one counts, as in Python.
                    m.fields.retain(|(n, _)| *n != f.number);
                }
                seen |= bit;
                if f.number < last {
                    sorted = false;
                }
                last = f.number;
                parse_field(p, &mut m, f, depth, key).map_err(|e| locate(e, p).in_field(f.name))?;
            }
            None => {
                let v = p.value()?;
                match key.as_slice() {
                    b"extra" if extra.is_some() => {
                        if let Some(x) = extra.as_deref_mut() {
                            *x = Some(v);
                        }
                    }
                    b"__unknown" => unknown_from_json(&mut m, &v).map_err(|e| locate(e, p).in_field(UNKNOWN_KEY))?,
                    _ => {}
                }
            }
        }
        if !p.next_or_close(b'}')? {
            break;
        }
    }
    if !sorted {
        m.fields.sort_by_key(|(n, _)| *n);
    }
    Ok(m)
}

/// Give a value error the parser's position.
pub(crate) fn locate<R: std::io::Read>(mut e: Error, p: &super::parse::Parser<R>) -> Error {
    if e.loc.line_col.is_none() {
        e.loc.line_col = p.error("").loc.line_col;
    }
    e
}

fn parse_field<R: std::io::Read>(
    p: &mut super::parse::Parser<R>,
    m: &mut Message,
    f: &'static FieldDesc,
    depth: usize,
    key: &mut Vec<u8>,
) -> Result<()> {
    match (f.label, f.ty) {
        (Label::Repeated, Type::Message(sub)) => {
            if p.skip_ws()? != Some(b'[') {
                let v = p.value()?;
                return Err(Error::value(format!("expected a list, found {}", v.type_name())));
            }
            p.expect(b'[', "'['")?;
            if p.skip_ws()? == Some(b']') {
                return p.expect(b']', "']'");
            }
            let mut i = 0;
            loop {
                let sm = parse_message(p, sub, None, depth + 1, key).map_err(|e| e.in_index(i))?;
                m.fields.push((f.number, Value::Msg(sm)));
                i += 1;
                if !p.next_or_close(b']')? {
                    return Ok(());
                }
            }
        }
        (_, Type::Message(sub)) => {
            let sm = parse_message(p, sub, None, depth + 1, key)?;
            m.fields.push((f.number, Value::Msg(sm)));
            Ok(())
        }
        _ => {
            // Scalars (and lists of them) are small: take the value whole.
            let v = p.value()?;
            field_from_json(m, f, &v, depth)
        }
    }
}
