//! Typed reading of structured private fields: [`Subfield`]s of a field value by its layout
//! ([`crate::SubfieldSpec`]: text, GBK/GB18030 text, bytes, tag-length-value lists).
//!
//! Parts are typed when read, not when the message is decoded: a host that sends a part the
//! layout does not expect still gets its message read, and the part reads as
//! [`SubValue::Malformed`]. Nothing here copies a part that can be borrowed.

use crate::spec::{Charset, SubfieldFormat, SubfieldSpec, TlvSpec};
use smartpos_types::gb18030::{self, GbCharset};
use smartpos_types::hex;
use std::borrow::Cow;
use std::fmt;

/// One part of a structured field, as its layout types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subfield<'a> {
    /// The layout's name of the part; for a TLV item, the list's name and the item's tag.
    pub name: Cow<'a, str>,
    /// The part's value.
    pub value: SubValue<'a>,
}

/// A typed part of a field value.
#[derive(Clone, PartialEq, Eq)]
pub enum SubValue<'a> {
    /// Text (ASCII borrowed from the field; GBK/GB18030 decoded).
    Text(Cow<'a, str>),
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// Bytes that do not fit the layout (bad GBK, a truncated TLV item, non-text in a text
    /// part): the rest of the field from there.
    Malformed(&'a [u8]),
}

impl fmt::Debug for SubValue<'_> {
    /// Lengths only: parts may hold card or key data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubValue::Text(t) => write!(f, "Text(<{} chars>)", t.chars().count()),
            SubValue::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            SubValue::Malformed(b) => write!(f, "Malformed(<{} bytes>)", b.len()),
        }
    }
}

impl SubValue<'_> {
    /// The value for people: text as text, bytes as upper-case hex, malformed bytes as hex
    /// with a mark.
    pub fn show(&self) -> String {
        match self {
            SubValue::Text(t) => t.to_string(),
            SubValue::Bytes(b) => hex::encode(b),
            SubValue::Malformed(b) => format!("(malformed) {}", hex::encode(b)),
        }
    }
}

fn gb(charset: Charset) -> Option<GbCharset> {
    match charset {
        Charset::Ascii => None,
        Charset::Gbk => Some(GbCharset::Gbk),
        Charset::Gb18030 => Some(GbCharset::Gb18030),
    }
}

/// Reads `value` by its layout: each part in order until the value ends (the last may be
/// short); a TLV part takes the rest. Bytes left after the layout read as `(rest)`.
pub(crate) fn read<'a>(layout: &'a [SubfieldSpec], value: &'a [u8]) -> Vec<Subfield<'a>> {
    let mut out = Vec::new();
    let mut rest = value;
    for sub in layout {
        if rest.is_empty() {
            break;
        }
        let name = Cow::Borrowed(sub.name.as_ref());
        match &sub.format {
            SubfieldFormat::Tlv(tlv) => {
                read_tlv(&sub.name, tlv, rest, &mut out);
                rest = &[];
            }
            format => {
                let cut = match format {
                    // Text counts characters: a UTF-8 logical value (a GBK field's) may hold
                    // several bytes per character.
                    SubfieldFormat::Text(Charset::Ascii) => std::str::from_utf8(rest)
                        .ok()
                        .and_then(|t| t.char_indices().nth(sub.len).map(|(i, _)| i))
                        .unwrap_or(sub.len),
                    _ => sub.len,
                };
                let (part, tail) = rest.split_at(cut.min(rest.len()));
                out.push(Subfield {
                    name,
                    value: typed(format, part),
                });
                rest = tail;
            }
        }
    }
    if !rest.is_empty() && !out.is_empty() {
        out.push(Subfield {
            name: Cow::Borrowed("(rest)"),
            value: typed(&SubfieldFormat::Text(Charset::Ascii), rest),
        });
    }
    out
}

/// One part's bytes as the format types them.
fn typed<'a>(format: &SubfieldFormat, part: &'a [u8]) -> SubValue<'a> {
    match format {
        SubfieldFormat::Text(Charset::Ascii) => match std::str::from_utf8(part) {
            Ok(t) if !t.chars().any(char::is_control) => SubValue::Text(Cow::Borrowed(t)),
            _ => SubValue::Malformed(part),
        },
        SubfieldFormat::Text(cs) => match gb(*cs).and_then(|enc| gb18030::decode(enc, part)) {
            Some(t) => SubValue::Text(Cow::Owned(t)),
            None => SubValue::Malformed(part),
        },
        SubfieldFormat::Binary => SubValue::Bytes(part),
        // A nested list is not a layout a profile can declare (TlvSpec::value).
        SubfieldFormat::Tlv(_) => SubValue::Malformed(part),
    }
}

fn read_tlv<'a>(name: &str, tlv: &'a TlvSpec, mut rest: &'a [u8], out: &mut Vec<Subfield<'a>>) {
    while !rest.is_empty() {
        let head = tlv.tag_len + tlv.length.width();
        let item = rest.get(..head).and_then(|h| {
            let (tag, len) = h.split_at(tlv.tag_len);
            let n = tlv.length.read(len)?;
            let value = rest.get(head..head.checked_add(n)?)?;
            Some((tag, value, head + n))
        });
        let Some((tag, value, used)) = item else {
            out.push(Subfield {
                name: Cow::Owned(format!("{name} (truncated item)")),
                value: SubValue::Malformed(rest),
            });
            return;
        };
        let tag = match std::str::from_utf8(tag) {
            Ok(t) if tlv.tag_text && t.bytes().all(|b| b.is_ascii_graphic()) => t.to_owned(),
            _ => hex::encode(tag),
        };
        out.push(Subfield {
            name: Cow::Owned(format!("{name} {tag}")),
            value: typed(&tlv.value, value),
        });
        rest = rest.get(used..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{TlvLength, TlvSpec};

    fn part(name: &'static str, len: usize, format: SubfieldFormat) -> SubfieldSpec {
        SubfieldSpec {
            name: Cow::Borrowed(name),
            len,
            format,
        }
    }

    fn tlv(length: TlvLength, value: SubfieldFormat) -> SubfieldFormat {
        SubfieldFormat::Tlv(TlvSpec {
            tag_len: 2,
            tag_text: true,
            length,
            value: Box::new(value),
        })
    }

    #[test]
    fn text_gbk_binary_and_tlv_parts_are_typed() {
        let layout = [
            part("a", 3, SubfieldFormat::Text(Charset::Ascii)),
            part("b", 4, SubfieldFormat::Text(Charset::Gbk)),
            part("c", 2, SubfieldFormat::Binary),
            part("d", 0, tlv(TlvLength::Binary(1), SubfieldFormat::Binary)),
        ];
        // "CUP", 银联 in GBK, two bytes, then SM 02 AABB and K1 01 00.
        let mut value = b"CUP".to_vec();
        value.extend_from_slice(&[0xD2, 0xF8, 0xC1, 0xAA, 0x00, 0xFF]);
        value.extend_from_slice(b"SM\x02\xAA\xBBK1\x01\x00");
        let got = read(&layout, &value);
        let shown: Vec<(String, String)> = got
            .iter()
            .map(|s| (s.name.to_string(), s.value.show()))
            .collect();
        assert_eq!(
            shown,
            [
                ("a", "CUP"),
                ("b", "银联"),
                ("c", "00FF"),
                ("d SM", "AABB"),
                ("d K1", "00"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert!(matches!(got[0].value, SubValue::Text(Cow::Borrowed("CUP"))));
        assert!(matches!(got[3].value, SubValue::Bytes(&[0xAA, 0xBB])));
    }

    #[test]
    fn malformed_parts_read_as_malformed_and_never_fail() {
        let layout = [
            part("g", 2, SubfieldFormat::Text(Charset::Gbk)),
            part(
                "t",
                0,
                tlv(TlvLength::Ascii(2), SubfieldFormat::Text(Charset::Ascii)),
            ),
        ];
        // A lone GBK lead byte pair that is not GBK, then an item whose length runs past the end.
        let value = b"\xFF\xFFAB09xyz";
        let got = read(&layout, value);
        assert!(matches!(got[0].value, SubValue::Malformed(_)));
        assert_eq!(got[1].name, "t (truncated item)");
        assert_eq!(got[1].value, SubValue::Malformed(b"AB09xyz"));
        // Text with a control character is not text.
        let text_layout = [part("x", 3, SubfieldFormat::Text(Charset::Ascii))];
        let got = read(&text_layout, b"a\x01b");
        assert!(matches!(got[0].value, SubValue::Malformed(_)));
        // Parts stop where the value ends; bytes past the layout are "(rest)".
        let bin_layout = [part("x", 2, SubfieldFormat::Binary)];
        let got = read(&bin_layout, b"\x01\x02zz");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].name, "(rest)");
        assert!(read(&[], b"abc").is_empty());
        // Debug shows lengths, not values.
        assert_eq!(
            format!("{:?}", SubValue::Bytes(&[1, 2, 3])),
            "Bytes(<3 bytes>)"
        );
    }

    #[test]
    fn tlv_lengths_read_and_write() {
        for (form, n, wire) in [
            (TlvLength::Binary(1), 16, vec![0x10]),
            (TlvLength::Binary(2), 300, vec![0x01, 0x2C]),
            (TlvLength::Bcd(1), 16, vec![0x16]),
            (TlvLength::Bcd(2), 123, vec![0x01, 0x23]),
            (TlvLength::Ascii(3), 42, b"042".to_vec()),
        ] {
            let mut out = Vec::new();
            assert_eq!(form.write(n, &mut out), Some(()));
            assert_eq!(out, wire);
            assert_eq!(form.read(&wire), Some(n));
            assert_eq!(form.width(), wire.len());
        }
        assert_eq!(TlvLength::Binary(1).write(256, &mut Vec::new()), None);
        assert_eq!(TlvLength::Bcd(1).write(100, &mut Vec::new()), None);
        assert_eq!(TlvLength::Ascii(2).write(100, &mut Vec::new()), None);
        assert_eq!(TlvLength::Bcd(1).read(&[0x1A]), None);
        assert_eq!(TlvLength::Ascii(2).read(b"1x"), None);
    }
}
