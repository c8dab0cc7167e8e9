//! Reference messages for tests, benches and the demo. **Test data only**: the PAN
//! `6222021234567890123` is a fictitious account number (not a card), the PIN block, ICC data
//! and MAC are made-up bytes, not the result of any key.
//!
//! The packed `cup` form of [`cup_sale`] is assembled by hand, byte by byte, in
//! `pure/iso8583/testdata/cup_sale.md` (checked by the integration tests).

use crate::message::Message;
use crate::wire::Mti;

/// Test PAN of the reference messages (19 digits, exercising BCD padding).
pub const TEST_PAN: &str = "6222021234567890123";

/// A CUP 0200 contact-chip sale with PIN: fields 2 3 4 11 14 22 23 25 26 35 41 42 49 52 53 55
/// 60 63 64, default header.
pub fn cup_sale() -> Message {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_text(2, TEST_PAN)
        .set_text(3, "000000")
        .set_text(4, "000000001234")
        .set_text(11, "000123")
        .set_text(14, "2512")
        .set_text(22, "051")
        .set_text(23, "001")
        .set_text(25, "00")
        .set_text(26, "12")
        .set_text(35, "6222021234567890123D25122011234567890")
        .set_text(41, "12345678")
        .set_text(42, "123456789012345")
        .set_text(49, "156")
        .set(52, [0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0x6F, 0x7A, 0x8B])
        .set_text(53, "2600000000000000")
        .set(55, ICC_DATA)
        .set_text(60, "2200000100050")
        .set_text(63, "CUP")
        .set(64, [0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18]);
    m
}

/// The same content as [`cup_sale`], for the `iso87a` dialect (no header).
pub fn iso87a_sale() -> Message {
    cup_sale()
}

/// ICC data of the reference sale: 9F26 (ARQC), 9F27 (CID), 9F36 (ATC), 95 (TVR).
const ICC_DATA: [u8; 27] = [
    0x9F, 0x26, 0x08, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x9F, 0x27, 0x01, 0x80, 0x9F,
    0x36, 0x02, 0x00, 0x01, 0x95, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dialect;

    #[test]
    fn reference_messages_pack_in_their_dialects() {
        let cup = Dialect::cup().pack(&cup_sale()).unwrap();
        let mut back = Dialect::cup().unpack(&cup).unwrap();
        assert_eq!(back.header, Dialect::cup().default_header());
        back.header.clear();
        assert_eq!(back, cup_sale());
        let a = Dialect::iso87a().pack(&iso87a_sale()).unwrap();
        assert_eq!(&a[..4], b"0200");
        assert_eq!(Dialect::iso87a().unpack(&a).unwrap(), iso87a_sale());
    }
}
