//! Golden receipts: every transaction kind, 32 and 48 columns, Chinese and English, as text, and
//! as ESC/POS bytes. The files under `testdata/receipts/golden/` were produced by this code and
//! reviewed by eye once; the test pins them. `SMARTPOS_BLESS=1` rewrites them (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use smartpos_receipt::{
    CryptogramKind, Cvm, EmvFields, EscPosOptions, Lang, MerchantInfo, ReceiptCopy, ReceiptData,
    ReceiptTime, SettlementReport, Width, render_escpos, render_settlement, render_text, to_plain,
};
use smartpos_txn::model::{BatchTotals, LocalDateTime, TxnKind, TxnRecord, TxnState};
use std::path::PathBuf;

const FULL_PAN: &str = "6222021234567890128";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/receipts/golden")
}

fn check(name: &str, got: &[u8]) {
    let path = dir().join(name);
    if std::env::var_os("SMARTPOS_BLESS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (SMARTPOS_BLESS=1)", path.display()));
    assert!(want == got, "{name} differs from its golden file");
}

fn merchant() -> MerchantInfo {
    MerchantInfo {
        name: "测试商户 TEST SHOP".into(),
        merchant_id: "898100012340001".into(),
        terminal_id: "10000001".into(),
    }
}

fn record(kind: TxnKind, stan: u32, original: Option<&str>) -> TxnRecord {
    TxnRecord {
        reference: format!("000001{stan:06}"),
        kind,
        state: TxnState::Approved,
        amount: 12_345,
        currency: smartpos_types::Currency::CNY,
        stan,
        batch: 1,
        local_time: "103015".parse().unwrap(),
        local_date: "1122".parse().unwrap(),
        rrn: Some(format!("{:012}", 100_000 + stan)),
        auth_code: Some(format!("{:06}", 200_000 + stan)),
        response_code: Some("00".parse().unwrap()),
        original_ref: original.map(str::to_owned),
        idempotency_key: None,
        operator: Some("01".into()),
        // A full PAN on purpose: the receipt must re-mask whatever it is given.
        pan_masked: Some(FULL_PAN.into()),
        entry_mode: Some("071".parse().unwrap()),
        created_at_ms: 1_795_315_266_000,
        updated_at_ms: 1_795_315_266_000,
        card: None,
    }
}

fn chip() -> EmvFields {
    EmvFields {
        aid: "A000000333010101".into(),
        app_label: Some("UnionPay Debit".into()),
        tvr: "0000000000".into(),
        tsi: "0000".into(),
        cryptogram_kind: CryptogramKind::Arqc,
        cryptogram: "3B76CF10FECD8789".into(),
        cvm_result: Some("1F0002".into()),
    }
}

fn kinds() -> Vec<(TxnKind, TxnRecord, Option<TxnRecord>)> {
    let sale = record(TxnKind::Sale, 2, None);
    let pre = record(TxnKind::PreAuth, 5, None);
    vec![
        (TxnKind::Sale, sale.clone(), None),
        (
            TxnKind::Void,
            record(TxnKind::Void, 3, Some(&sale.reference)),
            Some(sale.clone()),
        ),
        (
            TxnKind::Refund,
            record(TxnKind::Refund, 4, Some(&sale.reference)),
            Some(sale.clone()),
        ),
        (TxnKind::PreAuth, pre.clone(), None),
        (
            TxnKind::Completion,
            record(TxnKind::Completion, 6, Some(&pre.reference)),
            Some(pre.clone()),
        ),
        (
            TxnKind::PreAuthCancel,
            record(TxnKind::PreAuthCancel, 7, Some(&pre.reference)),
            Some(pre),
        ),
        (TxnKind::Balance, record(TxnKind::Balance, 8, None), None),
    ]
}

#[test]
fn every_kind_width_and_language_matches_its_golden_file() {
    for (kind, rec, orig) in kinds() {
        for (lang, l) in [(Lang::Zh, "zh"), (Lang::En, "en")] {
            for (width, w) in [(Width::W32, 32), (Width::W48, 48)] {
                for (copy, c) in [
                    (ReceiptCopy::Merchant, "merchant"),
                    (ReceiptCopy::Customer, "customer"),
                ] {
                    let mut d = ReceiptData::from_record(
                        &rec,
                        orig.as_ref(),
                        &merchant(),
                        copy,
                        lang,
                        false,
                    );
                    d.date_time = ReceiptTime::Local(LocalDateTime {
                        year: 2026,
                        month: 11,
                        day: 22,
                        hour: 10,
                        minute: 30,
                        second: 15,
                    });
                    if kind == TxnKind::Sale {
                        d.emv = Some(chip());
                        d.cvm = Cvm::NoCvm;
                    }
                    let lines = render_text(&d, width);
                    let text = to_plain(&lines, width);
                    assert!(
                        !text.contains(FULL_PAN),
                        "{kind} {l} {w}: full PAN on a receipt"
                    );
                    check(
                        &format!("{}_{l}_{w}_{c}.txt", kind.as_str()),
                        text.as_bytes(),
                    );
                    if width == Width::W32 && copy == ReceiptCopy::Merchant {
                        let mut opts = EscPosOptions::for_lang(lang, width);
                        opts.qr = Some(rec.reference.clone());
                        let bytes = render_escpos(&lines, &opts).unwrap();
                        assert!(
                            !bytes
                                .windows(FULL_PAN.len())
                                .any(|x| x == FULL_PAN.as_bytes())
                        );
                        check(&format!("{}_{l}_32.escpos", kind.as_str()), &bytes);
                    }
                }
            }
        }
    }
}

#[test]
fn reprint_is_marked_and_settlement_report_is_pinned() {
    let (_, rec, _) = kinds().remove(0);
    let d = ReceiptData::from_record(
        &rec,
        None,
        &merchant(),
        ReceiptCopy::Customer,
        Lang::En,
        true,
    );
    let text = to_plain(&render_text(&d, Width::W32), Width::W32);
    assert!(text.contains("REPRINT"), "{text}");
    for (lang, l) in [(Lang::Zh, "zh"), (Lang::En, "en")] {
        let r = SettlementReport {
            merchant: merchant(),
            operator: Some("00".into()),
            batch: 1,
            date_time: ReceiptTime::Local(LocalDateTime {
                year: 2026,
                month: 11,
                day: 22,
                hour: 23,
                minute: 0,
                second: 0,
            }),
            totals: BatchTotals {
                debit_count: 3,
                debit_amount: 37_035,
                credit_count: 1,
                credit_amount: 12_345,
            },
            currency: "156".into(),
            balanced: true,
            lang,
        };
        let text = to_plain(&render_settlement(&r, Width::W32), Width::W32);
        check(&format!("settlement_{l}_32.txt"), text.as_bytes());
    }
}
