//! Field-level encoding and decoding: one function pair driven entirely by a [`FieldSpec`].
//!
//! Every read is bounds-checked; hostile input yields [`DecodeError`], never a panic.

use crate::error::{DecodeError, EncodeError, InvalidReason};
use crate::spec::{Charset, FieldKind, FieldSpec, LengthType, Pad, PrefixEncoding, ValueEncoding};
use smartpos_types::gb18030::{self, GbCharset};
use smartpos_types::hex;
use std::borrow::Cow;

/// Whether `b` belongs to the character class `kind` at `position` of a value.
pub(crate) fn char_ok(kind: FieldKind, position: usize, b: u8) -> bool {
    match kind {
        FieldKind::N => b.is_ascii_digit(),
        FieldKind::An => b.is_ascii_alphanumeric() || b == b' ',
        FieldKind::Ans => (0x20..=0x7e).contains(&b),
        FieldKind::Ns => (0x20..=0x7e).contains(&b) && !b.is_ascii_alphabetic(),
        FieldKind::Xn if position == 0 => b == b'C' || b == b'D',
        FieldKind::Xn => b.is_ascii_digit(),
        // Hex digits A-F besides D: track data encrypted under the TDK (UnionPay "磁道加密")
        // keeps the field's nibble layout with any nibble value.
        FieldKind::Z => b.is_ascii_digit() || matches!(b, b'A'..=b'F' | b'='),
        FieldKind::B => true,
    }
}

/// First byte of `value` outside the class. With a GBK/GB18030 charset the value is UTF-8 text
/// and non-ASCII characters are allowed: the class applies to the ASCII characters only.
#[inline]
fn first_bad_char(kind: FieldKind, charset: Charset, value: &[u8]) -> Option<usize> {
    if charset != Charset::Ascii {
        return value
            .iter()
            .enumerate()
            .position(|(i, &b)| !(char_ok(kind, i, b) || b >= 0x80));
    }
    // One loop per class, so the class is not matched again for every byte; valid values (the
    // usual case) are checked without a branch per byte, the position searched only if not.
    fn find(value: &[u8], ok: impl Fn(u8) -> bool + Copy) -> Option<usize> {
        if value.iter().fold(true, |all, &b| all & ok(b)) {
            None
        } else {
            value.iter().position(|&b| !ok(b))
        }
    }
    match kind {
        FieldKind::N => find(value, |b| b.is_ascii_digit()),
        FieldKind::Ans => find(value, |b| (0x20..=0x7e).contains(&b)),
        FieldKind::An => find(value, |b| b.is_ascii_alphanumeric() || b == b' '),
        FieldKind::B => None,
        _ => value
            .iter()
            .enumerate()
            .position(|(i, &b)| !char_ok(kind, i, b)),
    }
}

fn encoding_of(charset: Charset) -> Option<GbCharset> {
    match charset {
        Charset::Ascii => None,
        Charset::Gbk => Some(GbCharset::Gbk),
        Charset::Gb18030 => Some(GbCharset::Gb18030),
    }
}

/// The wire bytes of a charset field's UTF-8 logical value; `Err(position)` (a byte index in
/// the UTF-8 value) for invalid UTF-8 or a character the charset cannot represent.
fn to_charset(enc: GbCharset, value: &[u8]) -> Result<Vec<u8>, usize> {
    let text = std::str::from_utf8(value).map_err(|e| e.valid_up_to())?;
    gb18030::encode(enc, text)
}

/// The UTF-8 text of a charset field's wire bytes; `None` if they are not valid in the charset
/// or would not re-encode to the same bytes (so decode → encode is always byte-exact).
fn from_charset(enc: GbCharset, wire: &[u8]) -> Option<Vec<u8>> {
    let text = gb18030::decode(enc, wire)?;
    let again = gb18030::encode(enc, &text).ok()?;
    (again == wire).then(|| text.into_bytes())
}

/// Appends the wire form of one field (prefix + value).
#[inline]
pub(crate) fn encode_field(
    spec: &FieldSpec,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let field = spec.number;
    if let Some(position) = first_bad_char(spec.kind, spec.charset, value) {
        return Err(EncodeError::BadCharacter { field, position });
    }
    let value: Cow<'_, [u8]> = match encoding_of(spec.charset) {
        Some(enc) if spec.is_text() => Cow::Owned(
            to_charset(enc, value)
                .map_err(|position| EncodeError::BadCharacter { field, position })?,
        ),
        _ => Cow::Borrowed(value),
    };
    let value = value.as_ref();
    let got = value.len();
    match spec.length {
        LengthType::Fixed(expected) if got != expected => {
            return Err(EncodeError::WrongLength {
                field,
                expected,
                got,
            });
        }
        LengthType::LlVar(max) | LengthType::LllVar(max) if got > max => {
            return Err(EncodeError::FieldTooLong { field, max, got });
        }
        _ => {}
    }
    let digits = spec.length.prefix_digits();
    if digits > 0 {
        let count = match spec.encoding {
            ValueEncoding::HexAscii => got * 2,
            _ => got,
        };
        write_prefix(spec.prefix, digits, count, out).ok_or(EncodeError::FieldTooLong {
            field,
            max: spec.length.max(),
            got,
        })?;
    }
    match spec.encoding {
        ValueEncoding::Ascii | ValueEncoding::Binary => out.extend_from_slice(value),
        ValueEncoding::HexAscii => out.extend_from_slice(hex::encode(value).as_bytes()),
        ValueEncoding::Bcd { pad, filler, .. } => {
            // x+n: the sign stays one ASCII character, the digits after it are packed.
            let digits = match (spec.kind, value.split_first()) {
                (FieldKind::Xn, Some((&sign, rest))) => {
                    out.push(sign);
                    rest
                }
                _ => value,
            };
            pack_bcd(digits, pad, filler, out);
        }
    }
    Ok(())
}

/// Packs digits (and `D`/`=` as nibble D) two per byte, the filler nibble on the `pad` side of
/// an odd count.
fn pack_bcd(digits: &[u8], pad: Pad, filler: u8, out: &mut Vec<u8>) {
    let nibble = |c: u8| match c {
        b'D' | b'=' => 0xD,
        h @ b'A'..=b'F' => h - b'A' + 10,
        d => d.wrapping_sub(b'0') & 0x0F,
    };
    let filler = filler & 0x0F;
    let mut body = digits;
    if digits.len() % 2 == 1
        && pad == Pad::Left
        && let Some((&first, rest)) = digits.split_first()
    {
        out.push((filler << 4) | nibble(first));
        body = rest;
    }
    // Room reserved once; then the pairs, and a lone last digit with the filler after it.
    out.reserve(body.len().div_ceil(2));
    let pairs = body.chunks_exact(2);
    let rest = pairs.remainder();
    for p in pairs {
        if let [hi, lo] = *p {
            out.push((nibble(hi) << 4) | nibble(lo));
        }
    }
    if let [last] = rest {
        out.push((nibble(*last) << 4) | filler);
    }
}

/// Writes a length prefix; `None` if `count` does not fit.
fn write_prefix(enc: PrefixEncoding, digits: usize, count: usize, out: &mut Vec<u8>) -> Option<()> {
    let limit = if digits == 2 { 99 } else { 999 };
    match enc {
        PrefixEncoding::Ascii => {
            if count > limit {
                return None;
            }
            if digits == 3 {
                out.push(b'0' + u8::try_from(count / 100).ok()?);
            }
            out.push(b'0' + u8::try_from(count / 10 % 10).ok()?);
            out.push(b'0' + u8::try_from(count % 10).ok()?);
        }
        PrefixEncoding::Bcd => {
            if count > limit {
                return None;
            }
            if digits == 3 {
                out.push(u8::try_from(count / 100).ok()?);
            }
            let low = count % 100;
            out.push(u8::try_from(((low / 10) << 4) | (low % 10)).ok()?);
        }
        PrefixEncoding::Binary => {
            if digits == 2 {
                out.push(u8::try_from(count).ok()?);
            } else {
                out.extend_from_slice(&u16::try_from(count).ok()?.to_be_bytes());
            }
        }
    }
    Some(())
}

/// Bytes taken by a length prefix.
pub(crate) fn prefix_width(enc: PrefixEncoding, digits: usize) -> usize {
    match (enc, digits) {
        (_, 0) => 0,
        (PrefixEncoding::Ascii, d) => d,
        (PrefixEncoding::Bcd | PrefixEncoding::Binary, 2) => 1,
        (PrefixEncoding::Bcd | PrefixEncoding::Binary, _) => 2,
    }
}

fn bcd_digit(n: u8) -> Option<usize> {
    (n <= 9).then_some(usize::from(n))
}

fn read_prefix(enc: PrefixEncoding, raw: &[u8]) -> Option<usize> {
    match enc {
        PrefixEncoding::Ascii => raw.iter().try_fold(0usize, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + usize::from(b - b'0'))
        }),
        PrefixEncoding::Bcd => raw.iter().try_fold(0usize, |acc, &b| {
            Some(acc * 100 + bcd_digit(b >> 4)? * 10 + bcd_digit(b & 0x0F)?)
        }),
        PrefixEncoding::Binary => Some(
            raw.iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
        ),
    }
}

/// Where one field's value lies in a message, found by [`locate_field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    /// Offset of the value's first wire byte (after the length prefix).
    pub value_at: usize,
    /// Logical length: digits, characters or bytes as the prefix counts them.
    pub len: usize,
    /// Offset just past the value.
    pub end: usize,
}

/// Reads a field's length prefix (if any) at `input[at..]` and checks that the value is all
/// there. `at` is an absolute offset so that errors point into the whole message. No
/// allocation.
#[inline]
pub(crate) fn locate_field(
    spec: &FieldSpec,
    input: &[u8],
    at: usize,
) -> Result<Located, DecodeError> {
    let field = Some(spec.number);
    let take = |from: usize, n: usize| -> Result<&[u8], DecodeError> {
        let end = from.saturating_add(n);
        input.get(from..end).ok_or(DecodeError::Incomplete {
            field,
            needed: end.saturating_sub(input.len().max(from)),
        })
    };
    let (len, value_at) = match spec.length {
        LengthType::Fixed(n) => (n, at),
        LengthType::LlVar(max) | LengthType::LllVar(max) => {
            let width = prefix_width(spec.prefix, spec.length.prefix_digits());
            let invalid = |reason| DecodeError::Invalid {
                field,
                offset: at,
                reason,
            };
            let count = read_prefix(spec.prefix, take(at, width)?)
                .ok_or(invalid(InvalidReason::BadLengthPrefix))?;
            let len = if spec.encoding == ValueEncoding::HexAscii {
                if count % 2 == 1 {
                    return Err(invalid(InvalidReason::OddHexLength));
                }
                count / 2
            } else {
                count
            };
            if len > max {
                return Err(invalid(InvalidReason::TooLong { max, got: len }));
            }
            (len, at + width)
        }
    };
    let wire = take(value_at, spec.wire_len(len))?;
    Ok(Located {
        value_at,
        len,
        end: value_at + wire.len(),
    })
}

/// Checks a located value's wire bytes against the field's class, encoding and charset,
/// without building the logical value (GBK/GB18030 fields excepted: they are decoded to be
/// checked).
#[inline]
pub(crate) fn check_field(spec: &FieldSpec, input: &[u8], loc: Located) -> Result<(), DecodeError> {
    let invalid = |offset: usize, reason| DecodeError::Invalid {
        field: Some(spec.number),
        offset,
        reason,
    };
    let wire = input.get(loc.value_at..loc.end).unwrap_or_default();
    match spec.encoding {
        ValueEncoding::Ascii if spec.is_text() && spec.charset != Charset::Ascii => {
            let text = encoding_of(spec.charset).and_then(|enc| from_charset(enc, wire));
            match text {
                Some(t) if first_bad_char(spec.kind, spec.charset, &t).is_none() => Ok(()),
                _ => Err(invalid(loc.value_at, InvalidReason::BadCharacter)),
            }
        }
        ValueEncoding::Ascii | ValueEncoding::Binary => {
            match first_bad_char(spec.kind, spec.charset, wire) {
                Some(i) => Err(invalid(loc.value_at + i, InvalidReason::BadCharacter)),
                None => Ok(()),
            }
        }
        ValueEncoding::HexAscii => match wire.iter().all(u8::is_ascii_hexdigit) {
            true => Ok(()),
            false => Err(invalid(loc.value_at, InvalidReason::BadCharacter)),
        },
        ValueEncoding::Bcd {
            pad,
            filler,
            checked,
        } => {
            let (digits_at, digits, count) = bcd_part(spec, wire, loc);
            if count < loc.len && !wire.first().is_some_and(|&b| char_ok(FieldKind::Xn, 0, b)) {
                return Err(invalid(loc.value_at, InvalidReason::BadCharacter));
            }
            let separator = spec.kind == FieldKind::Z;
            // z (track data): D is the separator and, encrypted under the TDK, any nibble.
            let digit = |n: u8| n <= 9 || separator;
            let odd = count % 2 == 1;
            let filler = filler & 0x0F;
            let last = digits.len().saturating_sub(1);
            // The usual case first, without a branch per byte: every nibble a decimal digit
            // but the filler (whose value matters only when checked); the loop below finds
            // what is wrong otherwise.
            if !separator {
                let mut all = true;
                for (i, &b) in digits.iter().enumerate() {
                    let hi_free = odd && pad == Pad::Left && i == 0;
                    let lo_free = odd && pad == Pad::Right && i == last;
                    all &= (hi_free || b < 0xA0) & (lo_free || b & 0x0F < 0x0A);
                }
                let pad_ok = !checked
                    || !odd
                    || match pad {
                        Pad::Left => digits.first().is_some_and(|b| b >> 4 == filler),
                        Pad::Right => digits.last().is_some_and(|b| b & 0x0F == filler),
                    };
                if all && pad_ok {
                    return Ok(());
                }
            }
            for (i, &b) in digits.iter().enumerate() {
                let (hi, lo) = (b >> 4, b & 0x0F);
                let byte_at = digits_at + i;
                // The filler nibble: the first of an odd right-aligned value, the last of an
                // odd left-aligned one.
                let hi_pad = odd && pad == Pad::Left && i == 0;
                let lo_pad = odd && pad == Pad::Right && i == last;
                if hi_pad {
                    if checked && hi != filler {
                        return Err(invalid(byte_at, InvalidReason::BadPadding));
                    }
                } else if !digit(hi) {
                    return Err(invalid(byte_at, InvalidReason::BadCharacter));
                }
                if lo_pad {
                    if checked && lo != filler {
                        return Err(invalid(byte_at, InvalidReason::BadPadding));
                    }
                } else if !digit(lo) {
                    return Err(invalid(byte_at, InvalidReason::BadCharacter));
                }
            }
            Ok(())
        }
    }
}

/// The packed digits of a BCD value: their offset, their bytes and their count (an `x+n`
/// value's sign character comes first and is not packed).
#[inline]
fn bcd_part<'a>(spec: &FieldSpec, wire: &'a [u8], loc: Located) -> (usize, &'a [u8], usize) {
    if spec.kind == FieldKind::Xn && loc.len > 0 {
        (
            loc.value_at + 1,
            wire.get(1..).unwrap_or_default(),
            loc.len - 1,
        )
    } else {
        (loc.value_at, wire, loc.len)
    }
}

/// Appends the logical value of a located and checked field to `out`: text as UTF-8, digits
/// as ASCII, `b` as raw bytes.
pub(crate) fn write_logical(spec: &FieldSpec, input: &[u8], loc: Located, out: &mut Vec<u8>) {
    let wire = input.get(loc.value_at..loc.end).unwrap_or_default();
    match spec.encoding {
        ValueEncoding::Ascii if spec.is_text() && spec.charset != Charset::Ascii => {
            if let Some(t) = encoding_of(spec.charset).and_then(|enc| gb18030::decode(enc, wire)) {
                out.extend_from_slice(t.as_bytes());
            }
        }
        ValueEncoding::Ascii | ValueEncoding::Binary => out.extend_from_slice(wire),
        ValueEncoding::HexAscii => {
            out.extend(
                wire.chunks_exact(2)
                    .map(|p| (hex_val(p[0]) << 4) | hex_val(p[1])),
            );
        }
        ValueEncoding::Bcd { pad, .. } => {
            let (_, digits, count) = bcd_part(spec, wire, loc);
            if count < loc.len {
                out.extend_from_slice(wire.get(..1).unwrap_or_default());
            }
            unpack_bcd(digits, count, pad, out);
        }
    }
}

/// Appends `count` digits of packed BCD as ASCII (nibbles A-F as upper-case hex: D is the
/// track separator, the others appear in encrypted track data), skipping the filler.
pub(crate) fn unpack_bcd(packed: &[u8], count: usize, pad: Pad, out: &mut Vec<u8>) {
    let skip = usize::from(count % 2 == 1 && pad == Pad::Left);
    let nibbles = packed.iter().flat_map(|b| [b >> 4, b & 0x0F]);
    out.extend(nibbles.skip(skip).take(count).map(|n| match n {
        0..=9 => b'0' + n,
        _ => b'A' + (n & 0x0F) - 10,
    }));
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Reads one field starting at `input[at..]`; returns the logical value and the new position.
/// `at` is an absolute offset so that errors point into the whole message. (Messages are read
/// through [`crate::MessageView`], which runs the same steps field by field.)
#[cfg(test)]
pub(crate) fn decode_field(
    spec: &FieldSpec,
    input: &[u8],
    at: usize,
) -> Result<(Vec<u8>, usize), DecodeError> {
    let loc = locate_field(spec, input, at)?;
    check_field(spec, input, loc)?;
    let mut value = Vec::with_capacity(loc.len);
    write_logical(spec, input, loc, &mut value);
    Ok((value, loc.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LengthType::*;

    const BCD_L: ValueEncoding = ValueEncoding::Bcd {
        pad: Pad::Left,
        filler: 0,
        checked: true,
    };
    const BCD_F: ValueEncoding = ValueEncoding::Bcd {
        pad: Pad::Right,
        filler: 0xF,
        checked: true,
    };

    fn spec(
        kind: FieldKind,
        length: LengthType,
        prefix: PrefixEncoding,
        enc: ValueEncoding,
    ) -> FieldSpec {
        FieldSpec::new(9, "test", kind, length, prefix, enc)
    }

    fn enc(s: &FieldSpec, v: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        encode_field(s, v, &mut out).map(|()| out)
    }

    #[test]
    fn bcd_numeric_left_padded_with_bcd_prefix() {
        let s = spec(FieldKind::N, LlVar(19), PrefixEncoding::Bcd, BCD_L);
        assert_eq!(enc(&s, b"123").unwrap(), [0x03, 0x01, 0x23]);
        assert_eq!(
            decode_field(&s, &[0x03, 0x01, 0x23], 0).unwrap(),
            (b"123".to_vec(), 3)
        );
        assert_eq!(
            decode_field(&s, &[0x03, 0x11, 0x23], 0),
            Err(DecodeError::Invalid {
                field: Some(9),
                offset: 1,
                reason: InvalidReason::BadPadding
            })
        );
    }

    #[test]
    fn track2_right_padded_f_and_separator() {
        let s = spec(FieldKind::Z, LlVar(37), PrefixEncoding::Bcd, BCD_F);
        assert_eq!(enc(&s, b"12=45").unwrap(), [0x05, 0x12, 0xD4, 0x5F]);
        assert_eq!(
            decode_field(&s, &[0x05, 0x12, 0xD4, 0x5F], 0).unwrap().0,
            b"12D45"
        );
    }

    #[test]
    fn lll_prefixes() {
        let b = spec(
            FieldKind::B,
            LllVar(999),
            PrefixEncoding::Bcd,
            ValueEncoding::Binary,
        );
        assert_eq!(enc(&b, &[0xAA; 123]).unwrap()[..2], [0x01, 0x23]);
        let a = spec(
            FieldKind::Ans,
            LllVar(999),
            PrefixEncoding::Ascii,
            ValueEncoding::Ascii,
        );
        assert_eq!(enc(&a, b"hi").unwrap(), b"002hi");
        let bin = spec(
            FieldKind::B,
            LllVar(999),
            PrefixEncoding::Binary,
            ValueEncoding::Binary,
        );
        assert_eq!(enc(&bin, &[7; 300]).unwrap()[..2], [0x01, 0x2C]);
        assert_eq!(
            decode_field(&bin, &enc(&bin, &[7; 300]).unwrap(), 0)
                .unwrap()
                .0,
            vec![7; 300]
        );
        let hx = spec(
            FieldKind::B,
            LllVar(255),
            PrefixEncoding::Ascii,
            ValueEncoding::HexAscii,
        );
        assert_eq!(enc(&hx, &[0xAB, 0x01]).unwrap(), b"004AB01");
        assert_eq!(
            decode_field(&hx, b"004ab01", 0).unwrap().0,
            vec![0xAB, 0x01]
        );
        assert_eq!(
            decode_field(&hx, b"003AB0", 0),
            Err(DecodeError::Invalid {
                field: Some(9),
                offset: 0,
                reason: InvalidReason::OddHexLength
            })
        );
    }

    #[test]
    fn errors_are_structured() {
        let s = spec(FieldKind::N, Fixed(6), PrefixEncoding::Bcd, BCD_L);
        assert_eq!(
            enc(&s, b"12345"),
            Err(EncodeError::WrongLength {
                field: 9,
                expected: 6,
                got: 5
            })
        );
        assert_eq!(
            enc(&s, b"12a456"),
            Err(EncodeError::BadCharacter {
                field: 9,
                position: 2
            })
        );
        assert_eq!(
            decode_field(&s, &[0x12, 0x34], 0),
            Err(DecodeError::Incomplete {
                field: Some(9),
                needed: 1
            })
        );
        let v = spec(
            FieldKind::Ans,
            LlVar(5),
            PrefixEncoding::Ascii,
            ValueEncoding::Ascii,
        );
        assert_eq!(
            enc(&v, b"123456"),
            Err(EncodeError::FieldTooLong {
                field: 9,
                max: 5,
                got: 6
            })
        );
        assert_eq!(
            decode_field(&v, b"06123456", 0),
            Err(DecodeError::Invalid {
                field: Some(9),
                offset: 0,
                reason: InvalidReason::TooLong { max: 5, got: 6 }
            })
        );
        assert_eq!(
            decode_field(&v, b"0x", 0),
            Err(DecodeError::Invalid {
                field: Some(9),
                offset: 0,
                reason: InvalidReason::BadLengthPrefix
            })
        );
        assert_eq!(
            decode_field(&v, b"0", 0),
            Err(DecodeError::Incomplete {
                field: Some(9),
                needed: 1
            })
        );
        assert_eq!(
            decode_field(&v, b"02a\x01", 0),
            Err(DecodeError::Invalid {
                field: Some(9),
                offset: 3,
                reason: InvalidReason::BadCharacter
            })
        );
    }

    #[test]
    fn gbk_text_counts_wire_bytes_and_round_trips() {
        let s = spec(
            FieldKind::Ans,
            LlVar(40),
            PrefixEncoding::Bcd,
            ValueEncoding::Ascii,
        )
        .with_charset(Charset::Gbk);
        // 银联 in GBK: D2F8 C1AA (GB 2312 code table).
        let wire = enc(&s, "银联 POS".as_bytes()).unwrap();
        assert_eq!(wire, [0x08, 0xD2, 0xF8, 0xC1, 0xAA, b' ', b'P', b'O', b'S']);
        let (value, end) = decode_field(&s, &wire, 0).unwrap();
        assert_eq!(value, "银联 POS".as_bytes());
        assert_eq!(end, wire.len());
        // Control characters stay refused; a character GBK lacks is refused at its position.
        assert_eq!(
            enc(&s, b"a\x01"),
            Err(EncodeError::BadCharacter {
                field: 9,
                position: 1
            })
        );
        assert_eq!(
            enc(&s, "ab😀".as_bytes()),
            Err(EncodeError::BadCharacter {
                field: 9,
                position: 2
            })
        );
        // Too long counts wire bytes: 21 Chinese characters are 42 bytes.
        assert_eq!(
            enc(&s, "银".repeat(21).as_bytes()),
            Err(EncodeError::FieldTooLong {
                field: 9,
                max: 40,
                got: 42
            })
        );
        // A lone lead byte is not GBK.
        assert_eq!(
            decode_field(&s, &[0x01, 0xD2], 0),
            Err(DecodeError::Invalid {
                field: Some(9),
                offset: 1,
                reason: InvalidReason::BadCharacter
            })
        );
        // GB18030 four-byte sequences decode under GB18030 and are refused under GBK.
        let g = FieldSpec {
            charset: Charset::Gb18030,
            ..s.clone()
        };
        let wire = enc(&g, "😀".as_bytes()).unwrap();
        assert_eq!(wire.len(), 5);
        assert_eq!(decode_field(&g, &wire, 0).unwrap().0, "😀".as_bytes());
        assert!(decode_field(&s, &wire, 0).is_err());
    }

    #[test]
    fn classes() {
        assert!(char_ok(FieldKind::Xn, 0, b'C'));
        assert!(!char_ok(FieldKind::Xn, 1, b'C'));
        assert!(char_ok(FieldKind::Ns, 0, b'='));
        assert!(!char_ok(FieldKind::Ns, 0, b'a'));
        assert!(char_ok(FieldKind::An, 0, b' '));
        assert!(!char_ok(FieldKind::An, 0, b'-'));
        assert!(!char_ok(FieldKind::Ans, 0, 0x7f));
    }
}
