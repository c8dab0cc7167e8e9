use super::*;
use smartpos_terminal::api::model::{PendingKind, ReversalReason};
use std::time::Duration;

fn record() -> model::TxnRecord {
    model::TxnRecord {
        reference: "000001000007".into(),
        kind: model::TxnKind::Sale,
        state: model::TxnState::Reversing,
        amount: 1234,
        currency: smartpos_types::Currency::CNY,
        stan: 7,
        batch: 1,
        local_time: "101010".parse().unwrap(),
        local_date: "0101".parse().unwrap(),
        rrn: None,
        auth_code: None,
        response_code: None,
        original_ref: None,
        idempotency_key: Some("order-1".into()),
        operator: Some("01".into()),
        pan_masked: Some("622202******0128".into()),
        entry_mode: Some("012".parse().unwrap()),
        created_at_ms: 1,
        updated_at_ms: 2,
        card: None,
    }
}

#[test]
fn record_converts_field_by_field() {
    let r = TxnRecord::from(record());
    assert_eq!(r.kind, TxnKind::Sale);
    assert_eq!(r.state, TxnState::Reversing);
    assert_eq!(r.reference, "000001000007");
    assert_eq!(r.pan_masked.as_deref(), Some("622202******0128"));
    assert_eq!((r.stan, r.batch, r.amount), (7, 1, 1234));
    assert_eq!(r.idempotency_key.as_deref(), Some("order-1"));
}

#[test]
fn all_kinds_and_states_are_known() {
    for k in [
        "sale",
        "void",
        "refund",
        "preauth",
        "completion",
        "preauth_cancel",
        "balance",
    ] {
        let core = model::TxnKind::parse(k).expect("kind");
        assert_ne!(TxnKind::from(core), TxnKind::Unknown, "{k}");
    }
    for s in [
        "sending",
        "approved",
        "declined",
        "reversing",
        "reversed",
        "voided",
        "queued",
        "not_sent",
    ] {
        let core = model::TxnState::parse(s).expect("state");
        assert_ne!(TxnState::from(core), TxnState::Unknown, "{s}");
    }
}

#[test]
fn pending_item_carries_no_message_bytes() {
    let p = model::PendingItem {
        seq: 3,
        kind: PendingKind::Reversal,
        reference: "000001000007".into(),
        reason: Some(ReversalReason::NoResponse),
        message: vec![0x62; 40],
        attempts: 2,
        armed: true,
        not_before_unix_ms: 0,
    };
    let d = PendingItem::from(&p);
    assert_eq!(d.kind, "reversal");
    assert_eq!(d.reason_code.as_deref(), Some("98"));
    assert_eq!((d.seq, d.attempts, d.armed), (3, 2, true));
}

#[test]
fn errors_map_to_what_the_app_does() {
    assert!(matches!(
        SmartPosError::from(TerminalError::Op(OpError::NotSignedIn)),
        SmartPosError::NotSignedIn { .. }
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::Op(OpError::PendingUndelivered { count: 2 })),
        SmartPosError::PendingUndelivered { count: 2, .. }
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::Op(OpError::NotSent)),
        SmartPosError::HostUnreachable { .. }
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::Op(OpError::HostRefused { code: "96".into() })),
        SmartPosError::HostRefused { ref response_code, .. } if response_code == "96"
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::IdempotencyConflict),
        SmartPosError::IdempotencyConflict { .. }
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::Poisoned),
        SmartPosError::Journal { .. }
    ));
    match SmartPosError::from(TerminalError::JournalMissing {
        path: "/d/journal.db".into(),
        expected: "AB".into(),
    }) {
        SmartPosError::JournalRefused {
            reason,
            diagnosis: Some(d),
        } => {
            assert!(reason.contains("do not reset without support"), "{reason}");
            assert_eq!(d.code, "terminal.journal_missing");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        SmartPosError::from(TerminalError::GuardStore { reason: "x".into() }),
        SmartPosError::Journal { .. }
    ));
    assert_eq!(
        SmartPosError::from(TerminalError::NotFound {
            reference: "x".into()
        }),
        SmartPosError::NotFound {
            reference: "x".into()
        }
    );
}

#[test]
fn diagnoses_cross_in_both_languages() {
    let d = diagnose_response_code("51".into(), TxnKind::Sale);
    assert_eq!(d.host_code.as_deref(), Some("51"));
    assert!(!d.title_zh.is_empty() && !d.title_en.is_empty());
    assert_eq!(d.next_steps_zh.len(), d.next_steps_en.len());
    let mut declined = record();
    declined.state = model::TxnState::Declined;
    declined.response_code = Some("51".parse().unwrap());
    let outcome = |record| TxnOutcome {
        record,
        reply: None,
        reversal_pending: false,
        replayed: false,
        card: None,
        security: None,
    };
    assert_eq!(
        diagnose_outcome(&outcome(declined)).map(|d| d.code),
        Some(d.code)
    );
    let mut approved = record();
    approved.state = model::TxnState::Approved;
    assert_eq!(diagnose_outcome(&outcome(approved)), None);
    match SmartPosError::from(OpError::NotSignedIn) {
        SmartPosError::NotSignedIn { diagnosis, .. } => assert!(diagnosis.is_some()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn config_rejects_a_bad_pin() {
    let cfg = TerminalConfig {
        tid: "10000001".into(),
        mid: "898100012340001".into(),
        host: "127.0.0.1:1".into(),
        dialect: "cup".into(),
        currency: "156".into(),
        tls: Some(TlsConfig {
            ca_pem: String::new(),
            server_name: "localhost".into(),
            pin_sha256_hex: Some("zz".into()),
            client_certificate: None,
            client_key: None,
        }),
        connect_timeout_ms: 1000,
        response_timeout_ms: 1000,
        utc_offset_minutes: 0,
        profile_toml: None,
    };
    assert!(matches!(cfg.to_core(), Err(SmartPosError::Config { .. })));
    let plain = TerminalConfig { tls: None, ..cfg };
    let core = plain.to_core().expect("config");
    assert_eq!(core.link.response_timeout, Duration::from_secs(1));
    assert!(core.link.tls.is_none());
}

/// A store holding only what the test puts in it.
struct OneKey(Option<Vec<u8>>);

impl smartpos_terminal::api::store::SecureStore for OneKey {
    fn get(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, String> {
        Ok((name == smartpos_terminal::api::store::TLS_CLIENT_KEY)
            .then(|| self.0.clone().map(zeroize::Zeroizing::new))
            .flatten())
    }
    fn put(&self, _: &str, _: &[u8]) -> Result<(), String> {
        Err("read-only".into())
    }
}

#[test]
fn a_client_certificate_takes_its_key_from_the_record_or_the_store() {
    use smartpos_sim::net::{TEST_CA_PEM, TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM};
    let tls = TlsConfig {
        ca_pem: String::from_utf8_lossy(TEST_CA_PEM).into_owned(),
        server_name: "localhost".into(),
        pin_sha256_hex: None,
        client_certificate: Some(TEST_CLIENT_CERT_PEM.to_vec()),
        client_key: Some(TEST_CLIENT_KEY_PEM.to_vec()),
    };
    let cfg = TerminalConfig {
        tid: "12345678".into(),
        mid: "898100012340001".into(),
        host: "127.0.0.1:1".into(),
        dialect: "cup".into(),
        profile_toml: None,
        currency: "156".into(),
        tls: Some(tls.clone()),
        connect_timeout_ms: 1000,
        response_timeout_ms: 1000,
        utc_offset_minutes: 0,
    };
    let identity = |c: &TerminalConfig, store: &OneKey| {
        c.to_core_with(store)
            .map(|core| core.link.tls.and_then(|t| t.client_identity).is_some())
    };
    assert_eq!(identity(&cfg, &OneKey(None)), Ok(true));
    let from_store = TerminalConfig {
        tls: Some(TlsConfig {
            client_key: None,
            ..tls.clone()
        }),
        ..cfg.clone()
    };
    assert_eq!(
        identity(&from_store, &OneKey(Some(TEST_CLIENT_KEY_PEM.to_vec()))),
        Ok(true)
    );
    let reason = config_reason(identity(&from_store, &OneKey(None)).unwrap_err());
    assert!(reason.contains("tls_client_key"), "{reason}");
    let wrong = TerminalConfig {
        tls: Some(TlsConfig {
            client_key: Some(
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            ),
            ..tls.clone()
        }),
        ..cfg.clone()
    };
    assert!(matches!(
        identity(&wrong, &OneKey(None)),
        Err(SmartPosError::Config { .. })
    ));
    // Debug never shows the key.
    let shown = format!("{tls:?}");
    assert!(
        shown.contains("<redacted>") && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );
}

#[test]
fn safety_errors_carry_rules_and_diagnoses() {
    let rule = core_ops::Rule::ExceedsRemainder { remainder: 1000 };
    let denial = Denial {
        diagnosis: rule.diagnosis(),
        rule,
    };
    match SmartPosError::from(TerminalError::RefundDenied {
        denials: vec![denial],
    }) {
        SmartPosError::RefundDenied { reason, denials } => {
            assert!(reason.contains("policy.exceeds_remainder"), "{reason}");
            assert_eq!(denials.len(), 1);
            assert_eq!(denials[0].rule, "policy.exceeds_remainder");
            assert!(
                denials[0].detail_json.contains("1000"),
                "{}",
                denials[0].detail_json
            );
            assert!(!denials[0].diagnosis.title_en.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    let wrong = TerminalError::Operator(core_ops::OperatorError::WrongPassword {
        remaining_attempts: 2,
    });
    assert!(matches!(
        SmartPosError::from(wrong),
        SmartPosError::OperatorRefused {
            diagnosis: Some(_),
            ..
        }
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::Card(CardError::PinCancelled)),
        SmartPosError::Cancelled { .. }
    ));
    assert!(matches!(
        SmartPosError::from(TerminalError::Card(CardError::PinPadMissing)),
        SmartPosError::CardReadFailed {
            diagnosis: Some(_),
            ..
        }
    ));
}

#[test]
fn card_errors_are_typed_and_carry_the_core_s_diagnosis() {
    use smartpos_terminal::api::emv::CardRefusal as R;
    let card = |c: CardError| SmartPosError::from(TerminalError::Card(c));
    let core_code = |c: CardError| TerminalError::Card(c).diagnosis().code.to_owned();
    match card(CardError::Refused(R::ChipCardSwiped)) {
        SmartPosError::CardRefused {
            refusal,
            diagnosis: Some(d),
            ..
        } => {
            assert_eq!(refusal, CardRefusal::ChipCardSwiped);
            assert_eq!(d.code, core_code(CardError::Refused(R::ChipCardSwiped)));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        card(CardError::DeclinedOffline),
        SmartPosError::CardDeclinedOffline {
            diagnosis: Some(_),
            ..
        }
    ));
    match card(CardError::Bridge(KernelBridgeError::Kernel {
        code: -4001,
        reason: "x".into(),
    })) {
        SmartPosError::CardKernelFailed {
            failure,
            kernel_code,
            diagnosis: Some(_),
            ..
        } => assert_eq!((failure, kernel_code), (KernelFailure::Kernel, Some(-4001))),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        card(CardError::Bridge(KernelBridgeError::NotAccepted {
            reason: "chip unreadable".into()
        })),
        SmartPosError::CardKernelFailed {
            failure: KernelFailure::NotAccepted,
            kernel_code: None,
            ..
        }
    ));
    assert!(matches!(
        card(CardError::Bridge(KernelBridgeError::Aborted)),
        SmartPosError::Cancelled { .. }
    ));
    assert!(matches!(
        card(CardError::Reader("gone".into())),
        SmartPosError::CardReadFailed {
            diagnosis: Some(_),
            ..
        }
    ));
}

#[test]
fn receipts_and_sessions_convert_both_ways() {
    for s in [
        PrinterStatus::Ok,
        PrinterStatus::OutOfPaper,
        PrinterStatus::Overheated,
        PrinterStatus::CoverOpen,
        PrinterStatus::NoPrinter,
        PrinterStatus::Busy,
    ] {
        assert_eq!(PrinterStatus::from(printing::PrinterStatus::from(s)), s);
    }
    for c in [ReceiptCopy::Merchant, ReceiptCopy::Customer] {
        assert_eq!(ReceiptCopy::from(receipt::ReceiptCopy::from(c)), c);
    }
    let s = Session {
        operator: "02".into(),
        role: Role::Cashier,
        since_ms: 5,
    };
    assert_eq!(
        LoginResult::from(core_ops::LoginResult::LoggedIn(s)),
        LoginResult::LoggedIn {
            session: OperatorSession {
                operator: "02".into(),
                role: OperatorRole::Cashier,
                since_ms: 5
            }
        }
    );
    let p = PendingPrint::from(("r".to_owned(), "customer".to_owned(), 2, "busy".to_owned()));
    assert_eq!((p.attempts, p.last_status.as_str()), (2, "busy"));
}

fn config_reason(e: SmartPosError) -> String {
    match e {
        SmartPosError::Config { reason } => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn safety_settings_round_trip_and_validate_at_the_boundary() {
    let core = smartpos_terminal::api::SafetySettings {
        require_login: true,
        refund_policy: core_ops::RefundPolicy {
            max_days_since_original: 7,
            max_single_refund: Some(50_000),
            daily_total_per_terminal: None,
            daily_total_per_operator: Some(90_000),
            supervisor_approval_above: Some(1_000),
            same_card_required: true,
            fee: Some(core_ops::Fee::Percent { basis_points: 150 }),
        },
        operators: core_ops::OperatorConfig::default(),
    };
    let ffi = SafetySettings::from(&core);
    assert_eq!(ffi.operators.pbkdf2_iterations, 100_000);
    assert_eq!(
        ffi.refund_policy.fee,
        Some(RefundFee::Percent { basis_points: 150 })
    );
    assert_eq!(safety_settings_in(ffi.clone(), &core), Ok(core.clone()));

    let mut fixed = ffi.clone();
    fixed.refund_policy.fee = Some(RefundFee::Fixed { amount: 200 });
    fixed.require_login = false;
    let back = safety_settings_in(fixed, &core).unwrap();
    assert_eq!(back.refund_policy.fee, Some(core_ops::Fee::Fixed(200)));
    assert!(!back.require_login);

    let mut too_much = ffi.clone();
    too_much.refund_policy.fee = Some(RefundFee::Percent {
        basis_points: 10_001,
    });
    let reason = config_reason(safety_settings_in(too_much, &core).unwrap_err());
    assert!(
        reason.contains("refund_policy.fee.basis_points"),
        "{reason}"
    );

    let mut weaker = ffi.clone();
    weaker.operators.pbkdf2_iterations = 1;
    let reason = config_reason(safety_settings_in(weaker, &core).unwrap_err());
    assert!(reason.contains("operators.pbkdf2_iterations"), "{reason}");
    let mut lockout = ffi;
    lockout.operators.max_failed_attempts = 9;
    let reason = config_reason(safety_settings_in(lockout, &core).unwrap_err());
    assert!(reason.contains("operators.max_failed_attempts"), "{reason}");
}

#[test]
fn receipt_settings_round_trip_and_reject_bad_fields() {
    let good = ReceiptSettings {
        merchant_name: "测试商户 Test Shop".into(),
        merchant_id: "898100012340001".into(),
        terminal_id: "10000001".into(),
        width: ReceiptWidth::W48,
        language: "en".into(),
    };
    let core = printing::ReceiptSettings::try_from(good.clone()).unwrap();
    assert_eq!(core.width, receipt::Width::W48);
    assert_eq!(core.lang, receipt::Lang::En);
    assert_eq!(ReceiptSettings::from(&core), good);

    let bad = |f: &dyn Fn(&mut ReceiptSettings), field: &str| {
        let mut s = good.clone();
        f(&mut s);
        let reason = config_reason(printing::ReceiptSettings::try_from(s).unwrap_err());
        assert!(reason.contains(field), "{field}: {reason}");
    };
    bad(&|s| s.language = "fr".into(), "receipt.language");
    bad(&|s| s.language = "EN".into(), "receipt.language");
    bad(&|s| s.merchant_name = "  ".into(), "receipt.merchant_name");
    bad(
        &|s| s.merchant_name = "x".repeat(41),
        "receipt.merchant_name",
    );
    bad(
        &|s| s.merchant_name = "Shop\u{1b}@".into(),
        "receipt.merchant_name",
    );
    bad(
        &|s| s.merchant_id = "89810001234000".into(),
        "receipt.merchant_id",
    );
    bad(
        &|s| s.terminal_id = "1000000\n".into(),
        "receipt.terminal_id",
    );
    bad(
        &|s| s.terminal_id = "终端0001".into(),
        "receipt.terminal_id",
    );
}
