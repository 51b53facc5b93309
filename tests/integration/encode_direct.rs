//! encode's direct path (JSON text straight to wire bytes,
//! src/json/direct_in.rs) against the message path it stands in for (JSON
//! parsed into a `Message`, then encoded): the same image bytes, or the
//! same error (kind, text, line and column, entry, field), for
//!
//! - the JSON of every fixture image, ours (raw and nice) and the
//!   reference crit's goldens;
//! - thousands of generated messages of every schema type, in every form
//!   encode accepts and many it refuses: keys shuffled and given twice,
//!   unknown keys and `"__unknown"` lists, nice texts (hex, flags, devices,
//!   dictionary names, addresses), numbers as strings, floats and
//!   booleans, `str()` of non-strings, values out of range, random white
//!   space; and images of every kind without payloads made of them;
//! - broken documents: every prefix of a fixture's JSON, and random byte
//!   changes.

use crit::error::Error;
use crit::json::direct_in::DirectEncoder;
use crit::json::edit::write_value;
use crit::json::map::{message_from_parser, write_message, Style};
use crit::json::maps::{dict, flag_map};
use crit::json::out::B64Lines;
use crit::json::parse::parse_slice;
use crit::json::{pyfmt, Json, JsonOut, Parser};
use crit::magic::{Body, Payload, KINDS};
use crit::schema::{FieldDesc, Label, MsgId, Type, MESSAGES};
use crit::transcode::{encode, encode_through_messages};
use crit::wire::Message;

use crate::util::*;

/// An outcome that can be compared: the bytes, or the whole error.
fn shown(r: crit::Result<Vec<u8>>) -> Result<Vec<u8>, String> {
    r.map_err(|e: Error| format!("{e} | {e:?}"))
}

/// Both paths over one image's JSON; a description of the difference.
fn differ(text: &[u8]) -> Option<String> {
    let direct = shown(encode(text, Vec::new()));
    let old = shown(encode_through_messages(text, Vec::new()));
    if direct == old {
        return None;
    }
    Some(format!("direct {:?}\nmessages {:?}", direct.map(|b| b.len()), old.map(|b| b.len())))
}

/// Whether encode takes the direct path for images of this kind.
fn direct_kind(body: Body) -> bool {
    matches!(body, Body::Pagemap | Body::Entries(_, Payload::None))
}

#[test]
fn fixture_json_gives_the_same_images_both_ways() {
    let mut problems = Vec::new();
    let (mut checked, mut direct) = (0, 0);
    for img in all_images() {
        if is_raw_image(&img) {
            continue;
        }
        let data = std::fs::read(&img).unwrap();
        let Ok(rd) = crit::image::ImageReader::open(&data[..]) else { continue };
        let kind = rd.kind();
        for nice in [false, true] {
            let Ok(json) = decode_bytes(&data, nice, false) else { continue };
            checked += 1;
            if direct_kind(kind.body) {
                direct += 1;
                // Ours must also give back the original image.
                match encode(&json[..], Vec::new()) {
                    Ok(b) if b == data => {}
                    Ok(_) => problems.push(format!("{} (nice {nice}): another image", img.display())),
                    Err(e) => problems.push(format!("{} (nice {nice}): {e}", img.display())),
                }
            }
            if let Some(d) = differ(&json) {
                problems.push(format!("{} (nice {nice}):\n{d}", img.display()));
            }
        }
    }
    // The reference crit's own JSON (and its --nopl output, refused).
    let mut golden = 0;
    for fx in image_dirs() {
        let Ok(rd) = std::fs::read_dir(golden_dir(&fx)) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with(".raw") || name.ends_with(".nice") || name.ends_with(".nopl")) {
                continue;
            }
            let text = std::fs::read(&p).unwrap();
            if !text.starts_with(b"{") {
                continue;
            }
            golden += 1;
            if let Some(d) = differ(&text) {
                problems.push(format!("{}:\n{d}", p.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert!(checked > 300 && direct > 200 && golden > 300, "{checked} images, {direct} direct, {golden} goldens");
}

// ---------------------------------------------------------------------------
// Generated JSON

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pct(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn s(text: &str) -> Json {
    Json::Str(text.as_bytes().to_vec())
}

fn b64(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = B64Lines::new();
    e.feed(&mut out, data).unwrap();
    e.finish(&mut out).unwrap();
    out
}

/// Integers near the edges of every type's range, and some others.
fn some_int(r: &mut Rng) -> i128 {
    let edges: [i128; 14] = [
        0,
        1,
        127,
        128,
        16384,
        i32::MAX as i128,
        i32::MAX as i128 + 1,
        u32::MAX as i128,
        u32::MAX as i128 + 1,
        i64::MAX as i128,
        u64::MAX as i128,
        u64::MAX as i128 + 1,
        -1,
        i32::MIN as i128,
    ];
    match r.below(5) {
        0 => *r.pick(&edges),
        1 => -(*r.pick(&edges)),
        2 => (r.next() >> r.below(64)) as i128,
        _ => r.below(100_000) as i128,
    }
}

/// An integer in range for `ty`, mostly.
fn int_for(r: &mut Rng, ty: Type) -> i128 {
    let n = some_int(r);
    if r.pct(8) {
        return n;
    }
    let (lo, hi): (i128, i128) = match ty {
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => (i32::MIN as i128, i32::MAX as i128),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => (i64::MIN as i128, i64::MAX as i128),
        Type::Uint32 | Type::Fixed32 => (0, u32::MAX as i128),
        _ => (0, u64::MAX as i128),
    };
    n.clamp(lo, hi)
}

/// A value of an integer field, in one of the forms encode reads (or not).
fn int_value(r: &mut Rng, f: &FieldDesc) -> Json {
    let n = int_for(r, f.ty);
    if let Some(map) = f.opts.flags.and_then(flag_map) {
        if r.pct(50) {
            if r.pct(3) {
                return s("NO_SUCH_FLAG | 0x1");
            }
            let text = pyfmt::map_flags(n.max(0), map);
            if r.pct(10) && !text.is_empty() {
                // A name twice: unmap_flags adds it twice.
                return Json::Str(format!("{text} | {text}").into_bytes());
            }
            if r.pct(5) {
                return Json::Str(format!(" {text}|{}", map[0].0).into_bytes());
            }
            return Json::Str(text.into_bytes());
        }
    }
    if f.opts.dev && r.pct(50) {
        let text = if f.opts.odev { pyfmt::odev(n as u64) } else { pyfmt::dev(n) };
        return Json::Str(text.into_bytes());
    }
    if let Some(d) = f.opts.dict.and_then(|d| dict(d, f.name)) {
        if r.pct(50) {
            return if r.pct(5) { s("NO_SUCH_NAME") } else { s(r.pick(d).1) };
        }
    }
    match r.below(30) {
        0..=4 => Json::Str(pyfmt::hex(n).into_bytes()),
        5 => Json::Str(if r.pct(50) { format!("0X{:X}", n.max(0)) } else { format!("0x{:X}", n.max(0)) }.into_bytes()),
        6 => Json::Str(format!(" {n} ").into_bytes()),
        7 => s(r.pick::<&str>(&["0o17", "0b101", "1_000", "+7", "-0x10", "0x", "", "twelve", "007", "0"])),
        8 => Json::Float(n as f64 + 0.5),
        9 => Json::Bool(r.pct(50)),
        10 => r.pick(&[Json::Null, Json::Arr(vec![Json::Int(1)]), Json::Obj(vec![]), Json::Float(f64::NAN)]).clone(),
        _ => Json::Int(n),
    }
}

fn text_value(r: &mut Rng) -> Json {
    match r.below(12) {
        0 => Json::Int(some_int(r)),
        1 => Json::Float(r.below(1000) as f64 / 8.0),
        2 => Json::Bool(r.pct(50)),
        3 => Json::Null,
        4 => Json::Arr(vec![Json::Int(1), s("x")]),
        5 => s("héllo \"wörld\" \\ 😀\t\u{7f}"),
        // Bytes that are not UTF-8 travel as \udcXX escapes.
        6 => Json::Str(r.bytes(30)),
        7 => Json::Str("x".repeat(r.below(300)).into_bytes()),
        _ => Json::Str(r.bytes(40).into_iter().map(|b| b' ' + b % 95).collect()),
    }
}

fn bytes_value(r: &mut Rng, f: &FieldDesc) -> Json {
    let data = r.bytes(200);
    if f.opts.conv == Some("unix_name") && r.pct(80) {
        return Json::Str(pyfmt::qp_encode(&data).into_bytes());
    }
    match r.below(20) {
        0 => s("QQ"),
        1 => s("QUJDR"),
        2 => s("QUJD\n===junk?!\n"),
        3 => Json::Int(7),
        4 => {
            // No line breaks.
            let t: Vec<u8> = b64(&data).into_iter().filter(|&c| c != b'\n').collect();
            Json::Str(t)
        }
        _ => Json::Str(b64(&data)),
    }
}

fn enum_value(r: &mut Rng, f: &FieldDesc) -> Json {
    let Type::Enum(e) = f.ty else { unreachable!() };
    let vals = e.desc().values;
    match r.below(20) {
        0 => Json::Int(r.pick(vals).1 as i128),
        1 => Json::Int(if r.pct(50) { 1000 + r.below(100) as i128 } else { -(r.below(3) as i128) - 1 }),
        2 => s("NO_SUCH_VALUE"),
        3 => Json::Int(1 << 40),
        4 => Json::Float(1.0),
        _ => s(r.pick(vals).0),
    }
}

fn scalar(r: &mut Rng, f: &FieldDesc) -> Json {
    match f.ty {
        Type::Bool => r
            .pick(&[
                Json::Bool(true),
                Json::Bool(false),
                Json::Bool(true),
                Json::Bool(false),
                Json::Int(0),
                Json::Int(2),
                s("false"),
                s(""),
                Json::Null,
                Json::Arr(vec![]),
            ])
            .clone(),
        Type::Float | Type::Double => r
            .pick(&[
                Json::Float(1.5),
                Json::Float(-0.0),
                Json::Int(3),
                Json::Int(1 << 60),
                Json::Float(1e300),
                Json::Float(f64::INFINITY),
                Json::Float(f64::NAN),
                s("1.5"),
            ])
            .clone(),
        Type::String => text_value(r),
        Type::Bytes => bytes_value(r, f),
        Type::Enum(_) => enum_value(r, f),
        _ => int_value(r, f),
    }
}

fn ip_list(r: &mut Rng) -> Json {
    let text = *r.pick(&["127.0.0.1", "10.1.2.3", "::1", "fe80::1:2", "::ffff:127.0.0.1", " 1.2.3.4 ", "bad ip"]);
    let mut items = vec![s(text)];
    if r.pct(20) {
        items.push(Json::Int(5));
    }
    Json::Arr(items)
}

fn field_value(r: &mut Rng, f: &FieldDesc, depth: usize) -> Json {
    if let Type::Message(sub) = f.ty {
        let one = |r: &mut Rng| {
            if r.pct(3) {
                r.pick(&[Json::Int(1), Json::Arr(vec![]), s("{}"), Json::Null]).clone()
            } else {
                object(r, sub, depth + 1)
            }
        };
        if f.label == Label::Repeated {
            if r.pct(2) {
                return one(r);
            }
            return Json::Arr((0..r.below(4)).map(|_| one(r)).collect());
        }
        return one(r);
    }
    if f.label == Label::Repeated {
        if f.opts.ipadd && r.pct(40) {
            return ip_list(r);
        }
        if r.pct(3) {
            return scalar(r, f);
        }
        return Json::Arr((0..r.below(5)).map(|_| scalar(r, f)).collect());
    }
    scalar(r, f)
}

fn unknown_list(r: &mut Rng, ty: MsgId) -> Json {
    let nfields = ty.desc().fields.len() as u64;
    let items = (0..1 + r.below(3))
        .map(|_| {
            // Numbers the schema knows, too: the message path keeps them as
            // unknown values, placed among the known ones.
            let number = if r.pct(50) { 1 + r.next() % (nfields + 2) } else { 100 + r.next() % 50 };
            let (k, v) = match r.below(5) {
                0 => ("varint", Json::Int(some_int(r).max(0))),
                1 => ("fixed64", Json::Int(r.next() as i128)),
                2 => ("fixed32", Json::Int((r.next() as u32) as i128)),
                3 => ("len", Json::Str(b64(&r.bytes(8)))),
                _ => ("nope", Json::Int(1)),
            };
            Json::Obj(vec![("field".into(), Json::Int(number as i128)), (k.into(), v)])
        })
        .collect();
    if r.pct(3) {
        return Json::Int(1);
    }
    Json::Arr(items)
}

/// A JSON object for a message of type `ty`.
fn object(r: &mut Rng, ty: MsgId, depth: usize) -> Json {
    let mut members: Vec<(String, Json)> = Vec::new();
    for f in ty.desc().fields {
        if depth > 3 && matches!(f.ty, Type::Message(_)) {
            continue;
        }
        let p = if f.label == Label::Required { 97 } else { 55 };
        if r.pct(p) {
            members.push((f.name.to_string(), field_value(r, f, depth)));
        }
    }
    if r.pct(8) {
        members.push(("__unknown".into(), unknown_list(r, ty)));
    }
    if r.pct(5) {
        members.push(("zz_not_a_field".into(), Json::Arr(vec![Json::Obj(vec![("a".into(), Json::Int(1))])])));
    }
    if r.pct(3) {
        members.push(("extra".into(), s("aGk=\n")));
    }
    mix(r, &mut members, |r, k| ty.desc().fields.iter().find(|f| f.name == k).map(|f| field_value(r, f, depth)));
    Json::Obj(members)
}

/// Shuffle keys and give some twice (with another value, or the same).
fn mix(r: &mut Rng, members: &mut Vec<(String, Json)>, mut other: impl FnMut(&mut Rng, &str) -> Option<Json>) {
    if members.len() > 1 && r.pct(25) {
        let (a, b) = (r.below(members.len()), r.below(members.len()));
        members.swap(a, b);
    }
    if members.len() > 2 && r.pct(8) {
        for i in (1..members.len()).rev() {
            let j = r.below(i + 1);
            members.swap(i, j);
        }
    }
    if !members.is_empty() && r.pct(12) {
        let i = r.below(members.len());
        let key = members[i].0.clone();
        let v = if r.pct(50) { other(r, &key) } else { None }.unwrap_or_else(|| members[i].1.clone());
        let at = r.below(members.len() + 1);
        members.insert(at, (key, v));
    }
}

/// Reorder and repeat the keys of every object of a JSON value.
fn mix_all(r: &mut Rng, v: &mut Json) {
    match v {
        Json::Obj(m) => {
            for (_, x) in m.iter_mut() {
                mix_all(r, x);
            }
            mix(r, m, |_, _| None);
        }
        Json::Arr(a) => a.iter_mut().for_each(|x| mix_all(r, x)),
        _ => {}
    }
}

/// JSON text of a value, with white space of some style.
fn render(r: &mut Rng, v: &Json) -> Vec<u8> {
    match r.below(4) {
        0 | 1 => {
            let pretty = r.pct(50);
            let mut out = JsonOut::new(Vec::new(), pretty);
            write_value(&mut out, v).unwrap();
            out.finish().unwrap()
        }
        _ => {
            let mut out = Vec::new();
            odd_spacing(r, v, &mut out);
            out
        }
    }
}

fn ws(r: &mut Rng, out: &mut Vec<u8>) {
    let spaces: [&[u8]; 8] = [b"", b" ", b"  ", b"\n", b"\n        ", b"\t", b"\r\n ", b" \n\n\t  "];
    let sp = *r.pick::<&[u8]>(&spaces);
    out.extend_from_slice(sp);
}

fn odd_spacing(r: &mut Rng, v: &Json, out: &mut Vec<u8>) {
    match v {
        Json::Obj(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ws(r, out);
                if r.pct(3) {
                    // The same key, spelled with escapes.
                    out.push(b'"');
                    for c in k.bytes() {
                        out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
                    }
                    out.push(b'"');
                } else {
                    out.extend_from_slice(&render_flat(&s(k)));
                }
                ws(r, out);
                out.push(b':');
                ws(r, out);
                odd_spacing(r, x, out);
                ws(r, out);
            }
            out.push(b'}');
        }
        Json::Arr(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ws(r, out);
                odd_spacing(r, x, out);
                ws(r, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(&render_flat(other)),
    }
}

fn render_flat(v: &Json) -> Vec<u8> {
    let mut out = JsonOut::new(Vec::new(), false);
    write_value(&mut out, v).unwrap();
    out.finish().unwrap()
}

/// The message path for one message, with encode's required-field check.
fn old_message(text: &[u8], ty: MsgId) -> Result<Vec<u8>, String> {
    let mut p = Parser::new(text);
    shown(message_from_parser(&mut p, ty, Some(&mut None)).and_then(|m| {
        if m.has_missing_required() {
            Err(Error::new(crit::error::ErrorKind::MissingRequired {
                message: ty.desc().name,
                fields: m.missing_required(),
            }))
        } else {
            Ok(m.to_bytes())
        }
    }))
}

fn new_message(d: &mut DirectEncoder, text: &[u8], ty: MsgId) -> Result<Vec<u8>, String> {
    let mut p = Parser::new(text);
    shown(d.message(&mut p, ty).map(|b| b.to_vec()))
}

#[test]
fn generated_messages_of_every_type_give_the_same_bytes_and_errors() {
    let mut r = Rng(0x5eed_0000_0000_0001);
    let mut d = DirectEncoder::new();
    let (mut cases, mut good) = (0usize, 0usize);
    let mut problems = Vec::new();
    for round in 0..25 {
        for (i, m) in MESSAGES.iter().enumerate() {
            let ty = MsgId(i as u16);
            let j = object(&mut r, ty, 0);
            let text = render(&mut r, &j);
            let mut check = |text: &[u8], what: &str| {
                cases += 1;
                let old = old_message(text, ty);
                let new = new_message(&mut d, text, ty);
                if old != new && problems.len() < 20 {
                    problems.push(format!(
                        "{} round {round} ({what}):\n{}\nold {old:?}\nnew {new:?}",
                        m.name,
                        String::from_utf8_lossy(text)
                    ));
                }
                old
            };
            let Ok(bytes) = check(&text, "generated") else { continue };
            good += 1;
            // The message as decode shows it, raw and nice, keys mixed.
            let Ok(msg) = Message::decode(ty, &bytes) else { continue };
            for nice in [false, true] {
                let mut out = JsonOut::new(Vec::new(), nice);
                write_message(&mut out, &msg, Style { nice }, false).unwrap();
                let shown_text = out.finish().unwrap();
                let _ = check(&shown_text, if nice { "nice" } else { "raw" });
                let mut v = parse_slice(&shown_text).unwrap();
                mix_all(&mut r, &mut v);
                let t = render(&mut r, &v);
                let _ = check(&t, if nice { "nice, mixed" } else { "raw, mixed" });
            }
        }
    }
    eprintln!("{cases} cases, {good} generated messages encoded");
    assert!(problems.is_empty(), "{} of {cases} cases differ:\n{}", problems.len(), problems.join("\n\n"));
    assert!(good > 1000 && cases > 5000, "only {good} good messages of {cases} cases");
}

/// Whole images of every kind that takes the direct path, entries
/// generated: the Encoder's own part (entry index, the position of errors
/// that have none, the reading of crit ≤ 4.1's pagemaps).
#[test]
fn generated_images_of_every_direct_kind_encode_the_same() {
    let mut r = Rng(0x5eed_0000_0000_0002);
    let mut problems = Vec::new();
    let mut good = 0;
    for round in 0..12 {
        for k in KINDS.iter().filter(|k| direct_kind(k.body)) {
            let entries: Vec<Json> = match k.body {
                Body::Entries(ty, _) => (0..1 + r.below(3)).map(|_| object(&mut r, ty, 0)).collect(),
                _ => {
                    let head = object(&mut r, crit::schema::msg::PAGEMAP_HEAD, 0);
                    let mut v = vec![head];
                    for _ in 0..1 + r.below(3) {
                        let mut e = object(&mut r, crit::schema::msg::PAGEMAP_ENTRY, 0);
                        if r.pct(40) {
                            // As crit ≤ 4.1 wrote them.
                            if let Json::Obj(m) = &mut e {
                                m.retain(|(k, _)| k != "compat_nr_pages");
                                if r.pct(70) {
                                    m.push(("nr_pages".into(), Json::Int(int_for(&mut r, Type::Uint64))));
                                }
                            }
                        }
                        v.push(e);
                    }
                    v
                }
            };
            let mut members = vec![("magic".to_string(), s(k.name)), ("entries".to_string(), Json::Arr(entries))];
            if r.pct(20) {
                members.reverse();
            }
            let text = render(&mut r, &Json::Obj(members));
            let direct = shown(encode(&text[..], Vec::new()));
            let old = shown(encode_through_messages(&text[..], Vec::new()));
            good += direct.is_ok() as usize;
            if direct != old && problems.len() < 20 {
                problems.push(format!(
                    "{} round {round}:\n{}\ndirect {direct:?}\nmessages {old:?}",
                    k.name,
                    String::from_utf8_lossy(&text)
                ));
            }
        }
    }
    eprintln!("{good} generated images encoded");
    assert!(problems.is_empty(), "{} differ:\n{}", problems.len(), problems.join("\n\n"));
    assert!(good > 100, "only {good} images encoded");
}

/// Broken documents: every prefix of a fixture's JSON (raw and nice), and
/// bytes changed at random.
#[test]
fn broken_json_gives_the_same_errors_both_ways() {
    let mut problems = Vec::new();
    let mut r = Rng(0x5eed_0000_0000_0003);
    let fx = root().join("tests/fixtures/criu41-pipes");
    for name in ["files.img", "core-23856.img", "mm-23856.img", "pagemap-23856.img"] {
        let data = std::fs::read(fx.join(name)).unwrap();
        for nice in [false, true] {
            let json = decode_bytes(&data, nice, false).unwrap();
            let step = (json.len() / 1500).max(1);
            for n in (0..json.len()).step_by(step) {
                if let Some(d) = differ(&json[..n]) {
                    problems.push(format!("{name} nice {nice} cut at {n}: {d}"));
                }
            }
            for _ in 0..400 {
                let mut t = json.clone();
                for _ in 0..1 + r.below(2) {
                    let at = r.below(t.len());
                    t[at] = *r.pick(b"\"\\{}[],:0-9ex.\n \x01\xc3\xffnt");
                }
                if let Some(d) = differ(&t) {
                    problems.push(format!("{name} nice {nice} changed:\n{}\n{d}", String::from_utf8_lossy(&t)));
                }
            }
        }
    }
    problems.truncate(10);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A reader that hands out its bytes a few at a time (the sizes taken in
/// turn), so that the parser's buffer ends inside keys, numbers and
/// separators, where the direct path's tight loop gives way.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    turn: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes.get(self.turn % self.sizes.len().max(1)).copied().unwrap_or(1);
        self.turn += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The JSON of fixture images of the direct kinds and generated pagemaps,
/// read in pieces of many sizes, against the message path on the whole
/// text.
#[test]
fn json_read_in_pieces_gives_the_same_images() {
    let mut texts: Vec<Vec<u8>> = Vec::new();
    for img in all_images() {
        if is_raw_image(&img) {
            continue;
        }
        let data = std::fs::read(&img).unwrap();
        let Ok(rd) = crit::image::ImageReader::open(&data[..]) else { continue };
        if !direct_kind(rd.kind().body) || data.len() > 200_000 {
            continue;
        }
        for nice in [false, true] {
            if let Ok(json) = decode_bytes(&data, nice, false) {
                texts.push(json);
            }
        }
    }
    let mut r = Rng(0x5eed_0000_0000_0004);
    for _ in 0..40 {
        let mut entries = vec![object(&mut r, crit::schema::msg::PAGEMAP_HEAD, 0)];
        for _ in 0..r.below(40) {
            entries.push(object(&mut r, crit::schema::msg::PAGEMAP_ENTRY, 0));
        }
        let doc = Json::Obj(vec![("magic".into(), s("PAGEMAP")), ("entries".into(), Json::Arr(entries))]);
        texts.push(render(&mut r, &doc));
    }
    // And broken: bytes changed at random (errors, with their positions).
    for i in 0..texts.len() {
        for _ in 0..4 {
            let mut t = texts[i].clone();
            for _ in 0..1 + r.below(2) {
                let at = r.below(t.len());
                t[at] = *r.pick(b"\"\\{}[],:0-9ex.\n \x01\xc3\xffnt");
            }
            texts.push(t);
        }
    }
    let sizes: [&[usize]; 5] = [&[1], &[7, 3, 64], &[61, 100, 33], &[200, 1, 131], &[1000, 17]];
    let mut problems = Vec::new();
    let mut checked = 0;
    for text in &texts {
        let old = shown(encode_through_messages(&text[..], Vec::new()));
        for sz in sizes {
            if sz == [1] && text.len() > 20_000 {
                continue;
            }
            checked += 1;
            let direct = shown(encode(Pieces { data: text, sizes: sz, turn: 0 }, Vec::new()));
            if direct != old && problems.len() < 10 {
                problems.push(format!(
                    "pieces {sz:?}:\n{}\ndirect {direct:?}\nmessages {old:?}",
                    String::from_utf8_lossy(&text[..text.len().min(2000)])
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{} differ:\n{}", problems.len(), problems.join("\n\n"));
    assert!(checked > 1500, "only {checked} cases");
}

/// Integer fields in crit's own layout (raw and indented, where the direct
/// path's tight loop takes them) with values at every edge of its reading:
/// lengths of 1 to 17 digits, leading zeros, signs, fractions, exponents,
/// hex texts, values just past each type's range, and other types.
#[test]
fn edge_numbers_in_crit_layout_give_the_same_bytes_and_errors() {
    let texts = [
        "0",
        "7",
        "01",
        "00",
        "-0",
        "-1",
        "10",
        "127",
        "128",
        "16383",
        "16384",
        "2147483647",
        "2147483648",
        "4294967295",
        "4294967296",
        "12345678",
        "123456789",
        "1234567890123456",
        "9999999999999999",
        "12345678901234567",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "1.5",
        "1e3",
        "1E3",
        "2.",
        "\"0x1f\"",
        "\"0x\"",
        "\"0xFFFFFFFFFFFFFFFF\"",
        "\"0x10000000000000000\"",
        "\"0x1g\"",
        "\"12\"",
        "true",
        "null",
    ];
    let mut d = DirectEncoder::new();
    let mut problems = Vec::new();
    let mut cases = 0;
    for (i, m) in MESSAGES.iter().enumerate() {
        let ty = MsgId(i as u16);
        let ints: Vec<&FieldDesc> = m
            .fields
            .iter()
            .filter(|f| f.label != Label::Repeated && f.ty.is_integer() && !matches!(f.ty, Type::Enum(_)))
            .collect();
        if ints.is_empty() {
            continue;
        }
        for (k, text) in texts.iter().enumerate() {
            for pretty in [false, true] {
                // Every integer field: the edge value for one of them (in
                // turn), small plain values for the others.
                let target = k % ints.len();
                let mut members = Vec::new();
                for (j, f) in m.fields.iter().enumerate() {
                    let v = match ints.iter().position(|g| std::ptr::eq(*g, f)) {
                        Some(x) if x == target => (*text).to_string(),
                        Some(_) => (j % 3).to_string(),
                        // (Required ones left out: both paths refuse those.)
                        None => continue,
                    };
                    members.push((f.name, v));
                }
                let sep = if pretty { ",\n    " } else { ", " };
                let body: Vec<String> = members.iter().map(|(n, v)| format!("\"{n}\": {v}")).collect();
                let doc =
                    if pretty { format!("{{\n    {}\n}}", body.join(sep)) } else { format!("{{{}}}", body.join(sep)) };
                cases += 1;
                let old = old_message(doc.as_bytes(), ty);
                let new = new_message(&mut d, doc.as_bytes(), ty);
                if old != new && problems.len() < 10 {
                    problems.push(format!("{}:\n{doc}\nold {old:?}\nnew {new:?}", m.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} differ:\n{}", problems.len(), problems.join("\n\n"));
    assert!(cases > 1000, "only {cases} cases");
}

/// Long pagemaps in crit's own layouts (raw and indented), where encode
/// takes runs of entries whole in its tight loop, with entries that the
/// loop must leave to the general one scattered among them (a value as a
/// float, a flag name, a hex text, a field left out or added, crit ≤ 4.1's
/// form, other white space) and, in some documents, one bad value: the
/// same image or error as the message path, also when the JSON is read in
/// pieces, so that runs end at every kind of place.
#[test]
fn runs_of_plain_entries_with_odd_ones_among_them() {
    let mut r = Rng(0x5eed_0000_0000_0005);
    // A clean image, and crit's two layouts of it.
    let mut text = String::from("{\"magic\": \"PAGEMAP\", \"entries\": [{\"pages_id\": 1}");
    let mut vaddr: u64 = 0x7f00_0000_0000;
    for _ in 0..3000 {
        vaddr += 4096 * (1 + r.below(64) as u64);
        let flags = [1, 2, 4, 6][r.below(4)];
        text.push_str(&format!(
            ", {{\"vaddr\": {vaddr}, \"compat_nr_pages\": 0, \"flags\": {flags}, \"nr_pages\": {}}}",
            1 + r.below(600)
        ));
    }
    text.push_str("]}");
    let image = encode_through_messages(text.as_bytes(), Vec::new()).unwrap();
    let mut docs = Vec::new();
    for nice in [false, true] {
        docs.push(decode_bytes(&image, nice, false).unwrap());
    }
    // Odd entries: a change at one key in about one entry in 25.
    // (Flag names for flags only.)
    let odd_values: [&[u8]; 7] = [b"4.0", b"\"0x1f\"", b"1e3", b" 7", b"true", b"\"7\"", b"\"PE_PRESENT\""];
    let bad_values: [&[u8]; 4] = [b"-1", b"\"x\"", b"18446744073709551616", b"[]"];
    let mut cases = Vec::new();
    for doc in &docs {
        cases.push(doc.clone());
        for round in 0..6 {
            let mut t = doc.clone();
            let keys: [&[u8]; 4] = [b"\"vaddr\": ", b"\"compat_nr_pages\": ", b"\"flags\": ", b"\"nr_pages\": "];
            let mut at = Vec::new();
            for k in keys {
                at.extend(t.windows(k.len()).enumerate().filter(|(_, w)| w == &k).map(|(i, _)| (i, k.len())));
            }
            at.sort();
            let bad_one = (round % 2 == 1).then(|| r.below(at.len()));
            // From the end, so that earlier offsets stay valid.
            for (n, &(i, klen)) in at.iter().enumerate().rev() {
                let v = i + klen;
                // The value: a number, or a text (nice layout) up to its
                // closing quote.
                let end = if t[v] == b'"' {
                    v + 2 + t[v + 1..].iter().position(|&c| c == b'"').unwrap()
                } else {
                    v + t[v..].iter().position(|c| !c.is_ascii_digit()).unwrap()
                };
                if Some(n) == bad_one {
                    t.splice(v..end, r.pick(&bad_values).iter().copied());
                } else if r.pct(1) {
                    let flags = t[i..].starts_with(b"\"flags\"");
                    let odd = &odd_values[..odd_values.len() - 1 + flags as usize];
                    t.splice(v..end, r.pick(odd).iter().copied());
                } else if r.pct(1) && t[i..i + klen].starts_with(b"\"compat_nr_pages\"") {
                    // Left out (crit ≤ 4.1's form, with nr_pages alone):
                    // the key up to the next key.
                    let next = end + t[end..].iter().position(|&c| c == b'"').unwrap();
                    t.drain(i..next);
                } else if r.pct(1) {
                    t.splice(i..i, b"\"in_parent\": false, ".iter().copied());
                } else if r.pct(1) {
                    t.splice(i..i, b"  ".iter().copied());
                }
            }
            cases.push(t);
        }
    }
    let sizes: [&[usize]; 4] = [&[1 << 16], &[4093], &[65_000, 1031, 77], &[100_000]];
    let mut problems = Vec::new();
    let (mut good, mut bad) = (0, 0);
    for text in &cases {
        let old = shown(encode_through_messages(&text[..], Vec::new()));
        if old.is_ok() {
            good += 1;
        } else {
            bad += 1;
        }
        let whole = shown(encode(&text[..], Vec::new()));
        if whole != old {
            problems.push(format!("whole: direct {whole:?}\nmessages {old:?}"));
        }
        for sz in sizes {
            let direct = shown(encode(Pieces { data: text, sizes: sz, turn: 0 }, Vec::new()));
            if direct != old {
                problems.push(format!("pieces {sz:?}: direct {direct:?}\nmessages {old:?}"));
            }
        }
    }
    problems.truncate(5);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(shown(encode(&cases[0][..], Vec::new())), Ok(image.clone()));
    assert!(good >= 8 && bad >= 4, "{good} good and {bad} bad documents");
}
