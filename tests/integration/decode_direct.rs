//! The direct wire → JSON walk (`crit::json::direct`) against the message
//! path (`Message::decode` + `write_fields`): byte-identical text, or a
//! fallback that wrote nothing, for every entry of every fixture image and
//! for thousands of generated messages of every schema type, ordinary and
//! odd (unknown fields, fields out of order, singular fields repeated,
//! wrong wire types, packed runs, values that do not fit, broken bytes).
//! Whole images: `transcode::decode` (which takes the walk for images
//! without payloads) against a decode built on the message path, bytes and
//! errors.  And the writer pieces the walk relies on: integers, strings,
//! hex and flag texts against plain references.

use std::io::Write;

use crit::image::{Extra, ImageReader};
use crit::json::direct;
use crit::json::{write_fields, JsonOut, Style};
use crit::magic::{self, Body, Payload};
use crit::schema::{FieldDesc, Label, MsgId, Type, MESSAGES};
use crit::transcode::{self, DecodeOptions};
use crit::wire::{Message, Value};

use crate::util;
use crate::util::Rng;

/// The four ways of writing: (indented, nice).
const MODES: [(bool, bool); 4] = [(false, false), (true, true), (false, true), (true, false)];

/// The text of the message path for one message inside an object that
/// already has a member (so separators of both kinds are exercised).
fn tree_text(ty: MsgId, data: &[u8], pretty: bool, nice: bool, hex: bool) -> Option<Vec<u8>> {
    let m = Message::decode(ty, data).ok()?;
    let mut out = JsonOut::new(Vec::new(), pretty);
    out.begin_object().unwrap();
    out.key("before").unwrap();
    out.int(1u8).unwrap();
    write_fields(&mut out, &m, Style { nice }, hex).unwrap();
    out.key("after").unwrap();
    out.int(2u8).unwrap();
    out.end_object().unwrap();
    Some(out.finish().unwrap())
}

/// The walk's text in the same frame; None where it fell back, after
/// checking that the fallback left the output as it was.
fn direct_text(ty: MsgId, data: &[u8], pretty: bool, nice: bool, hex: bool) -> Option<Vec<u8>> {
    let mut out = JsonOut::new(Vec::new(), pretty);
    out.begin_object().unwrap();
    out.key("before").unwrap();
    out.int(1u8).unwrap();
    let took = direct::write_fields(&mut out, ty, data, Style { nice }, hex).unwrap();
    out.key("after").unwrap();
    out.int(2u8).unwrap();
    out.end_object().unwrap();
    let text = out.finish().unwrap();
    if took {
        return Some(text);
    }
    // Nothing of the walk may remain: the frame alone.
    let mut bare = JsonOut::new(Vec::new(), pretty);
    bare.begin_object().unwrap();
    bare.key("before").unwrap();
    bare.int(1u8).unwrap();
    bare.key("after").unwrap();
    bare.int(2u8).unwrap();
    bare.end_object().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&text),
        String::from_utf8_lossy(&bare.finish().unwrap()),
        "{}: the walk fell back but left text behind",
        ty.desc().name
    );
    None
}

#[derive(Default, Debug)]
struct Tally {
    messages: usize,
    direct: usize,
    fallback: usize,
    errors: usize,
}

/// Compare both paths on one message in every mode; returns whether the
/// walk applied in raw mode.
fn compare(ty: MsgId, data: &[u8], what: &str, tally: &mut Tally) -> bool {
    tally.messages += 1;
    // The framing check `info` counts with says what decoding says.
    let decodes = Message::decode(ty, data).is_ok();
    assert_eq!(crit::wire::decodes(ty, data), decodes, "{what}: wire::decodes disagrees with Message::decode");
    let mut raw_direct = false;
    for (pretty, nice) in MODES {
        for hex in [false, true] {
            if hex && !nice {
                continue;
            }
            let tree = tree_text(ty, data, pretty, nice, hex);
            let direct = direct_text(ty, data, pretty, nice, hex);
            match (&tree, &direct) {
                (None, None) => tally.errors += 1,
                (None, Some(_)) => panic!("{what}: the message path fails to decode, the walk wrote text"),
                (Some(_), None) => tally.fallback += 1,
                (Some(t), Some(d)) => {
                    tally.direct += 1;
                    if t != d {
                        panic!(
                            "{what} ({}, pretty={pretty} nice={nice} hex={hex}): texts differ\n tree:   {}\n direct: {}\n bytes: {data:02x?}",
                            ty.desc().name,
                            String::from_utf8_lossy(t),
                            String::from_utf8_lossy(d)
                        );
                    }
                    if !pretty && !nice {
                        raw_direct = true;
                    }
                }
            }
        }
    }
    raw_direct
}

/// Whether a decoded message holds anything the walk leaves to the message
/// path: fields kept as unknown, fields out of number order (at any depth).
fn unusual(m: &Message) -> bool {
    let sorted = m.fields.windows(2).all(|w| w[0].0 <= w[1].0);
    !sorted
        || m.fields.iter().any(|(_, v)| match v {
            Value::Unknown(_) => true,
            Value::Msg(sub) => unusual(sub),
            _ => false,
        })
}

/// Every message of an image with its wire bytes: the bytes as read for
/// images without payloads, the re-encoded message otherwise (decode and
/// encode are exact), SysV message headers of payloads included.
fn image_messages(data: &[u8]) -> crit::Result<Vec<(MsgId, Vec<u8>)>> {
    let mut rd = ImageReader::open(data)?;
    let mut v = Vec::new();
    if rd.bare_entries() {
        while let Some(raw) = rd.next_raw()? {
            v.push((raw.ty, raw.bytes.to_vec()));
        }
        return Ok(v);
    }
    while let Some(item) = rd.next_item()? {
        v.push((item.msg.ty, item.msg.to_bytes()));
        if let Extra::Msgs(ms) = rd.read_extra()? {
            for (m, _) in ms {
                v.push((m.ty, m.to_bytes()));
            }
        }
    }
    Ok(v)
}

#[test]
fn direct_equals_tree_on_every_fixture_entry() {
    let mut tally = Tally::default();
    let mut raw_fallbacks = Vec::new();
    let mut images = 0;
    for path in util::all_images() {
        if util::is_raw_image(&path) {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let Ok(msgs) = image_messages(&data) else { continue };
        images += 1;
        for (i, (ty, bytes)) in msgs.iter().enumerate() {
            let what = format!("{} message {i}", path.display());
            if !compare(*ty, bytes, &what, &mut tally) {
                let m = Message::decode(*ty, bytes).unwrap();
                raw_fallbacks.push((what, unusual(&m)));
            }
        }
    }
    eprintln!("fixtures: {images} images, {tally:?}");
    assert!(images > 200 && tally.messages > 500, "too few fixture messages: {images} images, {tally:?}");
    // In raw mode the walk takes every message the schema describes fully.
    let unexplained: Vec<_> = raw_fallbacks.iter().filter(|(_, odd)| !odd).map(|(w, _)| w).collect();
    assert!(unexplained.is_empty(), "raw mode fell back on ordinary messages: {unexplained:?}");
}

// ---------------------------------------------------------------------------
// Generated messages

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, number: u32, wt: u8) {
    varint(out, (number as u64) << 3 | wt as u64);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The wire type a field's values normally take.
fn wire_type(ty: Type) -> u8 {
    match ty {
        Type::Double | Type::Fixed64 | Type::Sfixed64 => 1,
        Type::Float | Type::Fixed32 | Type::Sfixed32 => 5,
        Type::String | Type::Bytes | Type::Message(_) => 2,
        _ => 0,
    }
}

/// The raw bits of one scalar value of `ty`, sometimes one that does not
/// fit (too big for 32 bits, a bool of 2, an enum out of range).
fn scalar_bits(r: &mut Rng, ty: Type, odd: bool) -> u64 {
    let odd = odd && r.chance(4);
    match ty {
        Type::Int32 | Type::Enum(_) if odd => 1 << 40 | r.below(1000),
        Type::Int32 => r.int() as i32 as i64 as u64,
        Type::Enum(e) => {
            let vals = e.desc().values;
            if r.chance(85) && !vals.is_empty() {
                vals[r.below(vals.len() as u64) as usize].1 as i64 as u64
            } else {
                (r.int() as i32) as i64 as u64
            }
        }
        Type::Uint32 | Type::Sint32 if odd => u32::MAX as u64 + 1 + r.below(1000),
        Type::Uint32 | Type::Fixed32 => r.int() as u32 as u64,
        Type::Sint32 => zigzag(r.int() as i32 as i64) as u32 as u64,
        Type::Sint64 => zigzag(r.int() as i64),
        Type::Bool if odd => 2 + r.below(100),
        Type::Bool => r.below(2),
        Type::Float => {
            let x: f32 = match r.below(4) {
                0 => (r.below(1000) as f32) / 8.0,
                1 => f32::from_bits(r.next() as u32),
                2 => [f32::NAN, f32::INFINITY, -f32::INFINITY, -0.0, 1e30, 1e-30][r.below(6) as usize],
                _ => r.next() as i32 as f32,
            };
            x.to_bits() as u64
        }
        Type::Double => {
            let x: f64 = match r.below(4) {
                0 => (r.below(1000) as f64) / 8.0,
                1 => f64::from_bits(r.next()),
                2 => [f64::NAN, f64::INFINITY, -f64::INFINITY, -0.0, 1e300, 1e16, 1e15 + 0.5][r.below(7) as usize],
                _ => r.next() as i64 as f64,
            };
            x.to_bits()
        }
        Type::Sfixed32 => r.int() as u32 as u64,
        _ => r.int(),
    }
}

fn put_scalar(out: &mut Vec<u8>, wt: u8, bits: u64) {
    match wt {
        0 => varint(out, bits),
        1 => out.extend_from_slice(&bits.to_le_bytes()),
        _ => out.extend_from_slice(&(bits as u32).to_le_bytes()),
    }
}

/// String and bytes contents: ASCII, text with escapes, UTF-8, and bytes
/// that are not UTF-8; sometimes longer than a base64 line.
fn text_bytes(r: &mut Rng) -> Vec<u8> {
    match r.below(5) {
        0 => r.bytes(20).into_iter().map(|b| b'a' + b % 26).collect(),
        1 => "héllo/😀\u{7f}\"\\\n\t\u{1}x".as_bytes().to_vec(),
        2 => r.bytes(12).into_iter().map(|b| b % 0x80).collect(),
        3 => r.bytes(200),
        _ => r.bytes(30),
    }
}

/// One field's value(s) on the wire (`odd`: with some that do not fit).
fn gen_field(r: &mut Rng, f: &FieldDesc, depth: usize, odd: bool, out: &mut Vec<u8>) {
    let n = match f.label {
        Label::Repeated if f.opts.ipadd && r.chance(50) => [1, 4, 2, 5][r.below(4) as usize],
        Label::Repeated => r.below(5),
        _ => 1,
    };
    let wt = wire_type(f.ty);
    let scalar = wt != 2;
    if f.label == Label::Repeated && scalar && r.chance(35) {
        // A packed run (sometimes empty, sometimes split in two).
        let runs = if r.chance(20) { 2 } else { 1 };
        for _ in 0..runs {
            let mut body = Vec::new();
            for _ in 0..n {
                put_scalar(&mut body, wt, scalar_bits(r, f.ty, odd));
            }
            if odd && r.chance(3) && !body.is_empty() {
                body.pop();
            }
            key(out, f.number, 2);
            varint(out, body.len() as u64);
            out.extend_from_slice(&body);
        }
        return;
    }
    for _ in 0..n {
        // Now and then a wire type that does not fit the field.
        let wt = if odd && r.chance(2) { [0, 1, 2, 5][r.below(4) as usize] } else { wt };
        key(out, f.number, wt);
        match (wt, f.ty) {
            (2, Type::Message(sub)) => {
                let body =
                    if depth < 3 && !(odd && r.chance(3)) { gen_message(r, sub, depth + 1, odd) } else { r.bytes(6) };
                varint(out, body.len() as u64);
                out.extend_from_slice(&body);
            }
            (2, _) => {
                let body = text_bytes(r);
                varint(out, body.len() as u64);
                out.extend_from_slice(&body);
            }
            (wt, ty) => put_scalar(out, wt, scalar_bits(r, ty, odd)),
        }
    }
}

/// A message of type `ty` on the wire: the present fields in order, and
/// with `odd`, now and then something the walk leaves to the message path.
fn gen_message(r: &mut Rng, ty: MsgId, depth: usize, odd: bool) -> Vec<u8> {
    let desc = ty.desc();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for f in desc.fields {
        if matches!(f.ty, Type::Message(_)) && depth >= 3 {
            continue;
        }
        if f.label != Label::Required && r.chance(40) {
            continue;
        }
        let mut p = Vec::new();
        gen_field(r, f, depth, odd, &mut p);
        parts.push(p);
        if odd && f.label != Label::Repeated && r.chance(2) {
            // The same singular field twice.
            let mut again = Vec::new();
            gen_field(r, f, depth, odd, &mut again);
            parts.push(again);
        }
    }
    if !odd {
        return parts.concat();
    }
    if r.chance(4) && parts.len() > 1 {
        // Two fields out of order.
        let a = r.below(parts.len() as u64) as usize;
        let b = r.below(parts.len() as u64) as usize;
        parts.swap(a, b);
    }
    if r.chance(4) {
        // A field the schema does not have.
        let mut number = 1 + r.below(3000) as u32;
        while desc.field_index(number).is_some() {
            number += 1;
        }
        let mut p = Vec::new();
        let wt = [0u8, 1, 2, 5][r.below(4) as usize];
        key(&mut p, number, wt);
        match wt {
            2 => {
                let b = r.bytes(8);
                varint(&mut p, b.len() as u64);
                p.extend_from_slice(&b);
            }
            wt => put_scalar(&mut p, wt, r.int()),
        }
        let at = r.below(parts.len() as u64 + 1) as usize;
        parts.insert(at, p);
    }
    let mut out: Vec<u8> = parts.concat();
    match r.below(100) {
        // Broken: cut short, a byte flipped, a bad wire type or key.
        0 if !out.is_empty() => out.truncate(r.below(out.len() as u64) as usize),
        1 if !out.is_empty() => {
            let p = r.below(out.len() as u64) as usize;
            out[p] ^= 1 << r.below(8);
        }
        2 => out.extend_from_slice(&[0x0b, 0x01]),
        3 => out.push(0x00),
        _ => {}
    }
    out
}

#[test]
fn direct_equals_tree_on_generated_messages_of_every_type() {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut tally = Tally::default();
    let mut types_direct = vec![false; MESSAGES.len()];
    for round in 0..30 {
        for (i, _) in MESSAGES.iter().enumerate() {
            let ty = MsgId(i as u16);
            // One round in three without oddities: every type then takes
            // the walk, however many fields it has.
            let bytes = gen_message(&mut r, ty, 0, round % 3 != 0);
            let what = format!("generated {} (round {round})", ty.desc().name);
            if compare(ty, &bytes, &what, &mut tally) {
                types_direct[i] = true;
            }
        }
    }
    eprintln!("generated: {tally:?}");
    assert!(tally.messages >= 4000, "{tally:?}");
    // Both paths ran often: the walk, its fallback, and failing messages.
    assert!(tally.direct > tally.messages, "{tally:?}");
    assert!(tally.fallback > tally.messages / 10, "{tally:?}");
    assert!(tally.errors > 100, "{tally:?}");
    let never: Vec<_> = MESSAGES.iter().zip(&types_direct).filter(|(_, d)| !**d).map(|(m, _)| m.name).collect();
    assert!(never.is_empty(), "the walk never applied to {never:?}");
}

#[test]
fn each_kind_of_oddity_falls_back_and_ordinary_forms_do_not() {
    // pagemap_entry: vaddr = 1 (uint64, hex), compat_nr_pages = 2,
    // in_parent = 3 (bool), flags = 4 (flags), nr_pages = 5.
    let ty = crit::schema::msg::PAGEMAP_ENTRY;
    let took = |bytes: &[u8], nice: bool| {
        let mut out = JsonOut::new(Vec::new(), nice);
        out.begin_object().unwrap();
        direct::write_fields(&mut out, ty, bytes, Style { nice }, false).unwrap()
    };
    let ordinary: &[&[u8]] =
        &[&[0x08, 0x80, 0x80, 0x01, 0x10, 0x00, 0x20, 0x06, 0x28, 0x04], &[], &[0x18, 0x01], &[0x20, 0x00]];
    for b in ordinary {
        assert!(took(b, false) && took(b, true), "{b:02x?} should take the walk");
    }
    let odd: &[(&str, &[u8])] = &[
        ("out of order", &[0x10, 0x00, 0x08, 0x01]),
        ("singular twice", &[0x08, 0x01, 0x08, 0x02]),
        ("unknown field", &[0x08, 0x01, 0x30, 0x01]),
        ("wrong wire type", &[0x0d, 1, 2, 3, 4]),
        ("uint32 too big", &[0x10, 0x80, 0x80, 0x80, 0x80, 0x10]),
        ("bool of 2", &[0x18, 0x02]),
        ("truncated varint", &[0x08, 0x80]),
        ("field number 0", &[0x00, 0x01]),
        ("wire type 3", &[0x0b]),
        ("length past the end", &[0x0a, 0x05, 0x01]),
    ];
    for (what, b) in odd {
        assert!(!took(b, false) && !took(b, true), "{what}: {b:02x?} should fall back");
        // And nothing of it stays in the output.
        assert!(direct_text(ty, b, false, false, false).is_none(), "{what}");
    }
    // A repeated field: elements may repeat, packed and not, an empty
    // packed run adds no key (as on the message path).
    let inv = crit::schema::msg::REG_FILE_ENTRY;
    let build_id = inv.desc().fields.iter().find(|f| f.name == "build_id").unwrap().number as u8;
    for b in [
        vec![build_id << 3, 5, build_id << 3, 6],
        vec![build_id << 3 | 2, 2, 5, 6, build_id << 3, 7],
        vec![build_id << 3 | 2, 0],
    ] {
        let mut tally = Tally::default();
        assert!(compare(inv, &b, "build_id forms", &mut tally), "{b:02x?}");
    }
}

// ---------------------------------------------------------------------------
// Whole images

/// `decode` built on the message path alone, for images without payloads.
fn tree_decode(img: &[u8], nice: bool) -> crit::Result<Vec<u8>> {
    let mut rd = ImageReader::open(img)?;
    let mut out = JsonOut::new(Vec::new(), nice);
    out.begin_object()?;
    out.key("magic")?;
    out.write_str(rd.kind().name.as_bytes())?;
    out.key("entries")?;
    out.begin_array()?;
    while let Some(item) = rd.next_item()? {
        out.elem()?;
        out.begin_object()?;
        write_fields(&mut out, &item.msg, Style { nice }, false)?;
        out.end_object()?;
    }
    out.end_array()?;
    out.end_object()?;
    out.finish()
}

fn same_result(what: &str, tree: &crit::Result<Vec<u8>>, ours: &crit::Result<Vec<u8>>) {
    match (tree, ours) {
        (Ok(a), Ok(b)) => {
            if a != b {
                let at = a.iter().zip(b.iter()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
                let show =
                    |t: &[u8]| String::from_utf8_lossy(&t[at.saturating_sub(60)..(at + 60).min(t.len())]).into_owned();
                panic!("{what}: decode differs at byte {at}:\n tree: {}\n ours: {}", show(a), show(b));
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}: errors differ"),
        _ => panic!(
            "{what}: message path {}, decode {}",
            if tree.is_ok() { "succeeds" } else { "fails" },
            if ours.is_ok() { "succeeds" } else { "fails" }
        ),
    }
}

fn bare(kind: &magic::ImageKind) -> bool {
    matches!(kind.body, Body::Pagemap | Body::Entries(_, Payload::None))
}

#[test]
fn decode_equals_message_path_on_fixture_images_without_payloads() {
    let mut n = 0;
    for path in util::all_images() {
        if util::is_raw_image(&path) {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let Ok(rd) = ImageReader::open(&data[..]) else { continue };
        if !bare(rd.kind()) {
            continue;
        }
        for nice in [false, true] {
            let ours = util::decode_bytes(&data, nice, false);
            same_result(&format!("{} nice={nice}", path.display()), &tree_decode(&data, nice), &ours);
        }
        n += 1;
    }
    assert!(n > 100, "only {n} images without payloads");
}

/// An image of `kind` from entries given as message bytes.
fn image_of(kind: &magic::ImageKind, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut img = Vec::new();
    match kind.head {
        magic::Head::None => {}
        magic::Head::Common => img.extend_from_slice(&magic::IMG_COMMON.to_le_bytes()),
        magic::Head::Service => img.extend_from_slice(&magic::IMG_SERVICE.to_le_bytes()),
    }
    img.extend_from_slice(&kind.magic.to_le_bytes());
    for e in entries {
        img.extend_from_slice(&(e.len() as u32).to_le_bytes());
        img.extend_from_slice(e);
    }
    img
}

#[test]
fn decode_equals_message_path_on_generated_images_with_odd_entries() {
    // Entries the walk takes and entries it leaves, mixed in one image;
    // broken entries and frames give the same error at the same place.
    let mut r = Rng(77);
    let kinds: Vec<&magic::ImageKind> = magic::KINDS.iter().filter(|k| bare(k)).collect();
    assert!(kinds.len() > 20);
    let mut errors = 0;
    for round in 0..120 {
        let kind = kinds[r.below(kinds.len() as u64) as usize];
        let mut entries = Vec::new();
        for i in 0..1 + r.below(12) {
            let ty = match kind.body {
                Body::Pagemap if i == 0 => crit::schema::msg::PAGEMAP_HEAD,
                Body::Pagemap => crit::schema::msg::PAGEMAP_ENTRY,
                Body::Entries(ty, _) => ty,
                _ => unreachable!(),
            };
            let odd = r.chance(30);
            entries.push(gen_message(&mut r, ty, 0, odd));
        }
        let mut img = image_of(kind, &entries);
        if r.chance(10) {
            // A frame cut short.
            let cut = img.len() - r.below(6).min(img.len() as u64 - 8) as usize;
            img.truncate(cut);
        }
        // `info` counts (or fails) as the message path does.
        let counted = ImageReader::open(&img[..]).and_then(|mut rd| rd.count_entries());
        let info = transcode::info(&img[..]).map(|(_, n)| n);
        match (&counted, &info) {
            (Ok(a), Ok(b)) => assert_eq!(a - (kind.body == Body::Pagemap) as usize, *b, "{} round {round}", kind.name),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{} round {round}", kind.name),
            _ => panic!("{} round {round}: info {info:?}, message path {counted:?}", kind.name),
        }
        for nice in [false, true] {
            let tree = tree_decode(&img, nice);
            errors += tree.is_err() as usize;
            let what = format!("{} round {round} nice={nice}", kind.name);
            same_result(&what, &tree, &util::decode_bytes(&img, nice, false));
            // The same from an input that comes in pieces, with interruptions.
            let opts = DecodeOptions { nice, no_payload: false };
            let step = 1 + r.below(9) as usize;
            let pieces = transcode::decode(Trickle { data: &img, step, calls: 0 }, Vec::new(), opts);
            same_result(&format!("{what} in pieces of {step}"), &tree, &pieces);
        }
    }
    assert!(errors > 10, "too few broken images: {errors}");
}

/// An input that hands out `step` bytes at a time and fails every third
/// call with `Interrupted` (which readers retry).
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls % 3 == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A writer that records the size of every write.
struct Chunks(Vec<usize>);

impl Write for Chunks {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.push(b.len());
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn decode_of_a_large_image_writes_in_blocks() {
    // 60,000 pagemap entries (about 3 MB of JSON): the walk flushes the
    // output between entries, so memory stays bounded by one block.
    let kind = magic::by_name("PAGEMAP").unwrap();
    let mut entries = vec![vec![0x08, 0x01]];
    for i in 0..60_000u64 {
        let mut e = Vec::new();
        key(&mut e, 1, 0);
        varint(&mut e, 0x40_0000 + i * 0x1000);
        key(&mut e, 2, 0);
        varint(&mut e, 0);
        key(&mut e, 4, 0);
        varint(&mut e, 4 | (i % 2) << 1);
        key(&mut e, 5, 0);
        varint(&mut e, 1 + i % 16);
        entries.push(e);
    }
    let img = image_of(kind, &entries);
    for nice in [false, true] {
        let w = transcode::decode(&img[..], Chunks(Vec::new()), DecodeOptions { nice, no_payload: false }).unwrap();
        let total: usize = w.0.iter().sum();
        let biggest = w.0.iter().copied().max().unwrap_or(0);
        assert!(total > 2_000_000, "nice={nice}: {total} bytes");
        assert!(w.0.len() > 20 && biggest < (1 << 16) + 4096, "nice={nice}: {} writes, biggest {biggest}", w.0.len());
        // Entries cross the input buffer's edges: the text is still that
        // of the message path.
        let ours = util::decode_bytes(&img, nice, false);
        same_result(&format!("large pagemap nice={nice}"), &tree_decode(&img, nice), &ours);
    }
}

// ---------------------------------------------------------------------------
// Writer pieces

#[test]
fn integers_print_as_rust_prints_them() {
    let mut r = Rng(5);
    let mut vals: Vec<u64> = (0..20).flat_map(|p| [10u64.pow(p), 10u64.pow(p) - 1, 10u64.pow(p) + 1]).collect();
    vals.extend([0, u64::MAX, u64::MAX - 1, 1 << 63, u32::MAX as u64, 99_999_999, 100_000_000, 9_999_999_999_999_999]);
    vals.extend((0..20_000).map(|_| r.int()));
    for v in vals {
        let mut out = JsonOut::new(Vec::new(), false);
        out.uint(v).unwrap();
        out.raw(" ").unwrap();
        out.sint(v as i64).unwrap();
        out.raw(" ").unwrap();
        out.int(v as i128 * -1).unwrap();
        out.raw(" ").unwrap();
        out.int(v as i32).unwrap();
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert_eq!(text, format!("{v} {} {} {}", v as i64, v as i128 * -1, v as i32));
    }
    let mut out = JsonOut::new(Vec::new(), false);
    out.int(i128::MIN).unwrap();
    assert_eq!(String::from_utf8(out.finish().unwrap()).unwrap(), i128::MIN.to_string());
}

/// Python's `json.dumps(s, ensure_ascii=True)` of `s` decoded with
/// `surrogateescape`, the plain way.
fn py_json_str(s: &[u8]) -> String {
    let mut o = String::from("\"");
    let mut rest = s;
    while !rest.is_empty() {
        let (chars, bad) = match std::str::from_utf8(rest) {
            Ok(t) => (t, None),
            Err(e) => {
                let (good, tail) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(good).unwrap(), Some((tail[0], e.error_len().unwrap_or(1))))
            }
        };
        for c in chars.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                '\u{8}' => o.push_str("\\b"),
                '\u{c}' => o.push_str("\\f"),
                ' '..='~' => o.push(c),
                c => {
                    let mut u = [0u16; 2];
                    for w in c.encode_utf16(&mut u) {
                        o.push_str(&format!("\\u{w:04x}"));
                    }
                }
            }
        }
        match bad {
            None => break,
            Some((b, _)) => {
                o.push_str(&format!("\\u{:04x}", 0xdc00 + b as u32));
                rest = &rest[chars.len() + 1..];
            }
        }
    }
    o.push('"');
    o
}

#[test]
fn strings_escape_as_python_does() {
    let mut r = Rng(11);
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"plain ascii text longer than eight bytes".to_vec(),
        b"0123456\"".to_vec(),
        b"01234567\\89".to_vec(),
        b"\x7f0123456789abcdef".to_vec(),
        b"abcdefgh\x1f".to_vec(),
        "ünïcödé and more text".as_bytes().to_vec(),
        b"\xff\xfe broken \xc3".to_vec(),
    ];
    for _ in 0..3000 {
        let n = r.below(40) as usize;
        let s: Vec<u8> = (0..n)
            .map(|_| match r.below(10) {
                0 => [b'"', b'\\', 0x7f, 0x1f, 0, b'\n', 0x80, 0xc3, 0xa9, 0xf0][r.below(10) as usize],
                _ => b' ' + r.below(95) as u8,
            })
            .collect();
        cases.push(s);
    }
    for s in cases {
        let mut out = JsonOut::new(Vec::new(), false);
        out.write_str(&s).unwrap();
        let got = String::from_utf8(out.finish().unwrap()).unwrap();
        assert_eq!(got, py_json_str(&s), "{s:02x?}");
    }
}

#[test]
fn hex_and_flag_texts_as_python_prints_them() {
    use crit::json::maps::flag_map;
    use crit::json::pyfmt::{hex, map_flags};
    let mut r = Rng(3);
    for _ in 0..2000 {
        let v = r.int() as i64 as i128;
        let want = if v < 0 { format!("0x-{:x}", v.unsigned_abs()) } else { format!("0x{v:x}") };
        assert_eq!(hex(v), want);
    }
    assert_eq!(hex(i128::MIN), format!("0x-{:x}", i128::MIN.unsigned_abs()));
    for name in ["mmap.prot", "mmap.flags", "mmap.status", "rfile.flags", "pmap.flags", "seals.flags"] {
        let map = flag_map(name).unwrap();
        for _ in 0..500 {
            let v = (r.int() & 0xffff_ffff) as i128;
            // crit's map_flags: names of set bits in map order, then the
            // rest in hex, joined by " | ".
            let mut parts: Vec<String> =
                map.iter().filter(|(_, m)| v & *m as i128 != 0).map(|(n, _)| n.to_string()).collect();
            let all: i128 = map.iter().map(|(_, m)| *m as i128).sum();
            if v & !all != 0 {
                parts.push(hex(v & !all));
            }
            assert_eq!(map_flags(v, map), parts.join(" | "), "{name} {v:#x}");
        }
    }
}
