//! Fuzz target `decode`: see `crit_fuzz::checks::decode` for the properties
//! of whole images; and the direct wire → JSON walk writes exactly what the
//! message path writes for the same bytes, or nothing at all.
#![no_main]

use crit::json::{direct, write_fields, JsonOut, Style};
use crit::schema::{MsgId, MESSAGES};
use crit::wire::Message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    crit_fuzz::checks::decode(data);
    direct_is_tree(data);
});

/// Bytes 0 and 1 pick the message type and the mode; the rest is the
/// message.
fn direct_is_tree(data: &[u8]) {
    let [a, b, msg @ ..] = data else { return };
    let ty = MsgId((u16::from_le_bytes([*a, *b & 0x3f]) as usize % MESSAGES.len()) as u16);
    let (nice, pretty) = (b & 0x40 != 0, b & 0x80 != 0);
    let style = Style { nice };
    let frame = |out: &mut JsonOut<Vec<u8>>| {
        out.begin_object().unwrap();
        out.key("k").unwrap();
        out.int(0u8).unwrap();
    };
    let mut d = JsonOut::new(Vec::new(), pretty);
    frame(&mut d);
    let took = direct::write_fields(&mut d, ty, msg, style, false).unwrap();
    d.end_object().unwrap();
    let d = d.finish().unwrap();
    let tree = Message::decode(ty, msg);
    let mut t = JsonOut::new(Vec::new(), pretty);
    frame(&mut t);
    if took {
        let m = tree.unwrap_or_else(|e| panic!("the walk wrote {}, the message path fails: {e}", ty.desc().name));
        write_fields(&mut t, &m, style, false).unwrap();
    }
    t.end_object().unwrap();
    let t = t.finish().unwrap();
    assert!(
        t == d,
        "{} nice={nice} pretty={pretty}: the walk {} differs from the message path:\n walk: {}\n tree: {}",
        ty.desc().name,
        if took { "text" } else { "fallback" },
        String::from_utf8_lossy(&d),
        String::from_utf8_lossy(&t)
    );
}
