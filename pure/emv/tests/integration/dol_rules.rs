//! DOL building with real-shaped DOLs and terminal data (EMV Book 3 §5.4).

use crate::vector;
use smartpos_emv::dol::{DolEntry, TagSource, data_len};
use smartpos_emv::{Tag, Tlv, build_dol_data, parse, parse_dol};
use smartpos_types::hex::decode;
use std::collections::HashMap;

fn h(s: &str) -> Vec<u8> {
    decode(s).unwrap()
}

fn terminal_data() -> HashMap<Tag, Vec<u8>> {
    [
        (0x9F66, "36204000"),
        (0x9F02, "000000001234"),
        (0x9F03, "000000000000"),
        (0x9F1A, "0840"),
        (0x95, "0000000000"),
        (0x5F2A, "0840"),
        (0x9A, "240315"),
        (0x9C, "00"),
        (0x9F37, "A1B2C3D4"),
        (0x9F35, "22"),
        (0x9F34, "1F0302"),
    ]
    .into_iter()
    .map(|(t, v)| (Tag(t), h(v)))
    .collect()
}

#[test]
fn visa_pdol_data_in_order() {
    let dol = parse_dol(&vector(include_str!("../../testdata/visa_pdol.hex"))).unwrap();
    let data = build_dol_data(&dol, &terminal_data());
    assert_eq!(
        smartpos_types::hex::encode(&data),
        "36204000000000001234000000000000084000000000000840240315\
         00A1B2C3D4"
    );
    assert_eq!(data.len(), 33);
}

#[test]
fn mchip_cdol1_with_missing_card_tags_zero_filled() {
    let record = parse(&vector(include_str!(
        "../../testdata/mchip_read_record.hex"
    )))
    .unwrap();
    let cdol1 = parse_dol(smartpos_emv::tlv::find_bytes(&record, Tag(0x8C)).unwrap()).unwrap();
    let data = build_dol_data(&cdol1, &terminal_data());
    assert_eq!(data.len(), data_len(&cdol1));
    // 9F45 (2 bytes) and 9F4C (8 bytes) are card data the terminal does not have yet: zeros.
    let tail = &data[data.len() - 13..];
    assert_eq!(tail, &h("000000000000000000001F0302")[..]);
}

#[test]
fn numeric_amount_truncated_left_and_padded_left() {
    let src = terminal_data();
    let short = [DolEntry {
        tag: Tag(0x9F02),
        len: 4,
    }];
    assert_eq!(build_dol_data(&short, &src), h("00001234"));
    let long = [DolEntry {
        tag: Tag(0x9F02),
        len: 8,
    }];
    assert_eq!(build_dol_data(&long, &src), h("0000000000001234"));
}

#[test]
fn binary_and_text_padded_and_truncated_right() {
    let mut src: HashMap<Tag, Vec<u8>> = HashMap::new();
    src.insert(Tag(0x9F37), h("A1B2C3D4"));
    src.insert(Tag(0x9F4E), b"SHOP 1".to_vec());
    src.insert(Tag(0x5A), h("5413330089010434"));
    let dol = parse_dol(&h("9F37029F4E089F370A5A0A5A04")).unwrap();
    let data = build_dol_data(&dol, &src);
    assert_eq!(
        data,
        [
            h("A1B2"),
            b"SHOP 1\0\0".to_vec(),
            h("A1B2C3D4000000000000"),
            h("5413330089010434FFFF"), // cn: trailing FF
            h("54133300"),             // cn: truncated on the right
        ]
        .concat()
    );
}

#[test]
fn tree_as_source_finds_nested_values() {
    let gpo = parse(&vector(include_str!(
        "../../testdata/qvsdc_gpo_format2.hex"
    )))
    .unwrap();
    assert_eq!(gpo.as_slice().value(Tag(0x9F36)), Some(&h("0027")[..]));
    let dol = parse_dol(&h("9F360282029F2701")).unwrap();
    assert_eq!(build_dol_data(&dol, gpo.as_slice()), h("0027200080"));
    // A constructed tag in a DOL is always zeros, even when the source holds it.
    let wrapped = vec![Tlv::constructed(Tag(0x77), gpo[0].children().to_vec())];
    let dol = parse_dol(&h("7702")).unwrap();
    assert_eq!(build_dol_data(&dol, wrapped.as_slice()), h("0000"));
}
