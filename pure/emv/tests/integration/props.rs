//! Property tests: arbitrary trees round-trip, arbitrary bytes never panic.

use proptest::prelude::*;
use smartpos_emv::tlv::{Limits, encode_all, parse_one, parse_with};
use smartpos_emv::{Tag, Tlv, TlvError, parse, parse_dol};

/// A well-formed tag of 1 to 4 bytes with the given constructed bit. The first byte is never
/// `00` or `FF` (padding).
fn tag(constructed: bool) -> impl Strategy<Value = Tag> {
    let c = if constructed { 0x20u8 } else { 0 };
    prop_oneof![
        // Single byte: class bits, constructed bit, number 1..=30.
        (0u8..4, 1u8..=30).prop_map(move |(class, n)| Tag(u32::from((class << 6) | c | n))),
        // Multi-byte: 1 to 3 subsequent bytes, bit 8 set on all but the last.
        (0u8..4, proptest::collection::vec(any::<u8>(), 1..=3)).prop_filter_map(
            "FF first byte is padding",
            move |(class, rest)| {
                let first = (class << 6) | c | 0x1F;
                if first == 0xFF {
                    return None;
                }
                let mut v = u32::from(first);
                let last = rest.len() - 1;
                for (i, b) in rest.iter().enumerate() {
                    let b = if i == last { b & 0x7F } else { b | 0x80 };
                    v = (v << 8) | u32::from(b);
                }
                Some(Tag(v))
            }
        ),
    ]
}

fn tree() -> impl Strategy<Value = Tlv> {
    let leaf = (tag(false), proptest::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(t, v)| Tlv::primitive(t, v));
    leaf.prop_recursive(6, 64, 6, |inner| {
        (tag(true), proptest::collection::vec(inner, 0..6))
            .prop_map(|(t, children)| Tlv::constructed(t, children))
    })
}

fn depth(t: &Tlv) -> usize {
    1 + t.children().iter().map(depth).max().unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_tags_are_valid(t in tag(false)) {
        prop_assert!(t.is_valid());
        prop_assert!(!t.is_constructed());
    }

    #[test]
    fn encode_then_parse_round_trips(trees in proptest::collection::vec(tree(), 0..4)) {
        let bytes = encode_all(&trees);
        let parsed = parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &trees);
        // And a second encoding is byte-identical (minimal form is canonical).
        prop_assert_eq!(encode_all(&parsed), bytes);
    }

    #[test]
    fn parse_one_consumes_exactly_one(t in tree(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut bytes = t.encode();
        let n = bytes.len();
        bytes.extend_from_slice(&tail);
        let (one, used) = parse_one(&bytes).unwrap();
        prop_assert_eq!(used, n);
        prop_assert_eq!(one, t);
    }

    #[test]
    fn every_strict_prefix_is_incomplete(t in tree()) {
        let bytes = t.encode();
        for cut in 0..bytes.len() {
            match parse_one(&bytes[..cut]) {
                Err(TlvError::Incomplete { offset: 0, needed }) => prop_assert!(needed >= 1),
                other => prop_assert!(false, "cut {} gave {:?}", cut, other),
            }
        }
    }

    #[test]
    fn depth_limit_is_enforced(t in tree()) {
        let bytes = t.encode();
        let d = depth(&t);
        prop_assert!(parse_with(&bytes, Limits::default().with_max_depth(d)).is_ok());
        let shallower = parse_with(&bytes, Limits::default().with_max_depth(d - 1));
        let is_depth_error = matches!(shallower, Err(TlvError::DepthExceeded { .. }));
        prop_assert!(is_depth_error);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(trees) = parse(&bytes) {
            // Whatever parses re-parses to the same tree from its minimal encoding.
            prop_assert_eq!(parse(&encode_all(&trees)).unwrap(), trees);
        }
        let _ = parse_one(&bytes);
        let _ = parse_with(&bytes, Limits::default().with_padding(false).with_max_depth(2));
        let _ = parse_dol(&bytes);
        let _ = smartpos_emv::dump::dump(&parse(&bytes).unwrap_or_default()).to_string();
    }

    #[test]
    fn constructed_heavy_bytes_never_panic(
        bytes in proptest::collection::vec(
            prop_oneof![Just(0x6Fu8), Just(0x70), Just(0x81), Just(0x82), Just(0x9F),
                        Just(0xBF), Just(0x00), Just(0xFF), Just(0x80), any::<u8>()],
            0..256)
    ) {
        let _ = parse(&bytes);
        let _ = parse_dol(&bytes);
    }
}

#[test]
fn deep_nesting_is_rejected_without_stack_overflow() {
    // 40 correctly nested E1 templates around a primitive, built from the inside out.
    let mut nested = vec![0x50, 0x00];
    for _ in 0..40 {
        let mut outer = vec![0xE1];
        let len = nested.len();
        if len < 0x80 {
            outer.push(len as u8);
        } else if len < 0x100 {
            outer.extend_from_slice(&[0x81, len as u8]);
        } else {
            outer.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    assert!(matches!(
        parse(&nested),
        Err(TlvError::DepthExceeded { max: 8, .. })
    ));
    assert!(matches!(
        parse_with(&nested, Limits::default().with_max_depth(usize::MAX)),
        Err(TlvError::DepthExceeded { max: 32, .. })
    ));
    // Many empty templates side by side are fine: width is not depth.
    let flat: Vec<u8> = [0xE1, 0x00].repeat(30_000);
    assert_eq!(parse(&flat).unwrap().len(), 30_000);
}
