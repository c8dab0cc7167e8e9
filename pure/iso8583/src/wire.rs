//! Open wire enums: MTI, processing code, response code, POS entry mode.
//!
//! Each is a newtype over its wire digits with named constants; unknown values are kept and
//! re-encoded unchanged (the rustls `msgs/enums.rs` habit), because hosts invent codes.

use std::fmt;

use crate::response::ResponseClass;

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

/// Response code (field 39, `an2`). `Debug` shows the text: `ResponseCode("51")`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub [u8; 2]);

// What each code means (meaning, class, reversal, diagnosis) is one row of
// `crate::response::RESPONSE_CODES`; the methods below read it.

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
        self.row().and_then(|r| r.meaning)
    }

    /// Whether the code is in the ISO 8583:1987 or CUP table ([`ResponseCode::meaning`]).
    pub fn is_known(&self) -> bool {
        self.meaning().is_some()
    }

    /// Whether the code means approved ([`ResponseClass::Approved`] in its row): ISO 8583:1987
    /// `00`, `08` (honour with identification), `10` (partial amount), `11` (VIP), `16` (update
    /// track 3), and CUP's "approved with defects" `A2`, `A4`, `A5`, `A6` (有缺陷的成功,
    /// terminal action "success" in Q/CUP 006.6-2014 A.2: the switch stood in for an issuer
    /// that did not answer).
    pub fn is_approved(&self) -> bool {
        self.row()
            .is_some_and(|r| r.class == ResponseClass::Approved)
    }

    /// Whether an answer to a reversal (0410) with this code ends it: `00` reversed; `12` the
    /// original was never approved; `22` the original was already reversed or cancelled; `25`
    /// no original matches the reversal (Q/CUP 006.6-2014 A.2). In each case nothing is left
    /// charged. Any other code (`96`, `91`, `A0`, ...) means the host did not process the
    /// reversal: it stays pending and is sent again.
    pub fn closes_reversal(&self) -> bool {
        self.row().is_some_and(|r| r.closes_reversal)
    }

    /// Whether the code says the host could not process the request now rather than refusing
    /// it ([`ResponseClass::Temporary`]: "try again later" in Q/CUP 006.6-2014 A.2): `09`
    /// request in progress, `68` answer too late, `90` cut-off in progress, `91` issuer or
    /// switch inoperative, `92` no route, `94` duplicate (retry later), `96` system
    /// malfunction, `98` issuer timeout, `A0` MAC error (sign in again), `A7` security
    /// processing failed. A store-and-forward advice answered with one of these is kept and
    /// sent again.
    pub fn is_temporary(&self) -> bool {
        self.row()
            .is_some_and(|r| r.class == ResponseClass::Temporary)
    }

    /// Parses 2 letters or digits.
    pub fn parse(s: &str) -> Option<ResponseCode> {
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        s.as_bytes().try_into().ok().map(ResponseCode)
    }

    /// Reads field 39 as a host sent it: 2 characters of the field's `an` class, letters,
    /// digits or space (hosts space-pad; [`crate::FieldKind::An`]). Every answer the codec
    /// accepts in a built-in dialect's field 39 is one, so the journal's `response_code`
    /// column holds only these. Wider than [`ResponseCode::parse`], which takes what a person
    /// types.
    pub fn from_field(s: &str) -> Option<ResponseCode> {
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
            return None;
        }
        s.as_bytes().try_into().ok().map(ResponseCode)
    }

    /// The two characters as text (`"??"` for bytes that are not text, which only a value
    /// built from raw bytes can hold: [`ResponseCode::parse`] and
    /// [`ResponseCode::from_field`] take ASCII only).
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code as its wire text, so `record.response_code.as_deref() == Some("51")` reads as the
/// text did.
impl std::ops::Deref for ResponseCode {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResponseCode").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for ResponseCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ResponseCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ResponseCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for ResponseCode {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<ResponseCode> for String {
    fn eq(&self, other: &ResponseCode) -> bool {
        self == other.as_str()
    }
}

/// Text that is not a response code ([`ResponseCode::from_field`]) or an entry mode
/// ([`PosEntryMode::parse`]). Carries nothing of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireValueError(&'static str);

impl fmt::Display for WireValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireValueError {}

impl std::str::FromStr for ResponseCode {
    type Err = WireValueError;

    /// [`ResponseCode::from_field`].
    fn from_str(s: &str) -> Result<ResponseCode, WireValueError> {
        ResponseCode::from_field(s).ok_or(WireValueError(
            "response code must be 2 letters, digits or spaces",
        ))
    }
}

/// POS entry mode (field 22, `n3`): two digits of PAN entry mode and one digit of PIN entry
/// capability (1 = terminal can accept PINs, 2 = it cannot), per ISO 8583:1987 and the CUP POS
/// specification.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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

    /// The three digits as text (`"??"` for bytes that are not text, which only a value built
    /// from raw bytes can hold).
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl fmt::Display for PosEntryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The entry mode as its wire text, so `record.entry_mode.as_deref() == Some("071")` reads as
/// the text did.
impl std::ops::Deref for PosEntryMode {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for PosEntryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PosEntryMode").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for PosEntryMode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for PosEntryMode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PosEntryMode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for PosEntryMode {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<PosEntryMode> for String {
    fn eq(&self, other: &PosEntryMode) -> bool {
        self == other.as_str()
    }
}

impl std::str::FromStr for PosEntryMode {
    type Err = WireValueError;

    /// [`PosEntryMode::parse`].
    fn from_str(s: &str) -> Result<PosEntryMode, WireValueError> {
        PosEntryMode::parse(s).ok_or(WireValueError("entry mode must be 3 digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_code_classes_follow_the_tables_and_do_not_overlap() {
        let code = |s: &str| ResponseCode::parse(s).expect("two characters");
        for row in crate::response::RESPONSE_CODES {
            let rc = row.code;
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
    fn typed_codes_read_as_their_wire_text() {
        // What the journal's columns hold: field 39 as the codec accepts it (space-padded
        // too), field 22 as the engine records it.
        for s in ["00", "51", "A0", "Z9", "0 ", " 5"] {
            let rc = ResponseCode::from_field(s).expect(s);
            assert_eq!(&*rc, s);
            assert_eq!(rc, s);
            assert_eq!(s.parse::<ResponseCode>(), Ok(rc));
        }
        assert_eq!(ResponseCode::parse("0 "), None, "a person types no spaces");
        for s in ["", "0", "000", "0-", "é", "\u{0}0"] {
            assert!(ResponseCode::from_field(s).is_none(), "{s:?}");
            assert!(s.parse::<ResponseCode>().is_err(), "{s:?}");
        }
        assert_eq!(Some(ResponseCode::APPROVED).as_deref(), Some("00"));
        assert_eq!(
            format!("{:?}", ResponseCode::MAC_ERROR),
            "ResponseCode(\"A0\")"
        );
        assert_eq!(format!("{:?}", PosEntryMode::CHIP), "PosEntryMode(\"051\")");
        let pem: PosEntryMode = "071".parse().unwrap();
        assert_eq!(pem, "071");
        assert_eq!(Some(pem).as_deref(), Some("071"));
        for s in ["", "07", "0711", "07a", " 71"] {
            assert!(s.parse::<PosEntryMode>().is_err(), "{s:?}");
        }
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
