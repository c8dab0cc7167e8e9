//! [`MessageView`]: a message read in place. Decoding checks every field as
//! [`crate::Dialect::unpack`] does, but keeps only where each value lies in the input buffer;
//! values are borrowed from it and typed when asked for ([`FieldRef`]). No heap allocation
//! (text fields in a GBK/GB18030 charset excepted: checking them decodes them).

use crate::codec::{Located, fast_read, relocate, write_logical, write_value};
use crate::dialect::Dialect;
use crate::error::{DecodeError, InvalidReason};
use crate::message::Message;
use crate::spec::{BitmapEncoding, Charset, FieldKind, FieldSpec, MtiEncoding, ValueEncoding};
use crate::wire::Mti;
use std::borrow::Cow;

/// A decoded message whose field values are borrowed from the input.
#[derive(Clone)]
pub struct MessageView<'a> {
    dialect: &'a Dialect,
    input: &'a [u8],
    mti: Mti,
    bitmap: [u8; 16],
    /// Offset of the first field's first wire byte (just after the bitmaps).
    fields_at: u16,
    /// Offset just past each present field, by field number. A field starts where the
    /// previous present one ends; its prefix and value are located again when it is asked
    /// for (they were checked here). u16: a message travels in a frame with a 2-byte length
    /// ([`crate::frame`]), so it is at most 65535 bytes long ([`MessageView`] refuses longer
    /// input). Kept small because the view is filled and returned on every read.
    ends: [u16; 129],
    last: u8,
}

impl std::fmt::Debug for MessageView<'_> {
    /// Field numbers and lengths only (values may be card data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageView")
            .field("mti", &format_args!("{}", self.mti))
            .field("fields", &self.fields().collect::<Vec<_>>())
            .finish()
    }
}

fn too_big(offset: usize) -> DecodeError {
    DecodeError::Invalid {
        field: None,
        offset,
        reason: InvalidReason::TrailingBytes,
    }
}

impl<'a> MessageView<'a> {
    /// Reads `input` with `dialect`: the same checks and errors as [`Dialect::unpack`].
    pub(crate) fn parse(dialect: &'a Dialect, input: &'a [u8]) -> Result<Self, DecodeError> {
        Self::parse_with(dialect, input, |_, _| {})
    }

    /// [`Dialect::unpack`]: the view's reading, the owned values built from the places found
    /// on the way (the view keeps only where each field ends).
    pub(crate) fn unpack(dialect: &'a Dialect, input: &'a [u8]) -> Result<Message, DecodeError> {
        let none = Located {
            value_at: 0,
            len: 0,
            end: 0,
        };
        let mut found = [(0u8, none); 128];
        let (mut count, mut bytes) = (0, 0);
        let view = Self::parse_with(dialect, input, |n, loc| {
            if let Some(slot) = found.get_mut(count) {
                *slot = (n, loc);
                count += 1;
                bytes += loc.len;
            }
        })?;
        let mut msg = Message::with_capacity(view.mti, view.header().to_vec(), count, bytes);
        for &(n, loc) in found.get(..count).unwrap_or_default() {
            if let Some(spec) = dialect.field(n) {
                // Ascending numbers: every push is accepted.
                msg.push_with(n, |out| write_value(dialect.step(n), spec, input, loc, out));
            }
        }
        Ok(msg)
    }

    /// Reads `input`, telling `on_field` where each field lies as it goes.
    fn parse_with(
        dialect: &'a Dialect,
        input: &'a [u8],
        mut on_field: impl FnMut(u8, Located),
    ) -> Result<Self, DecodeError> {
        let need = |from: usize, n: usize| -> Result<&'a [u8], DecodeError> {
            input.get(from..from + n).ok_or(DecodeError::Incomplete {
                field: None,
                needed: (from + n).saturating_sub(input.len()),
            })
        };
        let invalid = |offset, reason| DecodeError::Invalid {
            field: None,
            offset,
            reason,
        };
        if u16::try_from(input.len()).is_err() {
            return Err(too_big(usize::from(u16::MAX)));
        }
        let mut pos = dialect.header_len();
        need(0, pos)?;
        let mut digits = [0u8; 4];
        match dialect.mti_encoding() {
            MtiEncoding::Ascii => digits.copy_from_slice(need(pos, 4)?),
            MtiEncoding::Bcd => {
                for (i, b) in need(pos, 2)?.iter().enumerate() {
                    digits[2 * i] = b'0'.wrapping_add(b >> 4);
                    digits[2 * i + 1] = b'0'.wrapping_add(b & 0x0F);
                }
            }
        }
        let mti = Mti::parse_digits(&digits).ok_or(invalid(pos, InvalidReason::BadMti))?;
        pos += match dialect.mti_encoding() {
            MtiEncoding::Ascii => 4,
            MtiEncoding::Bcd => 2,
        };
        let mut bitmap = [0u8; 16];
        let read_bitmap = |at: usize, into: &mut [u8]| -> Result<usize, DecodeError> {
            match dialect.bitmap_encoding() {
                BitmapEncoding::Binary => {
                    into.copy_from_slice(need(at, 8)?);
                    Ok(8)
                }
                BitmapEncoding::HexAscii => {
                    let raw = need(at, 16)?;
                    for (o, pair) in into.iter_mut().zip(raw.chunks_exact(2)) {
                        let hi = hex_digit(pair[0]);
                        let lo = hex_digit(pair[1]);
                        match (hi, lo) {
                            (Some(h), Some(l)) => *o = (h << 4) | l,
                            _ => return Err(invalid(at, InvalidReason::BadBitmap)),
                        }
                    }
                    Ok(16)
                }
            }
        };
        pos += read_bitmap(pos, &mut bitmap[..8])?;
        if bitmap[0] & 0x80 != 0 {
            pos += read_bitmap(pos, &mut bitmap[8..])?;
        }
        // Offsets fit u16: the input's length does (checked above).
        let short = |x: usize| u16::try_from(x).map_err(|_| too_big(x));
        let mut view = MessageView {
            dialect,
            input,
            mti,
            bitmap,
            fields_at: short(pos)?,
            ends: [0; 129],
            last: 0,
        };
        let primary = u64::from_be_bytes(bitmap_word(&bitmap, 0)) & !(1 << 63);
        let secondary = u64::from_be_bytes(bitmap_word(&bitmap, 8));
        for (base, mut word) in [(0u8, primary), (64u8, secondary)] {
            while word != 0 {
                let z = word.leading_zeros();
                word &= !(1u64 << (63 - z));
                // z < 64: the field number is at most 128.
                let n = base + z as u8 + 1;
                let loc = match fast_read(dialect.step(n), input, pos) {
                    Some(loc) => loc,
                    None => dialect.read_field_slowly(n, input, pos)?,
                };
                on_field(n, loc);
                if let Some(slot) = view.ends.get_mut(usize::from(n)) {
                    // At most the input's length, which fits (checked above).
                    *slot = u16::try_from(loc.end).unwrap_or(u16::MAX);
                }
                pos = loc.end;
                view.last = n;
            }
        }
        if pos != input.len() {
            return Err(invalid(pos, InvalidReason::TrailingBytes));
        }
        Ok(view)
    }

    /// Message type indicator.
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// The header bytes as received.
    pub fn header(&self) -> &'a [u8] {
        self.input
            .get(..self.dialect.header_len())
            .unwrap_or_default()
    }

    /// The whole input.
    pub fn bytes(&self) -> &'a [u8] {
        self.input
    }

    /// Whether field `n` is present.
    pub fn has(&self, n: u8) -> bool {
        (2..=128).contains(&n) && {
            let bit = usize::from(n - 1);
            self.bitmap[bit / 8] & (0x80 >> (bit % 8)) != 0
        }
    }

    /// Present field numbers in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = u8> + '_ {
        set_fields(&self.bitmap)
    }

    /// The last field present (0 if none).
    pub fn last_field(&self) -> u8 {
        self.last
    }

    /// A present field, typed on access.
    pub fn field(&self, n: u8) -> Option<FieldRef<'a>> {
        if !self.has(n) {
            return None;
        }
        let (spec, step) = self.dialect.field_step(n)?;
        let start = self.start_of(n);
        // Located and checked when the view was made: this finds the same place again.
        let loc = relocate(spec, step, self.input, start)?;
        Some(FieldRef {
            spec,
            input: self.input,
            loc,
            start,
        })
    }

    /// Offset of present field `n`'s first wire byte: where the previous present field
    /// ends, or just after the bitmaps for the first one.
    fn start_of(&self, n: u8) -> usize {
        let words = bitmap_words(&self.bitmap);
        // Field k is bit 128 - k of the whole bitmap; the fields below n (2 <= n <= 128)
        // end at bit 0 once shifted right by 129 - n (at most 127).
        let whole = (u128::from(words[0]) << 64) | u128::from(words[1]);
        let below = whole.checked_shr(129 - u32::from(n)).unwrap_or(0);
        if below == 0 {
            return usize::from(self.fields_at);
        }
        // The highest present field below n: n - 1 - (its distance below n - 1).
        let prev = u32::from(n) - 1 - below.trailing_zeros();
        self.ends
            .get(prev as usize)
            .map_or(usize::from(self.fields_at), |&e| usize::from(e))
    }

    /// A field as borrowed text, for fields whose wire bytes are their text (ASCII-encoded
    /// `an`/`ans`/`ns`/`x+n`/`z` fields in the ASCII charset); `None` otherwise or if absent.
    pub fn str(&self, n: u8) -> Option<&'a str> {
        self.field(n).and_then(|f| f.as_str())
    }

    /// The message with owned values, as [`Dialect::unpack`] returns it.
    ///
    /// Two allocations whatever the field count (the field index and one buffer for every
    /// value; a third for a header), besides the decoding of GBK/GB18030 text.
    pub fn to_message(&self) -> Message {
        let (count, bytes) = self
            .located()
            .fold((0, 0), |(c, b), (_, _, loc)| (c + 1, b + loc.len));
        let mut msg = Message::with_capacity(self.mti, self.header().to_vec(), count, bytes);
        for (n, spec, loc) in self.located() {
            // Ascending numbers: every push is accepted.
            msg.push_with(n, |out| write_logical(spec, self.input, loc, out));
        }
        msg
    }

    /// Every present field with its table line and place, in order: each starts where the
    /// previous one ends (no search of the bitmap per field, unlike [`MessageView::field`]).
    fn located(&self) -> impl Iterator<Item = (u8, &'a FieldSpec, Located)> + '_ {
        let mut start = usize::from(self.fields_at);
        let (dialect, input, ends) = (self.dialect, self.input, &self.ends);
        self.fields().filter_map(move |n| {
            let at = start;
            start = ends.get(usize::from(n)).map_or(at, |&e| usize::from(e));
            let (spec, step) = dialect.field_step(n)?;
            relocate(spec, step, input, at).map(|loc| (n, spec, loc))
        })
    }

    /// The bytes a MAC in field `mac_field` covers when it is the last field: from the MTI to
    /// just before the MAC field's first wire byte. `None` if the field is absent or not last.
    pub fn mac_input(&self, mac_field: u8) -> Option<&'a [u8]> {
        self.input.get(self.mac_input_range(mac_field)?)
    }

    /// Where [`MessageView::mac_input`] lies in the input.
    pub fn mac_input_range(&self, mac_field: u8) -> Option<std::ops::Range<usize>> {
        if self.last != mac_field {
            return None;
        }
        let f = self.field(mac_field)?;
        Some(self.dialect.header_len()..f.start)
    }
}

/// Eight bytes of the bitmap from `at`.
fn bitmap_word(bitmap: &[u8; 16], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    if let Some(src) = bitmap.get(at..at + 8) {
        w.copy_from_slice(src);
    }
    w
}

/// The bitmap as two big-endian words, bit 1 (the secondary bitmap's, not a field) cleared.
fn bitmap_words(bitmap: &[u8; 16]) -> [u64; 2] {
    let mut words = [0u64; 2];
    for (w, chunk) in words.iter_mut().zip(bitmap.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_be_bytes(b);
    }
    words[0] &= !(1 << 63);
    words
}

/// The field numbers whose bits are set, 2..=128 in ascending order (bit 1, the secondary
/// bitmap's, is not a field), visiting set bits only.
fn set_fields(bitmap: &[u8; 16]) -> impl Iterator<Item = u8> + use<> {
    bitmap_words(bitmap)
        .into_iter()
        .enumerate()
        .flat_map(|(i, mut w)| {
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let z = w.leading_zeros();
                w &= !(1u64 << (63 - z));
                // z < 64 and i < 2: at most 128.
                Some((i as u32 * 64 + z + 1) as u8)
            })
        })
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// One field of a [`MessageView`]: where it lies, and its value typed on access.
#[derive(Clone, Copy)]
pub struct FieldRef<'a> {
    spec: &'a FieldSpec,
    input: &'a [u8],
    loc: Located,
    start: usize,
}

impl std::fmt::Debug for FieldRef<'_> {
    /// Number and lengths only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldRef")
            .field("number", &self.spec.number)
            .field("len", &self.loc.len)
            .finish()
    }
}

impl<'a> FieldRef<'a> {
    /// The field's table line.
    pub fn spec(&self) -> &'a FieldSpec {
        self.spec
    }

    /// The value's wire bytes (after the length prefix).
    pub fn wire(&self) -> &'a [u8] {
        self.input
            .get(self.loc.value_at..self.loc.end)
            .unwrap_or_default()
    }

    /// The field's wire bytes with its length prefix.
    pub fn wire_with_prefix(&self) -> &'a [u8] {
        self.input.get(self.start..self.loc.end).unwrap_or_default()
    }

    /// Logical length: digits, characters or bytes.
    pub fn len(&self) -> usize {
        self.loc.len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.loc.len == 0
    }

    /// Whether the wire bytes are the logical value (ASCII text, raw binary).
    fn verbatim(&self) -> bool {
        match self.spec.encoding {
            ValueEncoding::Ascii => self.spec.charset == Charset::Ascii || !self.spec.is_text(),
            ValueEncoding::Binary => true,
            _ => false,
        }
    }

    /// The value as borrowed text when its wire bytes are its text (ASCII encoding, ASCII
    /// charset); `None` for BCD, hex, binary and GBK fields (see [`FieldRef::text`]).
    pub fn as_str(&self) -> Option<&'a str> {
        if self.spec.is_text() && self.verbatim() {
            std::str::from_utf8(self.wire()).ok()
        } else {
            None
        }
    }

    /// The raw bytes of a `b` field (binary encoding); `None` otherwise.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        (!self.spec.is_text() && self.verbatim()).then(|| self.wire())
    }

    /// The value as text: borrowed when the wire holds it, built otherwise (BCD digits,
    /// GBK). `None` for `b` fields.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        if !self.spec.is_text() {
            return None;
        }
        if let Some(s) = self.as_str() {
            return Some(Cow::Borrowed(s));
        }
        String::from_utf8(self.to_vec()).ok().map(Cow::Owned)
    }

    /// A numeric value (`n` fields, up to 19 digits) without building its text.
    pub fn to_u64(&self) -> Option<u64> {
        if self.spec.kind != FieldKind::N || self.loc.len == 0 || self.loc.len > 19 {
            return None;
        }
        // At most 19 digits: the value fits a u64 (below 10^19 < 2^64), no overflow.
        let mut n: u64 = 0;
        match self.spec.encoding {
            ValueEncoding::Bcd { pad, .. } => {
                // Digit k of the value is nibble k + skip of the wire (high nibble first).
                let skip = usize::from(self.loc.len % 2 == 1 && pad == crate::spec::Pad::Left);
                let wire = self.wire();
                for k in skip..skip + self.loc.len {
                    let b = *wire.get(k / 2)?;
                    let d = if k % 2 == 0 { b >> 4 } else { b & 0x0F };
                    if d > 9 {
                        return None;
                    }
                    n = n * 10 + u64::from(d);
                }
            }
            ValueEncoding::Ascii => {
                for &c in self.wire() {
                    let d = c.wrapping_sub(b'0');
                    if d > 9 {
                        return None;
                    }
                    n = n * 10 + u64::from(d);
                }
            }
            _ => return None,
        }
        Some(n)
    }

    /// Whether the logical value equals `text`, without building it.
    pub fn eq_text(&self, text: &str) -> bool {
        match self.as_str() {
            Some(s) => s == text,
            None => self.to_vec() == text.as_bytes(),
        }
    }

    /// The logical value, as [`Message::get`] would hold it.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.loc.len);
        write_logical(self.spec, self.input, self.loc, &mut out);
        out
    }
}
