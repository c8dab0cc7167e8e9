//! DUKPT derivation cost: TDES transaction key (host side, worst case 10 one-bits) and AES
//! working key (initial key + 16-bit-heavy counter + working key).
//! Run with `cargo bench -p smartpos-crypto --bench dukpt`.

#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smartpos_crypto::dukpt::{aes as daes, tdes};
use smartpos_crypto::{AesKey, TdesKey};

fn tdes_transaction_key(c: &mut Criterion) {
    let bdk = TdesKey::from_double(&[
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32,
        0x10,
    ]);
    let ksn = tdes::Ksn::new(&[0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xFF, 0xC0, 0x00])
        .map_err(|e| e.to_string());
    let Ok(ksn) = ksn else { return };
    c.bench_function("tdes_dukpt_transaction_key_10_bits", |b| {
        b.iter(|| tdes::derive_transaction_key(black_box(&bdk), black_box(&ksn)))
    });
    let Ok(ipek) = tdes::ipek(&bdk, &ksn) else {
        return;
    };
    let Ok(base) = tdes::Ksn::new(ksn.base().bytes()) else {
        return;
    };
    // Loading the initial key fills all 21 future-key registers (the terminal's worst case).
    c.bench_function("tdes_dukpt_terminal_load_21_future_keys", |b| {
        b.iter(|| tdes::DukptTdesTerminal::new(black_box(&ipek), black_box(&base)))
    });
}

fn aes_working_key(c: &mut Criterion) {
    let Ok(bdk) = AesKey::new(&[
        0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1,
        0xF1,
    ]) else {
        return;
    };
    let Ok(id) = daes::InitialKeyId::new(&[0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56]) else {
        return;
    };
    c.bench_function("aes_dukpt_pin_key_counter_FFFF0000", |b| {
        b.iter(|| {
            daes::derive_working_key(
                black_box(&bdk),
                black_box(&id),
                black_box(0xFFFF_0000),
                daes::KeyUsage::PinEncryption,
            )
        })
    });
}

criterion_group!(benches, tdes_transaction_key, aes_working_key);
criterion_main!(benches);
