//! Checks every vector of `testdata/sm4.json` (sources cited in that file).

use serde_json::Value;
use smartpos_crypto::Pin;
use smartpos_crypto::mac;
use smartpos_crypto::pinblock;
use smartpos_crypto::sm4::{self, Sm4Key};
use smartpos_types::Pan;
use smartpos_types::hex::{decode, encode};

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sm4.json");
    let text = std::fs::read_to_string(path).expect("vectors file");
    serde_json::from_str(&text).expect("vectors JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key}"))
}

fn key(h: &str) -> Sm4Key {
    Sm4Key::new(&decode(h).unwrap()).unwrap()
}

fn block(h: &str) -> [u8; 16] {
    decode(h).unwrap().try_into().unwrap()
}

#[test]
fn gbt_32907_examples_1_and_2() {
    let all = load();
    let v = &all["gbt32907_appendix_a"];
    let k = key(s(v, "key"));
    let mut b = block(s(v, "plaintext"));
    k.encrypt_block(&mut b);
    assert_eq!(encode(&b), s(v, "example1_ciphertext"));
    let ecb = k.encrypt_ecb(&decode(s(v, "plaintext")).unwrap()).unwrap();
    assert_eq!(encode(&ecb), s(v, "example1_ciphertext"));
    // Example 2: the plaintext encrypted 1,000,000 times (once above).
    let n = v["example2_iterations"].as_u64().unwrap();
    for _ in 1..n {
        k.encrypt_block(&mut b);
    }
    assert_eq!(encode(&b), s(v, "example2_ciphertext"));
}

#[test]
fn working_key_delivery_example() {
    let all = load();
    let v = &all["working_key_delivery"];
    let tmk = key(s(v, "tmk"));
    let enc = decode(s(v, "encrypted_key")).unwrap();
    let cv = decode(s(v, "check_value")).unwrap();
    let got = sm4::unwrap_working_key(&tmk, &enc, &cv).unwrap();
    assert_eq!(encode(got.expose()), s(v, "clear_key"));
    assert_eq!(encode(&got.check_block()[..8]), s(v, "check_value"));
    let (back, kcv) = sm4::wrap_working_key(&tmk, &got);
    assert_eq!(encode(&back), s(v, "encrypted_key"));
    assert_eq!(&kcv[..], &cv[..4]);
}

#[test]
fn pin_block_example() {
    let all = load();
    let v = &all["pin_block"];
    let pin = Pin::new(s(v, "pin")).unwrap();
    let pan = Pan::new(s(v, "pan")).unwrap();
    assert_eq!(
        encode(pinblock::encode_sm4(&pin, &pan).expose()),
        s(v, "clear_block")
    );
    let pik = key(s(v, "pik"));
    let enc = pinblock::encrypt_sm4(&pik, &pin, &pan);
    assert_eq!(encode(enc.expose()), s(v, "encrypted_block"));
    assert_eq!(
        pinblock::decrypt_sm4(&pik, enc.expose(), &pan).unwrap(),
        pin
    );
}

#[test]
fn sm4_pos_mac_examples() {
    let all = load();
    let v = &all["mac"];
    let mak = key(s(v, "mak"));
    let m1 = mac::cup_sm4(&mak, s(v, "data1_ascii").as_bytes());
    assert_eq!(std::str::from_utf8(&m1).unwrap(), s(v, "mac1_ascii"));
    let m2 = mac::cup_sm4(&mak, &decode(s(v, "data2_hex")).unwrap());
    assert_eq!(std::str::from_utf8(&m2).unwrap(), s(v, "mac2_ascii"));
}
