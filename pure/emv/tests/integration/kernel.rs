//! The contactless kernel against scripted cards built from the `testdata/` vectors: exact
//! commands, both paths, selection rules, status words, malformed answers, and a property
//! test that random answers at any step never panic. (Cards with real cryptograms live in
//! `smartpos-sim`, whose tests drive this kernel too.)

use crate::vector;
use proptest::prelude::*;
use smartpos_emv::kernel::{
    AID_VISA, AidParams, CardOutcome, ContactlessLimits, CryptogramType, Cvm, Kernel, KernelConfig,
    KernelError, KernelPath, KernelTxn, MalformedReason, Step, TransportError,
};
use smartpos_emv::tlv::{Tag, Tlv};
use smartpos_types::hex::{decode, encode};

const VISA_AID: &str = "A0000000031010";
const MC_AID: &str = "A0000000041010";

fn config() -> KernelConfig {
    KernelConfig {
        limits: ContactlessLimits {
            transaction_limit: Some(50_000),
            cvm_required_limit: 5_000,
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
        now_ms: 500,
    }
}

fn p(tag: u32, hex: &str) -> Tlv {
    Tlv::primitive(Tag(tag), decode(hex).unwrap())
}

fn c(tag: u32, kids: Vec<Tlv>) -> Tlv {
    Tlv::constructed(Tag(tag), kids)
}

fn ok(data: Vec<u8>) -> Vec<u8> {
    let mut d = data;
    d.extend_from_slice(&[0x90, 0x00]);
    d
}

fn ppse(entries: &[(&str, &str, u8)]) -> Vec<u8> {
    let entries = entries
        .iter()
        .map(|(aid, label, prio)| {
            c(
                0x61,
                vec![
                    p(0x4F, aid),
                    Tlv::primitive(Tag(0x50), label.as_bytes().to_vec()),
                    Tlv::primitive(Tag(0x87), vec![*prio]),
                ],
            )
        })
        .collect();
    c(
        0x6F,
        vec![
            Tlv::primitive(Tag(0x84), b"2PAY.SYS.DDF01".to_vec()),
            c(0xA5, vec![c(0xBF0C, entries)]),
        ],
    )
    .encode()
}

fn fci(aid: &str, label: &str, pdol: Option<&str>) -> Vec<u8> {
    let mut a5 = vec![Tlv::primitive(Tag(0x50), label.as_bytes().to_vec())];
    if let Some(pdol) = pdol {
        a5.push(p(0x9F38, pdol));
    }
    c(0x6F, vec![p(0x84, aid), c(0xA5, a5)]).encode()
}

/// A Visa qVSDC card from the vectors: PPSE, FCI with `visa_pdol.hex`, GPO
/// `qvsdc_gpo_format2.hex` (AFL: SFI 3 record 1), one record with 5A and 5F24.
fn visa(capdu: &[u8]) -> Vec<u8> {
    match capdu.get(..4) {
        Some([0x00, 0xA4, 0x04, 0x00]) if capdu.get(5..19) == Some(b"2PAY.SYS.DDF01") => {
            ok(vector(include_str!("../../testdata/ppse_fci.hex")))
        }
        Some([0x00, 0xA4, 0x04, 0x00]) => ok(fci(
            VISA_AID,
            "VISA CREDIT",
            Some(include_str!("../../testdata/visa_pdol.hex").trim()),
        )),
        Some([0x80, 0xA8, 0x00, 0x00]) => {
            ok(vector(include_str!("../../testdata/qvsdc_gpo_format2.hex")))
        }
        Some([0x00, 0xB2, 0x01, 0x1C]) => {
            ok(c(0x70, vec![p(0x5A, "4761739001010010"), p(0x5F24, "221231")]).encode())
        }
        _ => vec![0x6D, 0x00],
    }
}

/// A Mastercard M/Chip card from the vectors: GPO format 1, `mchip_read_record.hex` as SFI 1
/// record 1, GENERATE AC format 1.
fn mchip(capdu: &[u8]) -> Vec<u8> {
    match capdu.get(..4) {
        Some([0x00, 0xA4, 0x04, 0x00]) if capdu.get(5..19) == Some(b"2PAY.SYS.DDF01") => {
            ok(ppse(&[(MC_AID, "MASTERCARD", 1)]))
        }
        Some([0x00, 0xA4, 0x04, 0x00]) => ok(fci(MC_AID, "MASTERCARD", None)),
        Some([0x80, 0xA8, 0x00, 0x00]) => ok(decode("8006198008010100").unwrap()),
        Some([0x00, 0xB2, 0x01, 0x0C]) => {
            ok(vector(include_str!("../../testdata/mchip_read_record.hex")))
        }
        Some([0x80, 0xAE, 0x80, 0x00]) => {
            ok(decode("80118000271122334455667788011020000000").unwrap())
        }
        _ => vec![0x6D, 0x00],
    }
}

/// Runs a read; returns the outcome and every command sent (hex).
fn run(
    cfg: KernelConfig,
    t: KernelTxn,
    mut card: impl FnMut(&[u8]) -> Vec<u8>,
) -> (Result<CardOutcome, KernelError>, Vec<String>) {
    let mut k = Kernel::new(cfg, t);
    let mut sent = Vec::new();
    let mut now = 500;
    while let Some(capdu) = k.poll_command() {
        assert!(sent.len() < 200, "the kernel does not stop");
        sent.push(encode(&capdu));
        now += 10;
        let r = card(&capdu);
        k.handle_response(now, &r);
    }
    assert!(k.is_finished());
    (k.poll_outcome().expect("an outcome"), sent)
}

#[test]
fn qvsdc_read_sends_the_book_commands_and_reads_the_vectors() {
    let (out, sent) = run(config(), txn(1_234), visa);
    assert_eq!(
        sent,
        [
            "00A404000E325041592E5359532E444446303100",
            "00A4040007A000000003101000",
            // 83 21: TTQ 36 80 40 00 (online cryptogram required, no CVM required), 9F02,
            // 9F03, 9F1A, TVR (floor limit exceeded), 5F2A, 9A, 9C, 9F37.
            "80A80000238321368040000000000012340000000000000156000000800001562611220038\
             04823E00",
            "00B2011C00",
        ]
    );
    let out = out.unwrap();
    assert_eq!(out.path, KernelPath::Quick);
    assert_eq!(encode(&out.aid), VISA_AID);
    assert_eq!(out.app_label, "VISA CREDIT");
    assert_eq!(out.pan.expose(), "4761739001010010");
    assert_eq!(out.expiry, "2212");
    assert!(out.expired, "2022-12-31 is before 2026-11-22");
    assert_eq!(out.pan_seq, Some(1));
    assert_eq!(out.cvm, Cvm::NoCvm);
    assert_eq!(out.cryptogram_type, CryptogramType::Arqc);
    assert_eq!(encode(&out.cryptogram), "8E19A2B3C4D5E6F7");
    assert_eq!(out.atc, [0x00, 0x27]);
    assert_eq!(out.tvr, [0, 0, 0, 0x80, 0]);
    assert_eq!(out.tsi, [0x28, 0x00]);
    assert_eq!(out.card_in_field_ms, 40);
    assert_eq!(
        encode(out.icc_data.as_bytes()),
        "9F26088E19A2B3C4D5E6F79F2701809F100706011203A000009F37043804823E9F3602002795050000\
         0080009A032611229C01009F02060000000012345F2A020156820220009F1A0201569F0306000000\
         0000009F3303E0F0C89F34031F00029F3501228407A0000000031010"
    );
    assert_eq!(out.receipt.tvr, "0000008000");
    assert_eq!(out.receipt.cvm, "NO CVM REQUIRED");
}

#[test]
fn mchip_read_sends_generate_ac_with_cdol1() {
    let (out, sent) = run(config(), txn(1_234), mchip);
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[2], "80A8000002830000", "no PDOL: empty 83");
    assert_eq!(sent[3], "00B2010C00");
    // CDOL1 of the vector: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 9F35 9F45 9F4C 9F34. TVR has
    // "expired application" (the card expired 2025-12-31) and "over floor limit".
    assert_eq!(
        sent[4],
        "80AE80002B000000001234000000000000015600400080000156261122003804823E2200000000000000\
         0000001F000200"
    );
    let out = out.unwrap();
    assert_eq!(out.path, KernelPath::MChip);
    assert!(out.expired);
    assert_eq!(out.tvr, [0, 0x40, 0, 0x80, 0]);
    assert_eq!(out.pan.expose(), "5413330089010434");
    assert_eq!(out.pan_seq, Some(0));
    assert_eq!(out.expiry, "2512");
    assert_eq!(encode(&out.cryptogram), "1122334455667788");
    assert_eq!(out.atc, [0x00, 0x27]);
    assert_eq!(out.cvm, Cvm::NoCvm);
}

#[test]
fn mchip_above_cvm_limit_picks_online_pin_from_the_cvm_list() {
    let (out, sent) = run(config(), txn(6_000), mchip);
    let out = out.unwrap();
    assert_eq!(out.cvm, Cvm::OnlinePin);
    assert!(sent[4].ends_with("02000000"), "9F34 = 02 00 00 then Le");
}

#[test]
fn candidates_are_tried_by_priority_then_the_next_one() {
    let card = |capdu: &[u8]| -> Vec<u8> {
        let hex = encode(capdu);
        if capdu.get(5..19) == Some(b"2PAY.SYS.DDF01") {
            // Mastercard first in the directory but priority 2; an unsupported AID; Visa 1.
            ok(ppse(&[
                (MC_AID, "MASTERCARD", 2),
                ("A0000000999090", "OTHER", 1),
                (VISA_AID, "VISA CREDIT", 1),
            ]))
        } else if hex.starts_with("00A4040007A0000000031010") {
            vec![0x6A, 0x82]
        } else {
            mchip(capdu)
        }
    };
    let (out, sent) = run(config(), txn(100), card);
    assert_eq!(sent[1], "00A4040007A000000003101000");
    assert_eq!(sent[2], "00A4040007A000000004101000");
    assert_eq!(out.unwrap().path, KernelPath::MChip);
}

#[test]
fn gpo_6985_selects_next_and_6986_means_try_another_interface() {
    let two = |capdu: &[u8], gpo_sw: u16| -> Vec<u8> {
        if capdu.get(5..19) == Some(b"2PAY.SYS.DDF01") {
            ok(ppse(&[(VISA_AID, "VISA", 1), (MC_AID, "MC", 2)]))
        } else if capdu.get(..2) == Some(&[0x80, 0xA8]) && capdu.get(4) == Some(&0x23) {
            gpo_sw.to_be_bytes().to_vec()
        } else if encode(capdu).starts_with("00A4040007A0000000031010") {
            visa(capdu)
        } else {
            mchip(capdu)
        }
    };
    let (out, _) = run(config(), txn(100), |c| two(c, 0x6985));
    assert_eq!(out.unwrap().path, KernelPath::MChip);
    let (out, _) = run(config(), txn(100), |c| two(c, 0x6986));
    assert_eq!(
        out,
        Err(KernelError::TryAnotherInterface { step: Step::Gpo })
    );
}

#[test]
fn ctq_asks_for_another_interface_for_cash() {
    let card = |capdu: &[u8]| -> Vec<u8> {
        if capdu.get(..2) == Some(&[0x80, 0xA8]) {
            let gpo = c(
                0x77,
                vec![
                    p(0x82, "2000"),
                    p(0x57, "4761739001010010D22122011143804400000F"),
                    p(0x9F26, "0102030405060708"),
                    p(0x9F27, "80"),
                    p(0x9F36, "0001"),
                    p(0x9F6C, "0400"),
                ],
            );
            ok(gpo.encode())
        } else {
            visa(capdu)
        }
    };
    let cash = KernelTxn {
        txn_type: 0x01,
        ..txn(100)
    };
    let (out, _) = run(config(), cash, card);
    assert_eq!(
        out,
        Err(KernelError::TryAnotherInterface { step: Step::Gpo })
    );
    // The same card for a purchase: no AFL, all data from GPO.
    let (out, sent) = run(config(), txn(100), card);
    let out = out.unwrap();
    assert_eq!(sent.len(), 3);
    assert_eq!(out.expiry, "2212", "from track 2");
    assert!(out.expired);
}

#[test]
fn status_words_become_typed_errors() {
    let at = |step_ins: [u8; 2], sw: u16| {
        move |capdu: &[u8]| -> Vec<u8> {
            let is_ppse = capdu.get(5..19) == Some(b"2PAY.SYS.DDF01");
            let hit = match step_ins {
                [0xA4, 0] => is_ppse,
                [0xA4, 1] => !is_ppse && capdu.get(1) == Some(&0xA4),
                [ins, _] => capdu.get(1) == Some(&ins),
            };
            if hit {
                sw.to_be_bytes().to_vec()
            } else {
                visa(capdu)
            }
        }
    };
    let cases = [
        (
            [0xA4, 0],
            0x6A82,
            KernelError::NotSupported {
                step: Step::SelectPpse,
                sw: 0x6A82,
            },
        ),
        ([0xA4, 0], 0x6A81, KernelError::CardBlocked { sw: 0x6A81 }),
        (
            [0xA4, 1],
            0x6283,
            KernelError::AppBlocked {
                step: Step::SelectAid,
                sw: 0x6283,
            },
        ),
        (
            [0xA4, 1],
            0x6A82,
            KernelError::NotSupported {
                step: Step::SelectAid,
                sw: 0x6A82,
            },
        ),
        (
            [0xA8, 0],
            0x6985,
            KernelError::ConditionsNotSatisfied {
                step: Step::Gpo,
                sw: 0x6985,
            },
        ),
        (
            [0xA8, 0],
            0x6984,
            KernelError::AppBlocked {
                step: Step::Gpo,
                sw: 0x6984,
            },
        ),
        (
            [0xB2, 0],
            0x6A83,
            KernelError::CardError {
                step: Step::ReadRecord,
                sw: 0x6A83,
            },
        ),
        (
            [0xB2, 0],
            0x6400,
            KernelError::CardError {
                step: Step::ReadRecord,
                sw: 0x6400,
            },
        ),
    ];
    for (at_step, sw, want) in cases {
        let (out, _) = run(config(), txn(100), at(at_step, sw));
        assert_eq!(out, Err(want), "SW {sw:04X}");
    }
}

#[test]
fn malformed_answers_become_typed_errors() {
    let replace = |ins: u8, answer: Vec<u8>| {
        move |capdu: &[u8]| -> Vec<u8> {
            if capdu.get(1) == Some(&ins) && capdu.get(5..19) != Some(b"2PAY.SYS.DDF01") {
                answer.clone()
            } else {
                visa(capdu)
            }
        }
    };
    // GPO answered with a record template.
    let (out, _) = run(
        config(),
        txn(100),
        replace(0xA8, ok(decode("7003820120").unwrap())),
    );
    assert_eq!(
        out,
        Err(KernelError::Malformed {
            step: Step::Gpo,
            reason: MalformedReason::UnexpectedTemplate {
                expected: Tag(0x77)
            }
        })
    );
    // A record whose PAN differs from track 2.
    let rec = c(0x70, vec![p(0x5A, "4761739001010028")]).encode();
    let (out, _) = run(config(), txn(100), replace(0xB2, ok(rec)));
    assert_eq!(
        out,
        Err(KernelError::Malformed {
            step: Step::Completion,
            reason: MalformedReason::PanMismatch
        })
    );
    // One byte: no status word.
    let (out, _) = run(config(), txn(100), replace(0xB2, vec![0x90]));
    assert_eq!(
        out,
        Err(KernelError::Malformed {
            step: Step::ReadRecord,
            reason: MalformedReason::NoStatusWord
        })
    );
    // Truncated TLV.
    let (out, _) = run(
        config(),
        txn(100),
        replace(0xB2, ok(vec![0x70, 0x05, 0x5A])),
    );
    assert!(matches!(
        out,
        Err(KernelError::Malformed {
            step: Step::ReadRecord,
            reason: MalformedReason::Tlv(_)
        })
    ));
}

#[test]
fn pre_processing_refuses_over_limit_and_bad_data_without_a_command() {
    let mut k = Kernel::new(config(), txn(50_000));
    assert_eq!(k.poll_command(), None);
    assert_eq!(
        k.poll_outcome(),
        Some(Err(KernelError::OverLimit {
            amount: 50_000,
            limit: 50_000
        }))
    );
    let mut bad = txn(100);
    bad.date = "261322".to_owned();
    let mut k = Kernel::new(config(), bad);
    assert_eq!(k.poll_command(), None);
    assert_eq!(
        k.poll_outcome(),
        Some(Err(KernelError::InvalidTransaction { field: "date" }))
    );
    let mut k = Kernel::new(
        config(),
        KernelTxn {
            currency: 1000,
            ..txn(1)
        },
    );
    assert_eq!(
        k.poll_outcome(),
        Some(Err(KernelError::InvalidTransaction { field: "currency" }))
    );
}

#[test]
fn transport_errors_and_driver_misuse() {
    let mut k = Kernel::new(config(), txn(100));
    let ppse = k.poll_command().unwrap();
    assert_eq!(k.poll_command(), None, "one command at a time");
    k.handle_response(510, &visa(&ppse));
    let _select = k.poll_command().unwrap();
    k.handle_transport_error(530, TransportError::Timeout);
    assert_eq!(
        k.poll_outcome(),
        Some(Err(KernelError::Communication {
            step: Step::SelectAid,
            kind: TransportError::Timeout
        }))
    );
    // Late answers after the end are ignored.
    k.handle_response(540, &[0x90, 0x00]);
    assert_eq!(k.poll_outcome(), None);

    let mut k = Kernel::new(config(), txn(100));
    k.handle_response(510, &[0x90, 0x00]);
    assert_eq!(k.poll_outcome(), Some(Err(KernelError::UnexpectedResponse)));
}

#[test]
fn debug_output_holds_no_card_data() {
    let (out, _) = run(config(), txn(100), visa);
    let out = out.unwrap();
    let debug = format!("{out:?}");
    assert!(!debug.contains("4761739001010010"), "{debug}");
    assert!(debug.contains("476173******0010"));
    assert!(debug.contains("IccData(<"));
    let k = Kernel::new(config(), txn(100));
    assert!(format!("{k:?}").starts_with("Kernel { step: SelectPpse"));
}

/// The Visa card of the vectors whose GPO answer is `gpo` (template 77) instead.
fn visa_with_gpo(gpo: Vec<Tlv>) -> impl Fn(&[u8]) -> Vec<u8> {
    move |capdu: &[u8]| -> Vec<u8> {
        if capdu.get(..2) == Some(&[0x80, 0xA8]) {
            ok(c(0x77, gpo.clone()).encode())
        } else {
            visa(capdu)
        }
    }
}

/// A qVSDC GPO answer with the given CID (`None`: absent) and IAD (`None`: absent).
fn quick_gpo(cid: Option<&str>, iad: Option<&str>) -> Vec<Tlv> {
    let mut gpo = vec![
        p(0x82, "2000"),
        p(0x57, "4761739001010010D22122011143804400000F"),
        p(0x5F34, "01"),
        p(0x9F26, "0102030405060708"),
        p(0x9F36, "0001"),
        p(0x9F6C, "0000"),
    ];
    if let Some(cid) = cid {
        gpo.push(p(0x9F27, cid));
    }
    if let Some(iad) = iad {
        gpo.push(p(0x9F10, iad));
    }
    gpo
}

#[test]
fn card_declining_offline_is_an_aac_outcome_not_an_error() {
    // qVSDC: the card answers GPO with an AAC (CID 00).
    let (out, sent) = run(
        config(),
        txn(100),
        visa_with_gpo(quick_gpo(Some("00"), None)),
    );
    let out = out.unwrap();
    assert_eq!(sent.len(), 3, "PPSE, SELECT, GPO: no AFL");
    assert_eq!(out.cryptogram_type, CryptogramType::Aac);
    assert!(out.declined_offline());
    assert_eq!(out.receipt.cryptogram_type, "AAC");
    // M/Chip: the card answers the ARQC request with an AAC (format 1, CID 00).
    let mchip_aac = |capdu: &[u8]| -> Vec<u8> {
        if capdu.get(..2) == Some(&[0x80, 0xAE]) {
            ok(decode("80110000271122334455667788011020000000").unwrap())
        } else {
            mchip(capdu)
        }
    };
    let (out, _) = run(config(), txn(100), mchip_aac);
    let out = out.unwrap();
    assert_eq!(out.path, KernelPath::MChip);
    assert_eq!(out.cryptogram_type, CryptogramType::Aac);
    assert!(out.declined_offline());
    // An ARQC is not declined offline.
    let (out, _) = run(config(), txn(100), visa);
    assert!(!out.unwrap().declined_offline());
}

#[test]
fn missing_cid_takes_the_cryptogram_type_from_the_iad_not_arqc() {
    // C-3 §5.4.3.1: without 9F27, IAD byte 5 bits 6-5 hold the cryptogram type.
    let cases = [
        ("06011203800000", CryptogramType::Aac),
        ("06011203900000", CryptogramType::Tc),
        ("06011203A00000", CryptogramType::Arqc),
    ];
    for (iad, want) in cases {
        let (out, _) = run(
            config(),
            txn(100),
            visa_with_gpo(quick_gpo(None, Some(iad))),
        );
        assert_eq!(out.unwrap().cryptogram_type, want, "IAD {iad}");
    }
    // Neither CID nor an IAD long enough: the type is unknown, and not guessed.
    for iad in [None, Some("06011203")] {
        let (out, _) = run(config(), txn(100), visa_with_gpo(quick_gpo(None, iad)));
        assert_eq!(
            out,
            Err(KernelError::Malformed {
                step: Step::Completion,
                reason: MalformedReason::MissingTag(Tag(0x9F27))
            })
        );
    }
    // IAD bits 6-5 = 11 (RFU).
    let (out, _) = run(
        config(),
        txn(100),
        visa_with_gpo(quick_gpo(None, Some("06011203B00000"))),
    );
    assert_eq!(
        out,
        Err(KernelError::Malformed {
            step: Step::Completion,
            reason: MalformedReason::BadCryptogramType
        })
    );
}

#[test]
fn terminal_country_goes_to_9f1a_apart_from_the_currency() {
    assert_eq!(KernelConfig::default().country, 156, "China by default");
    // A Hong Kong dollar sale on a terminal in China: 9F1A 0156, 5F2A 0344. The kernel
    // takes 9F1A from the transaction (the runtime copies it from `KernelConfig::country`).
    let cfg = KernelConfig {
        country: 156,
        ..config()
    };
    let hkd = KernelTxn {
        currency: 344,
        country: 156,
        ..txn(1_234)
    };
    let (out, sent) = run(cfg, hkd, visa);
    assert_eq!(
        sent[2],
        "80A80000238321368040000000000012340000000000000156000000800003442611220038\
         04823E00"
    );
    let f55 = smartpos_emv::tlv::parse(out.unwrap().icc_data.as_bytes()).unwrap();
    assert_eq!(
        smartpos_emv::tlv::find_bytes(&f55, Tag(0x9F1A)),
        Some(&[0x01, 0x56][..])
    );
    assert_eq!(
        smartpos_emv::tlv::find_bytes(&f55, Tag(0x5F2A)),
        Some(&[0x03, 0x44][..])
    );
    let bad = KernelTxn {
        country: 1000,
        ..txn(1)
    };
    let mut k = Kernel::new(config(), bad);
    assert_eq!(
        k.poll_outcome(),
        Some(Err(KernelError::InvalidTransaction { field: "country" }))
    );
}

/// The M/Chip card of the vectors with AIP `1B80`: byte 1 bit 2 "on device cardholder
/// verification supported" (a phone or watch).
fn mchip_cdcvm(capdu: &[u8]) -> Vec<u8> {
    if capdu.get(..2) == Some(&[0x80, 0xA8]) {
        ok(decode("80061B8008010100").unwrap())
    } else {
        mchip(capdu)
    }
}

#[test]
fn mchip_on_device_cvm_is_reported_instead_of_online_pin() {
    let (out, sent) = run(config(), txn(6_000), mchip_cdcvm);
    let out = out.unwrap();
    assert_eq!(out.cvm, Cvm::ConsumerDevice);
    assert_eq!(out.receipt.cvm, "VERIFIED ON DEVICE");
    assert!(sent[4].ends_with("01000200"), "9F34 = 01 00 02 then Le");
    assert_eq!(out.tsi[0] & 0x40, 0x40, "cardholder verification performed");
    // Below the CVM-required limit: no CVM, as for any card.
    let (out, _) = run(config(), txn(1_000), mchip_cdcvm);
    assert_eq!(out.unwrap().cvm, Cvm::NoCvm);
    // A reader without the on-device CVM capability (TTQ byte 3 bit 7) ignores the AIP bit
    // and walks the CVM list: online PIN.
    let no_cdcvm = KernelConfig {
        ttq: [0x36, 0x00, 0x00, 0x00],
        ..config()
    };
    let (out, _) = run(no_cdcvm, txn(6_000), mchip_cdcvm);
    assert_eq!(out.unwrap().cvm, Cvm::OnlinePin);
}

#[test]
fn cvm_required_limit_is_the_selected_aids() {
    // Default CVM limit 50.00; Visa's own 100.00.
    let cfg = KernelConfig {
        aid_params: vec![AidParams {
            aid: AID_VISA.to_vec(),
            limits: ContactlessLimits {
                transaction_limit: None,
                cvm_required_limit: 10_000,
                floor_limit: 0,
            },
        }],
        ..config()
    };
    // 80.00: below Visa's CVM limit, above the default one (which the Mastercard uses).
    let (out, sent) = run(cfg.clone(), txn(8_000), visa);
    assert!(
        sent[2].starts_with("80A80000238321368040"),
        "TTQ: no CVM required"
    );
    assert_eq!(out.unwrap().cvm, Cvm::NoCvm);
    let (out, _) = run(cfg.clone(), txn(8_000), mchip);
    assert_eq!(out.unwrap().cvm, Cvm::OnlinePin);
    let (out, sent) = run(cfg, txn(10_000), visa);
    assert!(
        sent[2].starts_with("80A8000023832136C040"),
        "TTQ: CVM required"
    );
    assert_eq!(out.unwrap().cvm, Cvm::Signature);
}

#[test]
fn transaction_limit_of_one_aid_refuses_that_application_before_gpo() {
    let visa_limited = |limit: u64| KernelConfig {
        aid_params: vec![AidParams {
            aid: AID_VISA.to_vec(),
            limits: ContactlessLimits {
                transaction_limit: Some(limit),
                cvm_required_limit: 5_000,
                floor_limit: 0,
            },
        }],
        ..config()
    };
    // The Visa-only card: refused after PPSE, no SELECT of the AID, no GPO.
    let (out, sent) = run(visa_limited(20_000), txn(20_000), visa);
    assert_eq!(
        out,
        Err(KernelError::OverLimit {
            amount: 20_000,
            limit: 20_000
        })
    );
    assert_eq!(sent.len(), 1, "PPSE only");
    // The Mastercard is not limited by Visa's limit.
    let (out, _) = run(visa_limited(20_000), txn(20_000), mchip);
    assert_eq!(out.unwrap().path, KernelPath::MChip);
    // A card with both: Visa (priority 1) is over its limit, so the Mastercard is selected.
    let two = |capdu: &[u8]| -> Vec<u8> {
        if capdu.get(5..19) == Some(b"2PAY.SYS.DDF01") {
            ok(ppse(&[(VISA_AID, "VISA", 1), (MC_AID, "MC", 2)]))
        } else {
            mchip(capdu)
        }
    };
    let (out, sent) = run(visa_limited(20_000), txn(20_000), two);
    assert_eq!(sent[1], "00A4040007A000000004101000");
    assert_eq!(out.unwrap().path, KernelPath::MChip);
    // A per-AID limit above the default one lets that application take the amount.
    let (out, sent) = run(visa_limited(80_000), txn(60_000), visa);
    assert_eq!(out.unwrap().path, KernelPath::Quick);
    assert_eq!(sent.len(), 4);
    // Over the default limit and over every per-AID limit: refused before any command.
    let mut k = Kernel::new(visa_limited(20_000), txn(50_000));
    assert_eq!(k.poll_command(), None);
    assert_eq!(
        k.poll_outcome(),
        Some(Err(KernelError::OverLimit {
            amount: 50_000,
            limit: 50_000
        }))
    );
}

/// The Visa card whose final SELECT answers with a longer DF name than the directory's
/// ADF name (`A0000000031010` + `01`), to check that the limits follow the selected name.
#[test]
fn limits_follow_the_df_name_of_the_final_select() {
    let long = |capdu: &[u8]| -> Vec<u8> {
        if capdu.get(..4) == Some(&[0x00, 0xA4, 0x04, 0x00])
            && capdu.get(5..19) != Some(b"2PAY.SYS.DDF01")
        {
            ok(fci(
                "A000000003101001",
                "VISA",
                Some(include_str!("../../testdata/visa_pdol.hex").trim()),
            ))
        } else {
            visa(capdu)
        }
    };
    let cfg = KernelConfig {
        aid_params: vec![AidParams {
            aid: decode("A000000003101001").unwrap(),
            limits: ContactlessLimits {
                transaction_limit: Some(1_000),
                cvm_required_limit: 0,
                floor_limit: 0,
            },
        }],
        ..config()
    };
    let (out, sent) = run(cfg, txn(2_000), long);
    assert_eq!(
        out,
        Err(KernelError::OverLimit {
            amount: 2_000,
            limit: 1_000
        })
    );
    assert_eq!(sent.len(), 2, "PPSE and SELECT, no GPO");
}

/// Feeds `script` to the kernel from command `from` on (the card answers before that).
fn run_with_random(
    card: fn(&[u8]) -> Vec<u8>,
    from: usize,
    script: &[Vec<u8>],
) -> Option<Result<CardOutcome, KernelError>> {
    let mut k = Kernel::new(config(), txn(6_000));
    let mut i = 0;
    while let Some(capdu) = k.poll_command() {
        let r = if i < from {
            card(&capdu)
        } else {
            match script.get(i - from) {
                Some(r) => r.clone(),
                None => card(&capdu),
            }
        };
        i += 1;
        assert!(i < 200, "the kernel does not stop");
        k.handle_response(500 + i as u64, &r);
    }
    k.poll_outcome()
}

fn answer() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Plausible shapes: a template byte, a length, random contents, 9000.
        (
            prop_oneof![Just(0x6Fu8), Just(0x70), Just(0x77), Just(0x80)],
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(t, body)| {
                let mut v = vec![t, body.len().min(255) as u8];
                v.extend_from_slice(&body);
                v.extend_from_slice(&[0x90, 0x00]);
                v
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_answers_at_any_step_never_panic(
        from in 0usize..6,
        mc in any::<bool>(),
        script in proptest::collection::vec(answer(), 1..6),
    ) {
        let card = if mc { mchip } else { visa };
        let out = run_with_random(card, from, &script);
        prop_assert!(out.is_some());
    }
}
