//! Python's formatting and parsing rules that crit's JSON depends on:
//! `"0x%x"`, `int(s, 0)`, flag strings, device numbers, IP addresses and
//! quoted-printable (`quopri`) text.

use super::maps::{Dict, FlagMap};

/// `"0x%x" % v` (negative values print as `0x-5`, as Python does).
pub fn hex(v: i128) -> String {
    let mut s = Vec::with_capacity(20);
    hex_into(&mut s, v);
    String::from_utf8_lossy(&s).into_owned()
}

/// [`hex`], appended to a buffer.
pub fn hex_into(out: &mut Vec<u8>, v: i128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // `0x-` copied whole, the `-` then cut where not needed.
    let len = out.len();
    out.extend_from_slice(b"0x-");
    out.truncate(len + 2 + (v < 0) as usize);
    let mut m = v.unsigned_abs();
    if let Ok(m) = u64::try_from(m) {
        // Up to 16 digits, from two words of eight.
        let n = (67 - (m | 1).leading_zeros() as usize) / 4;
        let digits = (hex8((m >> 32) as u32) as u128 | (hex8(m as u32) as u128) << 64) >> (8 * (16 - n));
        let len = out.len();
        out.extend_from_slice(&digits.to_le_bytes());
        out.truncate(len + n);
        return;
    }
    let mut tmp = [0u8; 32];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = DIGITS[(m & 15) as usize];
        m >>= 4;
        if m == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// The eight lowercase hex digits of `x` (leading zeros kept), the first
/// in the low byte: each nibble spread to a byte, the bytes reversed, then
/// `'0'` added, and `'a' - '0' - 10` more where the nibble is 10 or more
/// (adding 6 carries into its bit 4).
#[inline]
fn hex8(x: u32) -> u64 {
    let x = x as u64;
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    let x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    let x = x.swap_bytes();
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64
}

/// crit's `map_flags`: the names of the map's bits that are set, in map
/// order, joined by `" | "`, then the other bits as one hex token.
pub fn map_flags(v: i128, map: FlagMap) -> String {
    let mut s = Vec::new();
    map_flags_into(&mut s, v, map);
    String::from_utf8_lossy(&s).into_owned()
}

/// [`map_flags`], appended to a buffer.
pub fn map_flags_into(out: &mut Vec<u8>, v: i128, map: FlagMap) {
    let mut first = true;
    let mut all: i128 = 0;
    for (name, mask) in map {
        let m = *mask as i128;
        if v & m != 0 {
            if !first {
                out.extend_from_slice(b" | ");
            }
            out.extend_from_slice(name.as_bytes());
            first = false;
        }
        all += m;
    }
    let rest = v & !all;
    if rest != 0 {
        if !first {
            out.extend_from_slice(b" | ");
        }
        hex_into(out, rest);
    }
}

/// crit's `unmap_flags`: `""` is 0; else the sum of each `|`-separated
/// token, a name of the map or a number in `int(s, 0)` form.
pub fn unmap_flags(s: &str, map: FlagMap) -> Result<i128, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let mut sum: i128 = 0;
    for tok in s.split('|') {
        let t = tok.trim();
        let v = match map.iter().find(|(n, _)| *n == t) {
            Some((_, m)) => *m as i128,
            None => int0(t).ok_or_else(|| format!("unknown flag {t:?}"))?,
        };
        sum = sum.checked_add(v).ok_or("flags overflow")?;
    }
    Ok(sum)
}

/// A name from a dictionary, if the value has one.
pub fn dict_name(v: i128, d: Dict) -> Option<&'static str> {
    d.iter().find(|(n, _)| *n as i128 == v).map(|(_, s)| *s)
}

/// A value from a dictionary name, else `int(s, 0)`.
pub fn dict_value(s: &str, d: Dict) -> Option<i128> {
    match d.iter().find(|(_, n)| *n == s) {
        Some((v, _)) => Some(*v as i128),
        None => int0(s),
    }
}

/// `"%d:%d" % (v >> 20, v & 0xfffff)`: the kernel's dev_t split.
pub fn dev(v: i128) -> String {
    format!("{}:{}", v >> 20, v & 0xfffff)
}

/// `os.major(v)`, `os.minor(v)` of glibc's dev_t split.
pub fn odev(v: u64) -> String {
    let major = ((v >> 8) & 0xfff) | ((v >> 32) & !0xfff);
    let minor = (v & 0xff) | ((v >> 12) & !0xff);
    format!("{major}:{minor}")
}

/// Parse `"MAJ:MIN"` back (`dev` or `odev` form).
pub fn parse_dev(s: &str, old: bool) -> Option<i128> {
    let mut it = s.split(':');
    let maj = int10(it.next()?)?;
    let min = int10(it.next()?)?;
    if old {
        // os.makedev
        if maj < 0 || min < 0 || maj > u32::MAX as i128 || min > u32::MAX as i128 {
            return None;
        }
        let (maj, min) = (maj as u64, min as u64);
        Some(((min & 0xff) | ((maj & 0xfff) << 8) | ((min & !0xff) << 12) | ((maj & !0xfff) << 32)) as i128)
    } else {
        maj.checked_mul(1 << 20).map(|m| m | min)
    }
}

fn digits(s: &str, radix: u32) -> Option<i128> {
    // Python allows single underscores between digits (and after a prefix).
    if s.is_empty() || s.ends_with('_') || s.contains("__") {
        return None;
    }
    let mut v: i128 = 0;
    for c in s.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)? as i128;
        v = v.checked_mul(radix as i128)?.checked_add(d)?;
    }
    Some(v)
}

fn split_sign(s: &str) -> (bool, &str) {
    let s = s.trim();
    if let Some(r) = s.strip_prefix('-') {
        (true, r)
    } else if let Some(r) = s.strip_prefix('+') {
        (false, r)
    } else {
        (false, s)
    }
}

/// Python's `int(s, 0)`: optional sign, `0x`/`0o`/`0b` prefixes, no
/// leading zeros in decimal, underscores between digits.
pub fn int0(s: &str) -> Option<i128> {
    let (neg, body) = split_sign(s);
    let lower = body.get(..2).map(|p| p.to_ascii_lowercase());
    let v = match lower.as_deref() {
        Some("0x") => digits(&body[2..], 16)?,
        Some("0o") => digits(&body[2..], 8)?,
        Some("0b") => digits(&body[2..], 2)?,
        _ => {
            if body.starts_with('_') {
                return None;
            }
            let v = digits(body, 10)?;
            if body.starts_with('0') && v != 0 {
                return None;
            }
            v
        }
    };
    Some(if neg { -v } else { v })
}

/// Python's `int(s)` (base 10; leading zeros allowed).
pub fn int10(s: &str) -> Option<i128> {
    let (neg, body) = split_sign(s);
    if body.starts_with('_') {
        return None;
    }
    let v = digits(body, 10)?;
    Some(if neg { -v } else { v })
}

/// An IPv4 address from crit's one-element list: the u32 holds the
/// address bytes in memory order (network order read natively).
pub fn ipv4(v: u32) -> String {
    let b = v.to_le_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// An IPv6 address from four u32 words (each in memory order), in the
/// compressed form of RFC 5952: lowercase, longest zero run (2 or more
/// groups, the first on ties) as `::`; IPv4-mapped addresses end in
/// dotted-quad form (`::ffff:127.0.0.1`).
pub fn ipv6(w: [u32; 4]) -> String {
    let mut bytes = [0u8; 16];
    for (i, x) in w.iter().enumerate() {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&x.to_le_bytes());
    }
    let groups: Vec<u16> = bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    if groups[..5].iter().all(|&g| g == 0) && groups[5] == 0xffff {
        return format!("::ffff:{}.{}.{}.{}", bytes[12], bytes[13], bytes[14], bytes[15]);
    }
    // Longest run of zero groups.
    let (mut best, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let s = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - s > best_len {
                best = s;
                best_len = i - s;
            }
        } else {
            i += 1;
        }
    }
    let hexs = |gs: &[u16]| gs.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":");
    if best_len < 2 {
        return hexs(&groups);
    }
    format!("{}::{}", hexs(&groups[..best]), hexs(&groups[best + best_len..]))
}

/// Parse an IP address into crit's u32 words (memory order).
pub fn parse_ip(s: &str) -> Option<Vec<u32>> {
    if let Ok(a) = s.parse::<std::net::Ipv4Addr>() {
        return Some(vec![u32::from_le_bytes(a.octets())]);
    }
    let a = s.parse::<std::net::Ipv6Addr>().ok()?;
    let o = a.octets();
    Some(o.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// `quopri.encodestring(data)` (`binascii.b2a_qp` with `istext`, no
/// header, tabs not quoted), as crit writes unix socket names.
pub fn qp_encode(data: &[u8]) -> String {
    const MAX: usize = 76;
    const HEXU: &[u8; 16] = b"0123456789ABCDEF";
    // Line ends are CRLF when the first LF is preceded by CR.
    let crlf = match data.iter().position(|&b| b == b'\n') {
        Some(p) => p > 0 && data[p - 1] == b'\r',
        None => false,
    };
    let mut out: Vec<u8> = Vec::with_capacity(data.len() * 3);
    let mut linelen = 0usize;
    let n = data.len();
    let mut i = 0;
    while i < n {
        let c = data[i];
        let next = data.get(i + 1).copied();
        let quote = c > 126
            || c == b'='
            || (c == b'.'
                && linelen == 0
                && (next.is_none() || next == Some(b'\n') || next == Some(b'\r') || next == Some(0)))
            || ((c == b'\t' || c == b' ') && i + 1 == n)
            || (c < 33 && c != b'\r' && c != b'\n' && c != b'\t' && c != b' ');
        if quote {
            if linelen + 3 >= MAX {
                out.push(b'=');
                if crlf {
                    out.push(b'\r');
                }
                out.push(b'\n');
                linelen = 0;
            }
            out.push(b'=');
            out.push(HEXU[(c >> 4) as usize]);
            out.push(HEXU[(c & 15) as usize]);
            linelen += 3;
            i += 1;
        } else if c == b'\n' || (c == b'\r' && next == Some(b'\n')) {
            // A line end: rewrite a trailing space or tab before it.
            if let Some(&last) = out.last() {
                if linelen > 0 && (last == b' ' || last == b'\t') {
                    out.pop();
                    out.push(b'=');
                    out.push(HEXU[(last >> 4) as usize]);
                    out.push(HEXU[(last & 15) as usize]);
                }
            }
            linelen = 0;
            if c == b'\r' {
                out.extend_from_slice(b"\r\n");
                i += 2;
            } else {
                if crlf {
                    out.push(b'\r');
                }
                out.push(b'\n');
                i += 1;
            }
        } else {
            if i + 1 != n && next != Some(b'\n') && linelen + 1 >= MAX {
                out.push(b'=');
                if crlf {
                    out.push(b'\r');
                }
                out.push(b'\n');
                linelen = 0;
            }
            linelen += 1;
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `quopri.decodestring(s)` (`binascii.a2b_qp`, no header).
pub fn qp_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let hexv = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < s.len() {
        let c = s[i];
        if c == b'=' {
            if i + 1 >= s.len() {
                // A trailing '=' is a soft break at the end: dropped.
                break;
            }
            let n1 = s[i + 1];
            if n1 == b'\n' {
                i += 2;
                continue;
            }
            if n1 == b'\r' && s.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if n1 == b'\r' && i + 2 >= s.len() {
                break;
            }
            match (hexv(n1), s.get(i + 2).and_then(|&c| hexv(c))) {
                (Some(a), Some(b)) => {
                    out.push(a << 4 | b);
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Python's `base64.decodebytes`: characters outside the alphabet are
/// skipped; a complete padded quantum ends the data; a partial quantum at
/// the end is an error ("Incorrect padding").
pub fn b64_decode(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut quad = [0u8; 4];
    let mut qpos = 0usize;
    let mut pads = 0usize;
    for &c in s {
        if c == b'=' {
            if qpos >= 2 {
                pads += 1;
                if qpos + pads >= 4 {
                    break;
                }
            }
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        pads = 0;
        quad[qpos] = v;
        qpos += 1;
        if qpos == 4 {
            out.push(quad[0] << 2 | quad[1] >> 4);
            out.push(quad[1] << 4 | quad[2] >> 2);
            out.push(quad[2] << 6 | quad[3]);
            qpos = 0;
        }
    }
    match qpos {
        0 => Ok(out),
        1 => Err("invalid base64: a lone character at the end".into()),
        _ if qpos + pads >= 4 => {
            out.push(quad[0] << 2 | quad[1] >> 4);
            if qpos == 3 {
                out.push(quad[1] << 4 | quad[2] >> 2);
            }
            Ok(out)
        }
        _ => Err("invalid base64: incorrect padding".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::maps::flag_map;

    #[test]
    fn hex_of_every_length_and_sign() {
        let mut vals: Vec<i128> = vec![0, 1, -1, 9, 10, 15, 16, 0xabcdef, i128::MAX, i128::MIN, i128::MIN + 1];
        for shift in 0..128 {
            let p = 1i128 << shift.min(126);
            vals.extend([p, p - 1, p + 1, -p, -(p - 1), 0x5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a >> (127 - shift)]);
        }
        vals.extend([u64::MAX as i128, u64::MAX as i128 + 1, -(u64::MAX as i128), -(u64::MAX as i128) - 1]);
        for v in vals {
            let want = if v < 0 { format!("0x-{:x}", v.unsigned_abs()) } else { format!("0x{v:x}") };
            let mut buf = b"before".to_vec();
            hex_into(&mut buf, v);
            assert_eq!(String::from_utf8(buf).unwrap(), format!("before{want}"), "{v}");
        }
    }

    #[test]
    fn flags_render_as_crit() {
        let prot = flag_map("mmap.prot").unwrap();
        assert_eq!(map_flags(0x1 | 0x18, prot), "PROT_READ | 0x18");
        assert_eq!(map_flags(0, prot), "");
        let st = flag_map("mmap.status").unwrap();
        assert_eq!(map_flags(1 | 8 | 512, st), "VMA_AREA_REGULAR | VMA_AREA_VDSO | VMA_ANON_PRIVATE");
        assert_eq!(unmap_flags("PROT_READ | 0x18", prot), Ok(0x19));
        assert_eq!(unmap_flags("", prot), Ok(0));
        assert!(unmap_flags("PROT_BOGUS", prot).is_err());
    }

    #[test]
    fn python_int_rules() {
        assert_eq!(int0("0x1f"), Some(31));
        assert_eq!(int0(" 7 "), Some(7));
        assert_eq!(int0("1_0"), Some(10));
        assert_eq!(int0("0o17"), Some(15));
        assert_eq!(int0("0b11"), Some(3));
        assert_eq!(int0("-5"), Some(-5));
        assert_eq!(int0("00"), Some(0));
        assert_eq!(int0("010"), None);
        assert_eq!(int0("1__0"), None);
        assert_eq!(int0(""), None);
        assert_eq!(int10("010"), Some(10));
    }

    #[test]
    fn devices() {
        assert_eq!(dev((8 << 20) | 1), "8:1");
        assert_eq!(parse_dev("8:1", false), Some((8 << 20) | 1));
        assert_eq!(odev(0x801), "8:1");
        assert_eq!(parse_dev("8:1", true), Some(0x801));
        assert_eq!(odev(0x1234_5678), "1110:74616");
        assert_eq!(parse_dev("1110:74616", true), Some(0x1234_5678));
    }

    #[test]
    fn addresses() {
        assert_eq!(ipv4(16777343), "127.0.0.1");
        assert_eq!(parse_ip("127.0.0.1"), Some(vec![16777343]));
        let w = |s: &str| -> [u32; 4] { parse_ip(s).unwrap().try_into().unwrap() };
        assert_eq!(ipv6(w("::1")), "::1");
        assert_eq!(ipv6(w("::")), "::");
        assert_eq!(ipv6(w("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
        assert_eq!(ipv6(w("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");
        assert_eq!(ipv6(w("fe80::")), "fe80::");
        assert_eq!(ipv6(w("::ffff:7f00:1")), "::ffff:127.0.0.1");
    }

    #[test]
    fn quoted_printable_as_python() {
        assert_eq!(qp_encode(b"\0abstract"), "=00abstract");
        assert_eq!(qp_encode(b"/x/a=b c\t"), "/x/a=3Db c=09");
        assert_eq!(qp_encode(b"."), "=2E");
        assert_eq!(qp_encode(b"end "), "end=20");
        assert_eq!(qp_encode(&[b'x'; 100]), format!("{}=\n{}", "x".repeat(75), "x".repeat(25)));
        for s in [&b"\0abstract"[..], b"/x/a=b c\t", b".", b"end ", &[b'x'; 100], b"a \nb", b"\xff\xfe=\r\n"] {
            assert_eq!(qp_decode(qp_encode(s).as_bytes()), s, "{s:?}");
        }
    }

    #[test]
    fn base64_is_lenient_like_python() {
        assert_eq!(b64_decode(b"YWI=\n"), Ok(b"ab".to_vec()));
        assert_eq!(b64_decode(b"YWI=YWI="), Ok(b"ab".to_vec()));
        assert_eq!(b64_decode(b"Y W\nI ="), Ok(b"ab".to_vec()));
        assert!(b64_decode(b"YWI").is_err());
        assert_eq!(b64_decode(b""), Ok(vec![]));
    }
}
