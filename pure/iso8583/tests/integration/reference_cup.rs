//! The hand-assembled reference CUP sale (testdata/cup_sale.md) against the codec.

use smartpos_iso8583::{Dialect, Message, Mti, reference};
use smartpos_types::hex;

fn reference_bytes() -> Vec<u8> {
    let text = include_str!("../../testdata/cup_sale.hex");
    let compact: String = text.split_whitespace().collect();
    // A bad file yields no bytes, and every test below fails on that.
    hex::decode(&compact).unwrap_or_default()
}

#[test]
fn cup_sale_matches_hand_assembled_bytes() {
    let packed = Dialect::cup().pack(&reference::cup_sale()).unwrap();
    assert_eq!(hex::encode(&packed), hex::encode(&reference_bytes()));
}

#[test]
fn cup_sale_unpacks_from_hand_assembled_bytes() {
    let msg = Dialect::cup().unpack(&reference_bytes()).unwrap();
    let mut expected = reference::cup_sale();
    expected.header = Dialect::cup().default_header().to_vec();
    assert_eq!(msg, expected);
    assert_eq!(msg.text(35), Some("6222021234567890123D25122011234567890"));
}

#[test]
fn mac_input_is_mti_to_before_mac() {
    let bytes = reference_bytes();
    let input = Dialect::cup().mac_input(&bytes).unwrap();
    assert_eq!(input, &bytes[11..bytes.len() - 8]);
    assert_eq!(&input[..2], &[0x02, 0x00]);
    let a = Dialect::iso87a().pack(&reference::iso87a_sale()).unwrap();
    let input = Dialect::iso87a().mac_input(&a).unwrap();
    assert_eq!(input, &a[..a.len() - 16]);
    let mut no_mac = reference::cup_sale();
    no_mac.remove(64);
    let packed = Dialect::cup().pack(&no_mac).unwrap();
    assert!(matches!(
        Dialect::cup().mac_input(&packed),
        Err(smartpos_iso8583::DecodeError::Invalid {
            reason: smartpos_iso8583::InvalidReason::MissingMac,
            ..
        })
    ));
}

#[test]
fn mac_must_be_last() {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set(64, [0; 8]).set_text(70, "001");
    let packed = Dialect::iso87b().pack(&m).unwrap();
    assert!(matches!(
        Dialect::iso87b().mac_input(&packed),
        Err(smartpos_iso8583::DecodeError::Invalid {
            reason: smartpos_iso8583::InvalidReason::MissingMac,
            ..
        })
    ));
    m.set(128, [0; 8]);
    let packed = Dialect::iso87b().pack(&m).unwrap();
    assert_eq!(
        Dialect::iso87b().mac_input(&packed).unwrap().len(),
        packed.len() - 8
    );
}

#[test]
fn dump_is_masked_and_names_subfields() {
    let d = Dialect::cup();
    let dump = d.dump(&reference::cup_sale());
    for secret in [
        reference::TEST_PAN,
        "0212345678",
        "D2512",
        "1A2B3C4D",
        "9F2608",
        "0123456789ABCDEF",
    ] {
        assert!(!dump.contains(secret), "dump leaks {secret}:\n{dump}");
    }
    assert!(dump.contains("622202*********0123"), "{dump}");
    assert!(dump.contains("<8 bytes>"), "{dump}");
    assert!(dump.contains("<27 bytes>"), "{dump}");
    assert!(dump.contains("60.2 batch number: 000001"), "{dump}");
    assert!(
        dump.contains("63.1 international card organization code: CUP"),
        "{dump}"
    );
    assert!(
        dump.contains("cup 0200 header=6000030000603100311000"),
        "{dump}"
    );
    let mut with62 = reference::cup_sale();
    with62.set(62, vec![0x55; 24]);
    let dump = d.dump(&with62);
    assert!(
        dump.contains("<24 bytes>") && !dump.contains("5555"),
        "{dump}"
    );
    let debug = format!("{:?}", reference::cup_sale());
    assert!(
        !debug.contains(reference::TEST_PAN) && !debug.contains("1A2B3C4D"),
        "{debug}"
    );
}

#[test]
fn iso87a_sale_json_matches_reference() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/iso87a_sale.json")).unwrap();
    let d = Dialect::iso87a();
    let msg = reference::iso87a_sale();
    assert_eq!(doc["mti"], msg.mti.to_string());
    let fields = doc["fields"].as_object().unwrap();
    assert_eq!(fields.len(), msg.len());
    for (n, value) in msg.fields() {
        assert_eq!(fields[&n.to_string()], d.clear_value(n, value), "field {n}");
    }
}

/// The 1987 reference sale is also valid in the binary dialect (the codec bench packs it in
/// both): the same fields come back after a round trip, and the binary form is shorter.
#[test]
fn iso87a_sale_round_trips_in_iso87b() {
    let msg = reference::iso87a_sale();
    let binary = Dialect::iso87b().pack(&msg).unwrap();
    let ascii = Dialect::iso87a().pack(&msg).unwrap();
    assert!(
        binary.len() < ascii.len(),
        "{} vs {}",
        binary.len(),
        ascii.len()
    );
    assert_eq!(Dialect::iso87b().unpack(&binary).unwrap(), msg);
}

#[test]
fn cup_defines_58_and_59_as_binary_lllvar() {
    // UnionPay POS messages carrying 59 did not decode at all before (issue 20).
    let mut m = reference::cup_sale();
    m.set(58, b"\x01\x02\x03".to_vec())
        .set(59, b"A2001123456789012345678901".to_vec());
    let packed = Dialect::cup().pack(&m).unwrap();
    let text = hex::encode(&packed);
    // LLL prefixes in BCD, the bytes as they are.
    assert!(text.contains("0003010203"), "{text}");
    assert!(text.contains("0026413230303131"), "{text}");
    let back = Dialect::cup().unpack(&packed).unwrap();
    assert_eq!(back.get(59), m.get(59));
    assert_eq!(back.get(58), m.get(58));
    for n in [
        2, 3, 4, 11, 12, 13, 14, 15, 22, 23, 25, 26, 32, 35, 36, 37, 38, 39, 41, 42, 44, 48, 49,
        52, 53, 54, 55, 58, 59, 60, 61, 62, 63, 64,
    ] {
        assert!(Dialect::cup().field(n).is_some(), "cup lacks field {n}");
    }
}
