//! Round-trip properties on generated messages of every schema type:
//! wire bytes, raw JSON and nice JSON all give the message back.

use crit::json::map::{message_from_json, write_message, Style};
use crit::json::parse::parse_slice;
use crit::json::JsonOut;
use crit::schema::{Label, MsgId, Type, MESSAGES};
use crit::wire::{Message, Unknown, Value};

use crate::util::Rng;

fn gen_value(r: &mut Rng, ty: Type, conv: Option<&str>, depth: usize) -> Value {
    match ty {
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => Value::Int(r.int() as i32 as i64),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => Value::Int(r.int() as i64),
        Type::Uint32 | Type::Fixed32 => Value::Uint(r.int() as u32 as u64),
        Type::Uint64 | Type::Fixed64 => Value::Uint(r.int()),
        Type::Bool => Value::Bool(r.chance(50)),
        Type::Float | Type::Double => Value::Float((r.below(1000) as f64) / 8.0),
        Type::String => {
            let mut s: Vec<u8> = match r.below(3) {
                0 => "héllo/😀\u{7f}\"\\\n".as_bytes().to_vec(),
                1 => r.bytes(20).into_iter().map(|b| b % 0x7f).collect(),
                // Bytes that are not UTF-8 travel as \udcXX escapes.
                _ => r.bytes(20),
            };
            s.truncate(40);
            Value::Str(s)
        }
        Type::Bytes => {
            let mut b = r.bytes(200);
            if conv == Some("unix_name") {
                // quoted-printable rewrites bare LF as CRLF once a CRLF was
                // seen (as Python's quopri does): keep CR out.
                b.retain(|&c| c != b'\r');
            }
            Value::Bytes(b)
        }
        Type::Enum(e) => {
            let vals = e.desc().values;
            if r.chance(90) {
                Value::Enum(vals[r.below(vals.len() as u64) as usize].1)
            } else {
                Value::Enum(1000 + r.below(1000) as i32)
            }
        }
        Type::Message(m) => Value::Msg(gen_message(r, m, depth + 1)),
    }
}

fn gen_message(r: &mut Rng, ty: MsgId, depth: usize) -> Message {
    let mut m = Message::new(ty);
    for f in ty.desc().fields {
        let is_msg = matches!(f.ty, Type::Message(_));
        if depth > 3 && is_msg {
            continue;
        }
        let n = match f.label {
            Label::Repeated => {
                if f.opts.ipadd && r.chance(50) {
                    if r.chance(50) {
                        1
                    } else {
                        4
                    }
                } else if r.chance(50) {
                    0
                } else {
                    1 + r.below(3)
                }
            }
            _ => {
                if r.chance(60) {
                    1
                } else {
                    0
                }
            }
        };
        for _ in 0..n {
            let v = gen_value(r, f.ty, f.opts.conv, depth);
            m.fields.push((f.number, v));
        }
    }
    if r.chance(10) {
        let number = 1000 + r.below(100) as u32;
        let u = match r.below(4) {
            0 => Unknown::Varint(r.int()),
            1 => Unknown::Fixed64(r.next()),
            2 => Unknown::Fixed32(r.next() as u32),
            _ => Unknown::Len(r.bytes(10)),
        };
        m.insert_sorted(number, Value::Unknown(u));
    }
    m
}

fn json_of(m: &Message, nice: bool) -> Vec<u8> {
    let mut out = JsonOut::new(Vec::new(), nice);
    write_message(&mut out, m, Style { nice }, false).unwrap();
    out.finish().unwrap()
}

#[test]
fn generated_messages_round_trip_through_wire_and_json() {
    let mut r = Rng(0x9e3779b97f4a7c15);
    let mut count = 0;
    for round in 0..40 {
        for (i, _) in MESSAGES.iter().enumerate() {
            let ty = MsgId(i as u16);
            let m = gen_message(&mut r, ty, 0);
            let bytes = m.to_bytes();
            let back = Message::decode(ty, &bytes).unwrap_or_else(|e| panic!("{}: {e}", ty.desc().name));
            assert_eq!(back, m, "wire round trip of {} (round {round})", ty.desc().name);
            for nice in [false, true] {
                let text = json_of(&m, nice);
                let j = parse_slice(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{}", ty.desc().name, String::from_utf8_lossy(&text)));
                let again = message_from_json(ty, &j).unwrap_or_else(|e| {
                    panic!("{} nice={nice}: {e}\n{}", ty.desc().name, String::from_utf8_lossy(&text))
                });
                assert_eq!(
                    again.to_bytes(),
                    bytes,
                    "JSON round trip of {} nice={nice}:\n{}",
                    ty.desc().name,
                    String::from_utf8_lossy(&text)
                );
            }
            count += 1;
        }
    }
    assert!(count > 5000);
}

#[test]
fn truncated_and_corrupted_messages_error_without_panic() {
    let mut r = Rng(12345);
    for (i, _) in MESSAGES.iter().enumerate() {
        let ty = MsgId(i as u16);
        let bytes = gen_message(&mut r, ty, 0).to_bytes();
        for cut in 0..bytes.len().min(64) {
            let _ = Message::decode(ty, &bytes[..cut]);
        }
        let mut b = bytes.clone();
        for _ in 0..16 {
            if b.is_empty() {
                break;
            }
            let p = r.below(b.len() as u64) as usize;
            b[p] ^= 1 << r.below(8);
            let _ = Message::decode(ty, &b);
        }
    }
}
