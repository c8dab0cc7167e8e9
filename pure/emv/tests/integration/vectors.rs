//! The `testdata/` responses parsed field by field.

use crate::vector;
use smartpos_emv::dump::{Masking, dump, dump_with};
use smartpos_emv::tags::known;
use smartpos_emv::tlv::{Primitives, encode_all, find, find_bytes};
use smartpos_emv::{Tag, Tlv, parse, parse_dol};
use smartpos_types::hex::decode;

const PPSE: &str = include_str!("../../testdata/ppse_fci.hex");
const GPO: &str = include_str!("../../testdata/qvsdc_gpo_format2.hex");
const RECORD: &str = include_str!("../../testdata/mchip_read_record.hex");
const PDOL: &str = include_str!("../../testdata/visa_pdol.hex");

fn h(s: &str) -> Vec<u8> {
    decode(s).unwrap()
}

#[test]
fn ppse_fci_structure() {
    let bytes = vector(PPSE);
    assert_eq!(bytes.len(), 54);
    let tree = parse(&bytes).unwrap();
    assert_eq!(tree.len(), 1);
    let fci = &tree[0];
    assert_eq!(fci.tag, known::FCI_TEMPLATE);
    assert_eq!(
        fci.find(known::DF_NAME).and_then(Tlv::bytes),
        Some(&b"2PAY.SYS.DDF01"[..])
    );
    let a5 = fci.find(known::FCI_PROPRIETARY).unwrap();
    let bf0c = a5.find(known::FCI_ISSUER_DISCRETIONARY).unwrap();
    let entries: Vec<&Tlv> = bf0c
        .children()
        .iter()
        .filter(|t| t.tag == known::APPLICATION_TEMPLATE)
        .collect();
    assert_eq!(entries.len(), 1);
    let app = entries[0];
    assert_eq!(
        app.find(known::AID).and_then(Tlv::bytes),
        Some(&h("A0000000031010")[..])
    );
    assert_eq!(
        app.find(known::APPLICATION_LABEL).and_then(Tlv::bytes),
        Some(&b"VISA CREDIT"[..])
    );
    assert_eq!(
        app.find(known::PRIORITY).and_then(Tlv::bytes),
        Some(&[1u8][..])
    );
    assert_eq!(find_bytes(&tree, Tag(0x9F2A)), Some(&[3u8][..]));
    assert_eq!(encode_all(&tree), bytes, "minimal encoding round trip");
}

#[test]
fn qvsdc_gpo_format2_fields() {
    let bytes = vector(GPO);
    let tree = parse(&bytes).unwrap();
    assert_eq!(tree.len(), 1);
    assert_eq!(tree[0].tag, known::RESPONSE_FORMAT2);
    let tags: Vec<String> = Primitives::new(&tree).map(|(t, _)| t.to_string()).collect();
    assert_eq!(
        tags,
        [
            "82", "94", "57", "5F20", "5F34", "9F10", "9F26", "9F27", "9F36", "9F6C", "9F6E"
        ]
    );
    assert_eq!(find_bytes(&tree, known::AIP), Some(&h("2000")[..]));
    assert_eq!(find_bytes(&tree, known::AFL), Some(&h("18010100")[..]));
    assert_eq!(find_bytes(&tree, known::CID), Some(&[0x80u8][..]));
    assert_eq!(find_bytes(&tree, known::ATC), Some(&h("0027")[..]));
    assert_eq!(find_bytes(&tree, known::IAD).map(<[u8]>::len), Some(7));
    assert_eq!(
        find_bytes(&tree, known::APPLICATION_CRYPTOGRAM),
        Some(&h("8E19A2B3C4D5E6F7")[..])
    );
    assert_eq!(
        find_bytes(&tree, known::TRACK2_EQUIVALENT),
        Some(&h("4761739001010010D22122011143804400000F")[..])
    );
    assert_eq!(encode_all(&tree), bytes);
}

#[test]
fn gpo_dump_masks_track2_and_name() {
    let tree = parse(&vector(GPO)).unwrap();
    let text = dump(&tree).to_string();
    assert!(
        text.contains("57 [19] Track 2 Equivalent Data: 476173******0010D****"),
        "{text}"
    );
    assert!(text.contains("5F20 [15] Cardholder Name: ****\n"), "{text}");
    assert!(!text.contains("4761739001010010"));
    assert!(!text.contains("CARDHOLDER"));
    let debug = format!("{tree:?}");
    assert!(
        !debug.contains("4761739001010010") && !debug.contains("CARDHOLDER"),
        "{debug}"
    );
    let clear = dump_with(&tree, Masking::Unmasked).to_string();
    assert!(clear.contains("4761739001010010D22122011143804400000F"));
    assert!(clear.contains("\"CARDHOLDER/VISA\""));
}

#[test]
fn mchip_record_fields_and_cdol() {
    let bytes = vector(RECORD);
    assert_eq!(&bytes[..3], &[0x70, 0x81, 0xAC], "long length form");
    let tree = parse(&bytes).unwrap();
    let rec = &tree[0];
    assert_eq!(rec.tag, known::RECORD_TEMPLATE);
    assert_eq!(rec.children().len(), 16);
    assert_eq!(
        rec.find(known::PAN).and_then(Tlv::bytes),
        Some(&h("5413330089010434")[..])
    );
    assert_eq!(
        rec.find(known::EXPIRY_DATE).and_then(Tlv::bytes),
        Some(&h("251231")[..])
    );
    let cdol1 = parse_dol(rec.find(known::CDOL1).and_then(Tlv::bytes).unwrap()).unwrap();
    assert_eq!(cdol1.len(), 12);
    assert_eq!(smartpos_emv::dol::data_len(&cdol1), 43);
    let cdol2 = parse_dol(rec.find(known::CDOL2).and_then(Tlv::bytes).unwrap()).unwrap();
    assert_eq!(
        cdol2.iter().map(|e| (e.tag.0, e.len)).collect::<Vec<_>>(),
        vec![(0x91, 10), (0x8A, 2), (0x95, 5), (0x9F37, 4), (0x9F4C, 8)]
    );
    assert_eq!(encode_all(&tree), bytes);
    let text = dump(&tree).to_string();
    assert!(text.contains("541333******0434"));
    assert!(!text.contains("5413330089010434"));
    assert!(!text.contains("MTIP"));
}

#[test]
fn pdol_from_fci_shape() {
    let dol = parse_dol(&vector(PDOL)).unwrap();
    assert_eq!(dol.len(), 9);
    assert_eq!(smartpos_emv::dol::data_len(&dol), 33);
}

#[test]
fn truncated_vectors_are_incomplete_and_padded_ones_parse() {
    let bytes = vector(GPO);
    for cut in 1..bytes.len() {
        match parse(&bytes[..cut]) {
            Err(smartpos_emv::TlvError::Incomplete { offset: 0, needed }) => {
                assert!(
                    needed >= 1 && needed <= bytes.len() - cut,
                    "cut {cut}: {needed}"
                );
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    // 00 padding after a record (an erased record tail) and FF before it.
    let mut padded = vec![0xFF, 0xFF];
    padded.extend_from_slice(&vector(RECORD));
    padded.extend_from_slice(&[0; 8]);
    assert_eq!(parse(&padded).unwrap(), parse(&vector(RECORD)).unwrap());
    assert!(find(&parse(&padded).unwrap(), known::CDOL1).is_some());
}
