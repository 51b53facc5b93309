//! A streaming JSON reader.
//!
//! It reads from any [`Read`] with bounded buffering, keeps line and column
//! for errors, and parses one value at a time, so an image's `entries` list
//! can be encoded element by element without holding the whole document.
//! Integers are exact (`i128`), strings are bytes: `\udc80`–`\udcff` lone
//! surrogates turn back into the raw bytes they stand for.

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

    /// An error at the current position.
    pub fn error(&self, msg: impl Into<String>) -> Error {
        let mut e = Error::new(ErrorKind::Json(msg.into()));
        e.loc.line_col = Some((self.line, self.position() - self.line_start + 1));
        e
    }

    /// Refill the buffer when it is used up; false at the end of the input.
    #[inline]
    fn fill(&mut self) -> Result<bool> {
        if self.at < self.len {
            return Ok(true);
        }
        self.base += self.len as u64;
        self.at = 0;
        self.len = 0;
        loop {
            match self.r.read(&mut self.buf) {
                Ok(n) => {
                    self.len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<Option<u8>> {
        if self.at < self.len || self.fill()? {
            Ok(Some(self.buf[self.at]))
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
    pub fn skip_ws(&mut self) -> Result<Option<u8>> {
        loop {
            while self.at < self.len {
                match self.buf[self.at] {
                    b' ' | b'\t' | b'\r' => self.at += 1,
                    b'\n' => {
                        self.at += 1;
                        self.line += 1;
                        self.line_start = self.position();
                    }
                    other => return Ok(Some(other)),
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consume `c` after white space, or fail.
    pub fn expect(&mut self, c: u8, what: &str) -> Result<()> {
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
    pub fn next_or_close(&mut self, close: u8) -> Result<bool> {
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

    fn value_at(&mut self, depth: usize) -> Result<Json> {
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

    fn word(&mut self, w: &str, v: Json) -> Result<Json> {
        for &c in w.as_bytes() {
            if self.bump()? != Some(c) {
                return Err(self.error(format!("invalid literal, expected {w}")));
            }
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<Json> {
        // Fast path: a plain integer that fits in 64 bits, all in the buffer.
        {
            let b = &self.buf[self.at..self.len];
            let neg = b.first() == Some(&b'-');
            let d = &b[neg as usize..];
            let n = d.iter().take_while(|c| c.is_ascii_digit()).count();
            let end = neg as usize + n;
            let terminated = b.get(end).is_some_and(|c| !matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'0'..=b'9'));
            if n > 0 && n <= 18 && terminated && !(n > 1 && d[0] == b'0') {
                let mut v: i64 = 0;
                for &c in &d[..n] {
                    v = v * 10 + (c - b'0') as i64;
                }
                self.at += end;
                return Ok(Json::Int(if neg { -(v as i128) } else { v as i128 }));
            }
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
        self.bump()?; // the quote
                      // Start of the bytes copied from the input since the last escape:
                      // those must be UTF-8; bytes made by `\udcXX` escapes need not be.
        let mut seg = out.len();
        // Whether every byte copied since `seg` is ASCII (then no check).
        let mut ascii = true;
        loop {
            // Copy a run of plain bytes straight from the buffer.
            if !self.fill()? {
                return Err(self.error("unterminated string"));
            }
            let buf = &self.buf[self.at..self.len];
            let mut high = 0u8;
            let run = buf
                .iter()
                .position(|&b| {
                    high |= b;
                    b == b'"' || b == b'\\' || b < 0x20
                })
                .unwrap_or(buf.len());
            if run > 0 {
                out.extend_from_slice(&buf[..run]);
                self.at += run;
                ascii &= high < 0x80 || buf[..run].is_ascii();
                continue;
            }
            let c = self.bump()?.unwrap_or(0);
            match c {
                b'"' => break,
                b'\\' => {
                    if !ascii && std::str::from_utf8(&out[seg..]).is_err() {
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
        if !ascii && std::str::from_utf8(&out[seg..]).is_err() {
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
}
