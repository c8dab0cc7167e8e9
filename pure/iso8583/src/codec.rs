//! Field-level encoding and decoding: one function pair driven entirely by a [`FieldSpec`].
//!
//! Every read is bounds-checked; hostile input yields [`DecodeError`], never a panic.

use crate::error::{DecodeError, EncodeError, InvalidReason};
use crate::spec::{Charset, FieldKind, FieldSpec, LengthType, Pad, PrefixEncoding, ValueEncoding};
use smartpos_types::gb18030::{self, GbCharset};

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
// Always inlined: the encoder checks every text field through it (called out of line it
// costs the encoder about 7% more instructions on the reference sale).
#[inline(always)]
fn first_bad_char(kind: FieldKind, charset: Charset, value: &[u8]) -> Option<usize> {
    if charset != Charset::Ascii {
        return value
            .iter()
            .enumerate()
            .position(|(i, &b)| !(char_ok(kind, i, b) || b >= 0x80));
    }
    // One loop per class, so the class is not matched again for every byte; valid values (the
    // usual case) are checked without a branch per byte (digits and printable text eight
    // bytes per test), the position searched only if not.
    fn find(value: &[u8], ok: impl Fn(u8) -> bool + Copy) -> Option<usize> {
        if value.iter().fold(true, |all, &b| all & ok(b)) {
            None
        } else {
            value.iter().position(|&b| !ok(b))
        }
    }
    match kind {
        FieldKind::N if all8(value, b'0', digits8) => None,
        FieldKind::N => value.iter().position(|b| !b.is_ascii_digit()),
        FieldKind::Ans if all8(value, b' ', printable8) => None,
        FieldKind::Ans => value.iter().position(|b| !(0x20..=0x7e).contains(b)),
        FieldKind::An => find(value, |b| b.is_ascii_alphanumeric() || b == b' '),
        FieldKind::B => None,
        _ => value
            .iter()
            .enumerate()
            .position(|(i, &b)| !char_ok(kind, i, b)),
    }
}

/// Whether `ok` holds for every eight bytes of `value` (read little-endian), the last ones
/// completed with `pad` (a byte `ok` accepts): eight characters per test instead of one.
#[inline]
fn all8(value: &[u8], pad: u8, ok: impl Fn(u64) -> bool) -> bool {
    let chunks = value.chunks_exact(8);
    let rest = chunks.remainder();
    let mut all = true;
    for chunk in chunks {
        all &= ok(word(chunk));
    }
    // The last bytes: testing a byte twice changes nothing, so they are read as the last
    // eight (or the first and last four) bytes of the value where it is long enough.
    let n = value.len();
    let last = if n >= 8 {
        word(value.get(n - 8..).unwrap_or_default())
    } else if n >= 4 {
        let head = u64::from(half(value.get(..4).unwrap_or_default()));
        let tail = u64::from(half(value.get(n - 4..).unwrap_or_default()));
        head | (tail << 32)
    } else {
        load_padded(rest, pad)
    };
    all & ok(last)
}

/// Eight bytes (exactly; fewer read as zeros) as a little-endian word.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut c = [0u8; 8];
    if let Some(src) = bytes.get(..8) {
        c.copy_from_slice(src);
    }
    u64::from_le_bytes(c)
}

/// Four bytes (exactly; fewer read as zeros) as a little-endian word.
#[inline]
fn half(bytes: &[u8]) -> u32 {
    let mut c = [0u8; 4];
    if let Some(src) = bytes.get(..4) {
        c.copy_from_slice(src);
    }
    u32::from_le_bytes(c)
}

/// Up to eight bytes as a little-endian word, completed with `pad`: two overlapping reads
/// (a byte read twice lands in the same place), no loop and no `memcpy` call.
#[inline(always)]
fn load_padded(bytes: &[u8], pad: u8) -> u64 {
    let n = bytes.len().min(8);
    let lanes = |k: usize| -> u64 {
        if k >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * k)) - 1
        }
    };
    let w = if n >= 4 {
        let lo = u64::from(half(bytes.get(..4).unwrap_or_default()));
        let hi = u64::from(half(bytes.get(n - 4..n).unwrap_or_default()));
        lo | (hi << (8 * (n - 4)))
    } else if n >= 2 {
        let two = |b: &[u8]| match *b {
            [x, y] => u64::from(u16::from_le_bytes([x, y])),
            _ => 0,
        };
        let lo = two(bytes.get(..2).unwrap_or_default());
        let hi = two(bytes.get(n - 2..n).unwrap_or_default());
        lo | (hi << (8 * (n - 2)))
    } else {
        bytes.first().map_or(0, |&b| u64::from(b))
    };
    w | (u64::from_le_bytes([pad; 8]) & !lanes(n))
}

/// Eight bytes that are all ASCII digits: high nibble 3, low nibble below 10 (adding 6 to it
/// does not carry into the high nibble).
#[inline]
fn digits8(x: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let high_not_3 = (x & HIGH) ^ 0x3030_3030_3030_3030;
    let low_over_9 = ((x & !HIGH) + 0x0606_0606_0606_0606) & HIGH;
    high_not_3 | low_over_9 == 0
}

/// Eight bytes that are all printable ASCII (0x20..=0x7E): high bit clear, at least 0x20
/// (adding 0x60 sets the high bit), not 0x7F (adding 1 does not set it). No lane carries into
/// the next: with the high bit clear a lane is at most 0x7F + 0x60.
#[inline]
fn printable8(x: u64) -> bool {
    const TOP: u64 = 0x8080_8080_8080_8080;
    let low7 = x & !TOP;
    x & TOP == 0
        && (low7 + 0x6060_6060_6060_6060) & TOP == TOP
        && (low7 + 0x0101_0101_0101_0101) & TOP == 0
}

/// Per lane of `x` whose high bit is clear, 0x80 if the byte is in `lo..=hi`, else 0: for a
/// 7-bit lane `v`, `v >= lo` when `v + (0x80 - lo)` sets the high bit and `v <= hi` when
/// `v + (0x7F - hi)` does not; no lane carries into the next. (Lanes with the high bit set
/// give any value: the callers refuse them first.)
#[inline(always)]
fn in_range8(x: u64, lo: u8, hi: u8) -> u64 {
    const TOP: u64 = 0x8080_8080_8080_8080;
    let splat = |b: u8| u64::from_le_bytes([b; 8]);
    x.wrapping_add(splat(0x80 - lo)) & !x.wrapping_add(splat(0x7F - hi)) & TOP
}

/// Eight bytes that are all letters, digits or spaces (an `an` field's class).
#[inline]
fn alnum8(x: u64) -> bool {
    const TOP: u64 = 0x8080_8080_8080_8080;
    let lower = x | 0x2020_2020_2020_2020;
    x & TOP == 0
        && in_range8(x, b'0', b'9') | in_range8(lower, b'a', b'z') | in_range8(x, b' ', b' ') == TOP
}

/// Eight bytes that are all track-data characters (a `z` field's class, [`char_ok`]): digits,
/// `A`-`F` and `=`.
#[inline]
fn track8(x: u64) -> bool {
    const TOP: u64 = 0x8080_8080_8080_8080;
    x & TOP == 0
        && in_range8(x, b'0', b'9') | in_range8(x, b'A', b'F') | in_range8(x, b'=', b'=') == TOP
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
///
/// The hot path of [`crate::Dialect::pack`]: one check of the value's characters (a loop
/// without a branch per byte), the length rule, then prefix and value written straight into
/// `out` (table lookups for digits and nibbles, no temporary buffer). GBK/GB18030 text, which
/// must be converted first, takes [`encode_charset_field`].
#[inline]
pub(crate) fn encode_field(
    spec: &FieldSpec,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if spec.charset != Charset::Ascii && spec.is_text() {
        return encode_charset_field(spec, value, out);
    }
    if let Some(position) = first_bad_char(spec.kind, spec.charset, value) {
        return Err(EncodeError::BadCharacter {
            field: spec.number,
            position,
        });
    }
    encode_checked(spec, value, out)
}

/// [`encode_field`] for a text field in a GBK/GB18030 charset: the UTF-8 value is checked,
/// converted, and its wire bytes are what the length rule counts.
#[cold]
fn encode_charset_field(
    spec: &FieldSpec,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let field = spec.number;
    if let Some(position) = first_bad_char(spec.kind, spec.charset, value) {
        return Err(EncodeError::BadCharacter { field, position });
    }
    let wire = match encoding_of(spec.charset) {
        Some(enc) => to_charset(enc, value)
            .map_err(|position| EncodeError::BadCharacter { field, position })?,
        None => value.to_vec(),
    };
    encode_checked(spec, &wire, out)
}

/// Length rule, prefix and value of a value whose characters are checked.
#[inline]
fn encode_checked(spec: &FieldSpec, value: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let field = spec.number;
    let got = value.len();
    let digits = match spec.length {
        LengthType::Fixed(expected) if got != expected => {
            return Err(EncodeError::WrongLength {
                field,
                expected,
                got,
            });
        }
        LengthType::Fixed(_) => 0,
        LengthType::LlVar(max) | LengthType::LllVar(max) if got > max => {
            return Err(EncodeError::FieldTooLong { field, max, got });
        }
        LengthType::LlVar(_) => 2,
        LengthType::LllVar(_) => 3,
    };
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
        ValueEncoding::HexAscii => {
            let at = out.len();
            out.resize(at + 2 * got, 0);
            let dst = out.get_mut(at..).unwrap_or_default();
            for (pair, &b) in dst.chunks_exact_mut(2).zip(value) {
                pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
            }
        }
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

/// Nibble of a checked digit character: `0`-`9` as themselves, the track separator `D` /
/// `=` as 0xD, and in a `z` field `A`-`F` as 0xA-0xF (encrypted track data). Only bytes the
/// character class let through reach it: digits, `A`-`F` (0x41-0x46, bit 6 set: low nibble +
/// 9) and `=` (0x3D: low nibble D).
#[inline]
fn nibble(c: u8) -> u8 {
    (c & 0x0F) + 9 * ((c >> 6) & 1)
}

/// [`nibble`] of eight characters at once, each in its byte (`u64` lanes never carry: a
/// lane is at most 0x0F + 9).
#[inline]
fn nibbles8(x: u64) -> u64 {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const ONES: u64 = 0x0101_0101_0101_0101;
    (x & LOW) + 9 * ((x >> 6) & ONES)
}

/// Eight digit characters (read little-endian) packed into four BCD bytes, first digit in
/// the high nibble of the first byte.
#[inline]
fn pack8(chunk: [u8; 8]) -> [u8; 4] {
    let v = nibbles8(u64::from_le_bytes(chunk));
    // Byte i becomes digit i << 4 | digit i+1; the even bytes are the packed pairs.
    let t = ((v << 4) | (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let t = (t | (t >> 8)) & 0x0000_FFFF_0000_FFFF;
    let t = (t | (t >> 16)) & 0x0000_0000_FFFF_FFFF;
    // Four bytes: the mask above keeps t below 2^32.
    (t as u32).to_le_bytes()
}

/// Every byte as its two upper-case hex characters.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0x0F]];
        i += 1;
    }
    t
};

/// 0..=99 as two ASCII digits.
static DECIMAL_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// 0..=99 as one packed BCD byte.
static BCD_PAIRS: [u8; 100] = {
    let mut t = [0u8; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = (((i / 10) << 4) | (i % 10)) as u8;
        i += 1;
    }
    t
};

/// Packs digits (and `D`/`=` as nibble D) two per byte, the filler nibble on the `pad` side of
/// an odd count: eight digits at a time ([`pack8`]), the last ones completed to eight.
#[inline]
fn pack_bcd(digits: &[u8], pad: Pad, filler: u8, out: &mut Vec<u8>) {
    let filler = filler & 0x0F;
    let mut body = digits;
    if digits.len() % 2 == 1
        && pad == Pad::Left
        && let Some((&first, rest)) = digits.split_first()
    {
        out.push((filler << 4) | nibble(first));
        body = rest;
    }
    let eights = body.chunks_exact(8);
    let tail = eights.remainder();
    for chunk in eights {
        let mut c = [0u8; 8];
        c.copy_from_slice(chunk);
        out.extend_from_slice(&pack8(c));
    }
    if !tail.is_empty() {
        // The last (at most seven) digits completed with the character whose nibble is the
        // filler (0x30 | filler: bit 6 clear), so an odd count ends in `last << 4 | filler`;
        // four bytes written, the ones past the value taken back.
        let packed = pack8(load_padded(tail, 0x30 | filler).to_le_bytes());
        out.extend_from_slice(&packed);
        out.truncate(out.len() - (4 - tail.len().div_ceil(2)));
    }
}

/// Writes a length prefix; `None` if `count` does not fit.
#[inline]
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
            out.extend_from_slice(DECIMAL_PAIRS.get(count % 100)?);
        }
        PrefixEncoding::Bcd => {
            if count > limit {
                return None;
            }
            if digits == 3 {
                out.push(u8::try_from(count / 100).ok()?);
            }
            out.push(*BCD_PAIRS.get(count % 100)?);
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
            {
                // A `z` field takes any nibble (track data encrypted under the TDK).
                let all = separator
                    || bcd_digits_ok(digits, odd && pad == Pad::Left, odd && pad == Pad::Right);
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

/// Whether every nibble of `packed` is a decimal digit, eight bytes per test, except the
/// first byte's high nibble if `free_first_high` and the last byte's low nibble if
/// `free_last_low` (filler nibbles, checked elsewhere if at all).
#[inline]
fn bcd_digits_ok(packed: &[u8], free_first_high: bool, free_last_low: bool) -> bool {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Per byte lane holding one nibble: above 9 (adding 6 carries into bit 4).
    let bad_nibbles = |v: u64| ((v + 0x0606_0606_0606_0606) >> 4) & ONES;
    let over9 = |x: u64| bad_nibbles((x >> 4) & LOW) | bad_nibbles(x & LOW);
    let n = packed.len();
    if n == 0 {
        return true;
    }
    if n <= 8 {
        return bcd_word_ok(packed, free_first_high, free_last_low);
    }
    // Where the free nibbles sit: lane 0 of the first word, and the last byte's lane of the
    // word that holds it (the last full chunk, or the zero-completed rest).
    let first_free: u64 = if free_first_high { 0xF0 } else { 0 };
    let last_lane = (n - 1) % 8;
    let last_free: u64 = if free_last_low {
        0x0F << (8 * last_lane)
    } else {
        0
    };
    let chunks = packed.chunks_exact(8);
    let rest = chunks.remainder();
    let full = n / 8;
    let mut bad = 0u64;
    for (i, chunk) in chunks.enumerate() {
        let mut x = word(chunk);
        if i == 0 {
            x &= !first_free;
        }
        if i + 1 == full && rest.is_empty() {
            x &= !last_free;
        }
        bad |= over9(x);
    }
    if !rest.is_empty() {
        let mut x = load_padded(rest, 0);
        if full == 0 {
            x &= !first_free;
        }
        bad |= over9(x & !last_free);
    }
    bad == 0
}

/// [`bcd_digits_ok`] for at most eight bytes: one word, completed with zero digits.
#[inline(always)]
fn bcd_word_ok(packed: &[u8], free_first_high: bool, free_last_low: bool) -> bool {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let bad_nibbles = |v: u64| ((v + 0x0606_0606_0606_0606) >> 4) & ONES;
    let mut x = load_padded(packed, 0);
    // The free nibbles: lane 0's high one and the last byte's low one.
    if free_first_high {
        x &= !0xF0;
    }
    if free_last_low {
        x &= !(0x0F << (8 * (packed.len().clamp(1, 8) - 1)));
    }
    bad_nibbles((x >> 4) & LOW) | bad_nibbles(x & LOW) == 0
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

/// Appends `count` digits of packed BCD as ASCII (nibbles above 9 as upper-case hex: `D` is the
/// track separator, the others appear in encrypted track data), skipping the filler:
/// four bytes (eight digits) at a time ([`unpack4`]), the last bytes completed to four.
/// The input is checked ([`check_field`]): a nibble is a digit, or any nibble in a `z` field.
pub(crate) fn unpack_bcd(packed: &[u8], count: usize, pad: Pad, out: &mut Vec<u8>) {
    let count = count.min(packed.len() * 2);
    let skip = count % 2 == 1 && pad == Pad::Left;
    if packed.len() <= 8 {
        // Up to 16 nibbles in one word: sixteen characters written, the ones past the value
        // taken back (no loop and no `memcpy` call).
        let mut x = load_padded(packed, 0);
        if skip {
            // Drop the filler (the first nibble): the word read big-endian, one nibble on.
            x = (x.swap_bytes() << 4).swap_bytes();
        }
        // Four bytes each: the shifts leave the halves below 2^32.
        let (lo, hi) = (unpack4(x as u32), unpack4((x >> 32) as u32));
        let start = out.len();
        out.extend_from_slice(&lo);
        out.extend_from_slice(&hi);
        out.truncate(start + count);
        return;
    }
    unpack_bcd_long(packed, count, pad, out);
}

/// [`unpack_bcd`] of more than eight bytes.
fn unpack_bcd_long(packed: &[u8], count: usize, pad: Pad, out: &mut Vec<u8>) {
    let mut packed = packed;
    let mut count = count;
    if count % 2 == 1
        && pad == Pad::Left
        && let Some((&first, rest)) = packed.split_first()
    {
        out.push(digit_char(first & 0x0F));
        packed = rest;
        count -= 1;
    }
    // From here the digits start at a high nibble: `count` of them in ceil(count / 2) bytes.
    let packed = packed.get(..count.div_ceil(2)).unwrap_or_default();
    out.reserve(count);
    // Whole groups of eight digits; the rest (at most seven) from the last bytes.
    let full = count / 8;
    let (body, tail) = packed.split_at((4 * full).min(packed.len()));
    for chunk in body.chunks_exact(4) {
        let mut c = [0u8; 4];
        c.copy_from_slice(chunk);
        out.extend_from_slice(&unpack4(u32::from_le_bytes(c)));
    }
    if !tail.is_empty() {
        let mut word = 0u32;
        for (i, &b) in tail.iter().enumerate() {
            word |= u32::from(b) << (8 * i);
        }
        let chars = unpack4(word);
        let left = count - 8 * full;
        out.extend_from_slice(chars.get(..left).unwrap_or_default());
    }
}

/// A checked nibble as its character: a digit, or upper-case hex above 9 (in a `z` field: D
/// is the track separator, the others appear in track data encrypted under the TDK).
#[inline]
fn digit_char(n: u8) -> u8 {
    if n <= 9 {
        b'0' + n
    } else {
        b'A' + (n & 0x0F) - 10
    }
}

/// Four packed BCD bytes (read little-endian) as eight characters, high nibble first: digits
/// as `0`-`9` and nibbles above 9 as upper-case hex (`D`, the track separator, and the
/// nibbles of encrypted track data).
#[inline]
fn unpack4(x: u32) -> [u8; 8] {
    // Byte i to lane 2i, then its high nibble stays in lane 2i and the low one goes to 2i+1.
    let y = u64::from(x);
    let y = (y | (y << 16)) & 0x0000_FFFF_0000_FFFF;
    let y = (y | (y << 8)) & 0x00FF_00FF_00FF_00FF;
    let z = ((y >> 4) & 0x000F_000F_000F_000F) | ((y & 0x000F_000F_000F_000F) << 8);
    // Nibbles above 9 get 7 more, as `A`-`F` do after `9` in ASCII.
    let over9 = ((z + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (z + 0x3030_3030_3030_3030 + 7 * over9).to_le_bytes()
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
    fn unpack_bcd_reads_any_nibbles_as_one_by_one() {
        // Every length up to 12 bytes, every count they hold, both pads, nibbles 0-F: the
        // word-at-a-time reading agrees with one nibble at a time.
        let hex = b"0123456789ABCDEF";
        for len in 0..=12usize {
            let packed: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(0x3B) ^ 0xA5)
                .collect();
            let nibbles: Vec<u8> = packed.iter().flat_map(|b| [b >> 4, b & 0x0F]).collect();
            for count in 0..=2 * len {
                for pad in [Pad::Left, Pad::Right] {
                    let skip = usize::from(count % 2 == 1 && pad == Pad::Left);
                    let naive: Vec<u8> = nibbles
                        .iter()
                        .skip(skip)
                        .take(count)
                        .map(|&n| hex[usize::from(n)])
                        .collect();
                    let mut out = vec![0xEE];
                    unpack_bcd(&packed, count, pad, &mut out);
                    assert_eq!(out[0], 0xEE);
                    assert_eq!(out[1..], naive[..], "len {len} count {count} {pad:?}");
                }
            }
        }
    }

    #[test]
    fn bcd_packs_and_unpacks_many_at_a_time_as_one_by_one() {
        // Reference: one nibble per character, filler on the pad side.
        fn naive(digits: &[u8], pad: Pad, filler: u8) -> Vec<u8> {
            let mut n: Vec<u8> = digits
                .iter()
                .map(|&c| match c {
                    b'D' | b'=' => 0xD,
                    d => d - b'0',
                })
                .collect();
            if n.len() % 2 == 1 {
                match pad {
                    Pad::Left => n.insert(0, filler),
                    Pad::Right => n.push(filler),
                }
            }
            n.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
        }
        let alphabet = b"0123456789D=";
        for len in 0..=41 {
            for shift in 0..alphabet.len() {
                let digits: Vec<u8> = (0..len)
                    .map(|i| alphabet[(i * 7 + shift) % alphabet.len()])
                    .collect();
                for (pad, filler) in [(Pad::Left, 0), (Pad::Right, 0), (Pad::Right, 0xF)] {
                    let mut out = vec![0xEE];
                    pack_bcd(&digits, pad, filler, &mut out);
                    assert_eq!(out[0], 0xEE);
                    assert_eq!(out[1..], naive(&digits, pad, filler)[..], "{len} {pad:?}");
                    // And back, four bytes at a time: `=` reads as `D`.
                    let mut back = vec![0xEE];
                    unpack_bcd(&out[1..], len, pad, &mut back);
                    let want: Vec<u8> = digits
                        .iter()
                        .map(|&c| if c == b'=' { b'D' } else { c })
                        .collect();
                    assert_eq!(back[1..], want[..], "{len} {pad:?}");
                }
            }
        }
    }

    #[test]
    fn eight_byte_class_tests_agree_with_the_byte_tests() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut digits = [b'7'; 8];
                digits[at] = b;
                assert_eq!(
                    digits8(u64::from_le_bytes(digits)),
                    b.is_ascii_digit(),
                    "{b:#x} at {at}"
                );
                let mut text = [b'~'; 8];
                text[at] = b;
                assert_eq!(
                    printable8(u64::from_le_bytes(text)),
                    (0x20..=0x7e).contains(&b),
                    "{b:#x} at {at}"
                );
            }
        }
        // Values of every length, with a bad byte anywhere or none.
        for len in 0..=20 {
            let good = vec![b'5'; len];
            assert_eq!(first_bad_char(FieldKind::N, Charset::Ascii, &good), None);
            assert_eq!(first_bad_char(FieldKind::Ans, Charset::Ascii, &good), None);
            for at in 0..len {
                let mut bad = good.clone();
                bad[at] = b'a';
                assert_eq!(first_bad_char(FieldKind::N, Charset::Ascii, &bad), Some(at));
                bad[at] = 0x7f;
                assert_eq!(
                    first_bad_char(FieldKind::Ans, Charset::Ascii, &bad),
                    Some(at)
                );
            }
        }
    }

    #[test]
    fn packed_digits_are_tested_eight_bytes_at_a_time_as_one_by_one() {
        fn naive(p: &[u8], first: bool, last: bool) -> bool {
            let ok = |n: u8| n <= 9;
            p.iter().enumerate().all(|(i, &b)| {
                (first && i == 0 || ok(b >> 4)) && (last && i == p.len() - 1 || ok(b & 0x0F))
            })
        }
        for len in 0..=20 {
            for at in 0..len.max(1) {
                for bad in [
                    0x0A, 0xA0, 0xFF, 0x0F, 0xF0, 0x99, 0xD0, 0x0D, 0xDD, 0xC0, 0x0E,
                ] {
                    let mut p = vec![0x12; len];
                    if let Some(b) = p.get_mut(at) {
                        *b = bad;
                    }
                    for (first, last) in [(false, false), (true, false), (false, true)] {
                        assert_eq!(
                            bcd_digits_ok(&p, first, last),
                            naive(&p, first, last),
                            "{len} {at} {bad:#x} {first} {last}"
                        );
                    }
                }
            }
        }
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

/// How [`crate::MessageView`] reads one field, decided once per dialect from its table line
/// ([`steps_of`]): how the value's place is found and which check a valid value passes without
/// the general [`check_field`]. Only a shortcut: whatever the shortcut does not accept goes
/// through [`locate_field`] and [`check_field`], so the checks and errors are theirs.
///
/// Eight bytes, so that the decoder's loop holds a field's step in one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Step {
    size: Size,
    check: Check,
    /// A fixed field's logical length; a variable field's maximum.
    len: u16,
    /// A fixed field's wire length (unused for variable fields).
    wire: u16,
}

/// How a field's value is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Size {
    /// The dialect does not define the field.
    #[default]
    Undefined,
    /// [`locate_field`] (binary prefixes, hex values, lengths beyond `u16`).
    General,
    /// `len` units in `wire` bytes.
    Fixed,
    /// A length prefix of `width` BCD bytes (1 or 2) or ASCII digits (2 or 3), then the value
    /// in `unit`s.
    Var { bcd: bool, width: u8, unit: Unit },
}

/// Wire bytes of a variable value of `len` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// One byte per unit.
    Byte,
    /// BCD digits packed two to a byte.
    Nibble,
    /// An `x+n` value in BCD: the sign byte, then the digits packed.
    SignNibble,
}

/// The check a valid value passes (see [`check_field`], whose arms these are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Check {
    /// Anything else: [`check_field`].
    #[default]
    General,
    /// `b` in binary or ASCII encoding: every byte is allowed.
    Any,
    /// `n` in ASCII encoding, ASCII charset: decimal digits.
    AsciiDigits,
    /// `ans` in ASCII encoding, ASCII charset: printable ASCII.
    AsciiPrintable,
    /// `an` in ASCII encoding, ASCII charset: letters, digits and spaces.
    AsciiAlnum,
    /// `n` (digits) or `z` (any nibble) in BCD.
    Bcd {
        pad: Pad,
        filler: u8,
        checked: bool,
        any_nibble: bool,
    },
}

/// The view's steps for a dialect's field index (same indices, 0..=128; a fixed size, so
/// that looking a field number up needs no length).
pub(crate) fn steps_of(fields: &[Option<FieldSpec>]) -> Box<[Step; 129]> {
    let mut steps = Box::new([Step::default(); 129]);
    for (step, field) in steps.iter_mut().zip(fields) {
        if let Some(f) = field {
            *step = step_of(f);
        }
    }
    steps
}

fn step_of(spec: &FieldSpec) -> Step {
    let general = Step {
        size: Size::General,
        check: Check::General,
        len: 0,
        wire: 0,
    };
    let (size, len, wire) = match (spec.length, spec.prefix, spec.encoding) {
        (LengthType::Fixed(n), _, _) => match (u16::try_from(n), u16::try_from(spec.wire_len(n))) {
            (Ok(len), Ok(wire)) => (Size::Fixed, len, wire),
            _ => return general,
        },
        (_, _, ValueEncoding::HexAscii) => return general,
        (
            LengthType::LlVar(max) | LengthType::LllVar(max),
            enc @ (PrefixEncoding::Bcd | PrefixEncoding::Ascii),
            value,
        ) => {
            let unit = match (value, spec.kind) {
                (ValueEncoding::Bcd { .. }, FieldKind::Xn) => Unit::SignNibble,
                (ValueEncoding::Bcd { .. }, _) => Unit::Nibble,
                _ => Unit::Byte,
            };
            let width = prefix_width(enc, spec.length.prefix_digits());
            match (u8::try_from(width), u16::try_from(max)) {
                (Ok(width), Ok(max)) => (
                    Size::Var {
                        bcd: enc == PrefixEncoding::Bcd,
                        width,
                        unit,
                    },
                    max,
                    0,
                ),
                _ => return general,
            }
        }
        _ => return general,
    };
    let ascii = spec.charset == Charset::Ascii;
    let check = match (spec.kind, spec.encoding) {
        (FieldKind::B, ValueEncoding::Binary | ValueEncoding::Ascii) => Check::Any,
        (FieldKind::N, ValueEncoding::Ascii) if ascii => Check::AsciiDigits,
        (FieldKind::Ans, ValueEncoding::Ascii) if ascii => Check::AsciiPrintable,
        (FieldKind::An, ValueEncoding::Ascii) if ascii => Check::AsciiAlnum,
        (
            kind @ (FieldKind::N | FieldKind::Z),
            ValueEncoding::Bcd {
                pad,
                filler,
                checked,
            },
        ) => Check::Bcd {
            pad,
            filler: filler & 0x0F,
            checked,
            any_nibble: kind == FieldKind::Z,
        },
        _ => Check::General,
    };
    Step {
        size,
        check,
        len,
        wire,
    }
}

/// [`locate_field`] then [`check_field`], with `step`'s shortcuts for the usual case.
#[cfg(test)]
pub(crate) fn read_field(
    spec: &FieldSpec,
    step: Step,
    input: &[u8],
    at: usize,
) -> Result<Located, DecodeError> {
    match fast_read(step, input, at) {
        Some(loc) => Ok(loc),
        None => general_read(spec, input, at),
    }
}

/// The usual case of [`locate_field`] then [`check_field`]: where the field lies if `step`'s
/// shortcut finds it and its value passes the step's check. `None` when the general reading
/// must decide; it then finds the same place or says exactly what is wrong
/// (`read_field_is_locate_then_check`).
// Always inlined: the view and the owned unpack read every field through it.
#[inline(always)]
pub(crate) fn fast_read(step: Step, input: &[u8], at: usize) -> Option<Located> {
    let loc = fast_locate(step, input, at)?;
    let wire = input.get(loc.value_at..loc.end)?;
    let ok = match step.check {
        Check::General => false,
        Check::Any => true,
        // Values of up to eight bytes (most fields) in one word, without a call.
        Check::AsciiDigits => digits_ok(wire),
        Check::AsciiPrintable => text_ok(wire, b' ', printable8),
        Check::AsciiAlnum => text_ok(wire, b'0', alnum8),
        Check::Bcd {
            pad,
            filler,
            checked,
            any_nibble,
        } => {
            let odd = loc.len % 2 == 1;
            let (first, last) = (odd && pad == Pad::Left, odd && pad == Pad::Right);
            let all = any_nibble
                || if wire.len() <= 8 {
                    bcd_word_ok(wire, first, last)
                } else {
                    bcd_digits_ok(wire, first, last)
                };
            let pad_ok = !checked
                || !odd
                || match pad {
                    Pad::Left => wire.first().is_some_and(|b| b >> 4 == filler),
                    Pad::Right => wire.last().is_some_and(|b| b & 0x0F == filler),
                };
            all && pad_ok
        }
    };
    ok.then_some(loc)
}

/// [`locate_field`] then [`check_field`]: what [`fast_read`] leaves to the general reading
/// (fields its shortcut does not cover, and every error).
#[inline]
pub(crate) fn general_read(
    spec: &FieldSpec,
    input: &[u8],
    at: usize,
) -> Result<Located, DecodeError> {
    let loc = locate_field(spec, input, at)?;
    check_field(spec, input, loc)?;
    Ok(loc)
}

/// The usual case of [`encode_field`]: writes the field's prefix and value and returns `true`
/// when `step` covers it (fixed or BCD/ASCII-prefixed, ASCII charset, `n`/`an`/`ans`/`b`
/// values in their encoding and `z` in BCD, the length right) and the value passes its class check; returns
/// `false` having written nothing otherwise, and [`encode_field`] then writes the field or
/// says what is wrong. Whatever it writes is what [`encode_field`] would
/// (`fast_encode_writes_what_encode_field_writes`).
// Always inlined: the encoder writes every field through it.
#[inline(always)]
pub(crate) fn fast_encode(step: Step, value: &[u8], out: &mut Vec<u8>) -> bool {
    let got = value.len();
    // The class of the logical value (digits for BCD `n`), and how it goes on the wire.
    let (class_ok, bcd) = match step.check {
        Check::Any => (true, None),
        Check::AsciiDigits => (digits_ok(value), None),
        Check::AsciiPrintable => (text_ok(value, b' ', printable8), None),
        Check::AsciiAlnum => (text_ok(value, b'0', alnum8), None),
        Check::Bcd {
            pad,
            filler,
            any_nibble,
            ..
        } => {
            let ok = if any_nibble {
                text_ok(value, b'0', track8)
            } else {
                digits_ok(value)
            };
            (ok, Some((pad, filler)))
        }
        Check::General => return false,
    };
    if !class_ok {
        return false;
    }
    match step.size {
        Size::Fixed if got == usize::from(step.len) => {}
        Size::Var {
            bcd: bcd_prefix,
            width,
            unit: Unit::Byte | Unit::Nibble,
        } if got <= usize::from(step.len) => {
            // The prefix counts digits or bytes: the value's length either way. `len` (the
            // maximum) is at most what the prefix's digits hold (a valid table line).
            match (bcd_prefix, width) {
                (true, 1) if got <= 99 => out.push(BCD_PAIRS[got]),
                (true, 2) if got <= 999 => {
                    out.extend_from_slice(&[(got / 100) as u8, BCD_PAIRS[got % 100]]);
                }
                (false, 2) if got <= 99 => out.extend_from_slice(&DECIMAL_PAIRS[got]),
                (false, 3) if got <= 999 => {
                    out.push(b'0' + (got / 100) as u8);
                    out.extend_from_slice(&DECIMAL_PAIRS[got % 100]);
                }
                _ => return false,
            }
        }
        _ => return false,
    }
    match bcd {
        Some((pad, filler)) => pack_bcd(value, pad, filler, out),
        None => out.extend_from_slice(value),
    }
    true
}

/// Whether `value` is all ASCII digits (eight per test).
#[inline(always)]
fn digits_ok(value: &[u8]) -> bool {
    text_ok(value, b'0', digits8)
}

/// Whether every eight bytes of `value` pass `ok` ([`all8`], one word for up to eight).
#[inline(always)]
fn text_ok(value: &[u8], pad: u8, ok: impl Fn(u64) -> bool) -> bool {
    if value.len() <= 8 {
        ok(load_padded(value, pad))
    } else {
        all8(value, pad, ok)
    }
}

/// [`write_logical`] with `step`'s shortcut: a value whose wire bytes are its logical bytes
/// (what the step checks as ASCII text or any bytes) is copied, BCD `n`/`z` digits are
/// unpacked; anything else goes through [`write_logical`]. Same output
/// (`write_value_writes_what_write_logical_writes`).
#[inline(always)]
pub(crate) fn write_value(
    step: Step,
    spec: &FieldSpec,
    input: &[u8],
    loc: Located,
    out: &mut Vec<u8>,
) {
    let wire = input.get(loc.value_at..loc.end).unwrap_or_default();
    match step.check {
        Check::Any | Check::AsciiDigits | Check::AsciiPrintable | Check::AsciiAlnum => {
            out.extend_from_slice(wire)
        }
        Check::Bcd { pad, .. } => unpack_bcd(wire, loc.len, pad, out),
        Check::General => write_logical(spec, input, loc, out),
    }
}

/// Where a field that was located and checked before lies again (for [`crate::FieldRef`]):
/// the step's shortcut, [`locate_field`] otherwise.
#[inline]
pub(crate) fn relocate(spec: &FieldSpec, step: Step, input: &[u8], at: usize) -> Option<Located> {
    match fast_locate(step, input, at) {
        Some(loc) => Some(loc),
        None => locate_field(spec, input, at).ok(),
    }
}

/// [`locate_field`] for a fixed field, or a variable one whose prefix is well-formed and whose
/// value is all there; `None` otherwise (then [`locate_field`] says what is wrong).
#[inline(always)]
fn fast_locate(step: Step, input: &[u8], at: usize) -> Option<Located> {
    let (value_at, len, wire) = match step.size {
        Size::Fixed => (at, usize::from(step.len), usize::from(step.wire)),
        Size::Var { bcd, width, unit } => {
            let value_at = at.checked_add(usize::from(width))?;
            let len = match (bcd, input.get(at..value_at)?) {
                (true, &[b]) => bcd_byte(b)?,
                (true, &[h, l]) => bcd_byte(h)? * 100 + bcd_byte(l)?,
                (false, &[t, u]) => ascii_digit(t)? * 10 + ascii_digit(u)?,
                (false, &[h, t, u]) => {
                    ascii_digit(h)? * 100 + ascii_digit(t)? * 10 + ascii_digit(u)?
                }
                _ => return None,
            };
            if len > usize::from(step.len) {
                return None;
            }
            let wire = match unit {
                Unit::Byte => len,
                Unit::Nibble => len.div_ceil(2),
                Unit::SignNibble if len > 0 => 1 + (len - 1).div_ceil(2),
                Unit::SignNibble => 0,
            };
            (value_at, len, wire)
        }
        Size::Undefined | Size::General => return None,
    };
    let end = value_at.checked_add(wire)?;
    (end <= input.len()).then_some(Located { value_at, len, end })
}

/// A byte's two BCD digits as a number, if both are digits.
#[inline]
fn bcd_byte(b: u8) -> Option<usize> {
    let (h, l) = (b >> 4, b & 0x0F);
    (h <= 9 && l <= 9).then(|| usize::from(h) * 10 + usize::from(l))
}

#[inline]
fn ascii_digit(b: u8) -> Option<usize> {
    b.is_ascii_digit().then(|| usize::from(b - b'0'))
}

#[cfg(test)]
mod step_tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::spec::LengthType::*;
    use proptest::prelude::*;

    /// Every table line the shortcut may meet: the built-in dialects, their conventions, and
    /// lines no built-in table has (binary and hex prefixes, `x+n`, `z`, unchecked and
    /// right-aligned BCD, GBK text).
    fn lines() -> Vec<FieldSpec> {
        let mut out: Vec<FieldSpec> = [Dialect::cup(), Dialect::iso87b(), Dialect::iso87a()]
            .iter()
            .flat_map(|d| d.field_specs().cloned())
            .collect();
        out.extend(
            crate::tables::CONVENTIONS
                .iter()
                .flat_map(|c| c.fields.iter().cloned()),
        );
        let bcd = |pad, filler, checked| ValueEncoding::Bcd {
            pad,
            filler,
            checked,
        };
        use FieldKind as K;
        use PrefixEncoding as P;
        for (kind, length, prefix, encoding) in [
            (K::Xn, LlVar(9), P::Bcd, bcd(Pad::Left, 0, true)),
            (K::Xn, Fixed(9), P::Bcd, bcd(Pad::Right, 0xF, true)),
            (K::Z, LlVar(37), P::Bcd, bcd(Pad::Right, 0xF, false)),
            (K::Z, LllVar(104), P::Ascii, bcd(Pad::Left, 0, true)),
            (K::N, LlVar(19), P::Bcd, bcd(Pad::Right, 0xF, true)),
            (K::N, Fixed(3), P::Bcd, bcd(Pad::Left, 0, false)),
            (K::N, LllVar(300), P::Binary, ValueEncoding::Ascii),
            (K::B, LlVar(8), P::Binary, ValueEncoding::HexAscii),
            (K::B, LllVar(20), P::Ascii, ValueEncoding::HexAscii),
            (K::B, LlVar(20), P::Bcd, ValueEncoding::Binary),
            (K::Ans, LllVar(40), P::Ascii, ValueEncoding::Ascii),
            (K::Ns, Fixed(4), P::Ascii, ValueEncoding::Ascii),
            (K::Xn, LlVar(9), P::Ascii, ValueEncoding::Ascii),
        ] {
            out.push(FieldSpec::new(48, "test", kind, length, prefix, encoding));
        }
        let mut gbk = FieldSpec::new(43, "gbk", K::Ans, LlVar(40), P::Ascii, ValueEncoding::Ascii);
        gbk.charset = Charset::Gbk;
        out.push(gbk);
        out
    }

    /// Bytes that often make valid prefixes and values: digits, BCD digit pairs, fillers,
    /// printable text, anything.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                b'0'..=b'9',
                0u8..=0x09,
                prop::sample::select(vec![
                    0x12u8, 0x19, 0x99, 0x0F, 0xF0, 0x3D, 0xD2, b'D', b'C', b' '
                ]),
                0x20u8..0x7F,
                any::<u8>(),
            ],
            0..48,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The view's shortcut accepts and locates exactly what the general reading does, and
        /// fails with the same error otherwise.
        #[test]
        fn read_field_is_locate_then_check(input in bytes(), at in 0usize..4, pick in any::<prop::sample::Index>()) {
            let all = lines();
            let spec = pick.get(&all);
            let step = steps_of(&[Some(spec.clone())])[0];
            let general = locate_field(spec, &input, at)
                .and_then(|loc| check_field(spec, &input, loc).map(|()| loc));
            prop_assert_eq!(read_field(spec, step, &input, at), general);
        }
    }

    /// Logical values that often fit a table line: digits, text, track data, anything.
    fn values() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(b'0'..=b'9', 0..40),
            proptest::collection::vec(0x20u8..0x7F, 0..40),
            proptest::collection::vec(prop::sample::select(b"0123456789D=ABCF aZ".to_vec()), 0..40),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The encoder's shortcut writes exactly what the general encoding writes, or nothing
        /// (then the general encoding decides, error included).
        #[test]
        fn fast_encode_writes_what_encode_field_writes(value in values(), fit in any::<bool>(), pick in any::<prop::sample::Index>()) {
            let all = lines();
            let spec = pick.get(&all);
            let step = steps_of(&[Some(spec.clone())])[0];
            // Half the values made the line's length (a fixed length, or at most the
            // maximum), repeating the first byte: the shortcut is then taken often.
            let mut value = value;
            if fit {
                let want = match spec.length {
                    Fixed(n) => n,
                    LlVar(max) | LllVar(max) => value.len().min(max),
                };
                value.resize(want, value.first().copied().unwrap_or(b'0'));
            }
            let mut fast = vec![0xEE];
            let taken = fast_encode(step, &value, &mut fast);
            let mut general = vec![0xEE];
            let result = encode_field(spec, &value, &mut general);
            if taken {
                prop_assert!(result.is_ok());
                prop_assert_eq!(fast, general);
            } else {
                prop_assert_eq!(fast, vec![0xEE]);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Whatever the reading accepts, the step's writing of its logical value is the
        /// general one's.
        #[test]
        fn write_value_writes_what_write_logical_writes(input in bytes(), at in 0usize..4, pick in any::<prop::sample::Index>()) {
            let all = lines();
            let spec = pick.get(&all);
            let step = steps_of(&[Some(spec.clone())])[0];
            if let Ok(loc) = read_field(spec, step, &input, at) {
                let (mut fast, mut general) = (vec![0xEE], vec![0xEE]);
                write_value(step, spec, &input, loc, &mut fast);
                write_logical(spec, &input, loc, &mut general);
                prop_assert_eq!(fast, general);
            }
        }
    }

    #[test]
    fn the_encoder_shortcut_is_taken_for_the_reference_sale() {
        // Every field of the reference sale is written by the shortcut in iso87b.
        let d = Dialect::iso87b();
        let msg = crate::reference::iso87a_sale();
        for (n, value) in msg.fields() {
            let mut out = Vec::new();
            assert!(fast_encode(d.step(n), value, &mut out), "field {n}");
        }
    }

    #[test]
    fn the_shortcut_is_taken_for_the_reference_tables() {
        // Every fixed line has its length, every BCD/ASCII-prefixed one (hex values aside)
        // its prefix, and n/an/ans/b/BCD lines skip the general check.
        for spec in Dialect::iso87b().field_specs() {
            let step = steps_of(&[Some(spec.clone())])[0];
            assert_eq!(
                step.size == Size::Fixed,
                matches!(spec.length, Fixed(_)),
                "field {}",
                spec.number
            );
            if !matches!(spec.length, Fixed(_)) {
                assert!(
                    matches!(step.size, Size::Var { .. }),
                    "field {}",
                    spec.number
                );
            }
            let general = matches!(
                (spec.kind, spec.encoding),
                (FieldKind::Ns | FieldKind::Xn, _) | (FieldKind::Z, ValueEncoding::Ascii)
            );
            assert_eq!(
                step.check == Check::General,
                general,
                "field {}",
                spec.number
            );
        }
    }

    #[test]
    fn eight_bytes_are_track_data_exactly_when_each_byte_is() {
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut w = *b"0D9=AF15";
                w[lane] = b;
                let expected = w
                    .iter()
                    .enumerate()
                    .all(|(i, &c)| char_ok(FieldKind::Z, i, c));
                assert_eq!(
                    track8(u64::from_le_bytes(w)),
                    expected,
                    "lane {lane} byte {b:#04x}"
                );
            }
        }
    }

    #[test]
    fn eight_bytes_are_alphanumeric_exactly_when_each_byte_is() {
        // Every byte value in every lane, the other lanes valid: alnum8 agrees with the class.
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut w = *b"A0z9 Zb5";
                w[lane] = b;
                let expected = w.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' ');
                assert_eq!(
                    alnum8(u64::from_le_bytes(w)),
                    expected,
                    "lane {lane} byte {b:#04x}"
                );
            }
        }
    }
}
