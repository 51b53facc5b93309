//! A JSON writer that prints exactly what Python's `json.dump` prints.
//!
//! Raw mode is `json.dump(obj, f)`: one line, `", "` between items and
//! `": "` after keys.  Pretty mode is `indent=4`: one item per line, `","`
//! at line ends.  Strings are escaped as with `ensure_ascii=True`: every
//! character outside printable ASCII becomes `\uXXXX` (lowercase hex,
//! surrogate pairs above the BMP).  Bytes that are not UTF-8 are written as
//! lone surrogates `\udc80`–`\udcff`, as Python's `surrogateescape` does,
//! so they survive the round trip.

use std::io::Write;

use crate::error::Result;

/// The writer.  Output is gathered in a buffer and written in blocks, so
/// the many small pieces of a document cost no system call or dynamic
/// dispatch each; the buffer is flushed by [`JsonOut::finish`] (or, best
/// effort, when the writer is dropped).
pub struct JsonOut<W: Write> {
    w: Option<W>,
    buf: Vec<u8>,
    pretty: bool,
    /// One entry per open container: whether it has members yet.
    stack: Vec<bool>,
}

const BLOCK: usize = 1 << 16;

impl<W: Write> Drop for JsonOut<W> {
    fn drop(&mut self) {
        let _ = self.flush_buf();
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<W: Write> JsonOut<W> {
    /// A writer; `pretty` selects `indent=4`.
    pub fn new(w: W, pretty: bool) -> Self {
        JsonOut { w: Some(w), buf: Vec::with_capacity(BLOCK + 4096), pretty, stack: Vec::with_capacity(16) }
    }

    fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            if let Some(w) = self.w.as_mut() {
                w.write_all(&self.buf)?;
            }
            self.buf.clear();
        }
        Ok(())
    }

    /// Write the buffer out once it holds a block.
    pub fn spill(&mut self) -> Result<()> {
        if self.buf.len() >= BLOCK {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Flush everything and give the writer back.
    pub fn finish(mut self) -> Result<W> {
        self.flush_buf()?;
        if let Some(w) = self.w.as_mut() {
            w.flush()?;
        }
        self.w.take().ok_or_else(|| crate::error::Error::other("writer already taken"))
    }

    /// Whether this writer indents.
    pub fn pretty(&self) -> bool {
        self.pretty
    }

    /// The output buffer, for raw text that is already escaped (call
    /// [`JsonOut::spill`] now and then when writing much).
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn newline_indent(&mut self, depth: usize) -> Result<()> {
        self.buf.push(b'\n');
        for _ in 0..depth {
            self.buf.extend_from_slice(b"    ");
        }
        Ok(())
    }

    /// Separator before a member or element of the innermost container.
    fn sep(&mut self) -> Result<()> {
        let depth = self.stack.len();
        let Some(top) = self.stack.last_mut() else { return Ok(()) };
        let had = *top;
        *top = true;
        if had {
            self.buf.push(b',');
        }
        if self.pretty {
            self.newline_indent(depth)?;
        } else if had {
            self.buf.push(b' ');
        }
        if self.buf.len() >= BLOCK {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Open an object (as a value: call `key` or `elem` first if nested).
    pub fn begin_object(&mut self) -> Result<()> {
        self.buf.push(b'{');
        self.stack.push(false);
        Ok(())
    }

    /// Close the innermost object.
    pub fn end_object(&mut self) -> Result<()> {
        self.end(b"}")
    }

    /// Open an array.
    pub fn begin_array(&mut self) -> Result<()> {
        self.buf.push(b'[');
        self.stack.push(false);
        Ok(())
    }

    /// Close the innermost array.
    pub fn end_array(&mut self) -> Result<()> {
        self.end(b"]")
    }

    fn end(&mut self, close: &[u8]) -> Result<()> {
        let had = self.stack.pop().unwrap_or(false);
        if had && self.pretty {
            let depth = self.stack.len();
            self.newline_indent(depth)?;
        }
        self.buf.extend_from_slice(close);
        Ok(())
    }

    /// Start a member whose key needs no escaping (a schema field name).
    pub fn key_ident(&mut self, k: &str) -> Result<()> {
        self.sep()?;
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\": ");
        Ok(())
    }

    /// Start a member of the innermost object.
    pub fn key(&mut self, k: &str) -> Result<()> {
        self.sep()?;
        self.write_str(k.as_bytes())?;
        self.buf.extend_from_slice(b": ");
        Ok(())
    }

    /// Start an element of the innermost array.
    pub fn elem(&mut self) -> Result<()> {
        self.sep()
    }

    /// A literal token (a number, `true`, `null`).
    pub fn raw(&mut self, s: &str) -> Result<()> {
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// An integer.
    pub fn int(&mut self, v: impl itoa_like::Int) -> Result<()> {
        let mut buf = [0u8; 48];
        let s = v.fmt(&mut buf);
        self.buf.extend_from_slice(s);
        Ok(())
    }

    /// A string from bytes (UTF-8; other bytes as `\udcXX`).
    pub fn write_str(&mut self, s: &[u8]) -> Result<()> {
        self.buf.push(b'"');
        self.str_body(s)?;
        self.buf.push(b'"');
        Ok(())
    }

    /// Write the escaped body of a string (no quotes).
    pub fn str_body(&mut self, s: &[u8]) -> Result<()> {
        let mut rest = s;
        while !rest.is_empty() {
            // Fast path: a run of printable ASCII that needs no escape.
            let run =
                rest.iter().position(|&b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\').unwrap_or(rest.len());
            if run > 0 {
                self.buf.extend_from_slice(&rest[..run]);
                rest = &rest[run..];
                continue;
            }
            let b = rest[0];
            match b {
                b'"' => self.buf.extend_from_slice(b"\\\""),
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                0x08 => self.buf.extend_from_slice(b"\\b"),
                0x0c => self.buf.extend_from_slice(b"\\f"),
                0..=0x7f => self.u_escape(b as u32)?,
                _ => {
                    // Decode one UTF-8 sequence, or escape one bad byte.
                    let (ch, len) = decode_utf8(rest);
                    match ch {
                        Some(c) => {
                            let c = c as u32;
                            if c >= 0x10000 {
                                let v = c - 0x10000;
                                self.u_escape(0xd800 + (v >> 10))?;
                                self.u_escape(0xdc00 + (v & 0x3ff))?;
                            } else {
                                self.u_escape(c)?;
                            }
                        }
                        None => self.u_escape(0xdc00 + b as u32)?,
                    }
                    rest = &rest[len..];
                    continue;
                }
            }
            rest = &rest[1..];
        }
        Ok(())
    }

    fn u_escape(&mut self, c: u32) -> Result<()> {
        let buf = [
            b'\\',
            b'u',
            HEX[(c >> 12 & 15) as usize],
            HEX[(c >> 8 & 15) as usize],
            HEX[(c >> 4 & 15) as usize],
            HEX[(c & 15) as usize],
        ];
        self.buf.extend_from_slice(&buf);
        Ok(())
    }
}

/// Decode one UTF-8 character at the start of `s`: (char, length), or
/// (None, 1) when the first byte does not start a valid sequence.
fn decode_utf8(s: &[u8]) -> (Option<char>, usize) {
    let b0 = s[0];
    let len = match b0 {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (None, 1),
    };
    if s.len() < len {
        return (None, 1);
    }
    match std::str::from_utf8(&s[..len]) {
        Ok(t) => (t.chars().next(), len),
        Err(_) => (None, 1),
    }
}

/// Integer formatting without allocation.
pub mod itoa_like {
    /// An integer that can be printed in decimal.
    pub trait Int {
        /// Format into `buf`, returning the digits.
        fn fmt(self, buf: &mut [u8; 48]) -> &[u8];
    }

    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

    /// Digits of `v`, right-aligned in `buf`; returns the start.
    fn digits(mut v: u64, buf: &mut [u8; 48]) -> usize {
        let mut i = buf.len();
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            buf[i] = PAIRS[d];
            buf[i + 1] = PAIRS[d + 1];
        }
        if v >= 10 {
            let d = v as usize * 2;
            i -= 2;
            buf[i] = PAIRS[d];
            buf[i + 1] = PAIRS[d + 1];
        } else {
            i -= 1;
            buf[i] = b'0' + v as u8;
        }
        i
    }

    macro_rules! impl_int {
        ($($t:ty),*) => {$(
            impl Int for $t {
                fn fmt(self, buf: &mut [u8; 48]) -> &[u8] {
                    let v = self as i128;
                    let neg = v < 0;
                    let mag = v.unsigned_abs();
                    let mut i = if mag <= u64::MAX as u128 {
                        digits(mag as u64, buf)
                    } else {
                        // Beyond 64 bits (never in an image): the slow way.
                        let mut m = mag;
                        let mut i = buf.len();
                        loop {
                            i -= 1;
                            buf[i] = b'0' + (m % 10) as u8;
                            m /= 10;
                            if m == 0 { break; }
                        }
                        i
                    };
                    if neg { i -= 1; buf[i] = b'-'; }
                    &buf[i..]
                }
            }
        )*};
    }
    impl_int!(u8, u16, u32, u64, i32, i64, i128, usize);
}

/// Streams bytes as `base64.encodebytes` text inside a JSON string: lines
/// of 76 characters for each 57 input bytes, each ending in `\n`.
pub struct B64Lines {
    pending: [u8; 57],
    n: usize,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Default for B64Lines {
    fn default() -> Self {
        Self::new()
    }
}

impl B64Lines {
    /// A new encoder.
    pub fn new() -> Self {
        B64Lines { pending: [0; 57], n: 0 }
    }

    /// Feed bytes, writing each full line.
    pub fn feed<W: Write>(&mut self, w: &mut W, mut data: &[u8]) -> Result<()> {
        if self.n > 0 {
            let k = (57 - self.n).min(data.len());
            self.pending[self.n..self.n + k].copy_from_slice(&data[..k]);
            self.n += k;
            data = &data[k..];
            if self.n < 57 {
                return Ok(());
            }
            let line = self.pending;
            write_line(w, &line)?;
            self.n = 0;
        }
        let mut chunks = data.chunks_exact(57);
        for c in &mut chunks {
            write_line(w, c)?;
        }
        let rem = chunks.remainder();
        self.pending[..rem.len()].copy_from_slice(rem);
        self.n = rem.len();
        Ok(())
    }

    /// Write the last, partial line.
    pub fn finish<W: Write>(&mut self, w: &mut W) -> Result<()> {
        if self.n > 0 {
            let p = self.pending;
            write_line(w, &p[..self.n])?;
            self.n = 0;
        }
        Ok(())
    }
}

fn write_line<W: Write>(w: &mut W, data: &[u8]) -> Result<()> {
    let mut out = [0u8; 80];
    let mut o = 0;
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out[o] = B64[(v >> 18 & 63) as usize];
        out[o + 1] = B64[(v >> 12 & 63) as usize];
        out[o + 2] = if c.len() > 1 { B64[(v >> 6 & 63) as usize] } else { b'=' };
        out[o + 3] = if c.len() > 2 { B64[(v & 63) as usize] } else { b'=' };
        o += 4;
    }
    out[o] = b'\\';
    out[o + 1] = b'n';
    w.write_all(&out[..o + 2])?;
    Ok(())
}

/// `base64.encodebytes(data)` as a Rust string (with real newlines).
pub fn b64_encodebytes(data: &[u8]) -> String {
    let mut v = Vec::new();
    let mut e = B64Lines::new();
    let _ = e.feed(&mut v, data);
    let _ = e.finish(&mut v);
    String::from_utf8_lossy(&v).replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(pretty: bool, f: impl FnOnce(&mut JsonOut<&mut Vec<u8>>) -> Result<()>) -> String {
        let mut v = Vec::new();
        let mut o = JsonOut::new(&mut v, pretty);
        f(&mut o).unwrap();
        o.finish().unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn python_separators() {
        let doc = |o: &mut JsonOut<&mut Vec<u8>>| -> Result<()> {
            o.begin_object()?;
            o.key("a")?;
            o.int(1u32)?;
            o.key("b")?;
            o.begin_array()?;
            o.elem()?;
            o.int(-2i64)?;
            o.elem()?;
            o.begin_object()?;
            o.end_object()?;
            o.end_array()?;
            o.key("c")?;
            o.begin_array()?;
            o.end_array()?;
            o.end_object()
        };
        assert_eq!(render(false, doc), r#"{"a": 1, "b": [-2, {}], "c": []}"#);
        assert_eq!(
            render(true, doc),
            "{\n    \"a\": 1,\n    \"b\": [\n        -2,\n        {}\n    ],\n    \"c\": []\n}"
        );
    }

    #[test]
    fn ensure_ascii_escapes() {
        let s = render(false, |o| o.write_str("a\"\\\n\u{7f}\u{1}é😀/".as_bytes()));
        assert_eq!(s, r#""a\"\\\n\u007f\u0001\u00e9\ud83d\ude00/""#);
        let s = render(false, |o| o.write_str(b"\xff\xc3"));
        assert_eq!(s, r#""\udcff\udcc3""#);
    }

    #[test]
    fn base64_lines() {
        assert_eq!(b64_encodebytes(b""), "");
        assert_eq!(b64_encodebytes(b"ab"), "YWI=\n");
        let long = vec![0u8; 58];
        let s = b64_encodebytes(&long);
        assert_eq!(s.lines().next().unwrap().len(), 76);
        assert_eq!(s, format!("{}\n{}\n", "A".repeat(76), "AA=="));
        // Feeding in pieces gives the same text.
        let data: Vec<u8> = (0..500u32).map(|i| (i * 7) as u8).collect();
        let mut v = Vec::new();
        let mut e = B64Lines::new();
        for c in data.chunks(13) {
            e.feed(&mut v, c).unwrap();
        }
        e.finish(&mut v).unwrap();
        assert_eq!(String::from_utf8(v).unwrap().replace("\\n", "\n"), b64_encodebytes(&data));
    }
}
