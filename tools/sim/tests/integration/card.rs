//! The simulated cards driven by the real contactless kernel (`smartpos_emv::kernel`), and
//! their cryptograms checked by the issuer-side helpers.

use smartpos_emv::kernel::{
    AID_UNIONPAY_DEBIT, AID_VISA, AidParams, CardOutcome, ContactlessLimits, CryptogramType, Cvm,
    Kernel, KernelConfig, KernelError, KernelPath, KernelTxn, Step, TransportError,
    issuer_response,
};
use smartpos_emv::tlv::{self, Tag, Tlv};
use smartpos_sim::card::{ArqcError, CardProfile, SimCard, TEST_IMK_AC, arpc, verify_arqc};

/// Each APDU takes this long on the virtual clock.
const APDU_MS: u64 = 7;

fn config(cvm_limit: u64) -> KernelConfig {
    KernelConfig {
        limits: ContactlessLimits {
            transaction_limit: Some(100_000),
            cvm_required_limit: cvm_limit,
            floor_limit: 0,
        },
        ..KernelConfig::default()
    }
}

fn txn(amount: u64) -> KernelTxn {
    KernelTxn {
        amount,
        other_amount: 0,
        currency: 156,
        country: 156,
        txn_type: 0x00,
        date: "261122".to_owned(),
        unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
        now_ms: 1_000,
    }
}

/// Drives the kernel with `answer` as the card; returns the result and the number of APDUs.
fn drive(
    mut kernel: Kernel,
    mut answer: impl FnMut(&[u8]) -> Result<Vec<u8>, smartpos_sim::card::CardRemoved>,
) -> (Result<CardOutcome, KernelError>, usize) {
    let mut now = 1_000;
    let mut n = 0;
    while let Some(capdu) = kernel.poll_command() {
        n += 1;
        assert!(n < 100, "kernel does not stop");
        now += APDU_MS;
        match answer(&capdu) {
            Ok(r) => kernel.handle_response(now, &r),
            Err(_) => kernel.handle_transport_error(now, TransportError::CardRemoved),
        }
    }
    let out = kernel
        .poll_outcome()
        .expect("an outcome once the commands stop");
    assert!(kernel.poll_outcome().is_none(), "the outcome is given once");
    (out, n)
}

fn read(
    card: &mut SimCard,
    amount: u64,
    cvm_limit: u64,
) -> (Result<CardOutcome, KernelError>, usize) {
    drive(Kernel::new(config(cvm_limit), txn(amount)), |c| {
        card.transceive(c)
    })
}

fn read_ok(card: &mut SimCard, amount: u64, cvm_limit: u64) -> CardOutcome {
    let (out, _) = read(card, amount, cvm_limit);
    out.unwrap()
}

fn assert_host_accepts(card: &SimCard, out: &CardOutcome) {
    let psn = out.pan_seq.unwrap();
    let arqc = verify_arqc(&TEST_IMK_AC, &out.pan, psn, out.icc_data.as_bytes()).unwrap();
    assert_eq!(arqc, out.cryptogram);
    assert_eq!(out.atc, card.atc().to_be_bytes());
}

#[test]
fn visa_qvsdc_card_gives_an_arqc_the_host_verifies() {
    let mut card = SimCard::new(CardProfile::Visa).unwrap();
    let (out, apdus) = read(&mut card, 1_234, 5_000);
    let out = out.unwrap();
    assert_eq!(apdus, 4, "PPSE, SELECT, GPO, one record");
    assert_eq!(out.path, KernelPath::Quick);
    assert_eq!(out.aid, card.aid());
    assert_eq!(out.app_label, "VISA CREDIT");
    assert_eq!(out.pan.expose(), "4761739001010010");
    assert_eq!(out.track2.as_ref().and_then(|t| t.expiry()), Some("3012"));
    assert_eq!(out.expiry, "3012");
    assert!(!out.expired);
    assert_eq!(out.pan_seq, Some(1));
    assert_eq!(out.cvm, Cvm::NoCvm);
    assert_eq!(out.cryptogram_type, CryptogramType::Arqc);
    assert_eq!(out.card_in_field_ms, 4 * APDU_MS);
    assert_eq!(out.tvr, [0, 0, 0, 0x80, 0], "over the zero floor limit");
    assert_host_accepts(&card, &out);
    assert_eq!(
        out.receipt.cryptogram,
        smartpos_types::hex::encode(&out.cryptogram)
    );
    assert_eq!(out.receipt.aid, "A0000000031010");
}

#[test]
fn mastercard_mchip_card_generates_ac_the_host_verifies() {
    let mut card = SimCard::new(CardProfile::Mastercard).unwrap();
    let (out, apdus) = read(&mut card, 1_234, 5_000);
    let out = out.unwrap();
    assert_eq!(apdus, 6, "PPSE, SELECT, GPO, two records, GENERATE AC");
    assert_eq!(out.path, KernelPath::MChip);
    assert_eq!(out.pan.expose(), "5413330089010434");
    assert_eq!(out.pan_seq, Some(0));
    assert_eq!(out.cvm, Cvm::NoCvm);
    assert_eq!(out.cryptogram_type, CryptogramType::Arqc);
    assert_host_accepts(&card, &out);
    // CVM Results went into CDOL1 and field 55.
    let f55 = tlv::parse(out.icc_data.as_bytes()).unwrap();
    assert_eq!(
        tlv::find_bytes(&f55, Tag(0x9F34)),
        Some(&[0x1F, 0x00, 0x02][..])
    );
}

#[test]
fn unionpay_qpboc_card_with_a_19_digit_pan_uses_option_b() {
    let mut card = SimCard::new(CardProfile::UnionPay).unwrap();
    let out = read_ok(&mut card, 8_800, 30_000);
    assert_eq!(out.aid, [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01]);
    assert_eq!(out.pan.expose().len(), 19);
    assert_eq!(out.path, KernelPath::Quick);
    assert_host_accepts(&card, &out);
}

#[test]
fn expired_card_is_reported_and_still_goes_online() {
    let mut card = SimCard::new(CardProfile::Expired).unwrap();
    let out = read_ok(&mut card, 1_000, 5_000);
    assert!(out.expired);
    assert_eq!(out.expiry, "2001");
    assert_eq!(out.cryptogram_type, CryptogramType::Arqc);
    assert_host_accepts(&card, &out);
}

#[test]
fn pin_card_asks_for_online_pin_even_below_the_cvm_limit() {
    let mut card = SimCard::new(CardProfile::PinRequired).unwrap();
    let out = read_ok(&mut card, 100, 5_000);
    assert_eq!(out.cvm, Cvm::OnlinePin);
    assert_eq!(out.receipt.cvm, "PIN VERIFIED ONLINE");
    assert_eq!(
        out.tsi[0] & 0x40,
        0x40,
        "TSI: cardholder verification performed"
    );
    assert_host_accepts(&card, &out);
}

#[test]
fn cvm_follows_the_cvm_required_limit_per_card() {
    let mut visa = SimCard::new(CardProfile::Visa).unwrap();
    assert_eq!(read_ok(&mut visa, 4_999, 5_000).cvm, Cvm::NoCvm);
    assert_eq!(read_ok(&mut visa, 5_000, 5_000).cvm, Cvm::Signature);
    let mut mc = SimCard::new(CardProfile::Mastercard).unwrap();
    assert_eq!(read_ok(&mut mc, 4_999, 5_000).cvm, Cvm::NoCvm);
    let out = read_ok(&mut mc, 5_000, 5_000);
    assert_eq!(
        out.cvm,
        Cvm::OnlinePin,
        "the M/Chip CVM list has online PIN"
    );
    assert_host_accepts(&mc, &out);
}

#[test]
fn amount_over_the_contactless_limit_is_refused_before_any_apdu() {
    let mut card = SimCard::new(CardProfile::Visa).unwrap();
    let (out, apdus) = read(&mut card, 100_000, 5_000);
    assert_eq!(
        out,
        Err(KernelError::OverLimit {
            amount: 100_000,
            limit: 100_000
        })
    );
    assert_eq!(apdus, 0);
    assert_eq!(card.atc(), 0x0010, "the card computed nothing");
}

#[test]
fn declining_card_gives_an_aac_outcome_to_decline_offline() {
    let mut card = SimCard::new(CardProfile::DeclinesOffline).unwrap();
    let (out, apdus) = read(&mut card, 1_234, 5_000);
    let out = out.expect("a decline is an outcome, not an error");
    assert_eq!(apdus, 4, "PPSE, SELECT, GPO, one record");
    assert_eq!(out.path, KernelPath::Quick);
    assert_eq!(out.cryptogram_type, CryptogramType::Aac);
    assert!(out.declined_offline());
    assert_eq!(out.receipt.cryptogram_type, "AAC");
    // The AAC is a real cryptogram over the same data: the issuer could check it too.
    assert_host_accepts(&card, &out);
    let f55 = tlv::parse(out.icc_data.as_bytes()).unwrap();
    assert_eq!(tlv::find_bytes(&f55, Tag(0x9F27)), Some(&[0x00][..]));
    // It declines every time, at any amount.
    assert!(read_ok(&mut card, 10, 5_000).declined_offline());
    // The ordinary Visa card does not.
    let mut visa = SimCard::new(CardProfile::Visa).unwrap();
    assert!(!read_ok(&mut visa, 1_234, 5_000).declined_offline());
}

#[test]
fn mastercard_cdcvm_card_is_verified_on_the_device_above_the_cvm_limit() {
    let mut card = SimCard::new(CardProfile::MastercardCdcvm).unwrap();
    let out = read_ok(&mut card, 8_000, 5_000);
    assert_eq!(out.path, KernelPath::MChip);
    assert_eq!(
        out.cvm,
        Cvm::ConsumerDevice,
        "not online PIN from its CVM list"
    );
    assert_host_accepts(&card, &out);
    let f55 = tlv::parse(out.icc_data.as_bytes()).unwrap();
    assert_eq!(tlv::find_bytes(&f55, Tag(0x82)), Some(&[0x1B, 0x80][..]));
    assert_eq!(
        tlv::find_bytes(&f55, Tag(0x9F34)),
        Some(&[0x01, 0x00, 0x02][..])
    );
    assert_eq!(read_ok(&mut card, 4_999, 5_000).cvm, Cvm::NoCvm);
    // The plastic Mastercard at the same amount: online PIN.
    let mut plastic = SimCard::new(CardProfile::Mastercard).unwrap();
    assert_eq!(read_ok(&mut plastic, 8_000, 5_000).cvm, Cvm::OnlinePin);
}

/// Default CVM-required limit 50.00; Visa 100.00, UnionPay 1,000.00.
fn per_aid_config() -> KernelConfig {
    let limits = |cvm: u64, max: Option<u64>| ContactlessLimits {
        transaction_limit: max,
        cvm_required_limit: cvm,
        floor_limit: 0,
    };
    KernelConfig {
        aid_params: vec![
            AidParams {
                aid: AID_VISA.to_vec(),
                limits: limits(10_000, Some(30_000)),
            },
            AidParams {
                aid: AID_UNIONPAY_DEBIT[..5].to_vec(),
                limits: limits(100_000, Some(500_000)),
            },
        ],
        ..config(5_000)
    }
}

#[test]
fn cvm_required_limit_per_aid_gives_visa_and_unionpay_different_cvms() {
    let cfg = per_aid_config();
    let read_with = |card: &mut SimCard, amount: u64| {
        drive(Kernel::new(cfg.clone(), txn(amount)), |c| {
            card.transceive(c)
        })
        .0
        .unwrap()
    };
    // 200.00: over Visa's CVM limit, under UnionPay's.
    let mut visa = SimCard::new(CardProfile::Visa).unwrap();
    let out = read_with(&mut visa, 20_000);
    assert_eq!(out.cvm, Cvm::Signature);
    assert_host_accepts(&visa, &out);
    let mut up = SimCard::new(CardProfile::UnionPay).unwrap();
    let out = read_with(&mut up, 20_000);
    assert_eq!(out.cvm, Cvm::NoCvm);
    assert_host_accepts(&up, &out);
    // The Mastercard has no entry: the default limit (50.00) applies.
    let mut mc = SimCard::new(CardProfile::Mastercard).unwrap();
    assert_eq!(read_with(&mut mc, 20_000).cvm, Cvm::OnlinePin);
}

#[test]
fn transaction_limit_of_one_aid_refuses_only_that_card_before_gpo() {
    // 400.00: over Visa's transaction limit (300.00), under the default one (1,000.00) and
    // UnionPay's (5,000.00).
    let cfg = per_aid_config();
    let mut visa = SimCard::new(CardProfile::Visa).unwrap();
    let (out, apdus) = drive(Kernel::new(cfg.clone(), txn(40_000)), |c| {
        visa.transceive(c)
    });
    assert_eq!(
        out,
        Err(KernelError::OverLimit {
            amount: 40_000,
            limit: 30_000
        })
    );
    assert_eq!(apdus, 1, "PPSE only: no SELECT, no GPO");
    assert_eq!(visa.atc(), 0x0010, "the card computed nothing");
    let mut up = SimCard::new(CardProfile::UnionPay).unwrap();
    let (out, _) = drive(Kernel::new(cfg.clone(), txn(40_000)), |c| up.transceive(c));
    assert_eq!(out.unwrap().cvm, Cvm::NoCvm);
    // 2,000.00: over the default limit (1,000.00), under UnionPay's own (5,000.00).
    let (out, _) = drive(Kernel::new(cfg.clone(), txn(200_000)), |c| up.transceive(c));
    assert_eq!(out.unwrap().cvm, Cvm::Signature);
    let mut mc = SimCard::new(CardProfile::Mastercard).unwrap();
    let (out, apdus) = drive(Kernel::new(cfg, txn(200_000)), |c| mc.transceive(c));
    assert_eq!(
        out,
        Err(KernelError::OverLimit {
            amount: 200_000,
            limit: 100_000
        })
    );
    assert_eq!(apdus, 1);
}

#[test]
fn pulled_away_card_gives_card_removed_at_each_step() {
    let steps = [
        Step::SelectPpse,
        Step::SelectAid,
        Step::Gpo,
        Step::ReadRecord,
    ];
    for (n, step) in steps.into_iter().enumerate() {
        let mut card = SimCard::new(CardProfile::PulledAway { after_apdus: n }).unwrap();
        let (out, apdus) = read(&mut card, 1_000, 5_000);
        assert_eq!(out, Err(KernelError::CardRemoved { step }));
        assert_eq!(apdus, n + 1);
    }
    let mut card = SimCard::new(CardProfile::PulledAway { after_apdus: 4 }).unwrap();
    assert!(
        read(&mut card, 1_000, 5_000).0.is_ok(),
        "removed after the last APDU"
    );
}

#[test]
fn missing_ppse_means_not_supported() {
    let mut card = SimCard::new(CardProfile::Visa).unwrap();
    let kernel = Kernel::new(config(5_000), txn(1_000));
    let (out, apdus) = drive(kernel, |c| {
        if c.get(5..19) == Some(&b"2PAY.SYS.DDF01"[..]) {
            Ok(vec![0x6A, 0x82])
        } else {
            card.transceive(c)
        }
    });
    assert_eq!(
        out,
        Err(KernelError::NotSupported {
            step: Step::SelectPpse,
            sw: 0x6A82
        })
    );
    assert_eq!(apdus, 1);
}

#[test]
fn unsupported_aid_means_not_supported() {
    let mut card = SimCard::new(CardProfile::UnionPay).unwrap();
    let cfg = KernelConfig {
        supported_aids: vec![smartpos_emv::kernel::AID_VISA.to_vec()],
        ..config(5_000)
    };
    let (out, _) = drive(Kernel::new(cfg, txn(1_000)), |c| card.transceive(c));
    assert_eq!(
        out,
        Err(KernelError::NotSupported {
            step: Step::SelectPpse,
            sw: 0x9000
        })
    );
}

#[test]
fn wrong_issuer_key_is_rejected() {
    let mut imk = TEST_IMK_AC;
    imk[0] ^= 0x02;
    for profile in [
        CardProfile::Visa,
        CardProfile::Mastercard,
        CardProfile::UnionPay,
    ] {
        let mut card = SimCard::with_imk(profile, &imk).unwrap();
        let out = read_ok(&mut card, 1_000, 5_000);
        assert_eq!(
            verify_arqc(
                &TEST_IMK_AC,
                &out.pan,
                out.pan_seq.unwrap(),
                out.icc_data.as_bytes()
            ),
            Err(ArqcError::Mismatch)
        );
        assert!(
            verify_arqc(
                &imk,
                &out.pan,
                out.pan_seq.unwrap(),
                out.icc_data.as_bytes()
            )
            .is_ok()
        );
    }
}

#[test]
fn tampered_field_55_is_rejected() {
    let mut card = SimCard::new(CardProfile::Visa).unwrap();
    let out = read_ok(&mut card, 1_000, 5_000);
    let mut tlvs = tlv::parse(out.icc_data.as_bytes()).unwrap();
    for t in &mut tlvs {
        if t.tag == Tag(0x9F02) {
            *t = Tlv::primitive(Tag(0x9F02), vec![0, 0, 0, 0, 0x99, 0x00]);
        }
    }
    let forged = tlv::encode_all(&tlvs);
    assert_eq!(
        verify_arqc(&TEST_IMK_AC, &out.pan, 1, &forged),
        Err(ArqcError::Mismatch)
    );
    // Another PSN is another card key.
    assert_eq!(
        verify_arqc(&TEST_IMK_AC, &out.pan, 2, out.icc_data.as_bytes()),
        Err(ArqcError::Mismatch)
    );
    let without_atc: Vec<Tlv> = tlvs.into_iter().filter(|t| t.tag != Tag(0x9F36)).collect();
    assert_eq!(
        verify_arqc(&TEST_IMK_AC, &out.pan, 1, &tlv::encode_all(&without_atc)),
        Err(ArqcError::MissingTag { tag: 0x9F36 })
    );
    assert_eq!(
        verify_arqc(&TEST_IMK_AC, &out.pan, 1, &[0x9F]),
        Err(ArqcError::Malformed)
    );
}

#[test]
fn field_55_holds_no_card_number_and_atc_advances() {
    let mut card = SimCard::new(CardProfile::Mastercard).unwrap();
    let first = read_ok(&mut card, 1_000, 5_000);
    let second = read_ok(&mut card, 1_000, 5_000);
    assert_eq!(
        u16::from_be_bytes(second.atc),
        u16::from_be_bytes(first.atc) + 1
    );
    assert_ne!(first.cryptogram, second.cryptogram);
    assert_host_accepts(&card, &second);
    let f55 = tlv::parse(second.icc_data.as_bytes()).unwrap();
    for tag in [0x5A, 0x57, 0x5F20, 0x5F24] {
        assert!(
            tlv::find_bytes(&f55, Tag(tag)).is_none(),
            "{tag:X} in field 55"
        );
    }
    let debug = format!("{second:?}");
    assert!(!debug.contains("5413330089010434"), "{debug}");
}

#[test]
fn arpc_from_the_host_reaches_the_kernel_issuer_data() {
    let mut card = SimCard::new(CardProfile::Visa).unwrap();
    let out = read_ok(&mut card, 1_000, 5_000);
    let arqc = verify_arqc(&TEST_IMK_AC, &out.pan, 1, out.icc_data.as_bytes()).unwrap();
    let a = arpc(&TEST_IMK_AC, &out.pan, 1, out.atc, arqc, *b"00").unwrap();
    let mut v = a.to_vec();
    v.extend_from_slice(b"00");
    let response55 = Tlv::primitive(Tag(0x91), v).encode();
    let issuer = issuer_response(&response55).unwrap();
    assert_eq!(issuer.arpc_method1(), Some((a, *b"00")));
}

/// A tiny deterministic generator (xorshift64*): the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Replaces or damages the card's answer at each step in turn: the kernel never panics and
/// always ends with an outcome.
#[test]
fn corrupted_card_answers_never_panic() {
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let profiles = [
        CardProfile::Visa,
        CardProfile::Mastercard,
        CardProfile::UnionPay,
    ];
    let mut cases = 0;
    for profile in profiles {
        for step in 0..6 {
            for _ in 0..300 {
                let mut card = SimCard::new(profile).unwrap();
                let mut i = 0;
                let (_out, _) = drive(Kernel::new(config(5_000), txn(1_000)), |c| {
                    let real = card.transceive(c)?;
                    i += 1;
                    if i - 1 != step {
                        return Ok(real);
                    }
                    let mut r = real;
                    match rng.below(4) {
                        0 => {
                            let len = rng.below(r.len() + 1);
                            r.truncate(len);
                        }
                        1 => {
                            for _ in 0..=rng.below(4) {
                                let at = rng.below(r.len().max(1));
                                if let Some(b) = r.get_mut(at) {
                                    *b = rng.next() as u8;
                                }
                            }
                        }
                        2 => {
                            let len = rng.below(300);
                            r = (0..len).map(|_| rng.next() as u8).collect();
                        }
                        _ => {
                            // Keep the status word, damage the data.
                            let n = r.len().saturating_sub(2);
                            if n > 0 {
                                let at = rng.below(n);
                                r[at] ^= 1 << rng.below(8);
                            }
                        }
                    }
                    Ok(r)
                });
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 3 * 6 * 300);
}
