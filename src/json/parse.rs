//! A streaming JSON reader.
//!
//! It reads from any [`Read`] with bounded buffering, keeps line and column
//! for errors, and parses one value at a time, so an image's `entries` list
//! can be encoded element by element without holding the whole document.
//! Integers are exact (`i128`), strings are bytes: `\udc80`–`\udcff` lone
//! surrogates turn back into the raw bytes they stand for.
//!
//! The hot paths (white space, plain string runs, keys, integers) work on
//! the buffered bytes directly, eight at a time where they can; whatever
//! they do not cover (escapes, a token cut by the end of the buffer, an
//! integer past 64 bits) goes through the byte-by-byte paths, which give
//! every value and every error.  Raw newlines only ever appear in white
//! space (strings refuse control characters), so the line count is kept
//! there.

use std::io::Read;

use crate::error::{Error, ErrorKind, Result};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer literal.
    Int(i128),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string, as bytes.
    Str(Vec<u8>),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in input order (a later duplicate key wins).
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// A member of an object (the last one with that key).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Python's truthiness of the value (`bool(v)`).
    pub fn truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Int(i) => *i != 0,
            Json::Float(f) => *f != 0.0,
            Json::Str(s) => !s.is_empty(),
            Json::Arr(a) => !a.is_empty(),
            Json::Obj(o) => !o.is_empty(),
        }
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) => "an integer",
            Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "a list",
            Json::Obj(_) => "an object",
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const SPACES: u64 = ONES * b' ' as u64;

/// Eight bytes at `at`, little-endian, if there are eight.
#[inline(always)]
fn word(s: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = s.get(at..at.wrapping_add(8))?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// A mask with the high bit set in (at least) the first byte of `w` that
/// is `"`, `\`, a control character or not ASCII; zero if none is.  Bits
/// above the first such byte may be spurious (borrows), so only the lowest
/// one counts.
#[inline(always)]
fn specials(w: u64) -> u64 {
    let q = w ^ (ONES * b'"' as u64);
    let bs = w ^ (ONES * b'\\' as u64);
    let zero_q = q.wrapping_sub(ONES) & !q;
    let zero_bs = bs.wrapping_sub(ONES) & !bs;
    let ctl = w.wrapping_sub(ONES * 0x20) & !w;
    (zero_q | zero_bs | ctl | w) & HIGHS
}

/// The length of the text at the start of `s` up to a `"`, if no byte
/// before that `"` is a `\\`, a control character or not ASCII (a JSON
/// string's body that needs no decoding); None otherwise, or with no `"`.
#[inline(always)]
pub(crate) fn plain_text_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = word(s, i) {
        let m = specials(w);
        if m != 0 {
            i += (m.trailing_zeros() / 8) as usize;
            return (s.get(i) == Some(&b'"')).then_some(i);
        }
        i += 8;
    }
    while let Some(&c) = s.get(i) {
        if c == b'"' {
            return Some(i);
        }
        if c == b'\\' || c < 0x20 || c >= 0x80 {
            return None;
        }
        i += 1;
    }
    None
}

/// Whether every byte is a space.
#[inline]
fn all_spaces(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    let words = chunks.by_ref().all(|c| c.try_into().ok().map(u64::from_le_bytes) == Some(SPACES));
    words && chunks.remainder().iter().all(|&c| c == b' ')
}

/// Number of spaces at the start of `s`.
#[inline]
pub(crate) fn leading_spaces(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(w) = word(s, i) {
        let x = w ^ SPACES;
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while s.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Length of the run of plain bytes (printable ASCII other than `"` and
/// `\`) at the start of `s`.
#[inline]
fn plain_run(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(w) = word(s, i) {
        let m = specials(w);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
            break;
        }
        i += 1;
    }
    i
}

/// How many of the eight bytes of `w` (in memory order) are ASCII digits
/// before the first one that is not.
#[inline(always)]
fn digit_count(w: u64) -> usize {
    const NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // A digit's high nibble is 3, and stays 3 when 6 is added.  (A carry
    // out of a byte only disturbs the bytes after it.)
    let bad = ((w & NIBBLES) ^ THREES) | ((w.wrapping_add(ONES * 6) & NIBBLES) ^ THREES);
    (bad.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1 to 8) bytes of `w`, ASCII digits.
#[inline(always)]
fn digits_value(w: u64, n: usize) -> u64 {
    // Move the digits up and fill in leading zeros below them.
    let shift = (8 - n.clamp(1, 8)) * 8;
    let w = if shift == 0 { w } else { (w << shift) | (THREES >> (64 - shift)) };
    let w = w.wrapping_sub(THREES);
    // Pairs, then fours, then all eight.
    let w = w.wrapping_mul(10).wrapping_add(w >> 8);
    let w = (w & 0x00ff_00ff_00ff_00ff).wrapping_mul(100).wrapping_add((w >> 16) & 0x00ff_00ff_00ff_00ff);
    let w = (w & 0x0000_ffff_0000_ffff).wrapping_mul(10000).wrapping_add((w >> 32) & 0x0000_ffff_0000_ffff);
    w & 0xffff_ffff
}

const POW10: [u64; 8] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];

/// Leading digits one by one: their value and count; None past `u64`.
fn digits_loop(d: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut n = 0usize;
    for &c in d {
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            break;
        }
        v = if n < 19 { v * 10 + x as u64 } else { v.checked_mul(10)?.checked_add(x as u64)? };
        n += 1;
    }
    Some((v, n))
}

/// An object key to look for with [`Parser::key_is`]: `"name": ` as
/// little-endian words and masks.
#[derive(Clone, Debug)]
pub(crate) struct KeyPattern {
    words: [u64; 4],
    masks: [u64; 4],
    /// Words used; 0 for a name too long (or with characters that need
    /// escapes): never matched.
    n: u8,
    /// Bytes of `"name": `.
    len: usize,
}

impl KeyPattern {
    /// Whether `w` holds the key from byte `sp` on.
    #[inline(always)]
    fn is_at(&self, w: &[u8; 40], sp: usize) -> bool {
        let differs = |i: usize| {
            let o = sp + 8 * i;
            match (w.get(o..o + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()), self.words.get(i), self.masks.get(i)) {
                (Some(b), Some(p), Some(m)) => (u64::from_le_bytes(b) ^ p) & m != 0,
                _ => true,
            }
        };
        let n = self.n;
        !(n == 0 || differs(0) || (n > 1 && (differs(1) || (n > 2 && (differs(2) || (n > 3 && differs(3)))))))
    }

    /// Whether `w` starts with the key.
    #[inline(always)]
    pub(crate) fn matches(&self, w: &[u8; 40]) -> bool {
        self.is_at(w, 0)
    }

    /// Bytes of `"name": `.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn new(name: &str) -> KeyPattern {
        Self::after(b"", name)
    }

    /// The key `"name": ` after the bytes `prefix` (such as `, `: the
    /// separator before it, as crit writes it), all matched as one.
    pub(crate) fn after(prefix: &[u8], name: &str) -> KeyPattern {
        let len = prefix.len() + name.len() + 4;
        let mut k = KeyPattern { words: [0; 4], masks: [0; 4], n: 0, len };
        let plain = name.bytes().all(|c| c != b'"' && c != b'\\' && (0x20..0x80).contains(&c));
        if !plain || len > 32 {
            return k;
        }
        let text = prefix.iter().copied().chain(std::iter::once(b'"')).chain(name.bytes()).chain(*b"\": ");
        for (i, c) in text.enumerate() {
            let shift = 8 * (i % 8);
            if let (Some(w), Some(m)) = (k.words.get_mut(i / 8), k.masks.get_mut(i / 8)) {
                *w |= (c as u64) << shift;
                *m |= 0xff << shift;
            }
        }
        k.n = len.div_ceil(8) as u8;
        k
    }
}

/// Whether `b` starts with one of the first eight keys of `keys` as crit
/// writes keys (`"name": `, no escapes), after one space, or none, or
/// (indented JSON, where the keys of an object line up) a newline and
/// `indent` spaces, with at least 40 bytes from the key on: the key's
/// index, the bytes up to its value, and whether a newline was passed.
#[inline(always)]
pub(crate) fn key_at(b: &[u8], indent: usize, keys: &[KeyPattern]) -> Option<(usize, usize, bool)> {
    let (skip, newline) = match b.first()? {
        b'"' => (0, false),
        b' ' => (1, false),
        b'\n' if b.get(1..1 + indent).is_some_and(all_spaces) => (1 + indent, true),
        _ => return None,
    };
    let w = b.get(skip..).and_then(|r| r.first_chunk::<40>())?;
    // The next field first, then the one after (one left out), then a few
    // more.
    let i = match keys {
        [k, ..] if k.is_at(w, 0) => 0,
        [_, k, ..] if k.is_at(w, 0) => 1,
        _ => 2 + keys.get(2..)?.iter().take(6).position(|k| k.is_at(w, 0))?,
    };
    Some((i, skip + keys.get(i).map_or(0, |k| k.len), newline))
}

/// A plain non-negative integer at the start of `w`, as
/// [`Parser::int_fast`] takes it (digits without a leading zero), of at
/// most 16 digits: its value and its number of digits.  The byte after it
/// is not a digit; the caller checks that it ends the number.
#[inline(always)]
pub(crate) fn uint_at(w: &[u8; 24]) -> Option<(u64, usize)> {
    let x = w[0].wrapping_sub(b'0');
    if x > 9 {
        return None;
    }
    // One digit: the most common number of all.
    if w[1].wrapping_sub(b'0') > 9 {
        return Some((x as u64, 1));
    }
    if x == 0 {
        // A leading zero.
        return None;
    }
    let at = |i: usize| w.get(i..i + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
    let t0 = at(0)?.wrapping_sub(THREES);
    let bad0 = nondigits(t0);
    if bad0 != 0 {
        // Two to seven digits.
        let n = (bad0.trailing_zeros() / 8) as usize;
        return Some((eight_digits(t0.checked_shl(64 - 8 * n as u32).unwrap_or(0)), n));
    }
    let t1 = at(8)?.wrapping_sub(THREES);
    let bad1 = nondigits(t1);
    let high = eight_digits(t0);
    if bad1 == 0 {
        // Sixteen; more are for the byte-by-byte reading.
        if w[16].wrapping_sub(b'0') <= 9 {
            return None;
        }
        return Some((high * 100_000_000 + eight_digits(t1), 16));
    }
    let n1 = (bad1.trailing_zeros() / 8) as usize;
    if n1 == 0 {
        return Some((high, 8));
    }
    let low = eight_digits(t1.checked_shl(64 - 8 * n1 as u32).unwrap_or(0));
    Some((high * POW10.get(n1).copied().unwrap_or(0) + low, 8 + n1))
}

const THREES: u64 = ONES * 0x30;

/// For `t`, eight bytes less `'0'` each (borrows between bytes only
/// disturb the bytes after the first that is not a digit): a mask with
/// the high bit set in (at least) the first byte that was not a digit,
/// none below it; zero if all were.
#[inline(always)]
fn nondigits(t: u64) -> u64 {
    (t | t.wrapping_add(ONES * 0x76)) & HIGHS
}

/// The value of eight digits less `'0'` each (in memory order, the first
/// the most significant; leading zeros as zero bytes).
#[inline(always)]
fn eight_digits(t: u64) -> u64 {
    let t = t.wrapping_mul(10).wrapping_add(t >> 8);
    let t = (t & 0x00ff_00ff_00ff_00ff).wrapping_mul(100).wrapping_add((t >> 16) & 0x00ff_00ff_00ff_00ff);
    let t = (t & 0x0000_ffff_0000_ffff).wrapping_mul(10000).wrapping_add((t >> 32) & 0x0000_ffff_0000_ffff);
    t & 0xffff_ffff
}

/// A string of plain hex digits, `"0x…"` (1 to 16 digits), at the start
/// of `w`: its value and its length, quotes included.
#[inline]
pub(crate) fn hex_at(w: &[u8; 24]) -> Option<(u64, usize)> {
    if w[..3] != *b"\"0x" {
        return None;
    }
    let mut v = 0u64;
    for (n, &c) in w[3..].iter().enumerate().take(17) {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'"' if n > 0 => return Some((v, 4 + n)),
            _ => return None,
        };
        v = v << 4 | d as u64;
    }
    None
}

/// The reader.  It keeps its own block buffer: the hot paths (white
/// space, plain string runs, digits) work on the buffered bytes directly.
pub struct Parser<R: Read> {
    r: R,
    buf: Box<[u8]>,
    /// Next byte to read in `buf`.
    at: usize,
    /// Bytes of `buf` filled.
    len: usize,
    line: u64,
    /// Position (in `pos` terms) where the current line starts.
    line_start: u64,
    /// Bytes consumed before `buf[0]`.
    base: u64,
}

impl<R: Read> Parser<R> {
    /// A parser over a reader.
    pub fn new(r: R) -> Self {
        Parser { r, buf: vec![0u8; 1 << 16].into_boxed_slice(), at: 0, len: 0, line: 1, line_start: 0, base: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Line and column (both from 1) of the current position, as errors
    /// made now report them.
    #[inline]
    pub fn line_col(&self) -> (u64, u64) {
        (self.line, self.position() - self.line_start + 1)
    }

    /// An error at the current position.
    pub fn error(&self, msg: impl Into<String>) -> Error {
        let mut e = Error::new(ErrorKind::Json(msg.into()));
        e.loc.line_col = Some(self.line_col());
        e
    }

    /// The unread bytes of the buffer.
    #[inline(always)]
    fn avail(&self) -> &[u8] {
        self.buf.get(self.at..self.len).unwrap_or(&[])
    }

    /// The next buffered byte, if any (no refill).
    #[inline(always)]
    fn cur(&self) -> Option<u8> {
        if self.at < self.len {
            self.buf.get(self.at).copied()
        } else {
            None
        }
    }

    /// Refill the buffer when it is used up; false at the end of the input.
    #[inline]
    fn fill(&mut self) -> Result<bool> {
        if self.at < self.len {
            return Ok(true);
        }
        self.refill()
    }

    #[cold]
    fn refill(&mut self) -> Result<bool> {
        self.base += self.len as u64;
        self.at = 0;
        self.len = 0;
        loop {
            match self.r.read(&mut self.buf) {
                Ok(n) => {
                    self.len = n.min(self.buf.len());
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<Option<u8>> {
        if let Some(b) = self.cur() {
            return Ok(Some(b));
        }
        if self.fill()? {
            Ok(self.cur())
        } else {
            Ok(None)
        }
    }

    #[inline]
    fn bump(&mut self) -> Result<Option<u8>> {
        let b = self.peek()?;
        if let Some(c) = b {
            self.at += 1;
            if c == b'\n' {
                self.line += 1;
                self.line_start = self.position();
            }
        }
        Ok(b)
    }

    /// Skip white space; the next byte, not consumed.
    #[inline]
    pub fn skip_ws(&mut self) -> Result<Option<u8>> {
        let at = self.at;
        if at + 2 <= self.len {
            if let Some(&[a, b]) = self.buf.get(at..at + 2) {
                if a > b' ' {
                    return Ok(Some(a));
                }
                // One space, as between the tokens of raw JSON.
                if a == b' ' && b > b' ' {
                    self.at = at + 1;
                    return Ok(Some(b));
                }
            }
        }
        match self.skip_ws_buffered() {
            Some(b) => Ok(Some(b)),
            None => self.skip_ws_slow(),
        }
    }

    #[cold]
    fn skip_ws_slow(&mut self) -> Result<Option<u8>> {
        loop {
            if let Some(b) = self.skip_ws_buffered() {
                return Ok(Some(b));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Skip the white space in the buffer: the next byte, or None at the
    /// end of the buffer.
    #[inline(never)]
    fn skip_ws_buffered(&mut self) -> Option<u8> {
        let buf = self.buf.get(..self.len).unwrap_or(&[]);
        let mut at = self.at;
        while let Some(&b) = buf.get(at) {
            match b {
                b' ' | b'\t' | b'\r' => at += 1,
                b'\n' => {
                    at += 1;
                    self.line += 1;
                    self.line_start = self.base + at as u64;
                    // Indentation: spaces, eight at a time.
                    while let Some(w) = word(buf, at) {
                        let x = w ^ SPACES;
                        if x != 0 {
                            at += (x.trailing_zeros() / 8) as usize;
                            break;
                        }
                        at += 8;
                    }
                }
                other => {
                    self.at = at;
                    return Some(other);
                }
            }
        }
        self.at = at;
        None
    }

    /// Consume `c` after white space, or fail.
    #[inline(always)]
    pub fn expect(&mut self, c: u8, what: &str) -> Result<()> {
        if c > b' ' && self.cur() == Some(c) {
            self.at += 1;
            return Ok(());
        }
        self.expect_slow(c, what)
    }

    fn expect_slow(&mut self, c: u8, what: &str) -> Result<()> {
        match self.skip_ws()? {
            Some(b) if b == c => {
                self.bump()?;
                Ok(())
            }
            Some(b) => Err(self.error(format!("expected {what}, found {:?}", b as char))),
            None => Err(self.error(format!("expected {what}, found the end of the input"))),
        }
    }

    /// At the end of a container: consume `,` (returns true: more follows)
    /// or `close` (returns false).
    #[inline(always)]
    pub fn next_or_close(&mut self, close: u8) -> Result<bool> {
        match self.cur() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(b) if b == close && close > b' ' => {
                self.at += 1;
                Ok(false)
            }
            _ => self.next_or_close_slow(close),
        }
    }

    fn next_or_close_slow(&mut self, close: u8) -> Result<bool> {
        match self.skip_ws()? {
            Some(b',') => {
                self.bump()?;
                Ok(true)
            }
            Some(b) if b == close => {
                self.bump()?;
                Ok(false)
            }
            Some(b) => Err(self.error(format!("expected ',' or '{}', found {:?}", close as char, b as char))),
            None => Err(self.error("unexpected end of the input")),
        }
    }

    /// Check that only white space is left.
    pub fn expect_end(&mut self) -> Result<()> {
        match self.skip_ws()? {
            None => Ok(()),
            Some(b) => Err(self.error(format!("extra data after the JSON document: {:?}", b as char))),
        }
    }

    /// Parse one complete value.
    pub fn value(&mut self) -> Result<Json> {
        self.value_at(0)
    }

    /// Parse one complete value found at nesting `depth` (the depth counts
    /// towards [`MAX_DEPTH`]).
    pub(crate) fn value_at(&mut self, depth: usize) -> Result<Json> {
        if depth > MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        match self.skip_ws()? {
            None => Err(self.error("expected a value, found the end of the input")),
            Some(b'{') => {
                self.bump()?;
                let mut members = Vec::new();
                if self.skip_ws()? == Some(b'}') {
                    self.bump()?;
                    return Ok(Json::Obj(members));
                }
                loop {
                    let k = self.key()?;
                    let v = self.value_at(depth + 1)?;
                    members.push((k, v));
                    if !self.next_or_close(b'}')? {
                        return Ok(Json::Obj(members));
                    }
                }
            }
            Some(b'[') => {
                self.bump()?;
                let mut items = Vec::new();
                if self.skip_ws()? == Some(b']') {
                    self.bump()?;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value_at(depth + 1)?);
                    if !self.next_or_close(b']')? {
                        return Ok(Json::Arr(items));
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'N') => self.word("NaN", Json::Float(f64::NAN)),
            Some(b'I') => self.word("Infinity", Json::Float(f64::INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b) => Err(self.error(format!("unexpected character {:?}", b as char))),
        }
    }

    /// An object key followed by `:`.
    pub fn key(&mut self) -> Result<String> {
        match self.skip_ws()? {
            Some(b'"') => {}
            _ => return Err(self.error("expected a string key")),
        }
        let k = self.string()?;
        self.expect(b':', "':'")?;
        Ok(match String::from_utf8(k) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// An object key followed by `:` (and a space, if one follows), handed to `f` as bytes: straight
    /// from the buffer when it is plain ASCII without escapes, else
    /// decoded into `scratch` (exactly as [`Parser::key_into`] decodes it,
    /// with its errors).  Returns what `f` returns.
    #[inline]
    pub(crate) fn key_with<T>(&mut self, scratch: &mut Vec<u8>, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        match self.skip_ws()? {
            Some(b'"') => {}
            _ => return Err(self.error("expected a string key")),
        }
        let t = self.string_with(scratch, f)?;
        self.expect(b':', "':'")?;
        // The space crit writes before the value (white space either way).
        if self.cur() == Some(b' ') {
            self.at += 1;
        }
        Ok(t)
    }

    /// A string (the opening quote not yet consumed) handed to `f` as
    /// bytes: straight from the buffer when it is plain ASCII without
    /// escapes, else decoded into `scratch` (exactly as
    /// [`Parser::string_into`] decodes it, with its errors).
    #[inline]
    pub(crate) fn string_with<T>(&mut self, scratch: &mut Vec<u8>, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let rest = self.buf.get(self.at + 1..self.len).unwrap_or(&[]);
        let n = plain_run(rest);
        if self.cur() == Some(b'"') && rest.get(n) == Some(&b'"') {
            let t = f(rest.get(..n).unwrap_or(&[]));
            self.at += n + 2;
            return Ok(t);
        }
        scratch.clear();
        self.string_into(scratch)?;
        Ok(f(scratch))
    }

    /// Whether the next bytes are one of the first eight keys of `keys` as
    /// crit writes keys (see [`key_at`]), whole in the buffer: consumed if
    /// so, the value is next, and the key's index is returned.  (A key
    /// written otherwise, or cut by the end of the buffer, is not matched:
    /// read it with [`Parser::key_with`].)
    #[inline(always)]
    pub(crate) fn key_among(&mut self, indent: usize, keys: &[KeyPattern]) -> Option<usize> {
        let (i, n, newline) = key_at(self.buf.get(self.at..self.len)?, indent, keys)?;
        if newline {
            self.line += 1;
            self.line_start = self.base + (self.at + 1) as u64;
        }
        self.at += n;
        Some(i)
    }

    /// The unread bytes of the buffer, for a caller that scans them itself
    /// and then consumes what it took with [`Parser::consume_scanned`].
    #[inline(always)]
    pub(crate) fn buffered(&self) -> &[u8] {
        self.avail()
    }

    /// Consume the first `n` bytes of [`Parser::buffered`], which held
    /// `lines` newlines, the last of them right before offset `line_at`.
    #[inline(always)]
    pub(crate) fn consume_scanned(&mut self, n: usize, lines: u64, line_at: usize) {
        if lines > 0 {
            self.line += lines;
            self.line_start = self.base + (self.at + line_at) as u64;
        }
        self.at = (self.at + n).min(self.len);
    }

    /// A newline and `indent` spaces, consumed if they are next.
    #[inline]
    pub(crate) fn newline_indent(&mut self, indent: usize) -> bool {
        let Some(b) = self.buf.get(self.at..self.len) else { return false };
        if b.first() != Some(&b'\n') || !b.get(1..1 + indent).is_some_and(all_spaces) {
            return false;
        }
        self.line += 1;
        self.line_start = self.base + (self.at + 1) as u64;
        self.at += 1 + indent;
        true
    }

    /// The column of the current position (from 0).
    #[inline]
    pub(crate) fn column(&self) -> usize {
        (self.position() - self.line_start) as usize
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json> {
        for &c in w.as_bytes() {
            if self.bump()? != Some(c) {
                return Err(self.error(format!("invalid literal, expected {w}")));
            }
        }
        Ok(v)
    }

    /// A plain integer literal (`-`, digits without a leading zero, then a
    /// byte that ends the number) held whole in the buffer, whose
    /// magnitude fits in 64 bits: consumed and returned as (negative,
    /// magnitude).  None, with nothing consumed, for anything else (a
    /// fraction, an exponent, a number cut by the end of the buffer, a
    /// bigger one, or not a number): [`Parser::value`] then reads it.
    #[inline(always)]
    pub(crate) fn int_fast(&mut self) -> Option<(bool, u64)> {
        let Some(w) = self.buf.get(self.at..self.len).and_then(|b| b.first_chunk::<24>()) else {
            // Near the end of the buffer.
            return self.int_words();
        };
        // One digit, then a separator: the most common number of all.
        let x = w[0].wrapping_sub(b'0');
        if x <= 9 && matches!(w[1], b',' | b'}' | b']' | b' ' | b'\n') {
            self.at += 1;
            return Some((false, x as u64));
        }
        let neg = w[0] == b'-';
        let o = neg as usize;
        let at = |i: usize| w.get(i..i + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
        let w0 = at(o)?;
        let n0 = digit_count(w0);
        let (v, n) = if n0 < 8 {
            (digits_value(w0, n0), n0)
        } else {
            let w1 = at(o + 8)?;
            let n1 = digit_count(w1);
            if n1 == 8 {
                return self.int_words();
            }
            let low = if n1 > 0 { digits_value(w1, n1) } else { 0 };
            (digits_value(w0, 8) * POW10.get(n1).copied().unwrap_or(0) + low, 8 + n1)
        };
        if n == 0 || (n > 1 && w.get(o) == Some(&b'0')) {
            return None;
        }
        match w.get(o + n) {
            Some(b'.' | b'e' | b'E' | b'+' | b'-') | None => None,
            Some(_) => {
                self.at += o + n;
                Some((neg, v))
            }
        }
    }

    /// A string of plain hex digits, `"0x…"` (1 to 16 digits), held whole
    /// in the buffer: consumed, and its value.  None, with nothing
    /// consumed, for anything else.
    #[inline]
    pub(crate) fn hex_fast(&mut self) -> Option<u64> {
        let (v, n) = hex_at(self.buf.get(self.at..self.len)?.first_chunk::<24>()?)?;
        self.at += n;
        Some(v)
    }

    /// [`Parser::int_fast`] for a non-negative integer up to `max`; None,
    /// with nothing consumed, for anything else.
    #[inline(always)]
    pub(crate) fn uint_fast(&mut self, max: u64) -> Option<u64> {
        let at = self.at;
        match self.int_fast() {
            Some((false, v)) if v <= max => Some(v),
            Some(_) => {
                self.at = at;
                None
            }
            None => None,
        }
    }

    /// [`Parser::int_fast`] anywhere in the buffer (near its end, or past
    /// 16 digits).
    #[inline(never)]
    fn int_words(&mut self) -> Option<(bool, u64)> {
        let b = self.avail();
        let (neg, d) = match b.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, b),
        };
        let (v, n) = digits_loop(d)?;
        if n == 0 || (n > 1 && d.first() == Some(&b'0')) {
            return None;
        }
        match d.get(n) {
            Some(b'.' | b'e' | b'E' | b'+' | b'-' | b'0'..=b'9') | None => None,
            Some(_) => {
                self.at += n + neg as usize;
                Some((neg, v))
            }
        }
    }

    fn number(&mut self) -> Result<Json> {
        if let Some((neg, v)) = self.int_fast() {
            return Ok(Json::Int(if neg { -(v as i128) } else { v as i128 }));
        }
        let mut s = String::new();
        if self.peek()? == Some(b'-') {
            s.push('-');
            self.bump()?;
            if self.peek()? == Some(b'I') {
                self.word("Infinity", Json::Null)?;
                return Ok(Json::Float(f64::NEG_INFINITY));
            }
        }
        let mut is_float = false;
        while let Some(c) = self.peek()? {
            match c {
                b'0'..=b'9' => s.push(c as char),
                b'.' | b'e' | b'E' | b'+' => {
                    is_float = true;
                    s.push(c as char)
                }
                b'-' if is_float => s.push('-'),
                _ => break,
            }
            self.bump()?;
            if s.len() > 400 {
                return Err(self.error("number too long"));
            }
        }
        let digits = s.trim_start_matches('-');
        if digits.is_empty() || (!is_float && digits.len() > 1 && digits.starts_with('0')) {
            return Err(self.error(format!("invalid number {s:?}")));
        }
        if is_float {
            s.parse::<f64>().map(Json::Float).map_err(|_| self.error(format!("invalid number {s:?}")))
        } else {
            s.parse::<i128>().map(Json::Int).map_err(|_| self.error(format!("integer out of range: {s}")))
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.bump()?.ok_or_else(|| self.error("truncated \\u escape"))?;
            let d = (c as char).to_digit(16).ok_or_else(|| self.error("invalid \\u escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// An object key followed by `:`, into a reused buffer.
    pub fn key_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        match self.skip_ws()? {
            Some(b'"') => {}
            _ => return Err(self.error("expected a string key")),
        }
        out.clear();
        self.string_into(out)?;
        self.expect(b':', "':'")
    }

    /// A string (the opening quote not yet consumed).
    pub fn string(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.string_into(&mut out)?;
        Ok(out)
    }

    /// A string appended to `out` (the opening quote not yet consumed).
    pub fn string_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        // The quote.
        if self.cur() == Some(b'"') {
            self.at += 1;
        } else {
            self.bump()?;
        }
        // Start of the bytes copied from the input since the last escape:
        // those must be UTF-8; bytes made by `\udcXX` escapes need not be.
        let mut seg = out.len();
        // Whether every byte copied since `seg` is ASCII (then no check).
        let mut ascii = true;
        loop {
            if !self.fill()? {
                return Err(self.error("unterminated string"));
            }
            // Copy a run of plain bytes straight from the buffer.
            let buf = self.avail();
            let run = plain_run(buf);
            if run > 0 {
                out.extend_from_slice(buf.get(..run).unwrap_or(&[]));
                self.at += run;
                if self.cur() == Some(b'"') {
                    self.at += 1;
                    break;
                }
                continue;
            }
            if buf.first().is_some_and(|&b| b >= 0x80) {
                // Not ASCII: copied as it is, checked as UTF-8 below.
                let n = buf.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(buf.len());
                out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                self.at += n;
                ascii = false;
                continue;
            }
            let c = self.bump()?.unwrap_or(0);
            match c {
                b'"' => break,
                b'\\' => {
                    if !ascii && std::str::from_utf8(out.get(seg..).unwrap_or(&[])).is_err() {
                        return Err(self.error("string is not UTF-8"));
                    }
                    let e = self.bump()?.ok_or_else(|| self.error("truncated escape"))?;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xd800..0xdc00).contains(&u) {
                                // A high surrogate: a low one should follow.
                                let mut pair = None;
                                if self.peek()? == Some(b'\\') {
                                    self.bump()?;
                                    if self.bump()? != Some(b'u') {
                                        return Err(self.error("invalid escape after a high surrogate"));
                                    }
                                    let lo = self.hex4()?;
                                    if (0xdc00..0xe000).contains(&lo) {
                                        pair = Some(0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
                                    } else {
                                        return Err(self.error("lone high surrogate in a string"));
                                    }
                                }
                                let c = pair
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| self.error("lone high surrogate in a string"))?;
                                let mut b = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                            } else if (0xdc80..0xdd00).contains(&u) {
                                out.push((u - 0xdc00) as u8);
                            } else if (0xdc00..0xe000).contains(&u) {
                                return Err(self.error("lone low surrogate in a string"));
                            } else {
                                let c = char::from_u32(u).ok_or_else(|| self.error("invalid \\u escape"))?;
                                let mut b = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                            }
                        }
                        // Escaped, so that the message stays on one line.
                        _ => return Err(self.error(format!("invalid escape \\{}", (e as char).escape_default()))),
                    }
                    seg = out.len();
                    ascii = true;
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
        if !ascii && std::str::from_utf8(out.get(seg..).unwrap_or(&[])).is_err() {
            return Err(self.error("string is not UTF-8"));
        }
        Ok(())
    }
}

/// Parse a whole document held in memory.
pub fn parse_slice(data: &[u8]) -> Result<Json> {
    let mut p = Parser::new(data);
    let v = p.value()?;
    p.expect_end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let v = parse_slice(br#"{"a": [1, -2, 3.5, true, null, "x\u00e9\ud83d\ude00\udcff"], "b": {}}"#).unwrap();
        let Json::Obj(m) = &v else { panic!() };
        assert_eq!(m[0].0, "a");
        assert_eq!(
            m[0].1,
            Json::Arr(vec![
                Json::Int(1),
                Json::Int(-2),
                Json::Float(3.5),
                Json::Bool(true),
                Json::Null,
                Json::Str(b"x\xc3\xa9\xf0\x9f\x98\x80\xff".to_vec())
            ])
        );
        assert_eq!(v.get("b"), Some(&Json::Obj(vec![])));
    }

    #[test]
    fn big_integers_are_exact() {
        assert_eq!(parse_slice(b"18446744073709551615").unwrap(), Json::Int(u64::MAX as i128));
        assert_eq!(parse_slice(b"[18446744073709551616]").unwrap(), Json::Arr(vec![Json::Int(u64::MAX as i128 + 1)]));
        assert_eq!(parse_slice(b"[-18446744073709551615]").unwrap(), Json::Arr(vec![Json::Int(-(u64::MAX as i128))]));
        assert_eq!(parse_slice(b"[99999999999999999999]").unwrap(), Json::Arr(vec![Json::Int(99999999999999999999)]));
        assert_eq!(parse_slice(b"[-0]").unwrap(), Json::Arr(vec![Json::Int(0)]));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_slice(b"{\n  \"a\": tru }").unwrap_err();
        assert!(e.loc.line_col.is_some());
        assert!(parse_slice(b"[1,]").is_err());
        assert!(parse_slice(b"01").is_err());
        assert!(parse_slice(b"\"\\ud800\"").is_err());
        assert!(parse_slice(b"[1] x").is_err());
        let deep = "[".repeat(1000);
        assert!(parse_slice(deep.as_bytes()).is_err());
    }

    /// A reader that hands out its bytes `n` at a time, so that every token
    /// is cut by the end of the buffer somewhere.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The value (or the error, with its position) and where the parser
    /// stopped.
    fn outcome<R: Read>(mut p: Parser<R>) -> (String, (u64, u64)) {
        let r = p.value().and_then(|v| p.expect_end().map(|_| v));
        let text = match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("{e} {:?}", e.loc.line_col),
        };
        (text, p.line_col())
    }

    /// The fast paths (whole buffer) and the byte-by-byte ones (one byte
    /// per read) agree on values, errors and positions.
    #[test]
    fn fast_and_slow_paths_agree() {
        let mut docs: Vec<Vec<u8>> = vec![
            b"{\"k\": \"plain text of some length\", \"n\": -123, \"m\": 18446744073709551615}".to_vec(),
            b"{\n    \"a\": [\n        1,\n        2\n    ],\n\t\"b\"  :  \"x\"\r\n}".to_vec(),
            b"[\"\\u00e9t\\u00e9 \\ud83d\\ude00 \\udc80\", \"caf\xc3\xa9 au lait\", \"\xff\"]".to_vec(),
            b"[\"a\nb\"]".to_vec(),
            b"[\"a\\qb\"]".to_vec(),
            b"[12.5e3, -0, 1e400, 123456789012345678901234567890]".to_vec(),
            b"[0123]".to_vec(),
            b"{\"a\" 1}".to_vec(),
            b"[1 2]".to_vec(),
            b"\"unterminated".to_vec(),
            b"{\"\\u0061b\": 1, \"\xc3\xa9\": 2}".to_vec(),
        ];
        // Every special byte at every offset of a string longer than a word.
        for at in 0..20 {
            for special in [b'"', b'\\', b'\n', 0x01, 0x7f, 0xc3] {
                let mut s = vec![b'['; 1];
                s.push(b'"');
                let mut body = vec![b'x'; 21];
                body[at] = special;
                if special == 0xc3 {
                    body[at + 1] = 0xa9;
                }
                s.extend_from_slice(&body);
                s.extend_from_slice(b"\", 7]");
                docs.push(s);
            }
        }
        for d in &docs {
            let fast = outcome(Parser::new(&d[..]));
            for n in [1, 3, 8] {
                let slow = outcome(Parser::new(Trickle(d, n)));
                assert_eq!(fast, slow, "{:?} read {n} at a time", String::from_utf8_lossy(d));
            }
        }
    }

    #[test]
    fn keys_with_and_without_escapes() {
        let doc = b"{\"plain\": 1, \"es\\u0063aped\": 2, \"\xc3\xa9t\xc3\xa9\": 3}";
        for n in [1usize, 4, 1 << 16] {
            let mut p = Parser::new(Trickle(doc, n));
            let mut scratch = Vec::new();
            let mut keys = Vec::new();
            p.expect(b'{', "'{'").unwrap();
            loop {
                keys.push(p.key_with(&mut scratch, |k| k.to_vec()).unwrap());
                p.value().unwrap();
                if !p.next_or_close(b'}').unwrap() {
                    break;
                }
            }
            assert_eq!(keys, [b"plain".to_vec(), b"escaped".to_vec(), "été".as_bytes().to_vec()]);
        }
    }

    #[test]
    fn keys_are_matched_in_the_buffer_as_crit_writes_them() {
        let keys = [KeyPattern::new("id"), KeyPattern::new("flags"), KeyPattern::new("a_rather_long_field_name")];
        // (text, indent, the key found, where the value starts)
        let cases: &[(&str, usize, Option<usize>, usize)] = &[
            ("\"id\": 1, ...........................................", 0, Some(0), 6),
            (" \"flags\": 1, ...........................................", 0, Some(1), 10),
            ("\n    \"a_rather_long_field_name\": 1, ..........................", 4, Some(2), 33),
            ("\n   \"id\": 1, ...........................................", 4, None, 0),
            ("\"id\":1, ...........................................", 0, None, 0),
            ("\"idx\": 1, ...........................................", 0, None, 0),
            ("  \"id\": 1, ...........................................", 0, None, 0),
            ("\"id\": 1", 0, None, 0),
        ];
        for (text, indent, want, at) in cases {
            let mut p = Parser::new(text.as_bytes());
            p.fill().unwrap();
            assert_eq!(p.key_among(*indent, &keys), *want, "{text:?}");
            assert_eq!(p.position(), *at as u64, "{text:?}");
            let lines = if want.is_some() && text.starts_with('\n') { 2 } else { 1 };
            assert_eq!(p.line, lines, "{text:?}");
        }
    }

    /// `uint_at` takes exactly the non-negative integers of at most 16
    /// digits that `int_fast` takes, with their values.
    #[test]
    fn plain_text_len_finds_the_quote_after_plain_bytes_only() {
        let naive = |s: &[u8]| -> Option<usize> {
            let i = s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20 || c >= 0x80)?;
            (s[i] == b'"').then_some(i)
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"ab/.-_ ~\x7f\"\\\n\x01\xc3\xa9";
        for len in 0..40 {
            for _ in 0..200 {
                let t: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly plain bytes, a special one now and then.
                        if x % 16 == 0 {
                            alphabet[(x >> 8) as usize % alphabet.len()]
                        } else {
                            b'a' + (x >> 8) as u8 % 26
                        }
                    })
                    .collect();
                assert_eq!(plain_text_len(&t), naive(&t), "{t:?}");
            }
        }
    }

    #[test]
    fn uint_at_agrees_with_int_fast() {
        let mut texts: Vec<String> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 1..=18 {
            for _ in 0..300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut t: String = (0..len).map(|i| (b'0' + ((x >> (i * 3 % 60)) % 10) as u8) as char).collect();
                if x % 5 == 0 {
                    t.replace_range(0..1, "1");
                }
                texts.push(t);
            }
            texts.push("9".repeat(len));
            texts.push(format!("1{}", "0".repeat(len - 1)));
        }
        let ends = [",", "}", "]", " ", "\n", ".5", "e3", "+", "-", "x", "/", ":", "\u{7f}", "\u{e9}", "\"", "\0"];
        for t in &texts {
            for end in ends {
                let text = format!("{t}{end}{}", " ".repeat(30));
                let mut p = Parser::new(text.as_bytes());
                p.fill().unwrap();
                let want = p.int_fast().filter(|&(neg, _)| !neg).map(|(_, v)| (v, p.position() as usize));
                let w: &[u8; 24] = text.as_bytes().first_chunk().unwrap();
                let got = uint_at(w).filter(|&(_, n)| !matches!(text.as_bytes()[n], b'.' | b'e' | b'E' | b'+' | b'-'));
                if t.len() <= 16 {
                    assert_eq!(got, want, "{text:?}");
                } else {
                    assert_eq!(got, None, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn hex_fast_takes_plain_hex_strings() {
        for (text, want) in [
            ("\"0x7f3a\", ...................", Some(0x7f3a)),
            ("\"0xFFFFFFFFFFFFFFFF\", .........", Some(u64::MAX)),
            ("\"0x1FFFFFFFFFFFFFFFF\", ........", None),
            ("\"0x\", .......................", None),
            ("\"0X10\", .....................", None),
            ("\"0x1g\", .....................", None),
            ("\"0x10", None),
        ] {
            let mut p = Parser::new(text.as_bytes());
            p.fill().unwrap();
            assert_eq!(p.hex_fast(), want, "{text}");
        }
    }

    #[test]
    fn int_fast_takes_only_what_value_would_read_as_an_integer() {
        for (text, want) in [
            ("7,", Some((false, 7))),
            ("-9223372036854775808]", Some((true, 1 << 63))),
            ("18446744073709551615 ", Some((false, u64::MAX))),
            ("18446744073709551616 ", None),
            ("0}", Some((false, 0))),
            ("01,", None),
            ("1.5,", None),
            ("1e3,", None),
            ("-,", None),
            ("12", None),
        ] {
            let mut p = Parser::new(text.as_bytes());
            p.skip_ws().unwrap();
            assert_eq!(p.int_fast(), want, "{text}");
            if want.is_none() {
                assert_eq!(p.position(), 0, "{text}: nothing consumed");
            }
        }
    }
}
