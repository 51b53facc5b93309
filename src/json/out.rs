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
    /// How many times the buffer was written out (a [`Mark`] is void after).
    flushes: u64,
}

/// A point in the output to go back to (`JsonOut::rewind`, crate-internal).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    len: usize,
    depth: usize,
    top: Option<bool>,
    flushes: u64,
}

const BLOCK: usize = 1 << 16;

/// The size of the fixed copy of a member text (see
/// [`JsonOut::member_held`]): texts up to 2 bytes shorter are copied so.
pub(crate) const KEY_FIXED: usize = 34;

/// Indentation levels written from one slice: `,`, newline, then spaces.
const INDENT_LEVELS: usize = 32;
static INDENT: [u8; 2 + 4 * INDENT_LEVELS] = {
    let mut a = [b' '; 2 + 4 * INDENT_LEVELS];
    a[0] = b',';
    a[1] = b'\n';
    a
};

impl<W: Write> Drop for JsonOut<W> {
    fn drop(&mut self) {
        let _ = self.flush_buf();
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<W: Write> JsonOut<W> {
    /// A writer; `pretty` selects `indent=4`.
    pub fn new(w: W, pretty: bool) -> Self {
        JsonOut { w: Some(w), buf: Vec::with_capacity(BLOCK + 4096), pretty, stack: Vec::with_capacity(16), flushes: 0 }
    }

    fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            if let Some(w) = self.w.as_mut() {
                w.write_all(&self.buf)?;
            }
            self.buf.clear();
            self.flushes += 1;
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

    /// A newline and the indentation of `depth` levels (`comma`: a `,` first).
    #[inline(always)]
    fn newline_indent(&mut self, depth: usize, comma: bool) {
        let from = if comma { 0 } else { 1 };
        if depth < 16 {
            // A copy of known size (no call), then the tail cut.
            let len = self.buf.len();
            self.buf.extend_from_slice(&INDENT[from..from + 64]);
            self.buf.truncate(len + 2 - from + 4 * depth);
        } else if depth <= INDENT_LEVELS {
            self.buf.extend_from_slice(&INDENT[from..2 + 4 * depth]);
        } else {
            self.buf.extend_from_slice(&INDENT[from..]);
            for _ in INDENT_LEVELS..depth {
                self.buf.extend_from_slice(b"    ");
            }
        }
    }

    /// Separator before a member or element of the innermost container,
    /// never flushing.
    #[inline(always)]
    fn sep_held(&mut self) {
        let depth = self.stack.len();
        let Some(top) = self.stack.last_mut() else { return };
        let had = *top;
        *top = true;
        if self.pretty {
            self.newline_indent(depth, had);
        } else if had {
            self.buf.extend_from_slice(b", ");
        }
    }

    /// Separator before a member or element of the innermost container.
    #[inline]
    fn sep(&mut self) -> Result<()> {
        self.sep_held();
        if self.buf.len() >= BLOCK {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// The current point of the output, to [`rewind`](JsonOut::rewind) to.
    pub(crate) fn mark(&self) -> Mark {
        Mark { len: self.buf.len(), depth: self.stack.len(), top: self.stack.last().copied(), flushes: self.flushes }
    }

    /// Forget everything written since `m`, containers included.  Only the
    /// `_held` writers and those that never flush may have been used since:
    /// after a flush the text is gone and this is an error.
    pub(crate) fn rewind(&mut self, m: Mark) -> Result<()> {
        if m.flushes != self.flushes || m.depth > self.stack.len() || m.len > self.buf.len() {
            return Err(crate::error::Error::other("internal: JSON output rewound past a flush"));
        }
        self.buf.truncate(m.len);
        self.stack.truncate(m.depth);
        if let (Some(top), Some(had)) = (self.stack.last_mut(), m.top) {
            *top = had;
        }
        Ok(())
    }

    /// [`key_ident`](JsonOut::key_ident) that never flushes (for text that
    /// may be rewound).
    #[inline(always)]
    pub(crate) fn key_ident_held(&mut self, k: &str) {
        let depth = self.stack.len();
        match self.stack.last_mut() {
            Some(top) => {
                let had = std::mem::replace(top, true);
                if self.pretty {
                    self.newline_indent(depth, had);
                    self.buf.push(b'"');
                } else if had {
                    self.buf.extend_from_slice(b", \"");
                } else {
                    self.buf.push(b'"');
                }
            }
            None => self.buf.push(b'"'),
        }
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\": ");
    }

    /// Start a member from its prepared text `, "name": ` (a key that
    /// needs no escaping), never flushing.  `fixed` holds `text` followed
    /// by zeros where it fits: a key that fits is copied as
    /// [`KEY_FIXED`]` - 2` bytes (a copy of known size, no call) and the
    /// tail cut.
    #[inline(always)]
    pub(crate) fn member_held(&mut self, text: &[u8], fixed: &[u8; KEY_FIXED]) {
        let depth = self.stack.len();
        // Where the key starts in `text`: after the `, ` unless it is needed.
        let from = match self.stack.last_mut() {
            Some(top) => {
                let had = std::mem::replace(top, true);
                if self.pretty {
                    self.newline_indent(depth, had);
                    2
                } else if had {
                    0
                } else {
                    2
                }
            }
            None => 2,
        };
        self.member_text(from, text, fixed);
    }

    /// [`member_held`](JsonOut::member_held) where the innermost
    /// container is known to have members already.
    #[inline(always)]
    pub(crate) fn member_more_held(&mut self, text: &[u8], fixed: &[u8; KEY_FIXED]) {
        debug_assert_eq!(self.stack.last(), Some(&true));
        if self.pretty {
            let depth = self.stack.len();
            self.newline_indent(depth, true);
            self.member_text(2, text, fixed);
        } else {
            self.member_text(0, text, fixed);
        }
    }

    /// The member text from byte `from` on.
    #[inline(always)]
    fn member_text(&mut self, from: usize, text: &[u8], fixed: &[u8; KEY_FIXED]) {
        let len = self.buf.len();
        if text.len() <= KEY_FIXED - 2 {
            let chunk = if from == 0 { fixed.first_chunk::<{ KEY_FIXED - 2 }>() } else { fixed.last_chunk() };
            if let Some(chunk) = chunk {
                self.buf.extend_from_slice(chunk);
                self.buf.truncate(len + text.len().saturating_sub(from));
                return;
            }
        }
        self.buf.extend_from_slice(text.get(from..).unwrap_or_default());
    }

    /// [`elem`](JsonOut::elem) that never flushes.
    #[inline(always)]
    pub(crate) fn elem_held(&mut self) {
        self.sep_held()
    }

    /// Open an object (as a value: call `key` or `elem` first if nested).
    pub fn begin_object(&mut self) -> Result<()> {
        self.begin_object_held();
        Ok(())
    }

    /// [`begin_object`](JsonOut::begin_object), which never fails.
    #[inline(always)]
    pub(crate) fn begin_object_held(&mut self) {
        self.buf.push(b'{');
        self.stack.push(false);
    }

    /// Close the innermost object.
    pub fn end_object(&mut self) -> Result<()> {
        self.end(b'}');
        Ok(())
    }

    /// [`end_object`](JsonOut::end_object), which never fails.
    #[inline(always)]
    pub(crate) fn end_object_held(&mut self) {
        self.end(b'}')
    }

    /// Open an array.
    pub fn begin_array(&mut self) -> Result<()> {
        self.begin_array_held();
        Ok(())
    }

    /// [`begin_array`](JsonOut::begin_array), which never fails.
    #[inline(always)]
    pub(crate) fn begin_array_held(&mut self) {
        self.buf.push(b'[');
        self.stack.push(false);
    }

    /// Close the innermost array.
    pub fn end_array(&mut self) -> Result<()> {
        self.end(b']');
        Ok(())
    }

    /// [`end_array`](JsonOut::end_array), which never fails.
    #[inline(always)]
    pub(crate) fn end_array_held(&mut self) {
        self.end(b']')
    }

    #[inline(always)]
    fn end(&mut self, close: u8) {
        let had = self.stack.pop().unwrap_or(false);
        if had && self.pretty {
            let depth = self.stack.len();
            self.newline_indent(depth, false);
        }
        self.buf.push(close);
    }

    /// Start a member whose key needs no escaping (a schema field name).
    pub fn key_ident(&mut self, k: &str) -> Result<()> {
        self.key_ident_held(k);
        if self.buf.len() >= BLOCK {
            self.flush_buf()?;
        }
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

    /// An unsigned 64-bit integer (the same digits as [`JsonOut::int`]).
    #[inline(always)]
    pub fn uint(&mut self, v: u64) -> Result<()> {
        self.uint_held(v);
        Ok(())
    }

    /// [`uint`](JsonOut::uint), which never fails.
    #[inline(always)]
    pub(crate) fn uint_held(&mut self, v: u64) {
        let len = self.buf.len();
        if v < 10 {
            self.buf.push(b'0' + v as u8);
        } else if let Some((digits, n)) = itoa_like::digits16(v) {
            // All 16 bytes are copied (a copy of known size), the tail cut.
            self.buf.extend_from_slice(&digits.to_le_bytes());
            self.buf.truncate(len + n);
        } else {
            let mut buf = [0u8; 20];
            let n = itoa_like::digits(v, &mut buf);
            self.buf.extend_from_slice(&buf);
            self.buf.truncate(len + n);
        }
    }

    /// A signed 64-bit integer (the same digits as [`JsonOut::int`]).
    #[inline]
    pub fn sint(&mut self, v: i64) -> Result<()> {
        self.sint_held(v);
        Ok(())
    }

    /// [`sint`](JsonOut::sint), which never fails.
    #[inline]
    pub(crate) fn sint_held(&mut self, v: i64) {
        if v < 0 {
            self.buf.push(b'-');
        }
        self.uint_held(v.unsigned_abs())
    }

    /// A string with nothing to escape: a schema name (letters, digits and
    /// `_`), as [`JsonOut::write_str`] would write it.
    #[inline(always)]
    pub fn write_ident(&mut self, s: &str) -> Result<()> {
        debug_assert!(plain_run(s.as_bytes()) == s.len(), "{s:?} needs escaping");
        self.buf.push(b'"');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(b'"');
        Ok(())
    }

    /// A string from bytes (UTF-8; other bytes as `\udcXX`).
    #[inline(never)]
    pub fn write_str(&mut self, s: &[u8]) -> Result<()> {
        self.buf.push(b'"');
        if plain_run(s) == s.len() {
            // Nothing to escape (the common case): the bytes as they are.
            self.buf.extend_from_slice(s);
        } else {
            self.str_body(s)?;
        }
        self.buf.push(b'"');
        Ok(())
    }

    /// Write the escaped body of a string (no quotes).
    pub fn str_body(&mut self, s: &[u8]) -> Result<()> {
        let mut rest = s;
        while !rest.is_empty() {
            // Fast path: a run of printable ASCII that needs no escape.
            let run = plain_run(rest);
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

/// Whether a byte goes into a JSON string as it is.
#[inline(always)]
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// Length of the run of plain bytes at the start of `s`, eight at a time.
fn plain_run(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Some byte of `x` is zero / below `n` (n <= 0x80; exact as a whole-word test).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * n as u64) & !x & HIGH;
    let mut n = 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let special = (x & HIGH)
            | below(x, 0x20)
            | zero(x ^ (ONES * b'"' as u64))
            | zero(x ^ (ONES * b'\\' as u64))
            | zero(x ^ (ONES * 0x7f));
        if special != 0 {
            break;
        }
        n += 8;
    }
    n + s[n..].iter().position(|&b| !plain(b)).unwrap_or(s.len() - n)
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

    /// The eight ASCII digits of `x` (< 10^8, leading zeros kept), the
    /// first in the low byte: the two halves of four digits side by side in
    /// one word, then each split by 100 and by 10 in parallel (the
    /// divisions as multiplications by 10486 / 2^20 and 103 / 2^10, exact
    /// in these ranges).
    #[inline(always)]
    fn eight(x: u32) -> u64 {
        let (hi, lo) = ((x / 10_000) as u64, (x % 10_000) as u64);
        let merged = hi | lo << 32;
        let top = ((merged * 10486) >> 20) & (0x7f << 32 | 0x7f);
        let bot = merged - 100 * top;
        let hundreds = bot << 16 | top;
        let mut tens = (hundreds * 103) >> 10;
        tens &= 0xf << 48 | 0xf << 32 | 0xf << 16 | 0xf;
        tens += (hundreds - 10 * tens) << 8;
        tens | 0x3030_3030_3030_3030
    }

    /// Number of decimal digits of `v` (1 for 0).
    #[inline(always)]
    fn count(v: u64) -> usize {
        // From the bit length: log10(2) ~ 1233 / 4096, then one comparison
        // with a power of ten to correct it.
        const POW10: [u64; 20] = {
            let mut t = [1u64; 20];
            let mut i = 1;
            while i < 20 {
                t[i] = t[i - 1] * 10;
                i += 1;
            }
            t
        };
        let bits = 64 - (v | 1).leading_zeros() as usize;
        let t = ((bits * 1233) >> 12).min(19);
        let above = match POW10.get(t) {
            Some(&p) => (v >= p) as usize,
            None => 0,
        };
        (t + above).max(1)
    }

    /// The digits of `v` below 10^16 in the low bytes of a word (the first
    /// in the lowest) and their count; None for larger numbers.
    #[inline(always)]
    pub fn digits16(v: u64) -> Option<(u128, usize)> {
        const E8: u64 = 100_000_000;
        let n = count(v);
        if v < E8 {
            Some(((eight(v as u32) >> (8 * (8 - n))) as u128, n))
        } else if v < E8 * E8 {
            let lead_n = n - 8;
            let lead = eight((v / E8) as u32) >> (8 * (8 - lead_n));
            let rest = eight((v % E8) as u32);
            Some((lead as u128 | (rest as u128) << (8 * lead_n), n))
        } else {
            None
        }
    }

    /// Write the digits of `v` at the start of `buf`; returns their count.
    #[inline(always)]
    pub fn digits(v: u64, buf: &mut [u8; 20]) -> usize {
        const E8: u64 = 100_000_000;
        let n = count(v);
        // Up to three groups: the leading one (1 to 8 digits, its leading
        // zeros shifted out), then whole groups of eight.
        let (lead, rest, groups) = if v < E8 {
            (v, 0, 0)
        } else if v < E8 * E8 {
            (v / E8, v % E8, 1)
        } else {
            (v / (E8 * E8), v % (E8 * E8), 2)
        };
        let lead_n = n - 8 * groups;
        let first = eight(lead as u32) >> (8 * (8 - lead_n));
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&first.to_le_bytes());
        match groups {
            1 => {
                if let Some(b) = out.get_mut(lead_n..lead_n + 8) {
                    b.copy_from_slice(&eight(rest as u32).to_le_bytes());
                }
            }
            2 => {
                if let Some(b) = out.get_mut(lead_n..lead_n + 16) {
                    let (x, y) = b.split_at_mut(8);
                    x.copy_from_slice(&eight((rest / E8) as u32).to_le_bytes());
                    y.copy_from_slice(&eight((rest % E8) as u32).to_le_bytes());
                }
            }
            _ => {}
        }
        buf.copy_from_slice(&out[..20]);
        n
    }

    macro_rules! impl_int {
        ($($t:ty),*) => {$(
            impl Int for $t {
                fn fmt(self, buf: &mut [u8; 48]) -> &[u8] {
                    let v = self as i128;
                    let neg = v < 0;
                    let mag = v.unsigned_abs();
                    let start = neg as usize;
                    buf[0] = b'-';
                    let end = if mag <= u64::MAX as u128 {
                        let mut d = [0u8; 20];
                        let n = digits(mag as u64, &mut d);
                        buf[start..start + n].copy_from_slice(&d[..n]);
                        start + n
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
                        let n = buf.len() - i;
                        buf.copy_within(i.., start);
                        start + n
                    };
                    &buf[..end]
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
