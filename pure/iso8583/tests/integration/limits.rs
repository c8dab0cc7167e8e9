//! Maximum lengths on both sides, Incomplete vs Invalid, secondary bitmap, unknown fields.

use smartpos_iso8583::{DecodeError, Dialect, EncodeError, InvalidReason, Message, Mti};

#[test]
fn max_lengths_enforced_on_encode() {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_text(2, "12345678901234567890");
    for d in [Dialect::cup(), Dialect::iso87b(), Dialect::iso87a()] {
        assert_eq!(
            d.pack(&m),
            Err(EncodeError::FieldTooLong {
                field: 2,
                max: 19,
                got: 20
            })
        );
    }
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set(55, vec![0u8; 256]);
    assert_eq!(
        Dialect::cup().pack(&m),
        Err(EncodeError::FieldTooLong {
            field: 55,
            max: 255,
            got: 256
        })
    );
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set(52, vec![0u8; 7]);
    assert_eq!(
        Dialect::iso87a().pack(&m),
        Err(EncodeError::WrongLength {
            field: 52,
            expected: 8,
            got: 7
        })
    );
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_text(4, "00000000012X");
    assert_eq!(
        Dialect::cup().pack(&m),
        Err(EncodeError::BadCharacter {
            field: 4,
            position: 11
        })
    );
}

#[test]
fn max_lengths_enforced_on_decode() {
    // cup: header, MTI 0200, bitmap with field 2, LL = 20 (BCD 0x20).
    let mut bytes = Dialect::cup().default_header().to_vec();
    bytes.extend_from_slice(&[0x02, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x20]);
    bytes.extend_from_slice(&[0x11; 10]);
    assert_eq!(
        Dialect::cup().unpack(&bytes),
        Err(DecodeError::Invalid {
            field: Some(2),
            offset: 21,
            reason: InvalidReason::TooLong { max: 19, got: 20 }
        })
    );
    // iso87a: field 55 with 512 hex characters (256 bytes) announced.
    let bytes = b"02000000000000000200512";
    assert_eq!(
        Dialect::iso87a().unpack(bytes),
        Err(DecodeError::Invalid {
            field: Some(55),
            offset: 20,
            reason: InvalidReason::TooLong { max: 255, got: 256 }
        })
    );
}

#[test]
fn incomplete_versus_invalid() {
    let d = Dialect::iso87a();
    assert_eq!(
        d.unpack(b"02"),
        Err(DecodeError::Incomplete {
            field: None,
            needed: 2
        })
    );
    assert_eq!(
        d.unpack(b"0200400000000000000016123"),
        Err(DecodeError::Incomplete {
            field: Some(2),
            needed: 13
        })
    );
    assert_eq!(
        d.unpack(b"02x0"),
        Err(DecodeError::Invalid {
            field: None,
            offset: 0,
            reason: InvalidReason::BadMti
        })
    );
    assert_eq!(
        d.unpack(b"0200G000000000000000"),
        Err(DecodeError::Invalid {
            field: None,
            offset: 4,
            reason: InvalidReason::BadBitmap
        })
    );
    assert_eq!(
        d.unpack(b"02000000000000000000X"),
        Err(DecodeError::Invalid {
            field: None,
            offset: 20,
            reason: InvalidReason::TrailingBytes
        })
    );
    // cup: bitmap names field 5, which the cup table does not define.
    let mut bytes = Dialect::cup().default_header().to_vec();
    bytes.extend_from_slice(&[0x02, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        Dialect::cup().unpack(&bytes),
        Err(DecodeError::Invalid {
            field: Some(5),
            offset: 21,
            reason: InvalidReason::UnknownField
        })
    );
}

#[test]
fn secondary_bitmap_set_automatically() {
    let mut m = Message::new(Mti::NETWORK);
    m.set_text(11, "000001").set_text(70, "301");
    let packed = Dialect::iso87a().pack(&m).unwrap();
    assert_eq!(
        &packed[..36],
        b"08008020000000000000"
            .iter()
            .chain(b"0400000000000000")
            .copied()
            .collect::<Vec<_>>()
            .as_slice()
    );
    let back = Dialect::iso87a().unpack(&packed).unwrap();
    assert_eq!(back, m);
    assert!(!back.has(1));
    let b = Dialect::iso87b().pack(&m).unwrap();
    assert_eq!(
        &b[..18],
        &[
            0x08, 0x00, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    assert_eq!(&b[18..], &[0x00, 0x00, 0x01, 0x03, 0x01]);
    // Without fields over 64 there is no secondary bitmap.
    m.remove(70);
    assert_eq!(Dialect::iso87b().pack(&m).unwrap().len(), 2 + 8 + 3);
}

#[test]
fn frame_round_trip_of_reference() {
    use smartpos_iso8583::{frame, reference};
    let body = Dialect::cup().pack(&reference::cup_sale()).unwrap();
    let framed = frame::encode(&body).unwrap();
    assert_eq!(
        frame::decode(&framed).unwrap(),
        Some((&body[..], body.len() + 2))
    );
    assert_eq!(frame::decode(&framed[..framed.len() - 1]).unwrap(), None);
}
