//! Flows across modules: sign-in key delivery, DUKPT terminal ↔ host, CUP MAC verification.

use smartpos_crypto::dukpt::tdes;
use smartpos_crypto::mac::{self, Padding};
use smartpos_crypto::pinblock::{self, PinBlockFormat};
use smartpos_crypto::{Pin, TdesKey, unwrap_working_key, wrap_working_key};
use smartpos_types::Pan;

#[test]
fn sign_in_delivers_working_keys_that_the_terminal_can_use() {
    let tmk = TdesKey::generate(16).unwrap();
    let pik = TdesKey::generate(16).unwrap();
    let mak = TdesKey::generate(8).unwrap();
    let (pik_enc, pik_cv) = wrap_working_key(&tmk, &pik);
    let (mak_enc, mak_cv) = wrap_working_key(&tmk, &mak);
    let t_pik = unwrap_working_key(&tmk, &pik_enc, &pik_cv).unwrap();
    let t_mak = unwrap_working_key(&tmk, &mak_enc, &mak_cv[..3]).unwrap();

    let pan = Pan::new("6222021234567890123").unwrap();
    let pin = Pin::new("246810").unwrap();
    let block = pinblock::encrypt_tdes(
        &t_pik,
        PinBlockFormat::Iso0,
        &pin,
        Some(&pan),
        &mut pinblock::system_random(),
    )
    .unwrap();
    // Host decrypts with its copy.
    let got = pinblock::decrypt_tdes(&pik, PinBlockFormat::Iso0, block.expose(), Some(&pan));
    assert_eq!(got.unwrap(), pin);

    let mab = b"0200 3020048000C00000 000000 000001 ...";
    let terminal_mac = mac::cup_ecb(&t_mak, mab);
    assert!(mac::verify(&mac::cup_ecb(&mak, mab), &terminal_mac));
    let mut tampered = mab.to_vec();
    tampered[5] ^= 1;
    assert!(!mac::verify(&mac::cup_ecb(&mak, &tampered), &terminal_mac));
}

#[test]
fn wrong_tmk_is_caught_by_the_check_value() {
    let tmk = TdesKey::generate(16).unwrap();
    let other = TdesKey::generate(16).unwrap();
    let (enc, cv) = wrap_working_key(&tmk, &TdesKey::generate(16).unwrap());
    assert!(unwrap_working_key(&other, &enc, &cv).is_err());
}

#[test]
fn dukpt_terminal_and_host_agree_on_pin_and_mac() {
    let bdk = TdesKey::generate(16).unwrap();
    let ksn0 = tdes::Ksn::new(&[0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0x00, 0, 0]).unwrap();
    let ipek = tdes::ipek(&bdk, &ksn0).unwrap();
    let mut term = tdes::DukptTdesTerminal::new(&ipek, &ksn0).unwrap();
    let pan = Pan::new("4012345678909").unwrap();
    let pin = Pin::new("1234").unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let keys = term.next_transaction().unwrap();
        assert!(seen.insert(keys.ksn().counter()), "counter reused");
        let block = pinblock::encrypt_tdes(
            &keys.pin_key(),
            PinBlockFormat::Iso3,
            &pin,
            Some(&pan),
            &mut pinblock::system_random(),
        )
        .unwrap();
        let host = tdes::derive_transaction_key(&bdk, keys.ksn()).unwrap();
        let got = pinblock::decrypt_tdes(
            &host.pin_key(),
            PinBlockFormat::Iso3,
            block.expose(),
            Some(&pan),
        );
        assert_eq!(got.unwrap(), pin);
        let m = mac::x9_19(&keys.mac_request_key(), b"msg", Padding::Method1).unwrap();
        let h = mac::x9_19(&host.mac_request_key(), b"msg", Padding::Method1).unwrap();
        assert!(mac::verify(&h, &m));
    }
}
