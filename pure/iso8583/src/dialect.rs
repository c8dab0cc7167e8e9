//! [`Dialect`]: a field table plus the message layout (header, MTI and bitmap encodings), and the
//! table-driven `pack` / `unpack` / `mac_input` / `dump`.

use crate::codec::{Located, Step, encode_field, fast_encode, general_read, steps_of};
use crate::error::{DecodeError, DialectError, EncodeError, InvalidReason};
use crate::mask;
use crate::message::Message;
use crate::spec::{
    BitmapEncoding, Charset, FieldKind, FieldSpec, LengthType, MtiEncoding, PrefixEncoding,
    SubfieldSpec, ValueEncoding,
};
use crate::tables;
use smartpos_types::hex;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;

/// A host dialect: owned data, so acquirer profiles can build one at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    name: Cow<'static, str>,
    default_header: Vec<u8>,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    /// Indexed by field number (0..=128); 0 and 1 are always `None`.
    fields: Vec<Option<FieldSpec>>,
    /// How [`Dialect::view`] reads each field, derived from `fields` (same index) whenever
    /// they change: decided once here rather than per field per message.
    steps: Box<[Step; 129]>,
    subfields: Vec<(u8, Vec<SubfieldSpec>)>,
}

static CUP: LazyLock<Dialect> = LazyLock::new(|| builtin(tables::cup_layout()));
static ISO87B: LazyLock<Dialect> = LazyLock::new(|| builtin(tables::iso87b_layout()));
static ISO87A: LazyLock<Dialect> = LazyLock::new(|| builtin(tables::iso87a_layout()));

fn builtin(layout: tables::Layout) -> Dialect {
    let tables::Layout {
        name,
        header,
        mti,
        bitmap,
        fields,
        subfields,
    } = layout;
    // Built-in tables are checked by unit tests (`builtin_tables_are_valid`); if one were ever
    // invalid, skipping the validation keeps the codec usable and the test reports it.
    Dialect::new(name, header.to_vec(), mti, bitmap, fields.to_vec())
        .map(|d| d.with_subfields_unchecked(subfields))
        .unwrap_or_else(|_| Dialect {
            name: Cow::Borrowed(name),
            default_header: header.to_vec(),
            mti,
            bitmap,
            steps: steps_of(&index(fields.to_vec())),
            fields: index(fields.to_vec()),
            subfields: Vec::new(),
        })
}

fn index(fields: Vec<FieldSpec>) -> Vec<Option<FieldSpec>> {
    let mut out: Vec<Option<FieldSpec>> = vec![None; 129];
    for f in fields {
        if let Some(slot) = out.get_mut(usize::from(f.number)) {
            *slot = Some(f);
        }
    }
    out
}

impl Dialect {
    /// Builds and validates a dialect from its parts.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        default_header: Vec<u8>,
        mti: MtiEncoding,
        bitmap: BitmapEncoding,
        fields: Vec<FieldSpec>,
    ) -> Result<Dialect, DialectError> {
        let mut seen = [false; 129];
        for f in &fields {
            let field = f.number;
            let n = usize::from(field);
            if !(2..=128).contains(&n) || seen[n] {
                return Err(DialectError::BadNumber { field });
            }
            seen[n] = true;
            let fits = match (f.kind, f.encoding) {
                (
                    FieldKind::N | FieldKind::Z | FieldKind::Xn,
                    ValueEncoding::Bcd { filler, .. },
                ) => {
                    if filler > 0x0F {
                        return Err(DialectError::BadFiller { field });
                    }
                    true
                }
                (FieldKind::B, ValueEncoding::Binary | ValueEncoding::HexAscii) => true,
                (FieldKind::B, _) => false,
                (_, ValueEncoding::Ascii) => true,
                _ => false,
            };
            if !fits {
                return Err(DialectError::EncodingMismatch { field });
            }
            let text_ascii = matches!(f.kind, FieldKind::An | FieldKind::Ans | FieldKind::Ns)
                && f.encoding == ValueEncoding::Ascii;
            if f.charset != Charset::Ascii && !text_ascii {
                return Err(DialectError::CharsetMismatch { field });
            }
            let digits = f.length.prefix_digits();
            if digits > 0 {
                let count = match f.encoding {
                    ValueEncoding::HexAscii => f.length.max().saturating_mul(2),
                    _ => f.length.max(),
                };
                let limit = match (f.prefix, digits) {
                    (PrefixEncoding::Binary, 2) => 255,
                    (PrefixEncoding::Binary, _) => 65535,
                    (_, 2) => 99,
                    _ => 999,
                };
                if count > limit {
                    return Err(DialectError::PrefixTooSmall { field });
                }
            }
        }
        Ok(Dialect {
            name: name.into(),
            default_header,
            mti,
            bitmap,
            steps: steps_of(&index(fields.clone())),
            fields: index(fields),
            subfields: Vec::new(),
        })
    }

    /// Adds subfield layouts (used by [`Dialect::dump`] and [`Dialect::split_subfields`]).
    pub fn with_subfields(mut self, subfields: Vec<(u8, Vec<SubfieldSpec>)>) -> Dialect {
        self.subfields = subfields;
        self
    }

    fn with_subfields_unchecked(self, subfields: &[(u8, &[SubfieldSpec])]) -> Dialect {
        self.with_subfields(subfields.iter().map(|(n, s)| (*n, s.to_vec())).collect())
    }

    /// China UnionPay-style POS dialect (TPDU + header, BCD, subfields in 60/61/63).
    pub fn cup() -> &'static Dialect {
        &CUP
    }

    /// ISO 8583:1987 binary: BCD MTI and numerics, binary bitmaps, ASCII text.
    pub fn iso87b() -> &'static Dialect {
        &ISO87B
    }

    /// ISO 8583:1987 ASCII: everything ASCII, bitmaps and binary fields as hex characters.
    pub fn iso87a() -> &'static Dialect {
        &ISO87A
    }

    /// A built-in dialect by name: `cup`, `iso87b` or `iso87a`.
    pub fn by_name(name: &str) -> Option<&'static Dialect> {
        BuiltInDialect::by_name(name).map(BuiltInDialect::dialect)
    }

    /// The names of the encoding conventions a built-in dialect offers, its default first
    /// (`iso87b`: `jpos`, `smartpos-0.1`); empty for the others.
    pub fn conventions(dialect: &str) -> Vec<&'static str> {
        tables::CONVENTIONS
            .iter()
            .filter(|c| c.dialect == dialect)
            .map(|c| c.name)
            .collect()
    }

    /// This dialect with the lines of a named convention of `base` (a built-in dialect name)
    /// in place of its own; `None` if `base` has no such convention. Other lines, the header,
    /// the name and the subfields are kept.
    pub fn with_convention(&self, base: &str, convention: &str) -> Option<Dialect> {
        let table = tables::CONVENTIONS
            .iter()
            .find(|c| c.dialect == base && c.name == convention)?;
        let mut d = self.clone();
        for line in table.fields {
            if let Some(slot) = d.fields.get_mut(usize::from(line.number)) {
                *slot = Some(line.clone());
            }
        }
        d.steps = steps_of(&d.fields);
        Some(d)
    }

    /// The dialect's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table line of a field.
    pub fn field(&self, n: u8) -> Option<&FieldSpec> {
        self.fields.get(usize::from(n)).and_then(Option::as_ref)
    }

    /// Field `n`'s decoding step (the default step, which takes no shortcut, for an undefined one).
    #[inline(always)]
    pub(crate) fn step(&self, n: u8) -> Step {
        self.steps.get(usize::from(n)).copied().unwrap_or_default()
    }

    /// What the view's shortcut leaves to the general reading of field `n` at `at`: fields
    /// its steps do not cover, every error, and a field the dialect does not define. Out of
    /// line and holding only the dialect, so that the decoder's loop stays small.
    #[cold]
    #[inline(never)]
    pub(crate) fn read_field_slowly(
        &self,
        n: u8,
        input: &[u8],
        at: usize,
    ) -> Result<Located, DecodeError> {
        match self.field(n) {
            Some(spec) => general_read(spec, input, at),
            None => Err(DecodeError::Invalid {
                field: Some(n),
                offset: at,
                reason: InvalidReason::UnknownField,
            }),
        }
    }

    /// The table line of a field and how the view reads it.
    #[inline]
    pub(crate) fn field_step(&self, n: u8) -> Option<(&FieldSpec, Step)> {
        let spec = self.field(n)?;
        Some((
            spec,
            self.steps.get(usize::from(n)).copied().unwrap_or_default(),
        ))
    }

    /// All defined fields in ascending order.
    pub fn field_specs(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }

    /// Header length in bytes (CUP: 11 = 5 TPDU + 6 header; ISO 87: 0).
    pub fn header_len(&self) -> usize {
        self.default_header.len()
    }

    /// The header used when a message has none.
    pub fn default_header(&self) -> &[u8] {
        &self.default_header
    }

    /// How the MTI is written.
    pub fn mti_encoding(&self) -> MtiEncoding {
        self.mti
    }

    /// How bitmaps are written.
    pub fn bitmap_encoding(&self) -> BitmapEncoding {
        self.bitmap
    }

    /// Every subfield layout, by field number.
    pub fn subfield_layouts(&self) -> &[(u8, Vec<SubfieldSpec>)] {
        &self.subfields
    }

    /// The wire bytes of one field (length prefix and value), as [`Dialect::pack`] writes them.
    /// Used for MAC inputs made of selected fields and to size the MAC field.
    pub fn encode_field_value(&self, field: u8, value: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let spec = self
            .field(field)
            .ok_or(EncodeError::UnknownField { field })?;
        let mut out = Vec::new();
        encode_field(spec, value, &mut out)?;
        Ok(out)
    }

    /// Subfield layout of a structured field, if the dialect defines one.
    pub fn subfields(&self, field: u8) -> Option<&[SubfieldSpec]> {
        self.subfields
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, s)| s.as_slice())
    }

    /// Splits a structured field's text into named subfields; stops where the value ends (the
    /// last subfield may be short). Empty if the field has no layout.
    pub fn split_subfields<'a>(&'a self, field: u8, value: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        let mut rest = value;
        for sub in self.subfields(field).unwrap_or_default() {
            if rest.is_empty() {
                break;
            }
            let cut = rest
                .char_indices()
                .nth(sub.len)
                .map_or(rest.len(), |(i, _)| i);
            let (part, tail) = rest.split_at(cut);
            out.push((sub.name.as_ref(), part));
            rest = tail;
        }
        if !rest.is_empty() && !out.is_empty() {
            out.push(("(rest)", rest));
        }
        out
    }

    /// The typed parts of a structured field's logical value, by the dialect's layout for the
    /// field ([`SubfieldSpec`]); empty if the field has none. Never fails: a part that does not
    /// fit its format reads as [`crate::SubValue::Malformed`].
    pub fn subfield_values<'a>(&'a self, field: u8, value: &'a [u8]) -> Vec<crate::Subfield<'a>> {
        crate::subfield::read(self.subfields(field).unwrap_or_default(), value)
    }

    /// Packs a message: header (the message's, or the default if empty), MTI, bitmap(s), fields.
    /// No transport length prefix (see [`crate::frame`]).
    pub fn pack(&self, msg: &Message) -> Result<Vec<u8>, EncodeError> {
        let header = if msg.header.is_empty() {
            &self.default_header
        } else {
            &msg.header
        };
        if header.len() != self.header_len() {
            return Err(EncodeError::HeaderLength {
                expected: self.header_len(),
                got: header.len(),
            });
        }
        if msg.mti.0 > 9999 {
            return Err(EncodeError::BadMti { mti: msg.mti.0 });
        }
        // Field numbers first (1 is the codec's, past 128 there is no bitmap bit), so a bad
        // number is reported before any value.
        let last = msg.fields().next_back().map_or(0, |(n, _)| n);
        for n in [msg.fields().next(), msg.fields().next_back()]
            .into_iter()
            .flatten()
            .map(|(n, _)| n)
        {
            if n <= 1 || n > 128 {
                return Err(match n {
                    1 => EncodeError::ReservedField { field: n },
                    _ => EncodeError::UnknownField { field: n },
                });
            }
        }
        let secondary = last > 64;
        let bitmap_len = if secondary { 16 } else { 8 };
        let mut bitmap = [0u8; 16];
        if secondary {
            bitmap[0] |= 0x80;
        }
        for (n, _) in msg.fields() {
            // 2 <= n <= 128 (checked above): bit 1..=127.
            let bit = usize::from(n - 1);
            if let Some(b) = bitmap.get_mut(bit / 8) {
                *b |= 0x80 >> (bit % 8);
            }
        }
        let bitmap = bitmap.get(..bitmap_len).unwrap_or_default();
        // One buffer, sized once: a value's wire form is at most twice its logical bytes (hex)
        // plus a prefix of at most 3 (GB18030 text, which can grow more, lets it grow).
        let mut out = Vec::with_capacity(
            header.len() + 4 + 2 * bitmap_len + 3 * msg.len() + 2 * msg.value_bytes(),
        );
        out.extend_from_slice(header);
        let m = msg.mti.0;
        // Four decimal digits (m <= 9999 here), each below 10.
        let d = [m / 1000, m / 100 % 10, m / 10 % 10, m % 10].map(|x| x as u8);
        match self.mti {
            MtiEncoding::Ascii => out.extend_from_slice(&d.map(|x| b'0' + x)),
            MtiEncoding::Bcd => out.extend_from_slice(&[(d[0] << 4) | d[1], (d[2] << 4) | d[3]]),
        }
        match self.bitmap {
            BitmapEncoding::Binary => out.extend_from_slice(bitmap),
            BitmapEncoding::HexAscii => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                for &b in bitmap {
                    out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0F)]]);
                }
            }
        }
        for (n, value) in msg.fields() {
            if !fast_encode(self.step(n), value, &mut out) {
                let spec = self
                    .field(n)
                    .ok_or(EncodeError::UnknownField { field: n })?;
                encode_field(spec, value, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Unpacks a message. Never panics; "not enough bytes" is [`DecodeError::Incomplete`],
    /// anything else wrong is [`DecodeError::Invalid`] with the byte offset.
    pub fn unpack(&self, bytes: &[u8]) -> Result<Message, DecodeError> {
        crate::MessageView::unpack(self, bytes)
    }

    /// Reads a message in place: the same checks and errors as [`Dialect::unpack`], but the
    /// field values stay in `bytes` and are typed on access ([`crate::FieldRef`]). No heap
    /// allocation, except to check text fields in a GBK/GB18030 charset.
    #[inline]
    pub fn view<'a>(&'a self, bytes: &'a [u8]) -> Result<crate::MessageView<'a>, DecodeError> {
        crate::MessageView::parse(self, bytes)
    }

    /// The bytes a message MAC covers: from the MTI up to, not including, the MAC value in field
    /// 64 (or 128 when a secondary bitmap is present) — the packed message minus the header and
    /// minus the MAC field's wire bytes. Pack the message with a placeholder MAC (e.g. 8 zero
    /// bytes), compute the MAC over this slice, then set the real MAC and pack again; the bitmap
    /// does not change. The MAC field must be the last field of the message.
    pub fn mac_input<'a>(&self, packed: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        let view = self.view(packed)?;
        let mac_field = if view.fields().any(|n| n > 64) {
            128
        } else {
            64
        };
        if !view.has(mac_field) {
            return Err(DecodeError::Invalid {
                field: Some(mac_field),
                offset: packed.len(),
                reason: InvalidReason::MissingMac,
            });
        }
        let range = view.mac_input_range(mac_field);
        range
            .and_then(|r| packed.get(r))
            .ok_or(DecodeError::Invalid {
                field: Some(mac_field),
                offset: packed.len(),
                reason: InvalidReason::MacNotLast,
            })
    }

    /// A field value for people: masked by the field's rule, text as text, binary as hex.
    pub fn masked_value(&self, field: u8, value: &[u8]) -> String {
        let spec = self.field(field);
        let mask = spec.map_or(mask::default_mask(field), |s| s.mask);
        mask::render(mask, self.text_of(field, value), value)
    }

    /// A field value in clear: text as text, binary (`b`) fields as upper-case hex.
    pub fn clear_value(&self, field: u8, value: &[u8]) -> String {
        match self.text_of(field, value) {
            Some(t) => t.to_owned(),
            None => hex::encode(value),
        }
    }

    /// The inverse of [`Dialect::clear_value`]: hex for `b` fields, the text's bytes otherwise.
    pub fn parse_value(&self, field: u8, s: &str) -> Result<Vec<u8>, EncodeError> {
        let spec = self
            .field(field)
            .ok_or(EncodeError::UnknownField { field })?;
        if spec.is_text() {
            Ok(s.as_bytes().to_vec())
        } else {
            hex::decode(s).map_err(|_| EncodeError::BadHex { field })
        }
    }

    fn text_of<'v>(&self, field: u8, value: &'v [u8]) -> Option<&'v str> {
        let is_text = self.field(field).is_none_or(FieldSpec::is_text);
        if is_text {
            std::str::from_utf8(value).ok()
        } else {
            None
        }
    }

    /// A masked multi-line dump for logs: one line per field with its name and notation, and the
    /// named subfields of structured fields (CUP 60, 61, 63). PAN, track data, expiry, PIN block,
    /// ICC data and field 62 are masked as in [`crate::mask`].
    pub fn dump(&self, msg: &Message) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {} header={}",
            self.name,
            msg.mti,
            hex::encode(if msg.header.is_empty() {
                &self.default_header
            } else {
                &msg.header
            })
        );
        for (n, value) in msg.fields() {
            let (name, notation) = self
                .field(n)
                .map_or((Cow::Borrowed("(undefined)"), String::new()), |s| {
                    (s.name.clone(), s.notation())
                });
            let shown = self.masked_value(n, value);
            let _ = writeln!(out, "  {n:>3} {name} [{notation}]: {shown}");
            let clear = self
                .field(n)
                .is_some_and(|s| s.mask == crate::spec::Mask::Clear);
            if clear {
                for sub in self.subfield_values(n, value) {
                    let _ = writeln!(out, "        {}: {}", sub.name, sub.value.show());
                }
            }
        }
        out
    }
}

/// Logical length limits of a field: (min, max) units.
pub fn length_bounds(spec: &FieldSpec) -> (usize, usize) {
    match spec.length {
        LengthType::Fixed(n) => (n, n),
        LengthType::LlVar(n) | LengthType::LllVar(n) => (0, n),
    }
}

/// The built-in dialects, typed: what the runtime and the tools ask of a configured dialect
/// name (`cup`, `iso87b`, `iso87a`) instead of comparing strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltInDialect {
    /// China UnionPay POS ([`Dialect::cup`]).
    Cup,
    /// ISO 8583:1987 binary ([`Dialect::iso87b`]).
    Iso87b,
    /// ISO 8583:1987 ASCII ([`Dialect::iso87a`]).
    Iso87a,
}

impl BuiltInDialect {
    /// Every built-in dialect.
    pub const ALL: [BuiltInDialect; 3] = [
        BuiltInDialect::Cup,
        BuiltInDialect::Iso87b,
        BuiltInDialect::Iso87a,
    ];

    /// The dialect named `name` (exact, lower case), if it is built in.
    pub fn by_name(name: &str) -> Option<BuiltInDialect> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The name used in configurations and profiles.
    pub fn name(self) -> &'static str {
        match self {
            BuiltInDialect::Cup => "cup",
            BuiltInDialect::Iso87b => "iso87b",
            BuiltInDialect::Iso87a => "iso87a",
        }
    }

    /// Its codec table.
    pub fn dialect(self) -> &'static Dialect {
        match self {
            BuiltInDialect::Cup => Dialect::cup(),
            BuiltInDialect::Iso87b => Dialect::iso87b(),
            BuiltInDialect::Iso87a => Dialect::iso87a(),
        }
    }

    /// Whether it follows China UnionPay's conventions (the CUP POS terminal specification:
    /// Chinese slips and cashier texts by default, UnionPay response codes and field 60).
    pub fn is_unionpay(self) -> bool {
        self == BuiltInDialect::Cup
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Mti;

    #[test]
    fn builtin_tables_are_valid() {
        for layout in [
            tables::cup_layout(),
            tables::iso87b_layout(),
            tables::iso87a_layout(),
        ] {
            let d = Dialect::new(
                layout.name,
                layout.header.to_vec(),
                layout.mti,
                layout.bitmap,
                layout.fields.to_vec(),
            );
            assert!(d.is_ok(), "{}: {:?}", layout.name, d.err());
        }
        assert_eq!(Dialect::iso87a().field_specs().count(), 127);
        assert_eq!(Dialect::iso87b().field_specs().count(), 127);
        assert_eq!(Dialect::cup().header_len(), 11);
        assert_eq!(
            Dialect::by_name("iso87b").map(Dialect::name),
            Some("iso87b")
        );
        assert!(Dialect::by_name("x").is_none());
        for d in BuiltInDialect::ALL {
            assert_eq!(BuiltInDialect::by_name(d.name()), Some(d));
            assert_eq!(
                Dialect::by_name(d.name()).map(Dialect::name),
                Some(d.name())
            );
        }
        assert_eq!(BuiltInDialect::by_name("CUP"), None);
        assert!(BuiltInDialect::Cup.is_unionpay() && !BuiltInDialect::Iso87b.is_unionpay());
    }

    #[test]
    fn table_validation() {
        let bad = FieldSpec::new(
            2,
            "x",
            FieldKind::An,
            LengthType::Fixed(2),
            PrefixEncoding::Bcd,
            ValueEncoding::Binary,
        );
        assert_eq!(
            Dialect::new(
                "t",
                vec![],
                MtiEncoding::Bcd,
                BitmapEncoding::Binary,
                vec![bad]
            ),
            Err(DialectError::EncodingMismatch { field: 2 })
        );
        let big = FieldSpec::new(
            3,
            "x",
            FieldKind::Ans,
            LengthType::LlVar(100),
            PrefixEncoding::Bcd,
            ValueEncoding::Ascii,
        );
        assert_eq!(
            Dialect::new(
                "t",
                vec![],
                MtiEncoding::Bcd,
                BitmapEncoding::Binary,
                vec![big]
            ),
            Err(DialectError::PrefixTooSmall { field: 3 })
        );
        let one = FieldSpec::new(
            1,
            "x",
            FieldKind::B,
            LengthType::Fixed(8),
            PrefixEncoding::Bcd,
            ValueEncoding::Binary,
        );
        assert_eq!(
            Dialect::new(
                "t",
                vec![],
                MtiEncoding::Bcd,
                BitmapEncoding::Binary,
                vec![one]
            ),
            Err(DialectError::BadNumber { field: 1 })
        );
    }

    #[test]
    fn subfields_split() {
        let d = Dialect::cup();
        let parts = d.split_subfields(60, "22000001000501");
        assert_eq!(parts[0], ("60.1 transaction type code", "22"));
        assert_eq!(parts[1].1, "000001");
        assert_eq!(parts.len(), 6);
        assert_eq!(d.split_subfields(60, "2200").len(), 2);
        assert!(d.split_subfields(4, "000000001000").is_empty());
    }

    #[test]
    fn dump_shows_typed_subfields_of_clear_fields() {
        use crate::spec::{SubfieldFormat, TlvLength, TlvSpec};
        let f63 = FieldSpec::new(
            63,
            "private",
            FieldKind::B,
            LengthType::LllVar(99),
            PrefixEncoding::Bcd,
            ValueEncoding::Binary,
        );
        let tlv = SubfieldFormat::Tlv(TlvSpec {
            tag_len: 2,
            tag_text: true,
            length: TlvLength::Binary(1),
            value: Box::new(SubfieldFormat::Binary),
        });
        let d = Dialect::new(
            "t",
            vec![],
            MtiEncoding::Bcd,
            BitmapEncoding::Binary,
            vec![f63.clone()],
        )
        .unwrap()
        .with_subfields(vec![(
            63,
            vec![
                SubfieldSpec::new("63.1 org", 3),
                SubfieldSpec {
                    name: "63.2 data".into(),
                    len: 0,
                    format: tlv,
                },
            ],
        )]);
        let mut m = Message::new(Mti(210));
        m.set(63, b"CUPSM\x02\xAA\xBB".to_vec());
        let dump = d.dump(&m);
        assert!(dump.contains("63.1 org: CUP"), "{dump}");
        assert!(dump.contains("63.2 data SM: AABB"), "{dump}");
        // Masked fields show their length only, and no parts.
        let masked = Dialect::new(
            "t",
            vec![],
            MtiEncoding::Bcd,
            BitmapEncoding::Binary,
            vec![f63.masked(crate::spec::Mask::Length)],
        )
        .unwrap()
        .with_subfields(d.subfield_layouts().to_vec());
        let dump = masked.dump(&m);
        assert!(
            dump.contains("<8 bytes>") && !dump.contains("AABB"),
            "{dump}"
        );
    }

    #[test]
    fn pack_rejects_bad_header_field_one_and_mti() {
        let d = Dialect::cup();
        let mut m = Message::new(Mti(200));
        m.header = vec![0; 3];
        assert_eq!(
            d.pack(&m),
            Err(EncodeError::HeaderLength {
                expected: 11,
                got: 3
            })
        );
        let mut m = Message::new(Mti(200));
        m.set(1, vec![0; 8]);
        assert_eq!(d.pack(&m), Err(EncodeError::ReservedField { field: 1 }));
        assert_eq!(
            d.pack(&Message::new(Mti(12345))),
            Err(EncodeError::BadMti { mti: 12345 })
        );
        let mut m = Message::new(Mti(200));
        m.set_text(5, "000000000001");
        assert_eq!(d.pack(&m), Err(EncodeError::UnknownField { field: 5 }));
    }
}
