//! The built-in dialect tables: one line per field, nothing else.
//!
//! Facts, not code, are carried over here, each table citing its source. The codec reads these
//! lines; it has no branch per dialect.

use crate::spec::FieldKind::{An, Ans, B, N, Ns, Xn, Z};
use crate::spec::LengthType::{Fixed, LlVar, LllVar};
use crate::spec::{
    BitmapEncoding, FieldSpec, Mask, MtiEncoding, Pad, PrefixEncoding, SubfieldSpec, ValueEncoding,
};

const A: PrefixEncoding = PrefixEncoding::Ascii;
const BCD: PrefixEncoding = PrefixEncoding::Bcd;
const ASC: ValueEncoding = ValueEncoding::Ascii;
const BIN: ValueEncoding = ValueEncoding::Binary;
const HEX: ValueEncoding = ValueEncoding::HexAscii;
/// Numeric BCD, right-aligned (odd length: leading 0 nibble).
const N_L0: ValueEncoding = ValueEncoding::Bcd {
    pad: Pad::Left,
    filler: 0,
    checked: true,
};
/// Numeric BCD, left-aligned (odd length: trailing 0 nibble) — CUP "左靠，右补0".
const N_R0: ValueEncoding = ValueEncoding::Bcd {
    pad: Pad::Right,
    filler: 0,
    checked: true,
};
/// Track data BCD, left-aligned, odd length padded with F.
const Z_RF: ValueEncoding = ValueEncoding::Bcd {
    pad: Pad::Right,
    filler: 0xF,
    checked: true,
};
/// jPOS `ISO87BPackager` fixed numerics (`IFB_NUMERIC`, padded): right-aligned, leading 0
/// nibble, which jPOS never checks on read.
const J_L0: ValueEncoding = ValueEncoding::Bcd {
    pad: Pad::Left,
    filler: 0,
    checked: false,
};
/// jPOS `ISO87BPackager` variable numerics (`IFB_LLNUM`): digits first, trailing 0 nibble,
/// never checked on read.
const J_R0: ValueEncoding = ValueEncoding::Bcd {
    pad: Pad::Right,
    filler: 0,
    checked: false,
};

/// The parts a built-in dialect is made of.
pub(crate) struct Layout {
    pub name: &'static str,
    pub header: &'static [u8],
    pub mti: MtiEncoding,
    pub bitmap: BitmapEncoding,
    pub fields: &'static [FieldSpec],
    pub subfields: &'static [(u8, &'static [SubfieldSpec])],
}

/// CUP default header: TPDU `60 0003 0000` (ID 0x60, destination NII 0003, source 0000) then the
/// 6-byte header `60 31 0 0 311000` (application category 60, software general version 31,
/// terminal status 0, processing requirement 0, software sub-version 311000), both from the
/// UnionPay POS terminal specification (中国银联 POS 终端规范, 报文结构: TPDU + 报文头). The
/// version digits are acquirer-assigned; an acquirer profile overrides them.
const CUP_HEADER: &[u8] = &[
    0x60, 0x00, 0x03, 0x00, 0x00, 0x60, 0x31, 0x00, 0x31, 0x10, 0x00,
];

/// China UnionPay-style POS dialect, after the UnionPay POS terminal specification
/// (中国银联 POS 终端规范, 数据元定义): BCD numerics and BCD length prefixes, ASCII an/ans,
/// binary b. Variable numerics and field 22 are left-aligned with a trailing 0 nibble
/// ("左靠，右补0"), so the subfields of 60/61 start at the first digit; 23 is right-aligned.
/// Every field the specification defines between terminal and acquirer: 2 3 4 11 12 13 14 15
/// 22 23 25 26 32 35 36 37 38 39 41 42 44 48 49 52 53 54 55 58 59 60 61 62 63 64. 58 (PBOC
/// electronic purse data, `..100`) and 59 (custom data, `..999`) are binary LLLVAR, as the
/// public newPosTech/`dongzhijiaren/ISO8583` terminal table (`8583/st8583.h`: `LEN_EP_DATA`
/// 100, `LEN_FIELD59` 999) has them; an acquirer that puts text or a TLV list there types it
/// with a profile layout (docs/profiles.md).
const CUP_FIELDS: &[FieldSpec] = &[
    FieldSpec::new(2, "Primary account number", N, LlVar(19), BCD, N_R0).masked(Mask::Pan),
    FieldSpec::new(3, "Processing code", N, Fixed(6), BCD, N_L0),
    FieldSpec::new(4, "Amount, transaction", N, Fixed(12), BCD, N_L0),
    FieldSpec::new(11, "System trace audit number", N, Fixed(6), BCD, N_L0),
    FieldSpec::new(12, "Time, local transaction", N, Fixed(6), BCD, N_L0),
    FieldSpec::new(13, "Date, local transaction", N, Fixed(4), BCD, N_L0),
    FieldSpec::new(14, "Date, expiration", N, Fixed(4), BCD, N_L0).masked(Mask::Hidden),
    FieldSpec::new(15, "Date, settlement", N, Fixed(4), BCD, N_L0),
    FieldSpec::new(22, "POS entry mode", N, Fixed(3), BCD, N_R0),
    FieldSpec::new(23, "Card sequence number", N, Fixed(3), BCD, N_L0),
    FieldSpec::new(25, "POS condition code", N, Fixed(2), BCD, N_L0),
    FieldSpec::new(26, "POS PIN capture code", N, Fixed(2), BCD, N_L0),
    FieldSpec::new(32, "Acquiring institution ID", N, LlVar(11), BCD, N_R0),
    FieldSpec::new(35, "Track 2 data", Z, LlVar(37), BCD, Z_RF).masked(Mask::Track),
    FieldSpec::new(36, "Track 3 data", Z, LllVar(104), BCD, Z_RF).masked(Mask::Track),
    FieldSpec::new(37, "Retrieval reference number", An, Fixed(12), BCD, ASC),
    FieldSpec::new(38, "Authorization ID response", An, Fixed(6), BCD, ASC),
    FieldSpec::new(39, "Response code", An, Fixed(2), BCD, ASC),
    FieldSpec::new(41, "Card acceptor terminal ID", Ans, Fixed(8), BCD, ASC),
    FieldSpec::new(42, "Card acceptor ID", Ans, Fixed(15), BCD, ASC),
    FieldSpec::new(44, "Additional response data", An, LlVar(25), BCD, ASC),
    FieldSpec::new(48, "Additional data, private", N, LllVar(322), BCD, N_R0),
    FieldSpec::new(49, "Currency code, transaction", An, Fixed(3), BCD, ASC),
    FieldSpec::new(52, "PIN data", B, Fixed(8), BCD, BIN).masked(Mask::Length),
    FieldSpec::new(
        53,
        "Security related control information",
        N,
        Fixed(16),
        BCD,
        N_L0,
    ),
    FieldSpec::new(54, "Additional amounts", An, LllVar(20), BCD, ASC),
    FieldSpec::new(55, "ICC system related data", B, LllVar(255), BCD, BIN).masked(Mask::Length),
    FieldSpec::new(
        58,
        "PBOC electronic purse transaction data",
        B,
        LllVar(100),
        BCD,
        BIN,
    ),
    FieldSpec::new(
        59,
        "Reserved private (custom data)",
        B,
        LllVar(999),
        BCD,
        BIN,
    ),
    FieldSpec::new(
        60,
        "Reserved private (transaction info)",
        N,
        LllVar(17),
        BCD,
        N_R0,
    ),
    FieldSpec::new(61, "Original message data", N, LllVar(29), BCD, N_R0),
    FieldSpec::new(
        62,
        "Reserved private (keys, terminal data)",
        B,
        LllVar(512),
        BCD,
        BIN,
    )
    .masked(Mask::Length),
    FieldSpec::new(
        63,
        "Reserved private (card organization)",
        Ans,
        LllVar(163),
        BCD,
        ASC,
    ),
    FieldSpec::new(64, "Message authentication code", B, Fixed(8), BCD, BIN),
];

/// Subfields of CUP 60, 61 and 63 (UnionPay POS terminal specification, 自定义域 60/61/63).
const CUP_SUBFIELDS: &[(u8, &[SubfieldSpec])] = &[
    (
        60,
        &[
            SubfieldSpec::new("60.1 transaction type code", 2),
            SubfieldSpec::new("60.2 batch number", 6),
            SubfieldSpec::new("60.3 network management information code", 3),
            SubfieldSpec::new("60.4 terminal read capability", 1),
            SubfieldSpec::new("60.5 IC card condition code", 1),
            SubfieldSpec::new("60.6 partial approval flag", 1),
        ],
    ),
    (
        61,
        &[
            SubfieldSpec::new("61.1 original batch number", 6),
            SubfieldSpec::new("61.2 original POS trace number", 6),
            SubfieldSpec::new("61.3 original transaction date", 4),
            SubfieldSpec::new("61.4 original authorization method", 2),
            SubfieldSpec::new("61.5 original authorization institution", 11),
        ],
    ),
    (
        63,
        &[
            SubfieldSpec::new("63.1 international card organization code", 3),
            SubfieldSpec::new("63.2 issuer information", 20),
            SubfieldSpec::new("63.3 CUP information", 20),
            SubfieldSpec::new("63.4 acquirer information", 20),
        ],
    ),
];

/// ISO 8583:1987 ASCII. Field formats from the ISO 8583:1987 data element table; lengths,
/// maximum lengths and encodings match pyiso8583 4.0.1 `specs.default_ascii` for every field
/// (binary fields as hex characters, prefixes counting those characters). Deviations of the
/// character class from ISO (which pyiso8583 does not check): 45 (track 1) and 46-48 are `ans`
/// because real track 1 / private data hold `^`, `/` and spaces; 55 is EMV ICC data `b..255`
/// (ISO 1987 reserves it as `ans..999`).
const ISO87A_FIELDS: &[FieldSpec] = &[
    FieldSpec::new(2, "Primary Account Number (PAN)", N, LlVar(19), A, ASC).masked(Mask::Pan),
    FieldSpec::new(3, "Processing Code", N, Fixed(6), A, ASC),
    FieldSpec::new(4, "Amount, Transaction", N, Fixed(12), A, ASC),
    FieldSpec::new(5, "Amount, Settlement", N, Fixed(12), A, ASC),
    FieldSpec::new(6, "Amount, Cardholder Billing", N, Fixed(12), A, ASC),
    FieldSpec::new(7, "Transmission Date and Time", N, Fixed(10), A, ASC),
    FieldSpec::new(8, "Amount, Cardholder Billing Fee", N, Fixed(8), A, ASC),
    FieldSpec::new(9, "Conversion Rate, Settlement", N, Fixed(8), A, ASC),
    FieldSpec::new(
        10,
        "Conversion Rate, Cardholder Billing",
        N,
        Fixed(8),
        A,
        ASC,
    ),
    FieldSpec::new(11, "System Trace Audit Number", N, Fixed(6), A, ASC),
    FieldSpec::new(12, "Time, Local Transaction", N, Fixed(6), A, ASC),
    FieldSpec::new(13, "Date, Local Transaction", N, Fixed(4), A, ASC),
    FieldSpec::new(14, "Date, Expiration", N, Fixed(4), A, ASC).masked(Mask::Hidden),
    FieldSpec::new(15, "Date, Settlement", N, Fixed(4), A, ASC),
    FieldSpec::new(16, "Date, Conversion", N, Fixed(4), A, ASC),
    FieldSpec::new(17, "Date, Capture", N, Fixed(4), A, ASC),
    FieldSpec::new(18, "Merchant Type", N, Fixed(4), A, ASC),
    FieldSpec::new(
        19,
        "Acquiring Institution Country Code",
        N,
        Fixed(3),
        A,
        ASC,
    ),
    FieldSpec::new(20, "PAN Country Code", N, Fixed(3), A, ASC),
    FieldSpec::new(
        21,
        "Forwarding Institution Country Code",
        N,
        Fixed(3),
        A,
        ASC,
    ),
    FieldSpec::new(22, "Point-of-Service Entry Mode", N, Fixed(3), A, ASC),
    FieldSpec::new(23, "PAN Sequence Number", N, Fixed(3), A, ASC),
    FieldSpec::new(24, "Network International ID (NII)", N, Fixed(3), A, ASC),
    FieldSpec::new(25, "Point-of-Service Condition Code", N, Fixed(2), A, ASC),
    FieldSpec::new(26, "Point-of-Service Capture Code", N, Fixed(2), A, ASC),
    FieldSpec::new(27, "Authorizing ID Response Length", N, Fixed(1), A, ASC),
    FieldSpec::new(28, "Amount, Transaction Fee", Xn, Fixed(9), A, ASC),
    FieldSpec::new(29, "Amount, Settlement Fee", Xn, Fixed(9), A, ASC),
    FieldSpec::new(
        30,
        "Amount, Transaction Processing Fee",
        Xn,
        Fixed(9),
        A,
        ASC,
    ),
    FieldSpec::new(
        31,
        "Amount, Settlement Processing Fee",
        Xn,
        Fixed(9),
        A,
        ASC,
    ),
    FieldSpec::new(32, "Acquiring Institution ID Code", N, LlVar(11), A, ASC),
    FieldSpec::new(33, "Forwarding Institution ID Code", N, LlVar(11), A, ASC),
    FieldSpec::new(
        34,
        "Primary Account Number, Extended",
        Ns,
        LlVar(28),
        A,
        ASC,
    )
    .masked(Mask::Pan),
    FieldSpec::new(35, "Track 2 Data", Z, LlVar(37), A, ASC).masked(Mask::Track),
    FieldSpec::new(36, "Track 3 Data", Z, LllVar(104), A, ASC).masked(Mask::Track),
    FieldSpec::new(37, "Retrieval Reference Number", An, Fixed(12), A, ASC),
    FieldSpec::new(38, "Authorization ID Response", An, Fixed(6), A, ASC),
    FieldSpec::new(39, "Response Code", An, Fixed(2), A, ASC),
    FieldSpec::new(40, "Service Restriction Code", An, Fixed(3), A, ASC),
    FieldSpec::new(41, "Card Acceptor Terminal ID", Ans, Fixed(8), A, ASC),
    FieldSpec::new(42, "Card Acceptor ID Code", Ans, Fixed(15), A, ASC),
    FieldSpec::new(43, "Card Acceptor Name/Location", Ans, Fixed(40), A, ASC),
    FieldSpec::new(44, "Additional Response Data", An, LlVar(25), A, ASC),
    FieldSpec::new(45, "Track 1 Data", Ans, LlVar(76), A, ASC).masked(Mask::Track),
    FieldSpec::new(46, "Additional Data - ISO", Ans, LllVar(999), A, ASC),
    FieldSpec::new(47, "Additional Data - National", Ans, LllVar(999), A, ASC),
    FieldSpec::new(48, "Additional Data - Private", Ans, LllVar(999), A, ASC),
    FieldSpec::new(49, "Currency Code, Transaction", An, Fixed(3), A, ASC),
    FieldSpec::new(50, "Currency Code, Settlement", An, Fixed(3), A, ASC),
    FieldSpec::new(
        51,
        "Currency Code, Cardholder Billing",
        An,
        Fixed(3),
        A,
        ASC,
    ),
    FieldSpec::new(52, "PIN", B, Fixed(8), A, HEX).masked(Mask::Length),
    FieldSpec::new(
        53,
        "Security-Related Control Information",
        N,
        Fixed(16),
        A,
        ASC,
    ),
    FieldSpec::new(54, "Additional Amounts", An, LllVar(240), A, ASC),
    FieldSpec::new(55, "ICC data", B, LllVar(255), A, HEX).masked(Mask::Length),
    FieldSpec::new(56, "Reserved ISO", Ans, LllVar(999), A, ASC),
    FieldSpec::new(57, "Reserved National", Ans, LllVar(999), A, ASC),
    FieldSpec::new(58, "Reserved National", Ans, LllVar(999), A, ASC),
    FieldSpec::new(59, "Reserved National", Ans, LllVar(999), A, ASC),
    FieldSpec::new(60, "Reserved National", Ans, LllVar(999), A, ASC),
    FieldSpec::new(61, "Reserved Private", Ans, LllVar(999), A, ASC),
    FieldSpec::new(62, "Reserved Private", Ans, LllVar(999), A, ASC).masked(Mask::Length),
    FieldSpec::new(63, "Reserved Private", Ans, LllVar(999), A, ASC),
    FieldSpec::new(64, "MAC", B, Fixed(8), A, HEX),
    FieldSpec::new(65, "Bitmap, Extended", B, Fixed(8), A, HEX),
    FieldSpec::new(66, "Settlement Code", N, Fixed(1), A, ASC),
    FieldSpec::new(67, "Extended Payment Code", N, Fixed(2), A, ASC),
    FieldSpec::new(
        68,
        "Receiving Institution Country Code",
        N,
        Fixed(3),
        A,
        ASC,
    ),
    FieldSpec::new(
        69,
        "Settlement Institution Country Code",
        N,
        Fixed(3),
        A,
        ASC,
    ),
    FieldSpec::new(
        70,
        "Network Management Information Code",
        N,
        Fixed(3),
        A,
        ASC,
    ),
    FieldSpec::new(71, "Message Number", N, Fixed(4), A, ASC),
    FieldSpec::new(72, "Message Number, Last", N, Fixed(4), A, ASC),
    FieldSpec::new(73, "Date, Action", N, Fixed(6), A, ASC),
    FieldSpec::new(74, "Credits, Number", N, Fixed(10), A, ASC),
    FieldSpec::new(75, "Credits, Reversal Number", N, Fixed(10), A, ASC),
    FieldSpec::new(76, "Debits, Number", N, Fixed(10), A, ASC),
    FieldSpec::new(77, "Debits, Reversal Number", N, Fixed(10), A, ASC),
    FieldSpec::new(78, "Transfer, Number", N, Fixed(10), A, ASC),
    FieldSpec::new(79, "Transfer, Reversal Number", N, Fixed(10), A, ASC),
    FieldSpec::new(80, "Inquiries, Number", N, Fixed(10), A, ASC),
    FieldSpec::new(81, "Authorizations, Number", N, Fixed(10), A, ASC),
    FieldSpec::new(82, "Credits, Processing Fee Amount", N, Fixed(12), A, ASC),
    FieldSpec::new(83, "Credits, Transaction Fee Amount", N, Fixed(12), A, ASC),
    FieldSpec::new(84, "Debits, Processing Fee Amount", N, Fixed(12), A, ASC),
    FieldSpec::new(85, "Debits, Transaction Fee Amount", N, Fixed(12), A, ASC),
    FieldSpec::new(86, "Credits, Amount", N, Fixed(16), A, ASC),
    FieldSpec::new(87, "Credits, Reversal Amount", N, Fixed(16), A, ASC),
    FieldSpec::new(88, "Debits, Amount", N, Fixed(16), A, ASC),
    FieldSpec::new(89, "Debits, Reversal Amount", N, Fixed(16), A, ASC),
    FieldSpec::new(90, "Original Data Elements", N, Fixed(42), A, ASC),
    FieldSpec::new(91, "File Update Code", An, Fixed(1), A, ASC),
    FieldSpec::new(92, "File Security Code", An, Fixed(2), A, ASC),
    FieldSpec::new(93, "Response Indicator", An, Fixed(5), A, ASC),
    FieldSpec::new(94, "Service Indicator", An, Fixed(7), A, ASC),
    FieldSpec::new(95, "Replacement Amounts", An, Fixed(42), A, ASC),
    FieldSpec::new(96, "Message Security Code", B, Fixed(8), A, HEX),
    FieldSpec::new(97, "Amount, Net Settlement", Xn, Fixed(17), A, ASC),
    FieldSpec::new(98, "Payee", Ans, Fixed(25), A, ASC),
    FieldSpec::new(99, "Settlement Institution ID Code", N, LlVar(11), A, ASC),
    FieldSpec::new(100, "Receiving Institution ID Code", N, LlVar(11), A, ASC),
    FieldSpec::new(101, "File Name", Ans, LlVar(17), A, ASC),
    FieldSpec::new(102, "Account ID 1", Ans, LlVar(28), A, ASC).masked(Mask::Pan),
    FieldSpec::new(103, "Account ID 2", Ans, LlVar(28), A, ASC).masked(Mask::Pan),
    FieldSpec::new(104, "Transaction Description", Ans, LllVar(100), A, ASC),
    FieldSpec::new(105, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(106, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(107, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(108, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(109, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(110, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(111, "Reserved for ISO Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(112, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(113, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(114, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(115, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(116, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(117, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(118, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(119, "Reserved for National Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(120, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(121, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(122, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(123, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(124, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(125, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(126, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(127, "Reserved for Private Use", Ans, LllVar(999), A, ASC),
    FieldSpec::new(128, "MAC", B, Fixed(8), A, HEX),
];

/// ISO 8583:1987 binary, as jPOS 2.1.10's stock `ISO87BPackager` packs it (checked byte for
/// byte against jPOS: `testdata/iso87b_jpos.md`, `tests/oracles/jpos_oracle.py`): the field list
/// of [`ISO87A_FIELDS`] with BCD length prefixes; fixed numerics BCD right-aligned (leading 0
/// nibble); variable numerics 2, 32, 33, 99, 100 and track 2 (35) BCD with the digits first and
/// a trailing 0 nibble; no filler nibble checked on read; track 3 (36) ASCII text; `x+n` amounts
/// 28-31 and 97 as the sign character then the digits in BCD; text ASCII; binary fields raw.
/// Lengths agree with pyiso8583 `specs.default` except field 54 (ISO 8583:1987 `an..120`;
/// pyiso8583 allows 240). Deviations from jPOS, all of length: 55 is `b..255` (jPOS
/// `LLLCHAR ..999`, the same bytes up to 255); 65 `b8`, 93 `an5` and 96 `b8` as ISO 8583:1987
/// has them (jPOS `b1`, `an6`, `b16`).
const ISO87B_FIELDS: &[FieldSpec] = &[
    FieldSpec::new(2, "Primary Account Number (PAN)", N, LlVar(19), BCD, J_R0).masked(Mask::Pan),
    FieldSpec::new(3, "Processing Code", N, Fixed(6), BCD, J_L0),
    FieldSpec::new(4, "Amount, Transaction", N, Fixed(12), BCD, J_L0),
    FieldSpec::new(5, "Amount, Settlement", N, Fixed(12), BCD, J_L0),
    FieldSpec::new(6, "Amount, Cardholder Billing", N, Fixed(12), BCD, J_L0),
    FieldSpec::new(7, "Transmission Date and Time", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(8, "Amount, Cardholder Billing Fee", N, Fixed(8), BCD, J_L0),
    FieldSpec::new(9, "Conversion Rate, Settlement", N, Fixed(8), BCD, J_L0),
    FieldSpec::new(
        10,
        "Conversion Rate, Cardholder Billing",
        N,
        Fixed(8),
        BCD,
        J_L0,
    ),
    FieldSpec::new(11, "System Trace Audit Number", N, Fixed(6), BCD, J_L0),
    FieldSpec::new(12, "Time, Local Transaction", N, Fixed(6), BCD, J_L0),
    FieldSpec::new(13, "Date, Local Transaction", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(14, "Date, Expiration", N, Fixed(4), BCD, J_L0).masked(Mask::Hidden),
    FieldSpec::new(15, "Date, Settlement", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(16, "Date, Conversion", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(17, "Date, Capture", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(18, "Merchant Type", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(
        19,
        "Acquiring Institution Country Code",
        N,
        Fixed(3),
        BCD,
        J_L0,
    ),
    FieldSpec::new(20, "PAN Country Code", N, Fixed(3), BCD, J_L0),
    FieldSpec::new(
        21,
        "Forwarding Institution Country Code",
        N,
        Fixed(3),
        BCD,
        J_L0,
    ),
    FieldSpec::new(22, "Point-of-Service Entry Mode", N, Fixed(3), BCD, J_L0),
    FieldSpec::new(23, "PAN Sequence Number", N, Fixed(3), BCD, J_L0),
    FieldSpec::new(24, "Network International ID (NII)", N, Fixed(3), BCD, J_L0),
    FieldSpec::new(
        25,
        "Point-of-Service Condition Code",
        N,
        Fixed(2),
        BCD,
        J_L0,
    ),
    FieldSpec::new(26, "Point-of-Service Capture Code", N, Fixed(2), BCD, J_L0),
    FieldSpec::new(27, "Authorizing ID Response Length", N, Fixed(1), BCD, J_L0),
    FieldSpec::new(28, "Amount, Transaction Fee", Xn, Fixed(9), BCD, J_L0),
    FieldSpec::new(29, "Amount, Settlement Fee", Xn, Fixed(9), BCD, J_L0),
    FieldSpec::new(
        30,
        "Amount, Transaction Processing Fee",
        Xn,
        Fixed(9),
        BCD,
        J_L0,
    ),
    FieldSpec::new(
        31,
        "Amount, Settlement Processing Fee",
        Xn,
        Fixed(9),
        BCD,
        J_L0,
    ),
    FieldSpec::new(32, "Acquiring Institution ID Code", N, LlVar(11), BCD, J_R0),
    FieldSpec::new(
        33,
        "Forwarding Institution ID Code",
        N,
        LlVar(11),
        BCD,
        J_R0,
    ),
    FieldSpec::new(
        34,
        "Primary Account Number, Extended",
        Ns,
        LlVar(28),
        BCD,
        ASC,
    )
    .masked(Mask::Pan),
    FieldSpec::new(35, "Track 2 Data", Z, LlVar(37), BCD, J_R0).masked(Mask::Track),
    FieldSpec::new(36, "Track 3 Data", Z, LllVar(104), BCD, ASC).masked(Mask::Track),
    FieldSpec::new(37, "Retrieval Reference Number", An, Fixed(12), BCD, ASC),
    FieldSpec::new(38, "Authorization ID Response", An, Fixed(6), BCD, ASC),
    FieldSpec::new(39, "Response Code", An, Fixed(2), BCD, ASC),
    FieldSpec::new(40, "Service Restriction Code", An, Fixed(3), BCD, ASC),
    FieldSpec::new(41, "Card Acceptor Terminal ID", Ans, Fixed(8), BCD, ASC),
    FieldSpec::new(42, "Card Acceptor ID Code", Ans, Fixed(15), BCD, ASC),
    FieldSpec::new(43, "Card Acceptor Name/Location", Ans, Fixed(40), BCD, ASC),
    FieldSpec::new(44, "Additional Response Data", An, LlVar(25), BCD, ASC),
    FieldSpec::new(45, "Track 1 Data", Ans, LlVar(76), BCD, ASC).masked(Mask::Track),
    FieldSpec::new(46, "Additional Data - ISO", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(47, "Additional Data - National", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(48, "Additional Data - Private", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(49, "Currency Code, Transaction", An, Fixed(3), BCD, ASC),
    FieldSpec::new(50, "Currency Code, Settlement", An, Fixed(3), BCD, ASC),
    FieldSpec::new(
        51,
        "Currency Code, Cardholder Billing",
        An,
        Fixed(3),
        BCD,
        ASC,
    ),
    FieldSpec::new(52, "PIN", B, Fixed(8), BCD, BIN).masked(Mask::Length),
    FieldSpec::new(
        53,
        "Security-Related Control Information",
        N,
        Fixed(16),
        BCD,
        J_L0,
    ),
    FieldSpec::new(54, "Additional Amounts", An, LllVar(120), BCD, ASC),
    FieldSpec::new(55, "ICC data", B, LllVar(255), BCD, BIN).masked(Mask::Length),
    FieldSpec::new(56, "Reserved ISO", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(57, "Reserved National", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(58, "Reserved National", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(59, "Reserved National", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(60, "Reserved National", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(61, "Reserved Private", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(62, "Reserved Private", Ans, LllVar(999), BCD, ASC).masked(Mask::Length),
    FieldSpec::new(63, "Reserved Private", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(64, "MAC", B, Fixed(8), BCD, BIN),
    FieldSpec::new(65, "Bitmap, Extended", B, Fixed(8), BCD, BIN),
    FieldSpec::new(66, "Settlement Code", N, Fixed(1), BCD, J_L0),
    FieldSpec::new(67, "Extended Payment Code", N, Fixed(2), BCD, J_L0),
    FieldSpec::new(
        68,
        "Receiving Institution Country Code",
        N,
        Fixed(3),
        BCD,
        J_L0,
    ),
    FieldSpec::new(
        69,
        "Settlement Institution Country Code",
        N,
        Fixed(3),
        BCD,
        J_L0,
    ),
    FieldSpec::new(
        70,
        "Network Management Information Code",
        N,
        Fixed(3),
        BCD,
        J_L0,
    ),
    FieldSpec::new(71, "Message Number", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(72, "Message Number, Last", N, Fixed(4), BCD, J_L0),
    FieldSpec::new(73, "Date, Action", N, Fixed(6), BCD, J_L0),
    FieldSpec::new(74, "Credits, Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(75, "Credits, Reversal Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(76, "Debits, Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(77, "Debits, Reversal Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(78, "Transfer, Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(79, "Transfer, Reversal Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(80, "Inquiries, Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(81, "Authorizations, Number", N, Fixed(10), BCD, J_L0),
    FieldSpec::new(
        82,
        "Credits, Processing Fee Amount",
        N,
        Fixed(12),
        BCD,
        J_L0,
    ),
    FieldSpec::new(
        83,
        "Credits, Transaction Fee Amount",
        N,
        Fixed(12),
        BCD,
        J_L0,
    ),
    FieldSpec::new(84, "Debits, Processing Fee Amount", N, Fixed(12), BCD, J_L0),
    FieldSpec::new(
        85,
        "Debits, Transaction Fee Amount",
        N,
        Fixed(12),
        BCD,
        J_L0,
    ),
    FieldSpec::new(86, "Credits, Amount", N, Fixed(16), BCD, J_L0),
    FieldSpec::new(87, "Credits, Reversal Amount", N, Fixed(16), BCD, J_L0),
    FieldSpec::new(88, "Debits, Amount", N, Fixed(16), BCD, J_L0),
    FieldSpec::new(89, "Debits, Reversal Amount", N, Fixed(16), BCD, J_L0),
    FieldSpec::new(90, "Original Data Elements", N, Fixed(42), BCD, J_L0),
    FieldSpec::new(91, "File Update Code", An, Fixed(1), BCD, ASC),
    FieldSpec::new(92, "File Security Code", An, Fixed(2), BCD, ASC),
    FieldSpec::new(93, "Response Indicator", An, Fixed(5), BCD, ASC),
    FieldSpec::new(94, "Service Indicator", An, Fixed(7), BCD, ASC),
    FieldSpec::new(95, "Replacement Amounts", An, Fixed(42), BCD, ASC),
    FieldSpec::new(96, "Message Security Code", B, Fixed(8), BCD, BIN),
    FieldSpec::new(97, "Amount, Net Settlement", Xn, Fixed(17), BCD, J_L0),
    FieldSpec::new(98, "Payee", Ans, Fixed(25), BCD, ASC),
    FieldSpec::new(
        99,
        "Settlement Institution ID Code",
        N,
        LlVar(11),
        BCD,
        J_R0,
    ),
    FieldSpec::new(
        100,
        "Receiving Institution ID Code",
        N,
        LlVar(11),
        BCD,
        J_R0,
    ),
    FieldSpec::new(101, "File Name", Ans, LlVar(17), BCD, ASC),
    FieldSpec::new(102, "Account ID 1", Ans, LlVar(28), BCD, ASC).masked(Mask::Pan),
    FieldSpec::new(103, "Account ID 2", Ans, LlVar(28), BCD, ASC).masked(Mask::Pan),
    FieldSpec::new(104, "Transaction Description", Ans, LllVar(100), BCD, ASC),
    FieldSpec::new(105, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(106, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(107, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(108, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(109, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(110, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(111, "Reserved for ISO Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(112, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(113, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(114, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(115, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(116, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(117, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(118, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(119, "Reserved for National Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(120, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(121, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(122, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(123, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(124, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(125, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(126, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(127, "Reserved for Private Use", Ans, LllVar(999), BCD, ASC),
    FieldSpec::new(128, "MAC", B, Fixed(8), BCD, BIN),
];

/// The `iso87b` lines that differ under the convention SmartPOS 0.1 used before it followed
/// jPOS (profile option `[codec] convention = "smartpos-0.1"`): variable numerics right-aligned
/// with a leading 0 nibble, track data left-aligned with an F filler (both checked on read),
/// track 3 in BCD, `x+n` amounts as ASCII characters. Fixed numerics are the same in both.
const ISO87B_SMARTPOS01: &[FieldSpec] = &[
    FieldSpec::new(2, "Primary Account Number (PAN)", N, LlVar(19), BCD, N_L0).masked(Mask::Pan),
    FieldSpec::new(28, "Amount, Transaction Fee", Xn, Fixed(9), BCD, ASC),
    FieldSpec::new(29, "Amount, Settlement Fee", Xn, Fixed(9), BCD, ASC),
    FieldSpec::new(
        30,
        "Amount, Transaction Processing Fee",
        Xn,
        Fixed(9),
        BCD,
        ASC,
    ),
    FieldSpec::new(
        31,
        "Amount, Settlement Processing Fee",
        Xn,
        Fixed(9),
        BCD,
        ASC,
    ),
    FieldSpec::new(32, "Acquiring Institution ID Code", N, LlVar(11), BCD, N_L0),
    FieldSpec::new(
        33,
        "Forwarding Institution ID Code",
        N,
        LlVar(11),
        BCD,
        N_L0,
    ),
    FieldSpec::new(35, "Track 2 Data", Z, LlVar(37), BCD, Z_RF).masked(Mask::Track),
    FieldSpec::new(36, "Track 3 Data", Z, LllVar(104), BCD, Z_RF).masked(Mask::Track),
    FieldSpec::new(97, "Amount, Net Settlement", Xn, Fixed(17), BCD, ASC),
    FieldSpec::new(
        99,
        "Settlement Institution ID Code",
        N,
        LlVar(11),
        BCD,
        N_L0,
    ),
    FieldSpec::new(
        100,
        "Receiving Institution ID Code",
        N,
        LlVar(11),
        BCD,
        N_L0,
    ),
];

/// A named set of lines that replaces some lines of a built-in table.
pub(crate) struct ConventionTable {
    pub dialect: &'static str,
    pub name: &'static str,
    pub fields: &'static [FieldSpec],
}

/// Every alternative convention of a built-in dialect. A dialect's own table is its default
/// convention (`iso87b`: `jpos`), listed with no lines.
pub(crate) const CONVENTIONS: &[ConventionTable] = &[
    ConventionTable {
        dialect: "iso87b",
        name: "jpos",
        fields: &[],
    },
    ConventionTable {
        dialect: "iso87b",
        name: "smartpos-0.1",
        fields: ISO87B_SMARTPOS01,
    },
];

/// The CUP layout.
pub(crate) fn cup_layout() -> Layout {
    Layout {
        name: "cup",
        header: CUP_HEADER,
        mti: MtiEncoding::Bcd,
        bitmap: BitmapEncoding::Binary,
        fields: CUP_FIELDS,
        subfields: CUP_SUBFIELDS,
    }
}

/// The ISO 8583:1987 binary layout.
pub(crate) fn iso87b_layout() -> Layout {
    Layout {
        name: "iso87b",
        header: &[],
        mti: MtiEncoding::Bcd,
        bitmap: BitmapEncoding::Binary,
        fields: ISO87B_FIELDS,
        subfields: &[],
    }
}

/// The ISO 8583:1987 ASCII layout.
pub(crate) fn iso87a_layout() -> Layout {
    Layout {
        name: "iso87a",
        header: &[],
        mti: MtiEncoding::Ascii,
        bitmap: BitmapEncoding::HexAscii,
        fields: ISO87A_FIELDS,
        subfields: &[],
    }
}
