//! Open wire enums: MTI, processing code, response code, POS entry mode.
//!
//! Each is a newtype over its wire digits with named constants; unknown values are kept and
//! re-encoded unchanged (the rustls `msgs/enums.rs` habit), because hosts invent codes.

use std::fmt;

/// Message type indicator: the 4 decimal digits as a number (`Mti(200)` is `0200`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti(pub u16);

impl Mti {
    /// 0100 authorization request (pre-authorization).
    pub const AUTH_REQUEST: Mti = Mti(100);
    /// 0110 authorization response.
    pub const AUTH_RESPONSE: Mti = Mti(110);
    /// 0200 financial request (sale, void, refund online).
    pub const FINANCIAL_REQUEST: Mti = Mti(200);
    /// 0210 financial response.
    pub const FINANCIAL_RESPONSE: Mti = Mti(210);
    /// 0220 financial advice (offline sale, refund in CUP).
    pub const ADVICE: Mti = Mti(220);
    /// 0221 financial advice repeat.
    pub const ADVICE_REPEAT: Mti = Mti(221);
    /// 0230 financial advice response.
    pub const ADVICE_RESPONSE: Mti = Mti(230);
    /// 0320 batch upload (file action advice).
    pub const BATCH_UPLOAD: Mti = Mti(320);
    /// 0330 batch upload response.
    pub const BATCH_UPLOAD_RESPONSE: Mti = Mti(330);
    /// 0400 reversal request (advice).
    pub const REVERSAL: Mti = Mti(400);
    /// 0401 reversal repeat.
    pub const REVERSAL_REPEAT: Mti = Mti(401);
    /// 0410 reversal response.
    pub const REVERSAL_RESPONSE: Mti = Mti(410);
    /// 0500 reconciliation (settlement) request.
    pub const RECONCILIATION: Mti = Mti(500);
    /// 0510 reconciliation response.
    pub const RECONCILIATION_RESPONSE: Mti = Mti(510);
    /// 0800 network management request (sign-in, echo, key exchange).
    pub const NETWORK: Mti = Mti(800);
    /// 0810 network management response.
    pub const NETWORK_RESPONSE: Mti = Mti(810);
    /// 0820 network management advice (sign-off, batch end).
    pub const NETWORK_ADVICE: Mti = Mti(820);
    /// 0830 network management advice response.
    pub const NETWORK_ADVICE_RESPONSE: Mti = Mti(830);

    /// The response MTI for a request, advice or notification: +10 on the function digit, the
    /// repeat bit of the origin digit dropped (0221 → 0230, 0401 → 0410). `None` for responses
    /// (odd function digit), for function digits 8 and 9 (reserved in ISO 8583:1987) and for
    /// values over 9999.
    pub fn response(self) -> Option<Mti> {
        if self.0 > 9999 {
            return None;
        }
        let function = (self.0 / 10) % 10;
        let origin = self.0 % 10;
        if function % 2 == 1 || function >= 8 {
            return None;
        }
        Some(Mti(self.0 + 10 - origin % 2))
    }

    /// Whether the origin digit marks a repeat (1, 3, 5: acquirer/issuer/other repeat).
    pub fn is_repeat(self) -> bool {
        (self.0 % 10) % 2 == 1
    }

    /// Parses exactly 4 decimal digits.
    pub fn parse(s: &str) -> Option<Mti> {
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(Mti)
    }

    /// Four ASCII digits, without a string.
    pub fn parse_digits(d: &[u8; 4]) -> Option<Mti> {
        d.iter()
            .try_fold(0u16, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
            })
            .map(Mti)
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

fn digits<const N: usize>(s: &str) -> Option<[u8; N]> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.as_bytes().try_into().ok()
}

fn ascii_str(bytes: &[u8]) -> &str {
    // The newtypes are open, so the bytes may be anything; show them only if they are text.
    std::str::from_utf8(bytes).unwrap_or("??")
}

/// Processing code (field 3, `n6`): transaction type, from-account, to-account as ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessingCode(pub [u8; 6]);

impl ProcessingCode {
    /// 000000 purchase (goods and services); also CUP pre-authorization completion.
    pub const PURCHASE: ProcessingCode = ProcessingCode(*b"000000");
    /// 010000 cash withdrawal / cash advance.
    pub const CASH: ProcessingCode = ProcessingCode(*b"010000");
    /// 030000 pre-authorization (CUP), ISO "cheque guarantee" reused by acquirers.
    pub const PREAUTH: ProcessingCode = ProcessingCode(*b"030000");
    /// 200000 refund / return.
    pub const REFUND: ProcessingCode = ProcessingCode(*b"200000");
    /// 200000 void: CUP uses the refund code; field 60.1 tells them apart.
    pub const VOID: ProcessingCode = ProcessingCode(*b"200000");
    /// 310000 balance inquiry.
    pub const BALANCE: ProcessingCode = ProcessingCode(*b"310000");

    /// Parses 6 decimal digits.
    pub fn parse(s: &str) -> Option<ProcessingCode> {
        digits(s).map(ProcessingCode)
    }

    /// The transaction type (first two digits).
    pub fn transaction_type(&self) -> &str {
        ascii_str(self.0.get(..2).unwrap_or_default())
    }
}

impl fmt::Display for ProcessingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ascii_str(&self.0))
    }
}

/// Response code (field 39, `an2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub [u8; 2]);

// Meanings: ISO 8583:1987 response code table (field 39 values 00-96 as commonly published,
// e.g. the ISO 8583 annex reproduced by card schemes' host specifications) and the China
// UnionPay POS terminal specification (中国银联 POS 终端规范, 应答码表) for 77, 97-99 and A0.
// 45 and A1-A7: the UnionPay response code table, Q/CUP 006.6-2014 appendix A.2 (应答码), whose
// "terminal action" column (终端操作) also classifies the codes used by `is_approved`,
// `closes_reversal` and `is_temporary` below.
const MEANINGS: &[(&[u8; 2], &str)] = &[
    (b"00", "Approved or completed successfully"),
    (b"01", "Refer to card issuer"),
    (b"02", "Refer to card issuer, special condition"),
    (b"03", "Invalid merchant"),
    (b"04", "Pick up card"),
    (b"05", "Do not honour"),
    (b"06", "Error"),
    (b"07", "Pick up card, special condition"),
    (b"08", "Honour with identification"),
    (b"09", "Request in progress"),
    (b"10", "Approved for partial amount"),
    (b"11", "Approved (VIP)"),
    (b"12", "Invalid transaction"),
    (b"13", "Invalid amount"),
    (b"14", "Invalid card number (no such number)"),
    (b"15", "No such issuer"),
    (b"16", "Approved, update track 3"),
    (b"17", "Customer cancellation"),
    (b"18", "Customer dispute"),
    (b"19", "Re-enter transaction"),
    (b"20", "Invalid response"),
    (b"21", "No action taken"),
    (b"22", "Suspected malfunction"),
    (b"23", "Unacceptable transaction fee"),
    (b"24", "File update not supported by receiver"),
    (b"25", "Unable to locate record on file"),
    (b"26", "Duplicate file update record, old record replaced"),
    (b"27", "File update field edit error"),
    (b"28", "File update file locked out"),
    (b"29", "File update not successful, contact acquirer"),
    (b"30", "Format error"),
    (b"31", "Bank not supported by switch"),
    (b"32", "Completed partially"),
    (b"33", "Expired card, pick up"),
    (b"34", "Suspected fraud, pick up"),
    (b"35", "Card acceptor contact acquirer, pick up"),
    (b"36", "Restricted card, pick up"),
    (b"37", "Card acceptor call acquirer security, pick up"),
    (b"38", "Allowable PIN tries exceeded, pick up"),
    (b"39", "No credit account"),
    (b"40", "Requested function not supported"),
    (b"41", "Lost card, pick up"),
    (b"42", "No universal account"),
    (b"43", "Stolen card, pick up"),
    (b"44", "No investment account"),
    (
        b"45",
        "Fallback to magnetic stripe not allowed, use the chip (CUP)",
    ),
    (b"51", "Not sufficient funds"),
    (b"52", "No cheque account"),
    (b"53", "No savings account"),
    (b"54", "Expired card"),
    (b"55", "Incorrect PIN"),
    (b"56", "No card record"),
    (b"57", "Transaction not permitted to cardholder"),
    (b"58", "Transaction not permitted to terminal"),
    (b"59", "Suspected fraud"),
    (b"60", "Card acceptor contact acquirer"),
    (b"61", "Exceeds withdrawal amount limit"),
    (b"62", "Restricted card"),
    (b"63", "Security violation"),
    (b"64", "Original amount incorrect"),
    (b"65", "Exceeds withdrawal frequency limit"),
    (b"66", "Card acceptor call acquirer's security department"),
    (b"67", "Hard capture, pick up card at ATM"),
    (b"68", "Response received too late"),
    (b"75", "Allowable number of PIN tries exceeded"),
    (b"77", "Batch number mismatch, sign in again (CUP)"),
    (b"90", "Cutoff in process"),
    (b"91", "Issuer or switch inoperative"),
    (b"92", "Institution or network cannot be found for routing"),
    (b"93", "Transaction cannot be completed, violation of law"),
    (b"94", "Duplicate transmission"),
    (b"95", "Reconcile error"),
    (b"96", "System malfunction"),
    (b"97", "Terminal not registered (CUP)"),
    (b"98", "No response from issuer, timeout (CUP)"),
    (b"99", "PIN format error (CUP)"),
    (b"A0", "MAC verification failed, sign in again (CUP)"),
    (b"A1", "Transfer currencies differ (CUP)"),
    (
        b"A2",
        "Approved with defects: confirm with the receiving bank (CUP)",
    ),
    (b"A3", "No such account at the receiving bank (CUP)"),
    (
        b"A4",
        "Approved with defects: confirm with the receiving bank (CUP)",
    ),
    (
        b"A5",
        "Approved with defects: confirm with the receiving bank (CUP)",
    ),
    (
        b"A6",
        "Approved with defects: confirm with the receiving bank (CUP)",
    ),
    (b"A7", "Security processing failed (CUP)"),
];

impl ResponseCode {
    /// 00 approved.
    pub const APPROVED: ResponseCode = ResponseCode(*b"00");
    /// 01 refer to card issuer.
    pub const REFER_TO_ISSUER: ResponseCode = ResponseCode(*b"01");
    /// 05 do not honour.
    pub const DO_NOT_HONOUR: ResponseCode = ResponseCode(*b"05");
    /// 06 error (also a CUP reversal reason).
    pub const ERROR: ResponseCode = ResponseCode(*b"06");
    /// 10 approved for partial amount.
    pub const PARTIAL_APPROVAL: ResponseCode = ResponseCode(*b"10");
    /// 12 invalid transaction.
    pub const INVALID_TRANSACTION: ResponseCode = ResponseCode(*b"12");
    /// 13 invalid amount.
    pub const INVALID_AMOUNT: ResponseCode = ResponseCode(*b"13");
    /// 14 invalid card number.
    pub const INVALID_CARD: ResponseCode = ResponseCode(*b"14");
    /// 25 unable to locate record (original not found).
    pub const RECORD_NOT_FOUND: ResponseCode = ResponseCode(*b"25");
    /// 30 format error.
    pub const FORMAT_ERROR: ResponseCode = ResponseCode(*b"30");
    /// 51 not sufficient funds.
    pub const INSUFFICIENT_FUNDS: ResponseCode = ResponseCode(*b"51");
    /// 54 expired card.
    pub const EXPIRED_CARD: ResponseCode = ResponseCode(*b"54");
    /// 55 incorrect PIN.
    pub const INCORRECT_PIN: ResponseCode = ResponseCode(*b"55");
    /// 91 issuer or switch inoperative.
    pub const ISSUER_UNAVAILABLE: ResponseCode = ResponseCode(*b"91");
    /// 94 duplicate transmission.
    pub const DUPLICATE: ResponseCode = ResponseCode(*b"94");
    /// 95 reconcile error (settlement totals mismatch).
    pub const RECONCILE_ERROR: ResponseCode = ResponseCode(*b"95");
    /// 96 system malfunction.
    pub const SYSTEM_MALFUNCTION: ResponseCode = ResponseCode(*b"96");
    /// 98 timeout (CUP; also the reversal reason for a host timeout).
    pub const TIMEOUT: ResponseCode = ResponseCode(*b"98");
    /// A0 MAC error (CUP; also the reversal reason for a bad response MAC).
    pub const MAC_ERROR: ResponseCode = ResponseCode(*b"A0");

    /// English meaning, if the code is in the ISO 8583:1987 or CUP table.
    pub fn meaning(&self) -> Option<&'static str> {
        MEANINGS
            .iter()
            .find(|(c, _)| **c == self.0)
            .map(|(_, m)| *m)
    }

    /// Whether the code is in the ISO 8583:1987 or CUP table ([`ResponseCode::meaning`]).
    pub fn is_known(&self) -> bool {
        self.meaning().is_some()
    }

    /// Whether the code means approved: ISO 8583:1987 `00`, `08` (honour with identification),
    /// `10` (partial amount), `11` (VIP), `16` (update track 3), and CUP's "approved with
    /// defects" `A2`, `A4`, `A5`, `A6` (有缺陷的成功, terminal action "success" in Q/CUP
    /// 006.6-2014 A.2: the switch stood in for an issuer that did not answer).
    pub fn is_approved(&self) -> bool {
        matches!(
            &self.0,
            b"00" | b"08" | b"10" | b"11" | b"16" | b"A2" | b"A4" | b"A5" | b"A6"
        )
    }

    /// Whether an answer to a reversal (0410) with this code ends it: `00` reversed; `12` the
    /// original was never approved; `22` the original was already reversed or cancelled; `25`
    /// no original matches the reversal (Q/CUP 006.6-2014 A.2). In each case nothing is left
    /// charged. Any other code (`96`, `91`, `A0`, ...) means the host did not process the
    /// reversal: it stays pending and is sent again.
    pub fn closes_reversal(&self) -> bool {
        matches!(&self.0, b"00" | b"12" | b"22" | b"25")
    }

    /// Whether the code says the host could not process the request now rather than refusing
    /// it ("try again later" in Q/CUP 006.6-2014 A.2): `09` request in progress, `68` answer
    /// too late, `90` cut-off in progress, `91` issuer or switch inoperative, `92` no route,
    /// `94` duplicate (retry later), `96` system malfunction, `98` issuer timeout, `A0` MAC
    /// error (sign in again), `A7` security processing failed. A store-and-forward advice
    /// answered with one of these is kept and sent again.
    pub fn is_temporary(&self) -> bool {
        matches!(
            &self.0,
            b"09" | b"68" | b"90" | b"91" | b"92" | b"94" | b"96" | b"98" | b"A0" | b"A7"
        )
    }

    /// Parses 2 letters or digits.
    pub fn parse(s: &str) -> Option<ResponseCode> {
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        s.as_bytes().try_into().ok().map(ResponseCode)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ascii_str(&self.0))
    }
}

/// POS entry mode (field 22, `n3`): two digits of PAN entry mode and one digit of PIN entry
/// capability (1 = terminal can accept PINs, 2 = it cannot), per ISO 8583:1987 and the CUP POS
/// specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PosEntryMode(pub [u8; 3]);

impl PosEntryMode {
    /// 011 manual key entry, PIN capable.
    pub const KEYED: PosEntryMode = PosEntryMode(*b"011");
    /// 012 manual key entry, no PIN capability.
    pub const KEYED_NO_PIN: PosEntryMode = PosEntryMode(*b"012");
    /// 021 magnetic stripe, PIN capable.
    pub const MAGSTRIPE: PosEntryMode = PosEntryMode(*b"021");
    /// 022 magnetic stripe, no PIN capability.
    pub const MAGSTRIPE_NO_PIN: PosEntryMode = PosEntryMode(*b"022");
    /// 051 contact chip, PIN capable.
    pub const CHIP: PosEntryMode = PosEntryMode(*b"051");
    /// 052 contact chip, no PIN capability.
    pub const CHIP_NO_PIN: PosEntryMode = PosEntryMode(*b"052");
    /// 071 contactless chip (qPBOC / EMV contactless), PIN capable.
    pub const CONTACTLESS_CHIP: PosEntryMode = PosEntryMode(*b"071");
    /// 072 contactless chip, no PIN capability.
    pub const CONTACTLESS_CHIP_NO_PIN: PosEntryMode = PosEntryMode(*b"072");
    /// 801 fallback from chip to magnetic stripe, PIN capable.
    pub const FALLBACK: PosEntryMode = PosEntryMode(*b"801");
    /// 802 fallback, no PIN capability.
    pub const FALLBACK_NO_PIN: PosEntryMode = PosEntryMode(*b"802");
    /// 911 contactless magnetic-stripe mode, PIN capable.
    pub const CONTACTLESS_MAGSTRIPE: PosEntryMode = PosEntryMode(*b"911");
    /// 912 contactless magnetic-stripe mode, no PIN capability.
    pub const CONTACTLESS_MAGSTRIPE_NO_PIN: PosEntryMode = PosEntryMode(*b"912");

    /// Parses 3 decimal digits.
    pub fn parse(s: &str) -> Option<PosEntryMode> {
        digits(s).map(PosEntryMode)
    }

    /// The PAN entry mode (first two digits).
    pub fn pan_entry(&self) -> &str {
        ascii_str(self.0.get(..2).unwrap_or_default())
    }

    /// Whether the third digit says the terminal can accept PINs.
    pub fn pin_capable(&self) -> bool {
        self.0[2] == b'1'
    }
}

impl fmt::Display for PosEntryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ascii_str(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_code_classes_follow_the_tables_and_do_not_overlap() {
        let code = |s: &str| ResponseCode::parse(s).expect("two characters");
        for (c, _) in MEANINGS {
            let rc = ResponseCode(**c);
            assert!(
                !(rc.is_approved() && rc.is_temporary()),
                "{rc}: approved and temporary"
            );
            assert!(
                !(rc.closes_reversal() && rc.is_temporary()),
                "{rc}: closes a reversal and temporary"
            );
        }
        for c in [
            "00", "08", "10", "11", "16", "A2", "A4", "A5", "A6", "12", "22", "25", "09", "68",
            "90", "91", "92", "94", "96", "98", "A0", "A7",
        ] {
            assert!(
                code(c).is_known(),
                "{c} is classified, so it is in the table"
            );
        }
        // Declines, including CUP's failures next to its approvals-with-defects.
        for c in ["01", "05", "12", "14", "51", "55", "A1", "A3"] {
            assert!(!code(c).is_approved(), "{c}");
        }
        // A reversal ends only when nothing is left charged.
        for c in ["96", "91", "A0", "94", "05", "30", "Z9"] {
            assert!(!code(c).closes_reversal(), "{c}");
        }
        assert!(!code("Z9").is_known());
        assert!(!code("47").is_known(), "ISO reserved, not in the table");
    }

    #[test]
    fn mti_response_and_repeat() {
        assert_eq!(
            Mti::FINANCIAL_REQUEST.response(),
            Some(Mti::FINANCIAL_RESPONSE)
        );
        assert_eq!(Mti::AUTH_REQUEST.response(), Some(Mti::AUTH_RESPONSE));
        assert_eq!(Mti::ADVICE_REPEAT.response(), Some(Mti::ADVICE_RESPONSE));
        assert_eq!(
            Mti::REVERSAL_REPEAT.response(),
            Some(Mti::REVERSAL_RESPONSE)
        );
        assert_eq!(
            Mti::BATCH_UPLOAD.response(),
            Some(Mti::BATCH_UPLOAD_RESPONSE)
        );
        assert_eq!(
            Mti::NETWORK_ADVICE.response(),
            Some(Mti::NETWORK_ADVICE_RESPONSE)
        );
        assert_eq!(
            Mti::RECONCILIATION.response(),
            Some(Mti::RECONCILIATION_RESPONSE)
        );
        assert_eq!(Mti::FINANCIAL_RESPONSE.response(), None);
        assert_eq!(Mti(10000).response(), None);
        assert!(Mti::ADVICE_REPEAT.is_repeat());
        assert!(!Mti::ADVICE.is_repeat());
    }

    #[test]
    fn mti_parse_and_display() {
        assert_eq!(Mti::parse("0200"), Some(Mti(200)));
        assert_eq!(Mti::parse("200"), None);
        assert_eq!(Mti::parse("02a0"), None);
        assert_eq!(Mti::parse("+200"), None);
        assert_eq!(Mti(200).to_string(), "0200");
        assert_eq!(Mti(9999).to_string(), "9999");
    }

    #[test]
    fn open_codes_round_trip_unknown_values() {
        let pc = ProcessingCode::parse("990000").unwrap();
        assert_eq!(pc.to_string(), "990000");
        assert_eq!(pc.transaction_type(), "99");
        assert_eq!(ProcessingCode::parse("12345"), None);
        let rc = ResponseCode::parse("Z9").unwrap();
        assert_eq!(rc.meaning(), None);
        assert_eq!(rc.to_string(), "Z9");
        let pem = PosEntryMode::parse("072").unwrap();
        assert_eq!(pem, PosEntryMode::CONTACTLESS_CHIP_NO_PIN);
        assert_eq!(pem.pan_entry(), "07");
        assert!(!pem.pin_capable());
        assert!(PosEntryMode::CHIP.pin_capable());
        assert_eq!(PosEntryMode(*b"\xff\xfe1").to_string(), "??");
    }

    #[test]
    fn response_code_meanings() {
        assert!(ResponseCode::APPROVED.is_approved());
        assert!(!ResponseCode::DO_NOT_HONOUR.is_approved());
        assert_eq!(
            ResponseCode::INSUFFICIENT_FUNDS.meaning(),
            Some("Not sufficient funds")
        );
        assert_eq!(
            ResponseCode::MAC_ERROR.meaning(),
            Some("MAC verification failed, sign in again (CUP)")
        );
        assert_eq!(ResponseCode(*b"47").meaning(), None);
    }
}
