//! Typed errors of the library.
//!
//! Every error carries where it happened, as far as it is known: the file,
//! the byte offset, the entry index and the field.  The binary prints them on
//! one line and decides the exit code; the library never panics on input.

use std::fmt::{self, Write as _};
use std::io;
use std::path::PathBuf;

/// Where an error happened.
#[derive(Debug, Default, Clone)]
pub struct Location {
    /// The file being read or written.
    pub file: Option<PathBuf>,
    /// Byte offset in the file (for JSON input: line and column instead).
    pub offset: Option<u64>,
    /// Line and column in JSON input.
    pub line_col: Option<(u64, u64)>,
    /// Index of the entry in the image (0 is the first entry after the magic).
    pub entry: Option<usize>,
    /// Dotted path of the field inside the entry.
    pub field: Option<String>,
}

/// What went wrong.
#[derive(Debug)]
pub enum ErrorKind {
    /// An I/O error.
    Io(io::Error),
    /// The type magic is not in the registry (crit's "Unknown magic").
    UnknownMagic(i32),
    /// The magic is known, but no decoder exists for it (raw data, kdat).
    NoHandler(&'static str),
    /// The file ends before a structure it started.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        got: u64,
    },
    /// A protobuf message that does not parse.
    Malformed(String),
    /// The input is not JSON at all (crit's "Cannot read JSON").
    NotJson,
    /// JSON that does not parse.
    Json(String),
    /// JSON that parses but does not fit the schema.
    Value(String),
    /// A required field is missing when encoding.
    MissingRequired {
        /// The message type.
        message: &'static str,
        /// The missing fields (dotted paths).
        fields: Vec<String>,
    },
    /// Anything else, with a message.
    Other(String),
}

/// The error type of the library.
#[derive(Debug)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where.
    pub loc: Location,
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error without location.
    pub fn new(kind: ErrorKind) -> Error {
        Error { kind, loc: Location::default() }
    }

    /// A malformed-input error.
    pub fn malformed(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Malformed(msg.into()))
    }

    /// A value error (JSON does not fit the schema).
    pub fn value(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Value(msg.into()))
    }

    /// Another error.
    pub fn other(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Other(msg.into()))
    }

    /// Set the file, unless already set.
    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Error {
        if self.loc.file.is_none() {
            self.loc.file = Some(file.into());
        }
        self
    }

    /// Set the offset, unless already set.
    pub fn at_offset(mut self, offset: u64) -> Error {
        if self.loc.offset.is_none() {
            self.loc.offset = Some(offset);
        }
        self
    }

    /// Set the entry index, unless already set.
    pub fn at_entry(mut self, entry: usize) -> Error {
        if self.loc.entry.is_none() {
            self.loc.entry = Some(entry);
        }
        self
    }

    /// Prefix the field path with an outer field name.
    pub fn in_field(mut self, name: &str) -> Error {
        self.loc.field = Some(match self.loc.field.take() {
            Some(inner) if inner.starts_with('[') => format!("{name}{inner}"),
            Some(inner) => format!("{name}.{inner}"),
            None => name.to_string(),
        });
        self
    }

    /// Prefix the field path with a list index.
    pub fn in_index(mut self, index: usize) -> Error {
        self.loc.field = Some(match self.loc.field.take() {
            Some(inner) if inner.starts_with('[') => format!("[{index}]{inner}"),
            Some(inner) => format!("[{index}].{inner}"),
            None => format!("[{index}]"),
        });
        self
    }

    /// Whether this is a broken pipe on output (not an error for a CLI).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(&self.kind, ErrorKind::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::new(ErrorKind::Io(e))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io(e) => write!(f, "{e}"),
            ErrorKind::UnknownMagic(m) => write!(f, "unknown magic {}", py_hex(*m as i64)),
            ErrorKind::NoHandler(name) => write!(f, "no decoder for images with magic {name}"),
            ErrorKind::Truncated { what, need, got } => {
                write!(f, "truncated {what}: needs {need} bytes, {got} left")
            }
            ErrorKind::Malformed(m) => write!(f, "malformed entry: {m}"),
            ErrorKind::NotJson => write!(f, "not JSON"),
            ErrorKind::Json(m) => write!(f, "bad JSON: {m}"),
            ErrorKind::Value(m) => write!(f, "{m}"),
            ErrorKind::MissingRequired { message, fields } => {
                write!(f, "message {message} is missing required fields: {}", fields.join(","))
            }
            ErrorKind::Other(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(file) = &self.loc.file {
            parts.push(file.display().to_string());
        }
        if let Some((l, c)) = self.loc.line_col {
            parts.push(format!("line {l} column {c}"));
        } else if let Some(o) = self.loc.offset {
            parts.push(format!("offset {o}"));
        }
        if let Some(e) = self.loc.entry {
            parts.push(format!("entry {e}"));
        }
        if let Some(field) = &self.loc.field {
            parts.push(format!("field {field}"));
        }
        let text =
            if parts.is_empty() { self.kind.to_string() } else { format!("{}: {}", parts.join(", "), self.kind) };
        // One line, whatever the input put in it (a file name, a tar
        // header's text): control characters are shown escaped.
        if text.chars().any(char::is_control) {
            text.chars().try_for_each(|c| {
                if c.is_control() {
                    write!(f, "{}", c.escape_default())
                } else {
                    f.write_char(c)
                }
            })
        } else {
            f.write_str(&text)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Python's `"%#x" % v`: `0x1f`, and `-0x1` for negative values.
pub fn py_hex(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", (v as i128).unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}
