//! No key, PIN or PAN reaches `Debug`, `Display` or an error message.

use smartpos_crypto::dukpt::tdes;
use smartpos_crypto::pinblock::{self, PinBlockFormat};
use smartpos_crypto::{AesKey, CryptoError, Pin, TdesKey, unwrap_working_key};
use smartpos_types::Pan;

#[test]
fn debug_output_of_secret_types_is_masked() {
    let key = TdesKey::new(&[0x3Cu8; 16]).unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains("3C3C"), "{shown}");
    let aes = AesKey::new(&[0x5Au8; 32]).unwrap();
    assert!(!format!("{aes:?}").contains("5A5A"));
    let pin = Pin::new("987654").unwrap();
    assert!(!format!("{pin:?} {pin}").contains("9876"));
    let keys = tdes::derive_transaction_key(
        &key,
        &tdes::Ksn::new(&[0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0, 1]).unwrap(),
    )
    .unwrap();
    let shown = format!("{keys:?}");
    assert!(shown.contains("Ksn(FFFF9876543210E00001)"));
    assert!(!shown.contains(&smartpos_types::hex::encode(
        keys.transaction_key().expose()
    )));
}

#[test]
fn errors_carry_no_secret() {
    let pan = Pan::new("4761739001010010").unwrap();
    let key = TdesKey::new(&[0x11; 16]).unwrap();
    // A block that decrypts to garbage under this key: error text names fields only.
    for block in [
        [0u8; 8],
        [0xFF; 8],
        [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0],
    ] {
        if let Err(e) = pinblock::decrypt_tdes(&key, PinBlockFormat::Iso0, &block, Some(&pan)) {
            let text = e.to_string();
            assert!(
                !text.contains("4761739001010010") && !text.contains("1111"),
                "{text}"
            );
        }
    }
    let e = Pin::new("12x45678").unwrap_err();
    assert_eq!(e, CryptoError::BadPin { len: 8 });
    assert!(!e.to_string().contains("12x4"));
    let e = unwrap_working_key(&key, &[0x22; 16], &[1, 2, 3]).unwrap_err();
    assert_eq!(e.to_string(), "key check value does not match");
}
