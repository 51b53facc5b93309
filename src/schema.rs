//! The schema layer: static descriptor tables of every CRIU image message.
//!
//! The tables are generated at build time from the project's own
//! `schema/*.proto` (compiled by protox, no `protoc`).  Fields of a message
//! are sorted by field number, which is the order protobuf serialises them in
//! and the order crit's JSON lists them in.

/// Index of a message in [`MESSAGES`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct MsgId(pub u16);

/// Index of an enum in [`ENUMS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct EnumId(pub u16);

/// Field label (proto2 cardinality).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Label {
    /// `optional`: present or absent.
    Optional,
    /// `required`: must be present when encoding.
    Required,
    /// `repeated`: zero or more values.
    Repeated,
}

/// Field type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(missing_docs)]
pub enum Type {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    Enum(EnumId),
    Message(MsgId),
}

impl Type {
    /// Whether the type is one of the integer types (crit's `int` cast).
    pub fn is_integer(self) -> bool {
        !matches!(
            self,
            Type::Double | Type::Float | Type::Bool | Type::String | Type::Bytes | Type::Enum(_) | Type::Message(_)
        )
    }

    /// Whether values of this type are signed.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            Type::Int32 | Type::Int64 | Type::Sint32 | Type::Sint64 | Type::Sfixed32 | Type::Sfixed64 | Type::Enum(_)
        )
    }

    /// Whether the type is 32 bits wide.
    pub fn is_32bit(self) -> bool {
        matches!(self, Type::Int32 | Type::Uint32 | Type::Sint32 | Type::Fixed32 | Type::Sfixed32 | Type::Enum(_))
    }
}

/// The `(criu)` field options of `schema/opts.proto`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Opts {
    /// Print as `0x…` in nice mode; inherited by nested messages.
    pub hex: bool,
    /// A repeated u32 holding an IPv4 or IPv6 address.
    pub ipadd: bool,
    /// Name of a flags map (see `crate::json::maps`).
    pub flags: Option<&'static str>,
    /// A device number printed as `MAJ:MIN`.
    pub dev: bool,
    /// With `dev`: the old (glibc) major/minor split.
    pub odev: bool,
    /// Name of a value dictionary (`gen`, `sk`).
    pub dict: Option<&'static str>,
    /// A custom conversion for bytes (`unix_name`: quoted-printable).
    pub conv: Option<&'static str>,
}

impl Opts {
    /// No options set.
    pub const NONE: Opts =
        Opts { hex: false, ipadd: false, flags: None, dev: false, odev: false, dict: None, conv: None };
}

/// One field of a message.
#[derive(Debug)]
pub struct FieldDesc {
    /// The field's name, as JSON keys spell it.
    pub name: &'static str,
    /// The field number.
    pub number: u32,
    /// Its label.
    pub label: Label,
    /// Its type.
    pub ty: Type,
    /// Declared `[packed = true]`.
    pub packed: bool,
    /// The `(criu)` options.
    pub opts: Opts,
    /// The `[default = …]` text, if any.
    pub default: Option<&'static str>,
}

/// A message type.
#[derive(Debug)]
pub struct MessageDesc {
    /// Full name (no package; nested messages as `outer.inner`).
    pub name: &'static str,
    /// Fields sorted by number.
    pub fields: &'static [FieldDesc],
}

/// An enum type.
#[derive(Debug)]
pub struct EnumDesc {
    /// Full name.
    pub name: &'static str,
    /// `(name, number)` pairs in declaration order.
    pub values: &'static [(&'static str, i32)],
}

include!(concat!(env!("OUT_DIR"), "/schema_tables.rs"));

impl MsgId {
    /// The message's descriptor.
    pub fn desc(self) -> &'static MessageDesc {
        &MESSAGES[self.0 as usize]
    }

    /// Look a message up by its full name.
    pub fn by_name(name: &str) -> Option<MsgId> {
        MESSAGES.iter().position(|m| m.name == name).map(|i| MsgId(i as u16))
    }
}

impl EnumId {
    /// The enum's descriptor.
    pub fn desc(self) -> &'static EnumDesc {
        &ENUMS[self.0 as usize]
    }
}

impl EnumDesc {
    /// Name of a value; the first declared name wins for aliases.
    pub fn name_of(&self, number: i32) -> Option<&'static str> {
        self.values.iter().find(|v| v.1 == number).map(|v| v.0)
    }

    /// Number of a value name.
    pub fn number_of(&self, name: &str) -> Option<i32> {
        self.values.iter().find(|v| v.0 == name).map(|v| v.1)
    }
}

impl MessageDesc {
    /// Index of a field by number (fields are sorted, so a binary search).
    pub fn field_index(&self, number: u32) -> Option<usize> {
        self.fields.binary_search_by_key(&number, |f| f.number).ok()
    }

    /// A field by name.
    pub fn field_by_name(&self, name: &str) -> Option<(usize, &'static FieldDesc)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }
}
