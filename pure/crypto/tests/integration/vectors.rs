//! Checks every vector of `testdata/payment-crypto.json` (sources cited in that file).

use serde_json::Value;
use smartpos_crypto::dukpt::{aes as daes, tdes};
use smartpos_crypto::emv::{self, AcPadding};
use smartpos_crypto::mac::{self, Padding};
use smartpos_crypto::pinblock::{self, PinBlockFormat};
use smartpos_crypto::{AesKey, Pin, TdesKey};
use smartpos_types::Pan;
use smartpos_types::hex::{decode, encode};

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/payment-crypto.json");
    let text = std::fs::read_to_string(path).expect("vectors file");
    serde_json::from_str(&text).expect("vectors JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key}"))
}

fn tk(h: &str) -> TdesKey {
    TdesKey::new(&decode(h).unwrap()).unwrap()
}

fn ak(h: &str) -> AesKey {
    AesKey::new(&decode(h).unwrap()).unwrap()
}

fn zero_pad(data: &[u8]) -> Vec<u8> {
    mac::pad(data, 8, Padding::Method1)
}

#[test]
fn tdes_dukpt_every_transaction() {
    let all = load();
    let v = &all["tdes_dukpt"];
    let bdk = tk(s(v, "bdk"));
    let initial = tdes::Ksn::new(&decode(s(v, "initial_ksn")).unwrap()).unwrap();
    let ipek = tdes::ipek(&bdk, &initial).unwrap();
    assert_eq!(encode(ipek.expose()), s(v, "ipek"));
    let pin = Pin::new(s(v, "pin")).unwrap();
    let pan = Pan::new(s(v, "pan")).unwrap();
    let mac_data = s(v, "mac_data_ascii").as_bytes();
    let mut terminal = tdes::DukptTdesTerminal::new(&ipek, &initial).unwrap();
    let txs = v["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 5);
    let (mut macs, mut datas) = (0, 0);
    for tx in txs {
        let ksn = tdes::Ksn::new(&decode(s(tx, "ksn")).unwrap()).unwrap();
        let host = tdes::derive_transaction_key(&bdk, &ksn).unwrap();
        let term = terminal.next_transaction().unwrap();
        assert_eq!(term.ksn(), &ksn, "terminal KSN sequence");
        assert_eq!(
            encode(host.transaction_key().expose()),
            s(tx, "transaction_key")
        );
        assert_eq!(
            encode(term.transaction_key().expose()),
            s(tx, "transaction_key")
        );

        let block = pinblock::encrypt_tdes(
            &term.pin_key(),
            PinBlockFormat::Iso0,
            &pin,
            Some(&pan),
            &mut pinblock::system_random(),
        )
        .unwrap();
        assert_eq!(encode(block.expose()), s(tx, "encrypted_pin_block"));
        let back = pinblock::decrypt_tdes(
            &host.pin_key(),
            PinBlockFormat::Iso0,
            &decode(s(tx, "encrypted_pin_block")).unwrap(),
            Some(&pan),
        )
        .unwrap();
        assert_eq!(back, pin);

        if let Some(want) = tx.get("request_mac").and_then(Value::as_str) {
            let m = mac::x9_19(&term.mac_request_key(), mac_data, Padding::Method1).unwrap();
            assert_eq!(encode(&m), want);
            let r = mac::x9_19(&host.mac_response_key(), mac_data, Padding::Method1).unwrap();
            assert_eq!(encode(&r), s(tx, "response_mac"));
            assert!(mac::verify(&decode(want).unwrap(), &m));
            macs += 1;
        }
        if let Some(want) = tx.get("data_request_encrypted").and_then(Value::as_str) {
            let d = term
                .data_request_key()
                .encrypt_cbc(&[0; 8], &zero_pad(mac_data))
                .unwrap();
            assert_eq!(encode(&d), want);
            let r = host
                .data_response_key()
                .encrypt_cbc(&[0; 8], &zero_pad(mac_data))
                .unwrap();
            assert_eq!(encode(&r), s(tx, "data_response_encrypted"));
            let clear = host.data_request_key().decrypt_cbc(&[0; 8], &d).unwrap();
            assert_eq!(&clear[..mac_data.len()], mac_data);
            datas += 1;
        }
    }
    assert_eq!(
        (macs, datas),
        (2, 2),
        "every MAC and data vector was checked"
    );
}

#[test]
fn aes_dukpt_every_key_and_cmac() {
    let all = load();
    let v = &all["aes_dukpt"];
    let bdk = ak(s(v, "bdk"));
    let id = daes::InitialKeyId::new(&decode(s(v, "initial_key_id")).unwrap()).unwrap();
    let ik = daes::initial_key(&bdk, &id).unwrap();
    assert_eq!(encode(ik.expose()), s(v, "initial_key"));
    let keys = v["transaction_keys_by_counter"].as_object().unwrap();
    assert_eq!(keys.len(), 13);
    for (counter, want) in keys {
        let c = u32::from_str_radix(counter, 16).unwrap();
        let k = daes::transaction_key(&ik, &id, c).unwrap();
        assert_eq!(
            encode(k.expose()),
            want.as_str().unwrap(),
            "counter {counter}"
        );
    }
    let wk = &v["counter_00000001_working_keys"];
    let tk1 = daes::transaction_key(&ik, &id, 1).unwrap();
    let work = |usage| {
        daes::working_key(&tk1, &id, 1, usage, daes::KeyType::Aes128)
            .map(|k| AesKey::new(k.expose()).unwrap())
            .unwrap()
    };
    let gen_key = work(daes::KeyUsage::MacGeneration);
    let ver_key = work(daes::KeyUsage::MacVerification);
    let pin_key = work(daes::KeyUsage::PinEncryption);
    assert_eq!(encode(gen_key.expose()), s(wk, "mac_generation_0x2000"));
    assert_eq!(encode(ver_key.expose()), s(wk, "mac_verification_0x2001"));
    assert_eq!(encode(pin_key.expose()), s(wk, "pin_encryption_0x1000"));
    let one_call = daes::derive_working_key(&bdk, &id, 1, daes::KeyUsage::PinEncryption).unwrap();
    assert_eq!(one_call.expose(), pin_key.expose());

    let cm = &v["cmac_over_ascii_4012345678909D987"];
    let data = b"4012345678909D987";
    assert_eq!(
        encode(&mac::aes_cmac(&gen_key, data)),
        s(cm, "request_with_0x2000_key")
    );
    assert_eq!(
        encode(&mac::aes_cmac(&ver_key, data)),
        s(cm, "response_with_0x2001_key")
    );
}

#[test]
fn pin_blocks() {
    let all = load();
    let v = &all["pin_blocks"];
    let f0 = &v["format0_clear"];
    let pan = Pan::new(s(f0, "pan")).unwrap();
    let pin = Pin::new(s(f0, "pin")).unwrap();
    let b = pinblock::encode_with_fill(PinBlockFormat::Iso0, &pin, Some(&pan), &[]).unwrap();
    assert_eq!(encode(b.expose()), s(f0, "block"));
    let back = pinblock::decode(
        PinBlockFormat::Iso0,
        &decode(s(f0, "block")).unwrap(),
        Some(&pan),
    )
    .unwrap();
    assert_eq!(back, pin);

    let f4 = &v["format4_decrypt"];
    let key = ak(s(f4, "aes_key"));
    let pan = Pan::new(s(f4, "pan")).unwrap();
    let got =
        pinblock::decrypt_aes(&key, &decode(s(f4, "encrypted_block")).unwrap(), &pan).unwrap();
    assert_eq!(got.expose(), s(f4, "pin"));
}

#[test]
fn macs_and_kcv() {
    let all = load();
    let v = &all["mac"];
    let c = &v["aes_cmac_rfc4493_example2"];
    let m = mac::aes_cmac(&ak(s(c, "key")), &decode(s(c, "data")).unwrap());
    assert_eq!(encode(&m), s(c, "mac"));

    let k = &v["kcv"];
    assert_eq!(encode(&tk(s(k, "key")).kcv()), s(k, "kcv"));

    let r = &v["x9_19_retail"];
    let m = mac::x9_19(
        &tk(s(r, "key")),
        &decode(s(r, "data")).unwrap(),
        Padding::Method2,
    )
    .unwrap();
    assert_eq!(encode(&m), s(r, "mac"));
}

#[test]
fn emv_keys_and_cryptograms() {
    let all = load();
    let v = &all["emv"];
    let a = &v["icc_master_key_option_a"];
    let mk = emv::icc_master_key_option_a(
        &tk(s(a, "imk")),
        &Pan::new(s(a, "pan")).unwrap(),
        s(a, "psn").parse().unwrap(),
    )
    .unwrap();
    assert_eq!(encode(mk.expose()), s(a, "icc_mk"));

    let c = &v["common_session_key"];
    let r: [u8; 8] = decode(s(c, "r")).unwrap().try_into().unwrap();
    let sk = emv::session_key_from_r(&tk(s(c, "icc_mk")), &r).unwrap();
    let want = decode(s(c, "session_key")).unwrap();
    assert_eq!(emv::without_parity(sk.expose()), emv::without_parity(&want));
    let by_atc = emv::common_session_key(&tk(s(c, "icc_mk")), [r[0], r[1]]).unwrap();
    assert_eq!(by_atc.expose(), sk.expose());

    let q = &v["arqc"];
    let sk = tk(s(q, "session_key"));
    let order = [
        "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36",
    ];
    let fields = q["data_in_order"].as_object().unwrap();
    assert_eq!(fields.len(), order.len());
    let mut data = Vec::new();
    for tag in order {
        data.extend(decode(fields[tag].as_str().unwrap()).unwrap());
    }
    let arqc = emv::generate_ac(&sk, &data, AcPadding::Emv).unwrap();
    assert_eq!(encode(&arqc), s(q, "arqc"));
    let visa = emv::generate_ac(&sk, &data, AcPadding::VisaZero).unwrap();
    assert_eq!(encode(&visa), s(q, "arqc_with_visa_zero_padding"));
    assert!(emv::verify_ac(&sk, &data, AcPadding::Emv, &arqc).unwrap());
    assert!(!emv::verify_ac(&sk, &data, AcPadding::Emv, &visa).unwrap());

    let p = &v["arpc_method_1"];
    let arpc = emv::arpc_method1(
        &tk(s(p, "session_key")),
        &decode(s(p, "arqc")).unwrap(),
        &decode(s(p, "arc")).unwrap(),
    )
    .unwrap();
    assert_eq!(encode(&arpc), s(p, "arpc"));
}

#[test]
fn format0_idtech_example() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pinblock.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = &all["format0_idtech"];
    let pin = Pin::new(s(v, "pin")).unwrap();
    let pan = Pan::new(s(v, "pan")).unwrap();
    let block = pinblock::encode_with_fill(PinBlockFormat::Iso0, &pin, Some(&pan), &[]).unwrap();
    assert_eq!(encode(block.expose()), s(v, "clear_block"));
    let back = pinblock::decode(PinBlockFormat::Iso0, block.expose(), Some(&pan)).unwrap();
    assert_eq!(back, pin);
}
