//! Data Object Lists (PDOL `9F38`, CDOL1 `8C`, CDOL2 `8D`, DDOL `9F49`, TDOL `97`): parsing the
//! card's list of (tag, length) requests and building the concatenated data the card asked for.
//!
//! Building follows EMV 4.4 Book 3 §5.4 "Rules for Using a Data Object List (DOL)":
//! - a tag the terminal has no value for, or a constructed tag, gives `length` zero bytes;
//! - a value longer than requested is truncated: numeric (`n`) values lose their *leftmost*
//!   bytes, every other format its *rightmost* bytes;
//! - a value shorter than requested is padded: `n` with leading `00`, `cn` with trailing `FF`
//!   (the `F` nibble padding of compressed numeric), every other format with trailing `00`.
//!
//! A tag that is not in the [dictionary](crate::tags) but has a value in the source is treated
//! as binary. The `cn` rule comes from Book 3 §5.4 itself; a plain "right-pad with zeros for
//! everything but `n`" would turn a short PAN into a different, longer number.

use crate::tags::{self, Format};
use crate::tlv::{InvalidReason, Tag, Tlv, TlvError, find_bytes, read_tag};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// One entry of a DOL: the tag the card asks for and how many bytes it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DolEntry {
    /// The requested data element.
    pub tag: Tag,
    /// Requested length in bytes (at most 255).
    pub len: usize,
}

/// Longest value a DOL entry may request: the length is a single byte.
pub const MAX_DOL_ENTRY_LEN: usize = 255;

/// Parses a DOL: concatenated BER tags, each followed by a **one-byte** length (Book 3 §5.4
/// defines the DOL length as one byte, not a BER length: `81` requests 129 bytes).
/// Padding bytes are not allowed in a DOL (`00`/`FF` cannot start a tag).
pub fn parse_dol(bytes: &[u8]) -> Result<Vec<DolEntry>, TlvError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if matches!(bytes.get(pos), Some(0x00 | 0xFF)) {
            return Err(TlvError::Invalid {
                offset: pos,
                reason: InvalidReason::UnexpectedPadding,
            });
        }
        let (tag, start, after_tag) = read_tag(bytes, pos)?;
        let len = *bytes.get(after_tag).ok_or(TlvError::Incomplete {
            offset: start,
            needed: 1,
        })?;
        out.push(DolEntry {
            tag,
            len: usize::from(len),
        });
        pos = after_tag + 1;
    }
    Ok(out)
}

/// Encodes a DOL (the inverse of [`parse_dol`]). Hand-built entries longer than 255 are
/// clamped to 255: a DOL cannot express more.
pub fn encode_dol(entries: &[DolEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&e.tag.to_bytes());
        out.push(u8::try_from(e.len).unwrap_or(u8::MAX));
    }
    out
}

/// Total length of the data a DOL asks for.
pub fn data_len(entries: &[DolEntry]) -> usize {
    entries.iter().map(|e| e.len).sum()
}

/// Where DOL data comes from: terminal configuration, transaction data, card data read so far.
pub trait TagSource {
    /// The value of `tag`, if known.
    fn value(&self, tag: Tag) -> Option<&[u8]>;
}

impl<S: BuildHasher> TagSource for HashMap<Tag, Vec<u8>, S> {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        self.get(&tag).map(Vec::as_slice)
    }
}

impl TagSource for BTreeMap<Tag, Vec<u8>> {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        self.get(&tag).map(Vec::as_slice)
    }
}

/// A parsed TLV tree is a source: the first primitive with the tag, depth first.
impl TagSource for [Tlv] {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        find_bytes(self, tag)
    }
}

/// Tries `self.0` first, then `self.1` (for example transaction data, then terminal config).
impl<A: TagSource + ?Sized, B: TagSource + ?Sized> TagSource for (&A, &B) {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        self.0.value(tag).or_else(|| self.1.value(tag))
    }
}

/// Builds the data for `dol` from `source` (Book 3 §5.4; see the module documentation).
pub fn build_dol_data<S: TagSource + ?Sized>(dol: &[DolEntry], source: &S) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_len(dol));
    for entry in dol {
        let value = if entry.tag.is_constructed() {
            None
        } else {
            source.value(entry.tag)
        };
        match value {
            Some(v) => fit_into(&mut out, v, entry.len, tags::format_of(entry.tag)),
            None => out.resize(out.len() + entry.len, 0x00),
        }
    }
    out
}

/// `value` fitted to exactly `len` bytes for a data element of `format` (Book 3 §5.4).
pub fn fit_value(value: &[u8], len: usize, format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    fit_into(&mut out, value, len, format);
    out
}

fn fit_into(out: &mut Vec<u8>, value: &[u8], len: usize, format: Format) {
    let have = value.len();
    if format == Format::N {
        if have >= len {
            // Keep the rightmost (least significant) digits.
            out.extend_from_slice(value.get(have - len..).unwrap_or_default());
        } else {
            out.resize(out.len() + (len - have), 0x00);
            out.extend_from_slice(value);
        }
    } else if have >= len {
        out.extend_from_slice(value.get(..len).unwrap_or_default());
    } else {
        out.extend_from_slice(value);
        let pad = if format == Format::Cn { 0xFF } else { 0x00 };
        out.resize(out.len() + (len - have), pad);
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
    fn parses_visa_pdol() {
        let dol = parse_dol(&h("9F66049F02069F03069F1A0295055F2A029A039C019F3704")).unwrap();
        let tags: Vec<(u32, usize)> = dol.iter().map(|e| (e.tag.0, e.len)).collect();
        assert_eq!(
            tags,
            vec![
                (0x9F66, 4),
                (0x9F02, 6),
                (0x9F03, 6),
                (0x9F1A, 2),
                (0x95, 5),
                (0x5F2A, 2),
                (0x9A, 3),
                (0x9C, 1),
                (0x9F37, 4)
            ]
        );
        assert_eq!(data_len(&dol), 33);
        assert_eq!(
            encode_dol(&dol),
            h("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
        );
    }

    #[test]
    fn dol_errors() {
        assert_eq!(
            parse_dol(&h("9F02")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 1
            })
        );
        assert_eq!(
            parse_dol(&h("9F")),
            Err(TlvError::Incomplete {
                offset: 0,
                needed: 1
            })
        );
        assert_eq!(
            parse_dol(&h("9F020600")),
            Err(TlvError::Invalid {
                offset: 3,
                reason: InvalidReason::UnexpectedPadding
            })
        );
        // One-byte lengths: 81 is 129, not a BER long form.
        let dol = parse_dol(&h("9F02819F03FF")).unwrap();
        assert_eq!((dol[0].len, dol[1].len), (129, 255));
        assert_eq!(encode_dol(&dol), h("9F02819F03FF"));
        let big = [DolEntry {
            tag: Tag(0x9F02),
            len: 300,
        }];
        assert_eq!(encode_dol(&big), h("9F02FF"));
        assert_eq!(parse_dol(&[]).unwrap(), vec![]);
    }

    #[test]
    fn fit_rules_per_format() {
        // n: left pad / keep rightmost.
        assert_eq!(fit_value(&h("1234"), 4, Format::N), h("00001234"));
        assert_eq!(fit_value(&h("000000001234"), 2, Format::N), h("1234"));
        // cn: right pad with FF / keep leftmost.
        assert_eq!(fit_value(&h("5413"), 4, Format::Cn), h("5413FFFF"));
        assert_eq!(fit_value(&h("54133300"), 2, Format::Cn), h("5413"));
        // b, an, ans: right pad with 00 / keep leftmost.
        assert_eq!(fit_value(&h("AB"), 3, Format::B), h("AB0000"));
        assert_eq!(fit_value(b"ABCD", 2, Format::Ans), b"AB".to_vec());
        assert_eq!(fit_value(b"AB", 3, Format::An), b"AB\0".to_vec());
        assert_eq!(fit_value(&h("AB"), 1, Format::B), h("AB"));
        assert_eq!(fit_value(&[], 0, Format::N), Vec::<u8>::new());
    }

    #[test]
    fn builds_with_missing_and_constructed_as_zeros() {
        let mut src = BTreeMap::new();
        src.insert(Tag(0x9F02), h("000000001000"));
        src.insert(Tag(0x70), h("AABB"));
        let dol = parse_dol(&h("9F0206DF7F027002")).unwrap();
        assert_eq!(
            build_dol_data(&dol, &src),
            h("000000001000" /* 9F02 */)
                .into_iter()
                .chain(h("00000000"))
                .collect::<Vec<u8>>()
        );
    }

    #[test]
    fn tuple_source_prefers_first() {
        let mut a = HashMap::new();
        a.insert(Tag(0x9C), vec![0x20]);
        let mut b = BTreeMap::new();
        b.insert(Tag(0x9C), vec![0x00]);
        b.insert(Tag(0x9F1A), h("0840"));
        let src = (&a, &b);
        let dol = parse_dol(&h("9C019F1A02")).unwrap();
        assert_eq!(build_dol_data(&dol, &src), h("200840"));
        let tree = vec![Tlv::primitive(Tag(0x9C), vec![0x09])];
        assert_eq!(build_dol_data(&dol, tree.as_slice()), h("090000"));
    }
}
