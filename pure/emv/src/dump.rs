//! Human-readable rendering of TLV trees with card data masked.
//!
//! Masking is on by default everywhere ([`dump`], `Debug`/`Display` of [`Tlv`]); the clear
//! rendering needs [`Masking::Unmasked`] spelled out at the call site. Masked forms:
//! - `5A` PAN: first 6 / last 4 digits (`541333******0434`);
//! - `57`, `9F6B` track 2: masked PAN, separator, nothing else (`476173******0010D****`);
//! - `56` track 1: format code, masked PAN, nothing else (`B541333******0434^****`);
//! - any other sensitive tag (name, discretionary data, PIN data): `****`.

use crate::tags;
use crate::tlv::{Tag, Tlv, TlvValue};
use smartpos_types::hex;
use smartpos_types::secret::mask_digits;
use std::fmt;

/// Whether sensitive values are shown in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// Sensitive values masked (the default).
    Masked,
    /// Everything in clear: only for a developer's explicit request.
    Unmasked,
}

const HIDDEN: &str = "****";

/// A value for display: upper-case hex, or its masked form if the tag is sensitive and
/// `masking` is [`Masking::Masked`].
pub fn render_value(tag: Tag, value: &[u8], masking: Masking) -> String {
    if masking == Masking::Unmasked || !tags::is_sensitive(tag) {
        hex::encode(value)
    } else {
        masked_value(tag, value)
    }
}

/// The masked form of a sensitive value (see the module documentation).
pub fn masked_value(tag: Tag, value: &[u8]) -> String {
    match tag.0 {
        0x5A => {
            let digits = bcd_digits(value);
            match digits.bytes().all(|b| b.is_ascii_digit()) {
                true if !digits.is_empty() => mask_digits(&digits),
                _ => HIDDEN.to_owned(),
            }
        }
        0x57 | 0x9F6B => {
            let digits = bcd_digits(value);
            match smartpos_types::Track2::new(&digits).and_then(|t| t.pan()) {
                Some(pan) => format!("{}D{HIDDEN}", pan.masked()),
                None => HIDDEN.to_owned(),
            }
        }
        0x56 => {
            // Track 1 (ISO/IEC 7813): 'B', PAN, '^', name, '^', expiry, service code, ...
            let pan = value
                .strip_prefix(b"B")
                .and_then(|rest| rest.split(|b| *b == b'^').next())
                .filter(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
                .and_then(|p| std::str::from_utf8(p).ok());
            match pan {
                Some(p) => format!("B{}^{HIDDEN}", mask_digits(p)),
                None => HIDDEN.to_owned(),
            }
        }
        _ => HIDDEN.to_owned(),
    }
}

/// The value as text, for `an`/`ans` tags whose bytes are all printable ASCII.
/// Sensitive tags give `None` unless `masking` is [`Masking::Unmasked`].
pub fn text_value(tag: Tag, value: &[u8], masking: Masking) -> Option<String> {
    if masking == Masking::Masked && tags::is_sensitive(tag) {
        return None;
    }
    let printable = value.iter().all(|b| (0x20..=0x7E).contains(b));
    (tags::format_of(tag).is_text() && printable && !value.is_empty())
        .then(|| value.iter().map(|b| char::from(*b)).collect())
}

/// Hex digits of a `cn`/track value with the trailing `F` padding removed.
fn bcd_digits(value: &[u8]) -> String {
    let mut s = hex::encode(value);
    while s.ends_with('F') {
        s.pop();
    }
    s
}

/// A displayable TLV tree: one object per line, children indented by two spaces.
///
/// ```text
/// 6F File Control Information (FCI) Template
///   84 [14] Dedicated File (DF) Name: 325041592E5359532E4444463031 "2PAY.SYS.DDF01"
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dump<'a> {
    tlvs: &'a [Tlv],
    masking: Masking,
}

/// Renders `tlvs` with sensitive values masked.
pub fn dump(tlvs: &[Tlv]) -> Dump<'_> {
    Dump {
        tlvs,
        masking: Masking::Masked,
    }
}

/// Renders `tlvs` with the given masking.
pub fn dump_with(tlvs: &[Tlv], masking: Masking) -> Dump<'_> {
    Dump { tlvs, masking }
}

impl Dump<'_> {
    fn write(&self, f: &mut fmt::Formatter<'_>, tlvs: &[Tlv], indent: usize) -> fmt::Result {
        for t in tlvs {
            let name = tags::name(t.tag).unwrap_or("?");
            let pad = "  ".repeat(indent);
            match &t.value {
                TlvValue::Constructed(children) => {
                    writeln!(f, "{pad}{} {name}", t.tag)?;
                    self.write(f, children, indent + 1)?;
                }
                TlvValue::Primitive(v) => {
                    let shown = render_value(t.tag, v, self.masking);
                    write!(f, "{pad}{} [{}] {name}: {shown}", t.tag, v.len())?;
                    if let Some(text) = text_value(t.tag, v, self.masking) {
                        write!(f, " {text:?}")?;
                    }
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Dump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, self.tlvs, 0)
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
    fn pan_masked_first6_last4() {
        assert_eq!(
            masked_value(Tag(0x5A), &h("5413330089010434")),
            "541333******0434"
        );
        assert_eq!(
            masked_value(Tag(0x5A), &h("476173900101001F")),
            "476173*****1001"
        );
        assert_eq!(masked_value(Tag(0x5A), &h("12345F")), "*****");
        assert_eq!(masked_value(Tag(0x5A), &h("12AB")), "****");
        assert_eq!(masked_value(Tag(0x5A), &[]), "****");
    }

    #[test]
    fn track2_shows_masked_pan_only() {
        let t2 = h("4761739001010010D22122011143804400000F");
        assert_eq!(masked_value(Tag(0x57), &t2), "476173******0010D****");
        assert_eq!(masked_value(Tag(0x9F6B), &t2), "476173******0010D****");
        assert_eq!(masked_value(Tag(0x57), &h("1234")), "****");
    }

    #[test]
    fn track1_and_names_hidden() {
        let t1 = b"B5413330089010434^MTIP/TEST^2512201";
        assert_eq!(masked_value(Tag(0x56), t1), "B541333******0434^****");
        assert_eq!(masked_value(Tag(0x56), b"garbage"), "****");
        assert_eq!(masked_value(Tag(0x5F20), b"DOE/JOHN"), "****");
        assert_eq!(text_value(Tag(0x5F20), b"DOE/JOHN", Masking::Masked), None);
        assert_eq!(
            text_value(Tag(0x5F20), b"DOE/JOHN", Masking::Unmasked).as_deref(),
            Some("DOE/JOHN")
        );
    }

    #[test]
    fn text_only_for_printable_an_ans() {
        assert_eq!(
            text_value(Tag(0x50), b"VISA", Masking::Masked).as_deref(),
            Some("VISA")
        );
        assert_eq!(text_value(Tag(0x50), &[0x01, 0x41], Masking::Masked), None);
        assert_eq!(text_value(Tag(0x84), b"AB", Masking::Masked), None);
    }

    #[test]
    fn dump_tree_masks() {
        let tree = vec![Tlv::constructed(
            Tag(0x70),
            vec![
                Tlv::primitive(Tag(0x5A), h("5413330089010434")),
                Tlv::primitive(Tag(0x50), b"MC".to_vec()),
            ],
        )];
        let text = dump(&tree).to_string();
        assert_eq!(
            text,
            "70 READ RECORD Response Message Template\n  \
             5A [8] Application Primary Account Number (PAN): 541333******0434\n  \
             50 [2] Application Label: 4D43 \"MC\"\n"
        );
        assert!(
            dump_with(&tree, Masking::Unmasked)
                .to_string()
                .contains("5413330089010434")
        );
        assert_eq!(tree[0].to_string(), text);
    }
}
