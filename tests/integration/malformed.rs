//! Broken and hostile input: a corpus of malformed images and JSON made
//! from every fixture, where each case must give a typed error with its
//! location (never a panic), exit 1 with one clear line through the binary,
//! and bounded memory; and the replay of every crash the fuzzers found
//! (tests/regressions/, through the fuzz targets' own property checks).
//! The error contract is docs/errors.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use crit::error::ErrorKind;
use crit::image::{ExtraSpec, ImageReader};
use crit::json::parse::{parse_slice, Json};
use crit::schema::{Label, MsgId, Type};
use crit::transcode::{self, DecodeOptions};
use crit::wire::Value;

use crate::util::*;

#[allow(dead_code)]
#[path = "../../fuzz/src/checks.rs"]
mod checks;

const RAW: DecodeOptions = DecodeOptions { nice: false, no_payload: false };

/// The decodable images of every fixture, with their bytes.
fn fixture_images() -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for p in all_images() {
        if is_raw_image(&p) {
            continue;
        }
        let Ok(data) = std::fs::read(&p) else { continue };
        if ImageReader::open(&data[..]).is_ok() && data.len() <= 1 << 20 {
            v.push((p, data));
        }
    }
    assert!(v.len() > 100, "only {} fixture images", v.len());
    v
}

/// Where each entry starts, where its message ends, where its payload ends.
struct Layout {
    header: u64,
    entries: Vec<(u64, u64, u64, ExtraSpec)>,
}

fn layout(data: &[u8]) -> Layout {
    let mut rd = ImageReader::open(data).expect("a fixture opens");
    let header = rd.offset();
    let mut entries = Vec::new();
    while let Some(item) = rd.next_item().expect("a fixture decodes") {
        let msg_end = rd.offset();
        rd.skip_extra().expect("a fixture's payload");
        entries.push((item.offset, msg_end, rd.offset(), item.extra));
    }
    Layout { header, entries }
}

fn decode_err(data: &[u8]) -> Option<crit::Error> {
    let r = std::panic::catch_unwind(|| transcode::decode(data, std::io::sink(), RAW).err());
    match r {
        Ok(e) => e,
        Err(_) => panic!("decode panicked"),
    }
}

fn describe(p: &Path, what: &str) -> String {
    format!("{} ({what})", p.strip_prefix(root()).unwrap_or(p).display())
}

/// Truncation: at every entry boundary the image is a shorter valid image
/// (the same first entries); anywhere inside a size prefix or a message,
/// and inside a payload of known size, it is an error naming the entry.
#[test]
fn truncated_images_fail_inside_entries_and_only_there() {
    let mut cases = 0;
    let mut problems = Vec::new();
    for (p, data) in fixture_images() {
        let lay = layout(&data);
        // Inside the magic words.
        for cut in 0..lay.header {
            let e = decode_err(&data[..cut as usize]);
            match e {
                Some(e) if matches!(e.kind, ErrorKind::Truncated { .. }) && e.loc.offset.is_some() => {}
                other => problems.push(format!("{}: {other:?}", describe(&p, &format!("cut at {cut} in the magic")))),
            }
            cases += 1;
        }
        for (i, &(start, msg_end, end, extra)) in lay.entries.iter().enumerate() {
            // At the boundary before entry i: a valid image of i entries.
            let cut = &data[..start as usize];
            match transcode::info(cut) {
                Ok((_, n)) => {
                    let expect = if is_pagemap(&data) { i.saturating_sub(1) } else { i };
                    if n != expect {
                        problems.push(format!("{}: {n} entries", describe(&p, &format!("cut before entry {i}"))));
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", describe(&p, &format!("cut before entry {i}")))),
            }
            // Inside the size prefix and the message: a few points each.
            let mut cuts = vec![start + 1, start + 3, start + 4, msg_end - 1];
            cuts.push(start + 4 + (msg_end - start - 4) / 2);
            cuts.sort();
            cuts.dedup();
            for cut in cuts.into_iter().filter(|&c| c > start && c < msg_end) {
                cases += 1;
                // The offset is where the piece that failed starts: the
                // size prefix, or the message after it.
                let at = if cut < start + 4 { start } else { start + 4 };
                match decode_err(&data[..cut as usize]) {
                    Some(e) if e.loc.entry == Some(i) && e.loc.offset == Some(at) => {}
                    other => {
                        problems.push(format!("{}: {other:?}", describe(&p, &format!("cut at {cut} in entry {i}"))))
                    }
                }
            }
            // Inside a payload whose size the entry gives.
            let sized =
                matches!(extra, ExtraSpec::Blob(_) | ExtraSpec::Tcp(..) | ExtraSpec::Sem(_) | ExtraSpec::Shm(_));
            if sized && end > msg_end + 1 {
                for cut in [msg_end + 1, (msg_end + end) / 2, end - 1] {
                    cases += 1;
                    match decode_err(&data[..cut as usize]) {
                        Some(e)
                            if e.loc.entry == Some(i)
                                && matches!(e.kind, ErrorKind::Truncated { .. })
                                && e.loc.offset.is_some_and(|o| o >= msg_end && o < end) => {}
                        other => problems.push(format!(
                            "{}: {other:?}",
                            describe(&p, &format!("cut at {cut} in the payload of entry {i}"))
                        )),
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} of {cases} cases:\n{}", problems.len(), problems.join("\n"));
    assert!(cases > 2000, "only {cases} truncations");
}

fn is_pagemap(data: &[u8]) -> bool {
    ImageReader::open(data).map(|r| r.kind().name == "PAGEMAP").unwrap_or(false)
}

/// Bit flips anywhere: whatever decode makes of them, every property of the
/// decode fuzz target holds (no panic, whole = in pieces, decode, info and
/// --nopl agree, the JSON encodes back to an image that decodes the same).
#[test]
fn bit_flipped_images_keep_every_decode_property() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = 0;
    for (_, data) in fixture_images() {
        if data.len() > 32 << 10 {
            continue;
        }
        for k in 0..6 {
            let mut m = data.clone();
            for _ in 0..=k % 3 {
                let at = rng.below(m.len() as u64) as usize;
                m[at] ^= 1 << rng.below(8);
            }
            let mut input = vec![(k as u8 * 0x13) & 0x3f];
            input.extend_from_slice(&m);
            checks::decode(&input);
            cases += 1;
        }
    }
    assert!(cases > 500, "only {cases} flipped images");
}

/// A size prefix or a payload size far beyond the data left is an error
/// naming the entry, never an allocation of that size.
#[test]
fn huge_size_prefixes_and_payload_sizes_are_errors() {
    let mut cases = 0;
    let mut problems = Vec::new();
    for (p, data) in fixture_images() {
        let lay = layout(&data);
        let picks: Vec<usize> = [0, lay.entries.len() / 2, lay.entries.len().saturating_sub(1)].into_iter().collect();
        for &i in picks.iter().filter(|&&i| i < lay.entries.len()) {
            let (start, _, _, _) = lay.entries[i];
            for huge in [0x7fff_ffffu32, 0xffff_ffff, 0x8000_0000, (data.len() as u32).wrapping_add(1)] {
                let mut m = data.clone();
                m[start as usize..start as usize + 4].copy_from_slice(&huge.to_le_bytes());
                cases += 1;
                match decode_err(&m) {
                    Some(e)
                        if e.loc.entry == Some(i)
                            && e.loc.offset == Some(start + 4)
                            && matches!(e.kind, ErrorKind::Truncated { .. }) => {}
                    other => {
                        problems.push(format!("{}: {other:?}", describe(&p, &format!("size {huge:#x} at entry {i}"))))
                    }
                }
            }
        }
        // The payload size field of the first entry that has a payload.
        if let Some(bad) = with_huge_payload_size(&data) {
            cases += 1;
            match decode_err(&bad) {
                Some(e) if e.loc.entry.is_some() && matches!(e.kind, ErrorKind::Truncated { .. }) => {}
                other => problems.push(format!("{}: {other:?}", describe(&p, "huge payload size"))),
            }
            let r = transcode::decode(&bad[..], std::io::sink(), DecodeOptions { nice: false, no_payload: true });
            if r.is_ok() {
                problems.push(describe(&p, "huge payload size, --nopl: no error"));
            }
        }
    }
    assert!(problems.is_empty(), "{} of {cases} cases:\n{}", problems.len(), problems.join("\n"));
}

/// The image with the payload size of its first payload-bearing entry set
/// to the largest value its field holds.
fn with_huge_payload_size(data: &[u8]) -> Option<Vec<u8>> {
    let mut rd = ImageReader::open(data).ok()?;
    let header = rd.offset() as usize;
    let mut at = header;
    let mut out = data[..header].to_vec();
    let mut done = false;
    while let Some(item) = rd.next_item().ok()? {
        let msg_end = rd.offset() as usize;
        rd.skip_extra().ok()?;
        let end = rd.offset() as usize;
        let field = match item.extra {
            ExtraSpec::Blob(_) if item.msg.has("bytes") => Some("bytes"),
            ExtraSpec::Blob(_) if item.msg.has("length") => Some("length"),
            ExtraSpec::Blob(_) if item.msg.has("len") => Some("len"),
            ExtraSpec::Tcp(..) => Some("inq_len"),
            ExtraSpec::Sem(_) => Some("nsems"),
            ExtraSpec::Msg(_) => None,
            ExtraSpec::Shm(_) => Some("size"),
            _ => None,
        };
        match field {
            Some(f) if !done => {
                let mut m = item.msg.clone();
                let big = match m.field_desc(f).map(|d| d.ty) {
                    Some(Type::Uint64) => u64::MAX,
                    _ => u32::MAX as u64,
                };
                m.set(f, Value::Uint(big)).ok()?;
                let b = m.to_bytes();
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(&b);
                out.extend_from_slice(&data[msg_end..end]);
                done = true;
            }
            _ => out.extend_from_slice(&data[at..end]),
        }
        at = end;
    }
    done.then_some(out)
}

/// Wrong magics: an unknown one is crit's "Unknown magic"; one with no
/// decoder (kdat) says so; another kind's magic decodes or fails, no panic.
#[test]
fn wrong_magics_are_unknown_or_decode_as_that_kind() {
    let mut cases = 0;
    for (p, data) in fixture_images().into_iter().step_by(3) {
        let header = layout(&data).header as usize;
        let at = header - 4;
        for (magic, expect) in
            [(0x1234_5678u32, "unknown"), (0x5702_3458, "kdat"), (0x5027_3030, "pstree"), (0x5505_3847, "core")]
        {
            let mut m = data.clone();
            m[at..at + 4].copy_from_slice(&magic.to_le_bytes());
            cases += 1;
            let e = decode_err(&m);
            match expect {
                "unknown" => assert!(
                    matches!(e.as_ref().map(|e| &e.kind), Some(ErrorKind::UnknownMagic(v)) if *v as u32 == magic),
                    "{}: {e:?}",
                    describe(&p, "unknown magic")
                ),
                "kdat" => assert!(
                    matches!(e.as_ref().map(|e| &e.kind), Some(ErrorKind::NoHandler(_))),
                    "{}: {e:?}",
                    describe(&p, "kdat magic")
                ),
                _ => {
                    let mut input = vec![0u8];
                    input.extend_from_slice(&m);
                    checks::decode(&input);
                }
            }
        }
        // A damaged head magic: its word is taken as the type magic.
        if header == 8 {
            let mut m = data.clone();
            m[0] ^= 0x40;
            assert!(
                matches!(decode_err(&m).map(|e| e.kind), Some(ErrorKind::UnknownMagic(_))),
                "{}",
                describe(&p, "head magic")
            );
            cases += 1;
        }
    }
    assert!(cases > 100);
}

/// Trailing garbage after the last entry: a partial size prefix, or a size
/// prefix larger than what is left, is an error naming the entry after the
/// last one.
#[test]
fn trailing_garbage_is_an_error_naming_the_next_entry() {
    let mut cases = 0;
    for (p, data) in fixture_images() {
        let lay = layout(&data);
        if matches!(lay.entries.last(), Some((_, _, _, ExtraSpec::GhostRaw))) {
            continue; // the raw contents run to the end of the file by design
        }
        for tail in [&b"\x01"[..], b"\xff\xff", b"abc", b"garbage!", b"\xff\xff\xff\x7f\x00\x00"] {
            let mut m = data.clone();
            m.extend_from_slice(tail);
            cases += 1;
            match decode_err(&m) {
                // The offset of the size prefix, or of the message it sizes.
                Some(e)
                    if e.loc.entry == Some(lay.entries.len())
                        && e.loc.offset == Some(data.len() as u64 + if tail.len() < 4 { 0 } else { 4 }) => {}
                other => panic!("{}: {other:?}", describe(&p, &format!("trailing {tail:?}"))),
            }
        }
    }
    assert!(cases > 500);
}

// ---------------------------------------------------------------------------
// JSON

fn write_json(v: &Json, out: &mut Vec<u8>) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Json::Float(f) => out.extend_from_slice(format!("{f:?}").as_bytes()),
        Json::Str(s) => write_json_str(s, out),
        Json::Arr(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_json(x, out);
            }
            out.push(b']');
        }
        Json::Obj(o) => {
            out.push(b'{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_json_str(k.as_bytes(), out);
                out.extend_from_slice(b": ");
                write_json(x, out);
            }
            out.push(b'}');
        }
    }
}

fn write_json_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\udc{b:02x}").as_bytes());
        }
    }
    out.push(b'"');
}

/// A bad value for a field of type `f`, which encode must refuse, and why.
fn bad_values(f: &crit::schema::FieldDesc) -> Vec<(Json, &'static str)> {
    let mut v = Vec::new();
    if f.label == Label::Repeated {
        v.push((Json::Int(1), "not a list"));
        return v;
    }
    match f.ty {
        Type::Message(_) => {
            v.push((Json::Int(1), "a number for a message"));
            v.push((Json::Arr(vec![]), "a list for a message"));
        }
        Type::Enum(_) => {
            v.push((Json::Str(b"NO_SUCH_VALUE".to_vec()), "an unknown enum name"));
            v.push((Json::Float(1.5), "a number for an enum"));
            v.push((Json::Int(1 << 40), "an enum value out of range"));
        }
        Type::Bytes if f.opts.conv.is_none() => {
            v.push((Json::Int(7), "a number for bytes"));
            v.push((Json::Str(b"QQ".to_vec()), "bad base64 (padding)"));
            v.push((Json::Str(b"QUJDR".to_vec()), "bad base64 (a lone character)"));
        }
        t if t.is_integer() && f.opts.flags.is_none() && f.opts.dict.is_none() && !f.opts.dev => {
            v.push((Json::Str(b"twelve".to_vec()), "text for an integer"));
            v.push((Json::Arr(vec![Json::Int(1)]), "a list for an integer"));
            v.push((Json::Obj(vec![]), "an object for an integer"));
            let hi: i128 = match t {
                Type::Int32 | Type::Sint32 | Type::Sfixed32 => i32::MAX as i128 + 1,
                Type::Int64 | Type::Sint64 | Type::Sfixed64 => i64::MAX as i128 + 1,
                Type::Uint32 | Type::Fixed32 => u32::MAX as i128 + 1,
                _ => u64::MAX as i128 + 1,
            };
            v.push((Json::Int(hi), "a value out of range (too big)"));
            if !t.is_signed() {
                v.push((Json::Int(-1), "a value out of range (negative)"));
            }
        }
        _ => {}
    }
    v
}

/// The first JSON entry of every kind of message in the fixtures.
fn sample_entries() -> Vec<(PathBuf, String, MsgId, Json)> {
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    for (p, data) in fixture_images() {
        let Ok(rd) = ImageReader::open(&data[..]) else { continue };
        let kind = rd.kind();
        let crit::magic::Body::Entries(ty, _) = kind.body else { continue };
        if !seen.insert(ty) {
            continue;
        }
        let json = transcode::decode(&data[..], Vec::new(), RAW).expect("fixture decodes");
        let doc = parse_slice(&json).expect("our JSON parses");
        let Some(Json::Arr(entries)) = doc.get("entries") else { continue };
        let Some(first) = entries.first() else { continue };
        v.push((p, kind.name.to_string(), ty, first.clone()));
    }
    v
}

fn image_json(magic: &str, entries: Vec<Json>) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(
        &Json::Obj(vec![
            ("magic".into(), Json::Str(magic.as_bytes().to_vec())),
            ("entries".into(), Json::Arr(entries)),
        ]),
        &mut out,
    );
    out
}

fn set_member(obj: &Json, key: &str, val: Option<Json>) -> Json {
    let Json::Obj(m) = obj else { return obj.clone() };
    let mut m: Vec<(String, Json)> = m.iter().filter(|(k, _)| k != key).cloned().collect();
    if let Some(v) = val {
        m.push((key.to_string(), v));
    }
    Json::Obj(m)
}

/// Bad JSON values (wrong types, out of range, unknown enum names, bad
/// base64, in top-level and nested fields) and missing required fields:
/// each an encode error naming line and column, the entry and the field.
#[test]
fn bad_json_values_name_entry_and_field() {
    let mut cases = 0;
    let mut problems = Vec::new();
    for (p, magic, ty, entry) in sample_entries() {
        let desc = ty.desc();
        // Sanity: the untouched entry encodes, as the second of two.
        let good = image_json(&magic, vec![entry.clone(), entry.clone()]);
        if let Err(e) = transcode::encode(&good[..], Vec::new()) {
            problems.push(format!("{}: the fixture's own entry does not encode: {e}", describe(&p, &magic)));
            continue;
        }
        let mut check = |bad: Json, field: String, what: String| {
            let text = image_json(&magic, vec![entry.clone(), bad]);
            cases += 1;
            match transcode::encode(&text[..], Vec::new()) {
                Ok(_) => problems.push(format!("{}: accepted", describe(&p, &what))),
                Err(e) => {
                    let f = e.loc.field.clone().unwrap_or_default();
                    let s = e.to_string();
                    if e.loc.entry != Some(1)
                        || e.loc.line_col.is_none()
                        || !(f == field || f.starts_with(&format!("{field}.")) || f.starts_with(&format!("{field}[")))
                            && !s.contains(&field)
                        || s.contains('\n')
                    {
                        problems.push(format!("{}: {s} (entry {:?}, field {f:?})", describe(&p, &what), e.loc.entry));
                    }
                }
            }
        };
        for f in desc.fields {
            let Some(orig) = entry.get(f.name) else {
                continue;
            };
            for (bad, why) in bad_values(f) {
                check(set_member(&entry, f.name, Some(bad)), f.name.to_string(), format!("{magic}.{}: {why}", f.name));
            }
            if f.label == Label::Required {
                check(set_member(&entry, f.name, None), f.name.to_string(), format!("{magic}.{}: missing", f.name));
            }
            // One level down, into a present nested message.
            if let (Type::Message(sub), Json::Obj(_), false) = (f.ty, orig, f.label == Label::Repeated) {
                for g in sub.desc().fields {
                    if orig.get(g.name).is_none() {
                        continue;
                    }
                    if let Some((bad, why)) = bad_values(g).into_iter().next() {
                        let inner = set_member(orig, g.name, Some(bad));
                        let path = format!("{}.{}", f.name, g.name);
                        check(set_member(&entry, f.name, Some(inner)), path.clone(), format!("{magic}.{path}: {why}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} of {cases} cases:\n{}", problems.len(), problems.join("\n"));
    assert!(cases > 300, "only {cases} bad values");
}

/// JSON that is not JSON, or not crit's shape: errors with line and column,
/// or crit's "Cannot read JSON" for what is not JSON at all.
#[test]
fn broken_json_documents_are_errors_with_positions() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not json"),
        (b"\x00\x01binary", "not json"),
        (b"[1, 2]", "not json"),
        (b"{\"magic\": \"PSTREE\", \"entries\": [", "json"),
        (b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 1,}]}", "json"),
        (b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 01}]}", "json"),
        (
            b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 1, \"ppid\": 0, \"pgid\": 1, \"sid\": 1}]} trailing",
            "json",
        ),
        (b"{\"magic\": \"PSTREE\", \"entries\": [\"\\ud800\"]}", "json"),
        (b"{\"magic\": \"NO_SUCH_IMAGE\", \"entries\": []}", "value"),
        (b"{\"magic\": 7, \"entries\": []}", "json"),
        (b"{\"magic\": \"PSTREE\"}", "value"),
        (b"{\"entries\": []}", "value"),
        (b"{\"magic\": \"PSTREE\", \"entries\": {}}", "json"),
        (b"{\"magic\": \"PSTREE\", \"entries\": [7]}", "value"),
    ];
    for (text, expect) in cases {
        let e = transcode::encode(*text, Vec::new())
            .err()
            .unwrap_or_else(|| panic!("{:?} accepted", String::from_utf8_lossy(text)));
        let shown = format!("{:?}: {e}", String::from_utf8_lossy(text));
        match *expect {
            "not json" => assert!(matches!(e.kind, ErrorKind::NotJson), "{shown}"),
            "json" => assert!(matches!(e.kind, ErrorKind::Json(_)) && e.loc.line_col.is_some(), "{shown}"),
            _ => assert!(matches!(e.kind, ErrorKind::Value(_)), "{shown}"),
        }
        assert!(!e.to_string().contains('\n'), "{shown}");
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("{{\"magic\": \"PSTREE\", \"entries\": [{}]}}", "[".repeat(100_000));
    assert!(transcode::encode(deep.as_bytes(), Vec::new()).is_err());
    let deep_msg = format!("{{\"magic\": \"CORE\", \"entries\": [{}]}}", "{\"tc\": ".repeat(10_000));
    assert!(transcode::encode(deep_msg.as_bytes(), Vec::new()).is_err());
}

// ---------------------------------------------------------------------------
// Through the binary

fn run(args: &[&str]) -> std::process::Output {
    let o = crit(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked") && !err.contains("internal error"), "crit {args:?}: {err}");
    o
}

fn one_clear_line(o: &std::process::Output, wants: &[&str], ctx: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{ctx}: exit status, stderr {err}");
    assert_eq!(err.lines().count(), 1, "{ctx}: one line: {err}");
    assert!(err.starts_with("crit: "), "{ctx}: {err}");
    for w in wants {
        assert!(err.contains(w), "{ctx}: {err:?} lacks {w:?}");
    }
}

/// A sample of every class of bad input through the binary: exit 1, one
/// line `crit: FILE, offset N, entry I[, field F]: what`, no output file.
#[test]
fn the_binary_gives_exit_1_and_one_located_line() {
    let tmp = TempDir::new("malformed");
    let d = tmp.path();
    let fx = fixtures();
    let pstree = std::fs::read(fx[0].join("pstree.img")).unwrap();
    let lay = layout(&pstree);
    let (start, msg_end, _, _) = lay.entries[0];
    let out = d.join("out");
    let out_s = out.to_str().unwrap();

    let mut cases: Vec<(String, Vec<u8>, Vec<String>)> = Vec::new();
    cases.push((
        "cut".into(),
        pstree[..(msg_end - 2) as usize].to_vec(),
        vec![format!("offset {}", start + 4), "entry 0".into(), "truncated".into()],
    ));
    let mut huge = pstree.clone();
    huge[start as usize..start as usize + 4].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
    cases.push(("huge".into(), huge, vec![format!("offset {}", start + 4), "entry 0".into(), "4294967295".into()]));
    let mut trailing = pstree.clone();
    trailing.extend_from_slice(b"ab");
    let n = lay.entries.len();
    cases.push(("trailing".into(), trailing, vec![format!("offset {}", pstree.len()), format!("entry {n}")]));
    // A message whose field claims more bytes than it has.
    let mut bad = pstree[..start as usize].to_vec();
    bad.extend_from_slice(&3u32.to_le_bytes());
    bad.extend_from_slice(&[0x22, 0x7f, 0x01]); // field 4, length 127, one byte
    cases.push(("field".into(), bad, vec![format!("offset {}", start + 4), "entry 0".into(), "field".into()]));
    for (name, data, wants) in &cases {
        let f = d.join(format!("{name}.img"));
        std::fs::write(&f, data).unwrap();
        let fs = f.to_str().unwrap();
        let mut wants: Vec<&str> = wants.iter().map(String::as_str).collect();
        wants.push(fs);
        one_clear_line(&run(&["decode", "-i", fs, "-o", out_s]), &wants, &format!("decode {name}"));
        assert!(!out.exists(), "decode {name}: no output file on error");
        one_clear_line(&run(&["show", fs]), &wants, &format!("show {name}"));
        one_clear_line(&run(&["info", fs]), &wants[..1], &format!("info {name}"));
    }
    // JSON: a bad value, a missing required field, broken JSON.
    let jcases: [(&str, &[u8], &[&str]); 3] = [
        ("value", br#"{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1}, {"pid": 1, "ppid": 0, "pgid": 1, "sid": 99999999999}]}"#, &["entry 1", "field sid", "line 1 column", "out of range"]),
        ("enum", b"{\"magic\": \"FILES\",\n \"entries\": [{\"id\": 1, \"type\": \"NO_SUCH\"}]}", &["entry 0", "field type", "line 2 column", "NO_SUCH"]),
        ("syntax", b"{\"magic\": \"PSTREE\",\n\n \"entries\": [{\"pid\": 1 \"ppid\": 0}]}", &["line 3 column 24"]),
    ];
    for (name, text, wants) in jcases {
        let f = d.join(format!("{name}.json"));
        std::fs::write(&f, text).unwrap();
        let fs = f.to_str().unwrap();
        let mut wants = wants.to_vec();
        wants.push(fs);
        one_clear_line(&run(&["encode", "-i", fs, "-o", out_s]), &wants, &format!("encode {name}"));
        assert!(!out.exists(), "encode {name}: no output file on error");
    }
}

/// Memory stays bounded by the data, whatever the sizes in it say: under a
/// 96 MiB address-space limit, a 4 GiB size prefix is a clean error, a
/// 512 MiB payload (a sparse file) streams through show --nopl and info,
/// and a 96 MiB one (which could not even be held whole) through decode.
#[test]
fn memory_is_bounded_by_the_data_not_by_sizes_in_it() {
    if Command::new("sh").arg("-c").arg("ulimit -v 98304").status().map(|s| !s.success()).unwrap_or(true) {
        eprintln!("SKIP: ulimit -v is not available");
        return;
    }
    let tmp = TempDir::new("bounded");
    let d = tmp.path();
    let limited = |args: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 98304; exec \"$CRIT\" {args}"))
            .env("CRIT", crit_bin())
            .output()
            .unwrap()
    };
    // pipes-data: one entry whose `bytes` says 4 GiB - 1, then 8 bytes.
    let pipes = fixtures()
        .iter()
        .map(|f| f.join("pipes-data.img"))
        .find(|p| p.exists())
        .expect("a fixture with pipes-data.img");
    let data = std::fs::read(&pipes).unwrap();
    let mut rd = ImageReader::open(&data[..]).unwrap();
    let header = data[..rd.offset() as usize].to_vec();
    let first = rd.next_item().unwrap().unwrap().msg;
    let image_with = |bytes: u32| {
        let mut m = first.clone();
        m.set("bytes", Value::Uint(bytes as u64)).unwrap();
        let b = m.to_bytes();
        let mut v = header.clone();
        v.extend_from_slice(&(b.len() as u32).to_le_bytes());
        v.extend_from_slice(&b);
        v
    };
    let f = d.join("huge.img");
    let mut v = image_with(u32::MAX);
    v.extend_from_slice(b"12345678");
    std::fs::write(&f, &v).unwrap();
    for cmd in ["decode -i", "show", "show --nopl", "info"] {
        let o = limited(&format!("{cmd} {} > /dev/null", f.display()));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("truncated payload") && err.contains("entry 0"), "{cmd}: {err}");
    }
    // Real payloads, as holes in sparse files.
    let sparse = |name: &str, size: u32| {
        let f = d.join(name);
        let v = image_with(size);
        let file = std::fs::File::create(&f).unwrap();
        use std::io::Write as _;
        (&file).write_all(&v).unwrap();
        file.set_len(v.len() as u64 + size as u64).unwrap();
        f
    };
    let f = sparse("big.img", 512 << 20);
    for (cmd, expect) in [("show --nopl", "<512MB>"), ("info", "\"count\": 1")] {
        let o = limited(&format!("{cmd} {}", f.display()));
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains(expect), "{cmd}: {}", String::from_utf8_lossy(&o.stdout));
    }
    let size: u32 = 96 << 20;
    let f = sparse("big96.img", size);
    let o = limited(&format!("decode -i {} | wc -c", f.display()));
    assert!(o.status.success(), "decode: {}", String::from_utf8_lossy(&o.stderr));
    let n: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(n > size as u64 * 4 / 3, "decode wrote {n} bytes");
}

// ---------------------------------------------------------------------------
// Regressions

/// Every crash the fuzzers found, replayed through its target's checks:
/// tests/regressions/<target>-<what>.bin.
#[test]
fn fuzz_regressions_replay_clean() {
    let dir = root().join("tests/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "bin")).collect())
        .unwrap_or_default();
    files.sort();
    assert!(!files.is_empty(), "no regression inputs in {}", dir.display());
    let tmp = TempDir::new("regress-x");
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&f).unwrap();
        let target = name.split('-').next().unwrap_or("");
        let r = std::panic::catch_unwind(|| match target {
            "decode" => checks::decode(&data),
            "encode" => checks::encode(&data),
            "message" => checks::message(&data),
            "json" => checks::json(&data),
            "x" => checks::x_in(&data, tmp.path()),
            "archive" => {
                let f = tmp.path().join("archive.tar");
                std::fs::write(&f, &data).unwrap();
                checks::archive_at(&f, data.len() as u64)
            }
            "stream" => checks::stream(&data),
            "views" => checks::views_in(&data, &tmp.path().join("views")),
            other => panic!("{name}: no fuzz target {other:?}"),
        });
        assert!(r.is_ok(), "regression {name} fails again");
    }
}

// ---------------------------------------------------------------------------
// Files: where crit reads and writes

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for p in images(from) {
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// A checkpoint directory is read only inside itself: an image that is a
/// symlink leading out of it is refused (even when it points at a valid
/// image), one leading to another file inside it is followed, and a FIFO is
/// an error, not a hang.
#[test]
fn checkpoint_images_never_lead_out_of_the_directory() {
    use crit::checkpoint::Checkpoint;
    let fx = fixtures().into_iter().find(|f| f.ends_with("criu41-tree")).unwrap_or_else(|| fixtures()[0].clone());
    let tmp = TempDir::new("symlinks");
    let dir = tmp.path().join("ck");
    copy_dir(&fx, &dir);
    let ck = Checkpoint::open(&dir).unwrap();
    let tasks = ck.tasks().unwrap();
    let pid = tasks[0].pid;
    let core = format!("core-{pid}.img");
    let good = ck.core(pid).unwrap();
    drop(ck);
    // Outside, a valid core image: still refused.
    let outside = tmp.path().join("elsewhere.img");
    std::fs::rename(dir.join(&core), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join(&core)).unwrap();
    let ck = Checkpoint::open(&dir).unwrap();
    let e = ck.core(pid).expect_err("a symlink out of the directory is refused");
    assert!(e.to_string().contains("leads out of the checkpoint directory"), "{e}");
    assert!(!ck.has(&core));
    let o = run(&["x", dir.to_str().unwrap(), "ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("leads out of the checkpoint directory"));
    // The same through `..` inside the link.
    std::fs::remove_file(dir.join(&core)).unwrap();
    std::os::unix::fs::symlink(Path::new("..").join("elsewhere.img"), dir.join(&core)).unwrap();
    assert!(Checkpoint::open(&dir).unwrap().core(pid).is_err());
    // A link to a file inside the directory is fine.
    std::fs::remove_file(dir.join(&core)).unwrap();
    std::fs::rename(&outside, dir.join("real-core")).unwrap();
    std::os::unix::fs::symlink("real-core", dir.join(&core)).unwrap();
    assert_eq!(Checkpoint::open(&dir).unwrap().core(pid).unwrap(), good);
    // A FIFO where an image should be.
    let mm = dir.join(format!("mm-{pid}.img"));
    std::fs::remove_file(&mm).unwrap();
    assert!(Command::new("mkfifo").arg(&mm).status().unwrap().success());
    let e = Checkpoint::open(&dir).unwrap().mm(pid).expect_err("a FIFO is refused");
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

/// Output is written to a temporary file beside the target and renamed:
/// when the rename fails (the target is a directory) nothing is left
/// behind; `-i X -o X` reads X whole before replacing it.
#[test]
fn output_is_atomic_and_in_place_conversion_is_safe() {
    let fx = &fixtures()[0];
    let tmp = TempDir::new("atomic-out");
    let d = tmp.path();
    let img = d.join("pstree.img");
    std::fs::copy(fx.join("pstree.img"), &img).unwrap();
    let original = std::fs::read(&img).unwrap();
    std::fs::create_dir(d.join("adir")).unwrap();
    let o = run(&["decode", "-i", img.to_str().unwrap(), "-o", d.join("adir").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let left: Vec<String> =
        std::fs::read_dir(d).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left.len(), 2, "no temporary file left behind: {left:?}");
    // decode -i X -o X, then encode -i X -o X: the same image comes back.
    let x = img.to_str().unwrap();
    let json = transcode::decode(&original[..], Vec::new(), RAW).unwrap();
    assert!(run(&["decode", "-i", x, "-o", x]).status.success());
    assert_eq!(std::fs::read(&img).unwrap(), json);
    assert!(run(&["encode", "-i", x, "-o", x]).status.success());
    assert_eq!(std::fs::read(&img).unwrap(), original);
}

/// `x ps` on a pstree whose pids repeat and form a cycle finishes, each
/// pid once (it used to print without end: 2^depth lines).
#[test]
fn x_ps_on_a_cyclic_pstree_shows_each_pid_once() {
    let data = std::fs::read(root().join("tests/regressions/x-pstree-cycle-exponential.bin")).unwrap();
    let tmp = TempDir::new("cycle");
    for (name, body) in checks::split_dir(&data) {
        std::fs::write(tmp.path().join(name), body).unwrap();
    }
    let o = run(&["x", tmp.path().to_str().unwrap(), "ps"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
}
