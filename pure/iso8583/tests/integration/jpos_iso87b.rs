//! iso87b against messages packed by jPOS 2.1.10's `ISO87BPackager` (testdata/iso87b_jpos.md):
//! byte-identical both ways.

use smartpos_iso8583::{Dialect, Message, Mti, reference};
use smartpos_types::hex;

fn golden(text: &str) -> Vec<u8> {
    let compact: String = text.split_whitespace().collect();
    hex::decode(&compact).unwrap_or_default()
}

fn fees() -> Message {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_text(2, "6222021234567890128")
        .set_text(28, "C00001234")
        .set_text(32, "12345")
        .set_text(33, "1234567")
        .set_text(36, "123=45")
        .set_text(97, "D0000000000001234")
        .set_text(99, "123")
        .set_text(100, "12345678901");
    m
}

#[test]
fn reference_sale_packs_as_jpos_does() {
    let jpos = golden(include_str!("../../testdata/iso87b_sale_jpos.hex"));
    let ours = Dialect::iso87b().pack(&reference::iso87a_sale()).unwrap();
    assert_eq!(hex::encode(&ours), hex::encode(&jpos));
    assert_eq!(
        Dialect::iso87b().unpack(&jpos).unwrap(),
        reference::iso87a_sale()
    );
}

#[test]
fn odd_numerics_track_3_and_fees_pack_as_jpos_does() {
    let jpos = golden(include_str!("../../testdata/iso87b_fees_jpos.hex"));
    let ours = Dialect::iso87b().pack(&fees()).unwrap();
    assert_eq!(hex::encode(&ours), hex::encode(&jpos));
    assert_eq!(Dialect::iso87b().unpack(&jpos).unwrap(), fees());
}

#[test]
fn nineteen_digit_pan_is_not_shifted() {
    // The finding: jPOS read our 6222021234567890128 as 0622202123456789012.
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_text(2, "6222021234567890128");
    let packed = Dialect::iso87b().pack(&m).unwrap();
    assert_eq!(
        &packed[10..],
        &[
            0x19, 0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x80
        ]
    );
}

#[test]
fn the_filler_nibble_is_not_checked_on_read() {
    // jPOS never looks at the filler; a host that writes F there is read the same.
    let mut bytes = hex::decode("02004000000000000000196222021234567890128F").unwrap();
    let m = Dialect::iso87b().unpack(&bytes).unwrap();
    assert_eq!(m.text(2), Some("6222021234567890128"));
    let last = bytes.len() - 1;
    bytes[last] = 0x85;
    assert_eq!(
        Dialect::iso87b().unpack(&bytes).unwrap().text(2),
        Some("6222021234567890128")
    );
}

#[test]
fn the_smartpos_0_1_convention_is_still_reachable() {
    let d = Dialect::iso87b()
        .with_convention("iso87b", "smartpos-0.1")
        .unwrap();
    let packed = d.pack(&fees()).unwrap();
    let text = hex::encode(&packed);
    // 19 digits right-aligned behind a 0 nibble; the fee as nine ASCII characters; track 3 BCD.
    assert!(text.contains("1906222021234567890128"), "{text}");
    assert!(text.contains("433030303031323334"), "{text}");
    assert!(text.contains("0006123D45"), "{text}");
    // BCD track data reads its separator back as `D`.
    let mut expected = fees();
    expected.set_text(36, "123D45");
    assert_eq!(d.unpack(&packed).unwrap(), expected);
    // Its filler is checked, as it was.
    let bad = hex::decode("020040000000000000001916222021234567890128").unwrap();
    assert!(matches!(
        d.unpack(&bad),
        Err(smartpos_iso8583::DecodeError::Invalid {
            field: Some(2),
            reason: smartpos_iso8583::InvalidReason::BadPadding,
            ..
        })
    ));
    assert_eq!(Dialect::conventions("iso87b"), vec!["jpos", "smartpos-0.1"]);
    assert!(Dialect::conventions("cup").is_empty());
    assert!(Dialect::cup().with_convention("cup", "jpos").is_none());
}

#[test]
fn a_fee_sign_outside_c_and_d_is_refused() {
    let mut bytes =
        hex::decode(include_str!("../../testdata/iso87b_fees_jpos.hex").trim()).unwrap();
    let at = bytes.iter().position(|&b| b == 0x43).unwrap(); // 'C' of field 28
    bytes[at] = b'X';
    assert!(matches!(
        Dialect::iso87b().unpack(&bytes),
        Err(smartpos_iso8583::DecodeError::Invalid {
            field: Some(28),
            reason: smartpos_iso8583::InvalidReason::BadCharacter,
            ..
        })
    ));
}
