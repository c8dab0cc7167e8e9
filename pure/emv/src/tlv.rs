//! BER-TLV as EMV uses it (EMV 4.4 Book 3 Annex B, a subset of ISO/IEC 8825-1 BER).
//!
//! What the parser accepts, and why:
//!
//! - **Tags** of 1 to 4 bytes ([`MAX_TAG_BYTES`]). A first byte whose low five bits are `11111`
//!   is followed by subsequent bytes while their bit 8 is set. A fifth byte is an error
//!   ([`InvalidReason::TagTooLong`]) rather than a silent truncation.
//! - **Lengths** in the short form (`00`..`7F`) and the definite long forms `81`, `82`, `83` and
//!   `84` (1 to 4 length bytes). The indefinite form `80` is not BER-TLV as EMV defines it and
//!   is rejected, as are `85`..`FF`. Non-minimal long forms (`81 05`) are accepted on input
//!   because some cards send them; [`Tlv::encode`] always writes the minimal form, so such input
//!   does not re-encode byte for byte.
//! - **Constructed** objects (bit 6 of the first tag byte) are parsed recursively. Nesting is
//!   bounded by [`Limits::max_depth`] (default 8, and never more than [`DEPTH_CAP`] so that the
//!   recursion cannot exhaust the stack) and the whole input by [`Limits::max_len`].
//! - **Padding**: Book 3 Annex B allows `00` bytes before, between and after objects (erased
//!   records); ISO/IEC 7816-4 §5.2.2 also treats `FF` as padding, which some cards write. With
//!   [`Limits::allow_padding`] (the default) both are skipped at every nesting level: before the
//!   first object, between objects and after the last one. A first tag byte of `00` or `FF`
//!   therefore cannot start a tag, and [`Tag::is_valid`] says so.
//!
//! "Not enough bytes yet" ([`TlvError::Incomplete`], only possible at the top level) is kept
//! apart from "these bytes are wrong" ([`TlvError::Invalid`]): a child that runs past the end of
//! its template will never be fixed by more input, so it is `Invalid`.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Longest tag the parser accepts, in bytes (EMV tags are at most 3 bytes; 4 leaves headroom).
pub const MAX_TAG_BYTES: usize = 4;
/// Default nesting limit: EMV responses nest at most 4 levels (6F/A5/BF0C/61).
pub const DEFAULT_MAX_DEPTH: usize = 8;
/// Hard cap on [`Limits::max_depth`]; larger settings are clamped to it (stack safety).
pub const DEPTH_CAP: usize = 32;
/// Default limit on the input length: an extended-length APDU response is at most 65 536 bytes.
pub const DEFAULT_MAX_LEN: usize = 65_536;

/// A BER-TLV tag: its bytes, big-endian, in a `u32` (`9F02` is `Tag(0x9F02)`).
///
/// Open newtype: any value is representable, so unknown and proprietary tags survive a
/// parse/encode round trip. Values whose bytes are not a well-formed tag (see
/// [`Tag::is_valid`]) can be built but will not parse back after encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

/// The class of a tag: bits 8 and 7 of its first byte (ISO/IEC 8825-1 §8.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagClass {
    /// `00xxxxxx`: universal (ASN.1 types).
    Universal,
    /// `01xxxxxx`: application class (EMV's `4F`, `5A`, `6F`, `70`, `77`, ...).
    Application,
    /// `10xxxxxx`: context-specific class (`82`, `94`, `9F26`, `A5`, `BF0C`, ...).
    ContextSpecific,
    /// `11xxxxxx`: private class (`DF8129`, ...).
    Private,
}

impl Tag {
    /// Number of bytes of the tag (1 to 4; `Tag(0)` counts as one byte).
    pub const fn byte_len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }

    /// The tag's bytes, most significant first.
    pub fn to_bytes(self) -> Vec<u8> {
        let all = self.0.to_be_bytes();
        all.get(4 - self.byte_len()..).unwrap_or(&all).to_vec()
    }

    /// First byte of the tag, which carries the class and the constructed bit.
    pub const fn first_byte(self) -> u8 {
        // byte_len is 1..=4, so the shift is 0..=24 and the result fits in a byte.
        (self.0 >> (8 * (self.byte_len() as u32 - 1))) as u8
    }

    /// Whether the tag denotes a constructed object (bit 6 of the first byte).
    pub const fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The tag's class.
    pub const fn class(self) -> TagClass {
        match self.first_byte() >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::ContextSpecific,
            _ => TagClass::Private,
        }
    }

    /// Whether the bytes form exactly one well-formed tag that the parser would read back:
    /// first byte not `00`/`FF` (padding), subsequent bytes present exactly when the low five
    /// bits of the first byte are `11111`, bit 8 set on every subsequent byte but the last.
    pub fn is_valid(self) -> bool {
        let bytes = self.to_bytes();
        matches!(read_tag(&bytes, 0), Ok((tag, 0, end)) if end == bytes.len() && tag == self)
            && !matches!(self.first_byte(), 0x00 | 0xFF)
    }

    /// Reads a tag that must fill `bytes` exactly (for example `[0x9F, 0x02]`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Tag, TlvError> {
        match bytes.first() {
            None => {
                return Err(TlvError::Incomplete {
                    offset: 0,
                    needed: 1,
                });
            }
            Some(0x00 | 0xFF) => {
                return Err(TlvError::Invalid {
                    offset: 0,
                    reason: InvalidReason::UnexpectedPadding,
                });
            }
            Some(_) => {}
        }
        let (tag, _, end) = read_tag(bytes, 0)?;
        if end != bytes.len() {
            return Err(TlvError::Invalid {
                offset: end,
                reason: InvalidReason::TrailingBytes,
            });
        }
        Ok(tag)
    }
}

impl fmt::Display for Tag {
    /// Upper-case hex of the tag bytes: `9F02`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&smartpos_types::hex::encode(&self.to_bytes()))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

impl FromStr for Tag {
    type Err = TlvError;

    /// Parses a tag from hex (`"9F02"`, either case); it must be one well-formed tag.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = smartpos_types::hex::decode(s).map_err(|_| TlvError::Invalid {
            offset: 0,
            reason: InvalidReason::BadHex,
        })?;
        Tag::from_bytes(&bytes)
    }
}

/// Why bytes are not valid BER-TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// A tag with more than [`MAX_TAG_BYTES`] bytes.
    #[error("tag longer than 4 bytes")]
    TagTooLong,
    /// The indefinite length form `80`, which EMV does not use.
    #[error("indefinite length (80) is not allowed")]
    IndefiniteLength,
    /// A long length form with more than 4 length bytes (`85`..`FF`).
    #[error("length form {first:#04X} is not supported")]
    LengthFormUnsupported {
        /// The first length byte.
        first: u8,
    },
    /// A child object runs past the end of its constructed parent.
    #[error("object runs past the end of its template")]
    OverrunsParent,
    /// A `00`/`FF` padding byte where a tag must start (in a DOL, or with padding disallowed).
    #[error("padding byte where a tag must start")]
    UnexpectedPadding,
    /// Bytes left over after a single tag (in [`Tag::from_bytes`]).
    #[error("bytes after the tag")]
    TrailingBytes,
    /// A textual tag that is not hex.
    #[error("tag is not hex")]
    BadHex,
}

/// A BER-TLV decoding error. Offsets are byte positions in the whole input. No variant carries
/// data bytes, so an error never leaks card data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ends inside the object starting at `offset`; at least `needed` more bytes are
    /// required. Only reported for top-level objects: a reader may wait for more bytes.
    #[error("incomplete TLV at offset {offset}: need {needed} more bytes")]
    Incomplete {
        /// Where the incomplete object starts.
        offset: usize,
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The bytes at `offset` are not valid BER-TLV.
    #[error("invalid TLV at offset {offset}: {reason}")]
    Invalid {
        /// Where the fault was found.
        offset: usize,
        /// What is wrong.
        reason: InvalidReason,
    },
    /// The object at `offset` is nested deeper than the limit.
    #[error("TLV at offset {offset} nested deeper than {max}")]
    DepthExceeded {
        /// Where the too-deep object starts.
        offset: usize,
        /// The depth limit in force.
        max: usize,
    },
    /// The input is longer than the configured limit.
    #[error("TLV input of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Input length.
        len: usize,
        /// The length limit in force.
        max: usize,
    },
}

/// Parser limits. Build with [`Limits::default`] and the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Deepest nesting level accepted; top-level objects are at level 1. Clamped to
    /// [`DEPTH_CAP`].
    pub max_depth: usize,
    /// Longest input accepted, in bytes.
    pub max_len: usize,
    /// Whether `00`/`FF` padding between objects is skipped (`true`) or rejected.
    pub allow_padding: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_len: DEFAULT_MAX_LEN,
            allow_padding: true,
        }
    }
}

impl Limits {
    /// Sets the nesting limit (clamped to [`DEPTH_CAP`]).
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth.min(DEPTH_CAP);
        self
    }

    /// Sets the input length limit.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Allows or rejects `00`/`FF` padding.
    pub fn with_padding(mut self, allow: bool) -> Self {
        self.allow_padding = allow;
        self
    }
}

/// The value of a TLV: raw bytes, or child objects for a constructed tag.
#[derive(Clone, PartialEq, Eq)]
pub enum TlvValue {
    /// The bytes of a primitive object.
    Primitive(Vec<u8>),
    /// The children of a constructed object, in order.
    Constructed(Vec<Tlv>),
}

impl fmt::Debug for TlvValue {
    /// Shows only the length of primitive bytes: without its tag a value cannot tell whether it
    /// is card data. [`Tlv`]'s `Debug` shows non-sensitive values in full.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvValue::Primitive(v) => write!(f, "Primitive(<{} bytes>)", v.len()),
            TlvValue::Constructed(children) => {
                f.debug_tuple("Constructed").field(children).finish()
            }
        }
    }
}

/// One BER-TLV data object.
///
/// `Debug` and `Display` mask sensitive tags (see [`crate::tags::TagInfo::sensitive`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The tag.
    pub tag: Tag,
    /// The value.
    pub value: TlvValue,
}

impl Tlv {
    /// A primitive object.
    pub fn primitive(tag: Tag, value: impl Into<Vec<u8>>) -> Self {
        Tlv {
            tag,
            value: TlvValue::Primitive(value.into()),
        }
    }

    /// A constructed object.
    pub fn constructed(tag: Tag, children: Vec<Tlv>) -> Self {
        Tlv {
            tag,
            value: TlvValue::Constructed(children),
        }
    }

    /// The bytes of a primitive object; `None` for a constructed one.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.value {
            TlvValue::Primitive(v) => Some(v),
            TlvValue::Constructed(_) => None,
        }
    }

    /// The children of a constructed object; empty for a primitive one.
    pub fn children(&self) -> &[Tlv] {
        match &self.value {
            TlvValue::Primitive(_) => &[],
            TlvValue::Constructed(c) => c,
        }
    }

    /// Length of the value field once encoded.
    pub fn value_len(&self) -> usize {
        match &self.value {
            TlvValue::Primitive(v) => v.len(),
            TlvValue::Constructed(c) => c.iter().map(Tlv::encoded_len).sum(),
        }
    }

    /// Length of the whole object once encoded (tag, length and value).
    pub fn encoded_len(&self) -> usize {
        let value_len = self.value_len();
        self.tag.byte_len() + length_field_len(value_len) + value_len
    }

    /// Encodes the object with minimal length fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded object to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_bytes());
        write_length(out, self.value_len());
        match &self.value {
            TlvValue::Primitive(v) => out.extend_from_slice(v),
            TlvValue::Constructed(children) => {
                for child in children {
                    child.encode_into(out);
                }
            }
        }
    }

    /// The first object with `tag`, depth first, starting with `self`.
    pub fn find(&self, tag: Tag) -> Option<&Tlv> {
        if self.tag == tag {
            return Some(self);
        }
        find(self.children(), tag)
    }

    /// Every primitive object under `self` (or `self` if primitive), depth first.
    pub fn primitives(&self) -> Primitives<'_> {
        Primitives::new(std::slice::from_ref(self))
    }
}

impl fmt::Debug for Tlv {
    /// `Tlv { tag: 84, value: A0000000031010 }`; sensitive values masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Raw(String);
        impl fmt::Debug for Raw {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        let mut s = f.debug_struct("Tlv");
        s.field("tag", &Raw(self.tag.to_string()));
        match &self.value {
            TlvValue::Primitive(v) => {
                let shown = crate::dump::render_value(self.tag, v, crate::dump::Masking::Masked);
                s.field("value", &Raw(shown));
            }
            TlvValue::Constructed(c) => {
                s.field("children", c);
            }
        }
        s.finish()
    }
}

impl fmt::Display for Tlv {
    /// An indented tree with names, sensitive values masked (see [`crate::dump`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::dump::dump(std::slice::from_ref(self)), f)
    }
}

/// Encodes a sequence of objects back to back.
pub fn encode_all(tlvs: &[Tlv]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlvs.iter().map(Tlv::encoded_len).sum());
    for t in tlvs {
        t.encode_into(&mut out);
    }
    out
}

/// The first object with `tag` in `tlvs`, depth first (pre-order).
pub fn find(tlvs: &[Tlv], tag: Tag) -> Option<&Tlv> {
    tlvs.iter().find_map(|t| t.find(tag))
}

/// The bytes of the first primitive object with `tag` in `tlvs`, depth first.
pub fn find_bytes(tlvs: &[Tlv], tag: Tag) -> Option<&[u8]> {
    Primitives::new(tlvs)
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v)
}

/// Depth-first (pre-order) iterator over the primitive objects of a tree, as `(tag, value)`.
#[derive(Debug, Clone)]
pub struct Primitives<'a> {
    stack: Vec<std::slice::Iter<'a, Tlv>>,
}

impl<'a> Primitives<'a> {
    /// Iterates the primitives of `tlvs` and all their descendants.
    pub fn new(tlvs: &'a [Tlv]) -> Self {
        Primitives {
            stack: vec![tlvs.iter()],
        }
    }
}

impl<'a> Iterator for Primitives<'a> {
    type Item = (Tag, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                None => {
                    self.stack.pop();
                }
                Some(t) => match &t.value {
                    TlvValue::Primitive(v) => return Some((t.tag, v)),
                    TlvValue::Constructed(c) => self.stack.push(c.iter()),
                },
            }
        }
    }
}

/// Parses a sequence of objects with the default [`Limits`].
pub fn parse(bytes: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    parse_with(bytes, Limits::default())
}

/// Parses a sequence of objects (with padding between them, if allowed) filling `bytes`.
pub fn parse_with(bytes: &[u8], limits: Limits) -> Result<Vec<Tlv>, TlvError> {
    let p = Parser::new(bytes, limits)?;
    p.seq(0, bytes.len(), 1, false)
}

/// Parses the first object of `bytes` (after any leading padding) with the default
/// [`Limits`]; returns it and the number of bytes consumed (padding included).
pub fn parse_one(bytes: &[u8]) -> Result<(Tlv, usize), TlvError> {
    parse_one_with(bytes, Limits::default())
}

/// Like [`parse_one`] with explicit limits. Input holding only padding is `Incomplete`.
pub fn parse_one_with(bytes: &[u8], limits: Limits) -> Result<(Tlv, usize), TlvError> {
    let p = Parser::new(bytes, limits)?;
    let start = p.skip_padding(0, bytes.len());
    if start >= bytes.len() {
        return Err(TlvError::Incomplete {
            offset: start,
            needed: 1,
        });
    }
    p.object(start, bytes.len(), 1, false)
}

/// Reads one tag at `pos`; returns the tag, its first byte position and the position after it.
/// Errors are `Incomplete` relative to `bytes.len()`; callers turn them into `OverrunsParent`
/// when `bytes` is a template's content.
pub(crate) fn read_tag(bytes: &[u8], pos: usize) -> Result<(Tag, usize, usize), TlvError> {
    let first = *bytes.get(pos).ok_or(TlvError::Incomplete {
        offset: pos,
        needed: 1,
    })?;
    let mut value = u32::from(first);
    let mut next = pos + 1;
    if first & 0x1F == 0x1F {
        loop {
            if next - pos >= MAX_TAG_BYTES {
                return Err(TlvError::Invalid {
                    offset: pos,
                    reason: InvalidReason::TagTooLong,
                });
            }
            let b = *bytes.get(next).ok_or(TlvError::Incomplete {
                offset: pos,
                needed: 1,
            })?;
            value = (value << 8) | u32::from(b);
            next += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((Tag(value), pos, next))
}

/// Reads a definite length at `pos`; returns it and the position after the length field.
fn read_length(bytes: &[u8], pos: usize, obj: usize) -> Result<(usize, usize), TlvError> {
    let first = *bytes.get(pos).ok_or(TlvError::Incomplete {
        offset: obj,
        needed: 1,
    })?;
    if first < 0x80 {
        return Ok((usize::from(first), pos + 1));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 {
        return Err(TlvError::Invalid {
            offset: pos,
            reason: InvalidReason::IndefiniteLength,
        });
    }
    if n > 4 {
        return Err(TlvError::Invalid {
            offset: pos,
            reason: InvalidReason::LengthFormUnsupported { first },
        });
    }
    let start = pos + 1;
    let field = bytes
        .get(start..start + n)
        .ok_or_else(|| TlvError::Incomplete {
            offset: obj,
            needed: (start + n).saturating_sub(bytes.len()),
        })?;
    let len = field.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    // Up to 4 bytes always fit in u64; on 16/32-bit targets saturate (the bounds check rejects).
    Ok((usize::try_from(len).unwrap_or(usize::MAX), start + n))
}

fn length_field_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Checked above: fits in 7 bits.
        out.push(len as u8);
        return;
    }
    let n = length_field_len(len) - 1;
    let be = len.to_be_bytes();
    out.push(0x80 | n as u8);
    out.extend_from_slice(be.get(be.len() - n..).unwrap_or(&be));
}

struct Parser<'a> {
    buf: &'a [u8],
    limits: Limits,
}

impl<'a> Parser<'a> {
    fn new(buf: &'a [u8], limits: Limits) -> Result<Self, TlvError> {
        if buf.len() > limits.max_len {
            return Err(TlvError::TooLong {
                len: buf.len(),
                max: limits.max_len,
            });
        }
        let limits = limits.with_max_depth(limits.max_depth);
        Ok(Parser { buf, limits })
    }

    fn skip_padding(&self, mut pos: usize, end: usize) -> usize {
        if self.limits.allow_padding {
            while pos < end && matches!(self.buf.get(pos), Some(0x00 | 0xFF)) {
                pos += 1;
            }
        }
        pos
    }

    /// Objects filling `[start, end)` at nesting level `depth`.
    fn seq(
        &self,
        start: usize,
        end: usize,
        depth: usize,
        nested: bool,
    ) -> Result<Vec<Tlv>, TlvError> {
        let mut out = Vec::new();
        let mut pos = start;
        loop {
            pos = self.skip_padding(pos, end);
            if pos >= end {
                return Ok(out);
            }
            let (tlv, next) = self.object(pos, end, depth, nested)?;
            out.push(tlv);
            pos = next;
        }
    }

    /// One object at `pos`, which must end by `end`.
    fn object(
        &self,
        pos: usize,
        end: usize,
        depth: usize,
        nested: bool,
    ) -> Result<(Tlv, usize), TlvError> {
        if depth > self.limits.max_depth {
            return Err(TlvError::DepthExceeded {
                offset: pos,
                max: self.limits.max_depth,
            });
        }
        let window = self.buf.get(..end).unwrap_or(self.buf);
        let overrun = |e: TlvError| match e {
            TlvError::Incomplete { .. } if nested => TlvError::Invalid {
                offset: pos,
                reason: InvalidReason::OverrunsParent,
            },
            other => other,
        };
        if matches!(window.get(pos), Some(0x00 | 0xFF)) {
            return Err(TlvError::Invalid {
                offset: pos,
                reason: InvalidReason::UnexpectedPadding,
            });
        }
        let (tag, _, after_tag) = read_tag(window, pos).map_err(overrun)?;
        let (len, value_start) = read_length(window, after_tag, pos).map_err(overrun)?;
        let value_end = match value_start.checked_add(len) {
            Some(e) if e <= end => e,
            _ => {
                return Err(overrun(TlvError::Incomplete {
                    offset: pos,
                    needed: len.saturating_sub(end - value_start),
                }));
            }
        };
        let value = if tag.is_constructed() {
            TlvValue::Constructed(self.seq(value_start, value_end, depth + 1, true)?)
        } else {
            let bytes = self
                .buf
                .get(value_start..value_end)
                .ok_or(TlvError::Incomplete {
                    offset: pos,
                    needed: len,
                })?;
            TlvValue::Primitive(bytes.to_vec())
        };
        Ok((Tlv { tag, value }, value_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::decode;

    fn h(s: &str) -> Vec<u8> {
        decode(s).unwrap()
    }

    #[test]
    fn tag_properties() {
        assert_eq!(Tag(0x9F02).to_string(), "9F02");
        assert_eq!(Tag(0x5A).to_string(), "5A");
        assert_eq!(Tag(0xDF8129).to_bytes(), vec![0xDF, 0x81, 0x29]);
        assert!(Tag(0x6F).is_constructed());
        assert!(Tag(0xBF0C).is_constructed());
        assert!(!Tag(0x9F02).is_constructed());
        assert_eq!(Tag(0x6F).class(), TagClass::Application);
        assert_eq!(Tag(0x9F02).class(), TagClass::ContextSpecific);
        assert_eq!(Tag(0xDF8129).class(), TagClass::Private);
        assert_eq!(Tag(0x02).class(), TagClass::Universal);
        assert_eq!("9f02".parse::<Tag>(), Ok(Tag(0x9F02)));
        assert_eq!(format!("{:?}", Tag(0x84)), "Tag(84)");
    }

    #[test]
    fn tag_validity() {
        for ok in [0x5A, 0x9F02, 0xDF8129, 0xBF0C, 0xDF818101] {
            assert!(Tag(ok).is_valid(), "{ok:X}");
        }
        // 9F alone needs a subsequent byte; 5A01 has one it must not have; 9F8102 is cut short
        // after a byte with bit 8 set; 00 and FF are padding.
        for bad in [0x9F, 0x5A01, 0x9F81, 0x00, 0xFF, 0xFF01, 0xDF818181] {
            assert!(!Tag(bad).is_valid(), "{bad:X}");
        }
        assert_eq!(
            Tag::from_bytes(&[0x9F, 0x02, 0x01]),
            Err(TlvError::Invalid {
                offset: 2,
                reason: InvalidReason::TrailingBytes
            })
        );
        assert!("9G".parse::<Tag>().is_err());
    }

    #[test]
    fn parses_multi_byte_tags_and_rejects_five() {
        let t = parse(&h("DF81290100")).unwrap();
        assert_eq!(t, vec![Tlv::primitive(Tag(0xDF8129), vec![0x00])]);
        assert_eq!(
            parse(&h("DF8181810100")),
            Err(TlvError::Invalid {
                offset: 0,
                reason: InvalidReason::TagTooLong
            })
        );
        assert_eq!(
            parse(&h("9F")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 1
            })
        );
    }

    #[test]
    fn length_forms() {
        let long = vec![0xAB; 200];
        let mut enc = h("5081C8");
        enc.extend_from_slice(&long);
        assert_eq!(
            parse(&enc).unwrap(),
            vec![Tlv::primitive(Tag(0x50), long.clone())]
        );
        assert_eq!(Tlv::primitive(Tag(0x50), long).encode(), enc);

        let mut enc = h("50820100");
        enc.extend_from_slice(&[1; 256]);
        assert_eq!(parse(&enc).unwrap()[0].value_len(), 256);

        // Non-minimal forms are read; 83 and 84 too.
        assert_eq!(
            parse(&h("5081020102")).unwrap()[0].bytes(),
            Some(&[1u8, 2][..])
        );
        assert_eq!(
            parse(&h("5083000001AA")).unwrap()[0].bytes(),
            Some(&[0xAAu8][..])
        );
        assert_eq!(
            parse(&h("508400000001AA")).unwrap()[0].bytes(),
            Some(&[0xAAu8][..])
        );

        assert_eq!(
            parse(&h("508001")),
            Err(TlvError::Invalid {
                offset: 1,
                reason: InvalidReason::IndefiniteLength
            })
        );
        assert_eq!(
            parse(&h("50850000000001AA")),
            Err(TlvError::Invalid {
                offset: 1,
                reason: InvalidReason::LengthFormUnsupported { first: 0x85 }
            })
        );
    }

    #[test]
    fn incomplete_reports_start_and_missing_bytes() {
        assert_eq!(
            parse(&h("9F0206000000")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 3
            })
        );
        assert_eq!(
            parse(&h("5A0112508201")),
            Err(TlvError::Incomplete {
                offset: 3,
                needed: 1
            })
        );
        assert_eq!(
            parse(&h("5082")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 2
            })
        );
        assert_eq!(
            parse(&h("50")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 1
            })
        );
        // A huge declared length does not allocate or overflow.
        assert_eq!(
            parse(&h("5084FFFFFFFF00")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 0xFFFF_FFFF - 1
            })
        );
    }

    #[test]
    fn child_past_its_template_is_invalid_not_incomplete() {
        // 6F says 3 bytes, its child 84 says 5.
        assert_eq!(
            parse(&h("6F038405A0000000031010")),
            Err(TlvError::Invalid {
                offset: 2,
                reason: InvalidReason::OverrunsParent
            })
        );
    }

    #[test]
    fn padding_is_skipped_everywhere_or_rejected() {
        let bytes = h("00FF6F0600840200FF00FF00");
        let t = parse(&bytes).unwrap();
        assert_eq!(
            t,
            vec![Tlv::constructed(
                Tag(0x6F),
                vec![Tlv::primitive(Tag(0x84), vec![0x00, 0xFF])]
            )]
        );
        assert_eq!(parse(&h("0000")).unwrap(), vec![]);
        assert_eq!(
            parse_with(&bytes, Limits::default().with_padding(false)),
            Err(TlvError::Invalid {
                offset: 0,
                reason: InvalidReason::UnexpectedPadding
            })
        );
        let (one, used) = parse_one(&h("0000500141500142")).unwrap();
        assert_eq!((one.tag, used), (Tag(0x50), 5));
        assert_eq!(
            parse_one(&h("0000")),
            Err(TlvError::Incomplete {
                offset: 2,
                needed: 1
            })
        );
    }

    #[test]
    fn depth_limit() {
        // E1 { E1 { E1 { 50 00 } } } is 4 levels deep.
        let bytes = h("E106E104E1025000");
        assert!(parse_with(&bytes, Limits::default().with_max_depth(4)).is_ok());
        assert_eq!(
            parse_with(&bytes, Limits::default().with_max_depth(3)),
            Err(TlvError::DepthExceeded { offset: 6, max: 3 })
        );
        assert_eq!(Limits::default().with_max_depth(1000).max_depth, DEPTH_CAP);
    }

    #[test]
    fn length_limit() {
        assert_eq!(
            parse_with(&[0; 11], Limits::default().with_max_len(10)),
            Err(TlvError::TooLong { len: 11, max: 10 })
        );
    }

    #[test]
    fn find_and_flatten() {
        let tree = parse(&h("6F0E8407A0000000031010A5035001415F2D02656E")).unwrap();
        assert_eq!(find(&tree, Tag(0x50)).and_then(Tlv::bytes), Some(&b"A"[..]));
        assert_eq!(find_bytes(&tree, Tag(0x5F2D)), Some(&b"en"[..]));
        assert!(find(&tree, Tag(0x9F02)).is_none());
        let tags: Vec<Tag> = Primitives::new(&tree).map(|(t, _)| t).collect();
        assert_eq!(tags, vec![Tag(0x84), Tag(0x50), Tag(0x5F2D)]);
        assert_eq!(tree[0].primitives().count(), 2);
        assert_eq!(
            encode_all(&tree),
            h("6F0E8407A0000000031010A5035001415F2D02656E")
        );
    }

    #[test]
    fn length_encoding_is_minimal() {
        for (len, field) in [
            (0usize, "00"),
            (127, "7F"),
            (128, "8180"),
            (255, "81FF"),
            (256, "820100"),
            (65_535, "82FFFF"),
            (65_536, "83010000"),
        ] {
            let mut out = Vec::new();
            write_length(&mut out, len);
            assert_eq!(out, h(field), "{len}");
            assert_eq!(length_field_len(len), out.len());
        }
    }

    #[test]
    fn debug_masks_pan() {
        let t = Tlv::primitive(Tag(0x5A), h("5413330089010434"));
        let shown = format!("{t:?}");
        assert!(shown.contains("541333******0434"), "{shown}");
        assert!(!shown.contains("5413330089010434"));
        assert_eq!(
            format!("{:?}", TlvValue::Primitive(vec![1, 2])),
            "Primitive(<2 bytes>)"
        );
    }
}
