//! Field descriptions: what a dialect table is made of.
//!
//! A field is described by composing independent parts (character class × length rule × length
//! prefix encoding × value encoding) instead of one type per combination, so one table line
//! describes one field and the codec has no per-dialect branches.

use std::borrow::Cow;

/// Character class of a field's logical value (ISO 8583:1987 clause 4.1 data element notation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldKind {
    /// `n`: decimal digits only.
    N,
    /// `an`: letters and digits. Space is accepted too, because fixed `an` fields (38, 39, ...)
    /// are space-padded by hosts in practice.
    An,
    /// `ans`: any printable ASCII character including space (0x20..=0x7E).
    Ans,
    /// `ns`: digits and printable special characters (no letters).
    Ns,
    /// `x+n`: a `C` (credit) or `D` (debit) sign followed by digits (amount fees, ISO 87 28-31, 97).
    Xn,
    /// `z`: track 2/3 code set: digits and the field separator `D` (`=` is accepted on encode
    /// and stored as `D` in BCD dialects).
    Z,
    /// `b`: binary data; the logical value is raw bytes.
    B,
}

/// How long a field's logical value is: counted in digits (`n`, `z`), characters (text) or bytes (`b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthType {
    /// Exactly this many units.
    Fixed(usize),
    /// Up to this many units, with a 2-digit length prefix.
    LlVar(usize),
    /// Up to this many units, with a 3-digit length prefix.
    LllVar(usize),
}

impl LengthType {
    /// Maximum (or fixed) logical length.
    pub fn max(self) -> usize {
        match self {
            LengthType::Fixed(n) | LengthType::LlVar(n) | LengthType::LllVar(n) => n,
        }
    }

    /// Number of decimal digits in the length prefix: 0, 2 or 3.
    pub fn prefix_digits(self) -> usize {
        match self {
            LengthType::Fixed(_) => 0,
            LengthType::LlVar(_) => 2,
            LengthType::LllVar(_) => 3,
        }
    }
}

/// How a variable field's length prefix is written.
///
/// The prefix counts logical units (digits, characters or bytes), except for
/// [`ValueEncoding::HexAscii`] fields where it counts the hex characters on the wire (the
/// convention of ASCII hosts and of pyiso8583's `default_ascii`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixEncoding {
    /// Packed BCD: LL in 1 byte, LLL in 2 bytes (`0x01 0x23` = 123).
    Bcd,
    /// ASCII digits: LL in 2 bytes, LLL in 3 bytes.
    Ascii,
    /// Unsigned big-endian binary: LL in 1 byte (max 255), LLL in 2 bytes.
    Binary,
}

/// Where the filler nibble of an odd-length BCD value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// Filler first: right-aligned value (`123` → `01 23`).
    Left,
    /// Filler last: left-aligned value (`123` → `12 30`, or `12 3F` with filler F).
    Right,
}

/// How a field's logical value is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueEncoding {
    /// Packed BCD, two digits per byte; `D` (track separator) is nibble 0xD. Odd lengths get
    /// `filler` (a nibble, 0x0..=0xF) on the `pad` side. For `n` and `z` fields, and for `x+n`
    /// fields, whose sign stays one ASCII character before the BCD digits (jPOS `IFB_AMOUNT`).
    Bcd {
        /// Side of the filler nibble.
        pad: Pad,
        /// Filler nibble value (0x0 for numerics, 0xF for track data by default).
        filler: u8,
        /// Whether decoding refuses a filler nibble other than `filler`
        /// ([`crate::InvalidReason::BadPadding`]). jPOS never looks at it, so the `iso87b`
        /// table does not either; `cup` does.
        checked: bool,
    },
    /// One ASCII byte per character.
    Ascii,
    /// Raw bytes (only for `b` fields).
    Binary,
    /// Each byte as two upper-case hex characters (only for `b` fields of ASCII dialects).
    HexAscii,
}

impl ValueEncoding {
    /// Number of wire bytes for a logical value of `len` units (see [`FieldSpec::wire_len`]
    /// for `x+n` fields, whose sign character is not packed).
    pub fn wire_len(self, len: usize) -> usize {
        match self {
            ValueEncoding::Bcd { .. } => len.div_ceil(2),
            ValueEncoding::Ascii | ValueEncoding::Binary => len,
            ValueEncoding::HexAscii => len.saturating_mul(2),
        }
    }
}

/// Character set of a text field's wire bytes. The logical value in a [`crate::Message`] is
/// always UTF-8 text; the codec converts it. Lengths and length prefixes count *wire bytes*
/// (a GBK Chinese character is 2 bytes), as acquirer specifications state them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Charset {
    /// ASCII: one byte per character, the character class decides what is allowed.
    #[default]
    Ascii,
    /// GBK (CP936): ASCII plus 2-byte Chinese characters (merchant names, host messages).
    Gbk,
    /// GB18030: GBK plus 4-byte sequences for the rest of Unicode.
    Gb18030,
}

impl Charset {
    /// The charset for a profile name: `ascii`, `gbk` or `gb18030` (case-insensitive).
    pub fn by_name(name: &str) -> Option<Charset> {
        match name.to_ascii_lowercase().as_str() {
            "ascii" => Some(Charset::Ascii),
            "gbk" | "cp936" => Some(Charset::Gbk),
            "gb18030" => Some(Charset::Gb18030),
            _ => None,
        }
    }
}

/// How a field is shown in logs, dumps and masked tool output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Shown in clear.
    Clear,
    /// A PAN: first 6 and last 4 digits at most (PCI DSS 3.4).
    Pan,
    /// Track data: masked PAN part and the length only.
    Track,
    /// Shown as `****` (expiry date).
    Hidden,
    /// Secret bytes (PIN block, ICC data, keys): only the length is shown.
    Length,
}

/// One field of a dialect table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Field number, 2..=128 (1 is the secondary bitmap and is not a table field).
    pub number: u8,
    /// English name (ISO 8583:1987 or the dialect's specification).
    pub name: Cow<'static, str>,
    /// Character class of the logical value.
    pub kind: FieldKind,
    /// Length rule of the logical value.
    pub length: LengthType,
    /// Encoding of the length prefix (ignored for fixed fields).
    pub prefix: PrefixEncoding,
    /// Encoding of the value.
    pub encoding: ValueEncoding,
    /// How the field is shown in dumps.
    pub mask: Mask,
    /// Character set of a text field on the wire ([`Charset::Ascii`] for built-in tables).
    pub charset: Charset,
}

impl FieldSpec {
    /// A table line. `const` so that built-in dialects are static data.
    pub const fn new(
        number: u8,
        name: &'static str,
        kind: FieldKind,
        length: LengthType,
        prefix: PrefixEncoding,
        encoding: ValueEncoding,
    ) -> FieldSpec {
        FieldSpec {
            number,
            name: Cow::Borrowed(name),
            kind,
            length,
            prefix,
            encoding,
            mask: Mask::Clear,
            charset: Charset::Ascii,
        }
    }

    /// The same line with a character set (text fields with ASCII value encoding only).
    pub const fn with_charset(mut self, charset: Charset) -> FieldSpec {
        self.charset = charset;
        self
    }

    /// The same line with a mask rule.
    pub const fn masked(mut self, mask: Mask) -> FieldSpec {
        self.mask = mask;
        self
    }

    /// Number of wire bytes for a logical value of `len` units: the value encoding's, except
    /// that a BCD `x+n` value keeps its sign as one ASCII byte before the packed digits.
    pub fn wire_len(&self, len: usize) -> usize {
        match (self.kind, self.encoding) {
            (FieldKind::Xn, ValueEncoding::Bcd { .. }) if len > 0 => 1 + (len - 1).div_ceil(2),
            (_, enc) => enc.wire_len(len),
        }
    }

    /// Whether the logical value is text (everything but `b`).
    pub fn is_text(&self) -> bool {
        self.kind != FieldKind::B
    }

    /// Short notation for dumps, e.g. `n..19 LLVAR`.
    pub fn notation(&self) -> String {
        let k = match self.kind {
            FieldKind::N => "n",
            FieldKind::An => "an",
            FieldKind::Ans => "ans",
            FieldKind::Ns => "ns",
            FieldKind::Xn => "x+n",
            FieldKind::Z => "z",
            FieldKind::B => "b",
        };
        match self.length {
            LengthType::Fixed(n) => format!("{k}{n}"),
            LengthType::LlVar(n) => format!("{k}..{n} LLVAR"),
            LengthType::LllVar(n) => format!("{k}..{n} LLLVAR"),
        }
    }
}

/// One part of a structured private field (CUP 60, 61, 63; acquirer private fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubfieldSpec {
    /// Dotted name such as `60.1 transaction type code`.
    pub name: Cow<'static, str>,
    /// Length in characters (text) or bytes (GBK/GB18030 text, binary); the last subfield
    /// present may be shorter. Unused by [`SubfieldFormat::Tlv`], which takes the rest.
    pub len: usize,
    /// What the part holds.
    pub format: SubfieldFormat,
}

impl SubfieldSpec {
    /// A text subfield table line.
    pub const fn new(name: &'static str, len: usize) -> SubfieldSpec {
        SubfieldSpec {
            name: Cow::Borrowed(name),
            len,
            format: SubfieldFormat::Text(Charset::Ascii),
        }
    }
}

/// What one part of a structured field holds. Parts are typed when they are read
/// ([`crate::Dialect::subfield_values`]): a field's bytes are not refused for a malformed
/// part, whose value then reads as [`crate::SubValue::Malformed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubfieldFormat {
    /// Text: printable ASCII, or GBK / GB18030 bytes (then `len` counts bytes).
    Text(Charset),
    /// Raw bytes.
    Binary,
    /// The rest of the field is a list of tag-length-value items.
    Tlv(TlvSpec),
}

/// A tag-length-value list inside a private field: each item is a tag of `tag_len` bytes, a
/// length in `length` form, then that many bytes of value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvSpec {
    /// Tag width in bytes (1..=4).
    pub tag_len: usize,
    /// Whether the tag is printable text (`SM`) or shown as hex (`DF01`).
    pub tag_text: bool,
    /// How the value's length is written.
    pub length: TlvLength,
    /// What every value holds (text, GBK text or bytes; not nested lists).
    pub value: Box<SubfieldFormat>,
}

/// How a TLV item's length is written. Lengths count value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvLength {
    /// Unsigned big-endian binary of 1 or 2 bytes.
    Binary(usize),
    /// Packed BCD of 1 or 2 bytes (2 or 4 digits).
    Bcd(usize),
    /// ASCII digits (1..=4 characters).
    Ascii(usize),
}

impl TlvLength {
    /// Bytes the length takes on the wire.
    pub fn width(self) -> usize {
        match self {
            TlvLength::Binary(n) | TlvLength::Bcd(n) | TlvLength::Ascii(n) => n,
        }
    }

    /// The length written in `raw` (exactly [`TlvLength::width`] bytes); `None` if not a number.
    pub fn read(self, raw: &[u8]) -> Option<usize> {
        match self {
            TlvLength::Binary(_) => Some(raw.iter().fold(0, |a, &b| (a << 8) | usize::from(b))),
            TlvLength::Bcd(_) => raw.iter().try_fold(0usize, |a, &b| {
                let (hi, lo) = (b >> 4, b & 0x0F);
                (hi <= 9 && lo <= 9).then(|| a * 100 + usize::from(hi * 10 + lo))
            }),
            TlvLength::Ascii(_) => raw.iter().try_fold(0usize, |a, &b| {
                b.is_ascii_digit().then(|| a * 10 + usize::from(b - b'0'))
            }),
        }
    }

    /// Appends `n` in this form; `None` if it does not fit.
    pub fn write(self, n: usize, out: &mut Vec<u8>) -> Option<()> {
        match self {
            TlvLength::Binary(w) => {
                let bytes = n.to_be_bytes();
                let (high, low) = bytes.split_at(bytes.len().checked_sub(w)?);
                if high.iter().any(|&b| b != 0) {
                    return None;
                }
                out.extend_from_slice(low);
            }
            TlvLength::Bcd(w) => {
                let digits = format!("{n:0width$}", width = w * 2);
                if digits.len() != w * 2 {
                    return None;
                }
                let d = digits.as_bytes();
                out.extend(d.chunks(2).map(|p| ((p[0] - b'0') << 4) | (p[1] - b'0')));
            }
            TlvLength::Ascii(w) => {
                let digits = format!("{n:0w$}");
                if digits.len() != w {
                    return None;
                }
                out.extend_from_slice(digits.as_bytes());
            }
        }
        Some(())
    }
}

/// How the message type indicator is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtiEncoding {
    /// 2 bytes packed BCD.
    Bcd,
    /// 4 ASCII digits.
    Ascii,
}

/// How bitmaps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitmapEncoding {
    /// 8 raw bytes per bitmap.
    Binary,
    /// 16 upper-case hex characters per bitmap.
    HexAscii,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lengths() {
        let bcd = ValueEncoding::Bcd {
            pad: Pad::Left,
            filler: 0,
            checked: true,
        };
        assert_eq!(bcd.wire_len(3), 2);
        assert_eq!(bcd.wire_len(4), 2);
        assert_eq!(ValueEncoding::HexAscii.wire_len(8), 16);
        assert_eq!(ValueEncoding::Ascii.wire_len(5), 5);
    }

    #[test]
    fn notation_and_prefix_digits() {
        let f = FieldSpec::new(
            2,
            "PAN",
            FieldKind::N,
            LengthType::LlVar(19),
            PrefixEncoding::Bcd,
            ValueEncoding::Bcd {
                pad: Pad::Right,
                filler: 0,
                checked: true,
            },
        );
        assert_eq!(f.notation(), "n..19 LLVAR");
        assert_eq!(f.length.prefix_digits(), 2);
        assert_eq!(LengthType::Fixed(6).prefix_digits(), 0);
        assert_eq!(f.masked(Mask::Pan).mask, Mask::Pan);
    }
}
