//! The EMV tag dictionary: one line per tag (name, format, source, length range, masking).
//!
//! Sources of the facts in [`TAGS`]:
//! - EMV 4.4 Book 3 (Application Specification), Annex A1 "Data Elements Dictionary": tags
//!   `42`..`9F4F` (names, formats, sources and lengths as listed there).
//! - EMV Contactless Book C-2 (Mastercard kernel) v2.11, Annex A: `56`, `9F6B`, `9F6A`, `9F53`,
//!   `9F6D` and the `DF81xx` kernel data objects.
//! - EMV Contactless Book C-3 (Visa kernel) v2.11, Annex A: `9F5A`, `9F5D`, `9F66`, `9F69`,
//!   `9F6C`, `9F6E`, `9F7C`.
//! - EMV Contactless Book B (Entry Point) v2.11: `9F2A` Kernel Identifier.
//!
//! Some contactless tags mean different things under different kernels (`9F5D`, `9F6C`,
//! `9F6E`, `9F7C`); the table names both and gives the format of the kernel listed first.
//! Lengths are in bytes; a maximum of 0 means "variable, bounded only by the template".
//!
//! `sensitive` marks data that PCI DSS treats as cardholder or authentication data and that must
//! never appear in clear in logs or dumps: PAN, track data (and its discretionary parts),
//! cardholder name, PIN data. The expiry date is not masked: it is shown on receipts and is
//! needed to read a dump.

use crate::tlv::Tag;

/// The format of a data element (EMV Book 3 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `n`: BCD numeric, right justified, padded with leading zeros.
    N,
    /// `cn`: compressed numeric, BCD left justified, padded with trailing `F` nibbles.
    Cn,
    /// `an`: alphanumeric (letters and digits).
    An,
    /// `ans`: alphanumeric and special characters.
    Ans,
    /// `b`: binary.
    B,
    /// A template (EMV "var."): a constructed object holding other objects.
    Template,
}

impl Format {
    /// Short name as the EMV books write it (`"n"`, `"cn"`, `"an"`, `"ans"`, `"b"`, `"var"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::N => "n",
            Format::Cn => "cn",
            Format::An => "an",
            Format::Ans => "ans",
            Format::B => "b",
            Format::Template => "var",
        }
    }

    /// Whether values of this format are text (`an`, `ans`).
    pub const fn is_text(self) -> bool {
        matches!(self, Format::An | Format::Ans)
    }
}

/// Who provides a data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The card (ICC).
    Card,
    /// The terminal or reader.
    Terminal,
    /// The issuer, through the host response.
    Issuer,
}

/// One line of the tag dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    /// The tag.
    pub tag: Tag,
    /// The EMV name.
    pub name: &'static str,
    /// The format.
    pub format: Format,
    /// Who provides it.
    pub source: Source,
    /// Minimum length in bytes.
    pub min_len: u16,
    /// Maximum length in bytes (0: bounded only by the enclosing template).
    pub max_len: u16,
    /// Card data that must be masked wherever it is shown.
    pub sensitive: bool,
}

use Format::{An, Ans, B, Cn, N, Template as T};
use Source::{Card as C, Issuer as I, Terminal as R};

const fn e(
    tag: u32,
    name: &'static str,
    format: Format,
    source: Source,
    min: u16,
    max: u16,
) -> TagInfo {
    TagInfo {
        tag: Tag(tag),
        name,
        format,
        source,
        min_len: min,
        max_len: max,
        sensitive: false,
    }
}

/// The dictionary, sorted by tag value (checked by a unit test; [`lookup`] binary-searches it).
pub static TAGS: &[TagInfo] = &[
    e(0x42, "Issuer Identification Number (IIN)", N, C, 3, 3),
    e(0x4F, "Application Identifier (AID) - card", B, C, 5, 16),
    e(0x50, "Application Label", Ans, C, 1, 16),
    e(0x56, "Track 1 Data", Ans, C, 0, 76).with_secret(),
    e(0x57, "Track 2 Equivalent Data", B, C, 0, 19).with_secret(),
    e(
        0x5A,
        "Application Primary Account Number (PAN)",
        Cn,
        C,
        0,
        10,
    )
    .with_secret(),
    e(0x61, "Application Template", T, C, 0, 252),
    e(
        0x6F,
        "File Control Information (FCI) Template",
        T,
        C,
        0,
        252,
    ),
    e(0x70, "READ RECORD Response Message Template", T, C, 0, 252),
    e(0x71, "Issuer Script Template 1", T, I, 0, 0),
    e(0x72, "Issuer Script Template 2", T, I, 0, 0),
    e(0x73, "Directory Discretionary Template", T, C, 0, 252),
    e(0x77, "Response Message Template Format 2", T, C, 0, 0),
    e(0x80, "Response Message Template Format 1", B, C, 0, 0),
    e(0x81, "Amount, Authorised (Binary)", B, R, 4, 4),
    e(0x82, "Application Interchange Profile", B, C, 2, 2),
    e(0x83, "Command Template", B, R, 0, 0),
    e(0x84, "Dedicated File (DF) Name", B, C, 5, 16),
    e(0x86, "Issuer Script Command", B, I, 0, 261),
    e(0x87, "Application Priority Indicator", B, C, 1, 1),
    e(0x88, "Short File Identifier (SFI)", B, C, 1, 1),
    e(0x89, "Authorisation Code", An, I, 6, 6),
    e(0x8A, "Authorisation Response Code", An, I, 2, 2),
    e(
        0x8C,
        "Card Risk Management Data Object List 1 (CDOL1)",
        B,
        C,
        0,
        252,
    ),
    e(
        0x8D,
        "Card Risk Management Data Object List 2 (CDOL2)",
        B,
        C,
        0,
        252,
    ),
    e(
        0x8E,
        "Cardholder Verification Method (CVM) List",
        B,
        C,
        10,
        252,
    ),
    e(0x8F, "Certification Authority Public Key Index", B, C, 1, 1),
    e(0x90, "Issuer Public Key Certificate", B, C, 0, 0),
    e(0x91, "Issuer Authentication Data", B, I, 8, 16),
    e(0x92, "Issuer Public Key Remainder", B, C, 0, 0),
    e(0x93, "Signed Static Application Data", B, C, 0, 0),
    e(0x94, "Application File Locator (AFL)", B, C, 0, 252),
    e(0x95, "Terminal Verification Results", B, R, 5, 5),
    e(
        0x97,
        "Transaction Certificate Data Object List (TDOL)",
        B,
        C,
        0,
        252,
    ),
    e(
        0x98,
        "Transaction Certificate (TC) Hash Value",
        B,
        R,
        20,
        20,
    ),
    e(
        0x99,
        "Transaction Personal Identification Number (PIN) Data",
        B,
        R,
        0,
        0,
    )
    .with_secret(),
    e(0x9A, "Transaction Date", N, R, 3, 3),
    e(0x9B, "Transaction Status Information", B, R, 2, 2),
    e(0x9C, "Transaction Type", N, R, 1, 1),
    e(0x9D, "Directory Definition File (DDF) Name", B, C, 5, 16),
    e(
        0xA5,
        "File Control Information (FCI) Proprietary Template",
        T,
        C,
        0,
        0,
    ),
    e(0x5F20, "Cardholder Name", Ans, C, 2, 26).with_secret(),
    e(0x5F24, "Application Expiration Date", N, C, 3, 3),
    e(0x5F25, "Application Effective Date", N, C, 3, 3),
    e(0x5F28, "Issuer Country Code", N, C, 2, 2),
    e(0x5F2A, "Transaction Currency Code", N, R, 2, 2),
    e(0x5F2D, "Language Preference", An, C, 2, 8),
    e(0x5F30, "Service Code", N, C, 2, 2),
    e(
        0x5F34,
        "Application Primary Account Number (PAN) Sequence Number",
        N,
        C,
        1,
        1,
    ),
    e(0x5F36, "Transaction Currency Exponent", N, R, 1, 1),
    e(0x5F50, "Issuer URL", Ans, C, 0, 0),
    e(
        0x5F53,
        "International Bank Account Number (IBAN)",
        B,
        C,
        0,
        34,
    ),
    e(0x5F54, "Bank Identifier Code (BIC)", B, C, 8, 11),
    e(0x5F55, "Issuer Country Code (alpha2 format)", An, C, 2, 2),
    e(0x5F56, "Issuer Country Code (alpha3 format)", An, C, 3, 3),
    e(0x5F57, "Account Type", N, R, 1, 1),
    e(0x9F01, "Acquirer Identifier", N, R, 6, 6),
    e(0x9F02, "Amount, Authorised (Numeric)", N, R, 6, 6),
    e(0x9F03, "Amount, Other (Numeric)", N, R, 6, 6),
    e(0x9F04, "Amount, Other (Binary)", B, R, 4, 4),
    e(0x9F05, "Application Discretionary Data", B, C, 1, 32),
    e(
        0x9F06,
        "Application Identifier (AID) - terminal",
        B,
        R,
        5,
        16,
    ),
    e(0x9F07, "Application Usage Control", B, C, 2, 2),
    e(0x9F08, "Application Version Number - card", B, C, 2, 2),
    e(0x9F09, "Application Version Number - terminal", B, R, 2, 2),
    e(0x9F0B, "Cardholder Name Extended", Ans, C, 27, 45).with_secret(),
    e(0x9F0D, "Issuer Action Code - Default", B, C, 5, 5),
    e(0x9F0E, "Issuer Action Code - Denial", B, C, 5, 5),
    e(0x9F0F, "Issuer Action Code - Online", B, C, 5, 5),
    e(0x9F10, "Issuer Application Data", B, C, 0, 32),
    e(0x9F11, "Issuer Code Table Index", N, C, 1, 1),
    e(0x9F12, "Application Preferred Name", Ans, C, 1, 16),
    e(
        0x9F13,
        "Last Online Application Transaction Counter (ATC) Register",
        B,
        C,
        2,
        2,
    ),
    e(0x9F14, "Lower Consecutive Offline Limit", B, C, 1, 1),
    e(0x9F15, "Merchant Category Code", N, R, 2, 2),
    e(0x9F16, "Merchant Identifier", Ans, R, 15, 15),
    e(
        0x9F17,
        "Personal Identification Number (PIN) Try Counter",
        B,
        C,
        1,
        1,
    ),
    e(0x9F18, "Issuer Script Identifier", B, I, 4, 4),
    e(0x9F1A, "Terminal Country Code", N, R, 2, 2),
    e(0x9F1B, "Terminal Floor Limit", B, R, 4, 4),
    e(0x9F1C, "Terminal Identification", An, R, 8, 8),
    e(0x9F1D, "Terminal Risk Management Data", B, R, 1, 8),
    e(0x9F1E, "Interface Device (IFD) Serial Number", An, R, 8, 8),
    e(0x9F1F, "Track 1 Discretionary Data", Ans, C, 0, 0).with_secret(),
    e(0x9F20, "Track 2 Discretionary Data", Cn, C, 0, 0).with_secret(),
    e(0x9F21, "Transaction Time", N, R, 3, 3),
    e(
        0x9F22,
        "Certification Authority Public Key Index - terminal",
        B,
        R,
        1,
        1,
    ),
    e(0x9F23, "Upper Consecutive Offline Limit", B, C, 1, 1),
    e(0x9F24, "Payment Account Reference (PAR)", An, C, 29, 29),
    e(0x9F25, "Last 4 Digits of PAN", N, C, 2, 2),
    e(0x9F26, "Application Cryptogram", B, C, 8, 8),
    e(0x9F27, "Cryptogram Information Data", B, C, 1, 1),
    e(0x9F2A, "Kernel Identifier", B, C, 1, 8),
    e(
        0x9F2D,
        "ICC PIN Encipherment Public Key Certificate",
        B,
        C,
        0,
        0,
    ),
    e(
        0x9F2E,
        "ICC PIN Encipherment Public Key Exponent",
        B,
        C,
        1,
        3,
    ),
    e(
        0x9F2F,
        "ICC PIN Encipherment Public Key Remainder",
        B,
        C,
        0,
        0,
    ),
    e(0x9F32, "Issuer Public Key Exponent", B, C, 1, 3),
    e(0x9F33, "Terminal Capabilities", B, R, 3, 3),
    e(
        0x9F34,
        "Cardholder Verification Method (CVM) Results",
        B,
        R,
        3,
        3,
    ),
    e(0x9F35, "Terminal Type", N, R, 1, 1),
    e(0x9F36, "Application Transaction Counter (ATC)", B, C, 2, 2),
    e(0x9F37, "Unpredictable Number", B, R, 4, 4),
    e(
        0x9F38,
        "Processing Options Data Object List (PDOL)",
        B,
        C,
        0,
        0,
    ),
    e(0x9F39, "Point-of-Service (POS) Entry Mode", N, R, 1, 1),
    e(0x9F3A, "Amount, Reference Currency", B, R, 4, 4),
    e(0x9F3B, "Application Reference Currency", N, C, 2, 8),
    e(0x9F3C, "Transaction Reference Currency Code", N, R, 2, 2),
    e(
        0x9F3D,
        "Transaction Reference Currency Exponent",
        N,
        R,
        1,
        1,
    ),
    e(0x9F40, "Additional Terminal Capabilities", B, R, 5, 5),
    e(0x9F41, "Transaction Sequence Counter", N, R, 2, 4),
    e(0x9F42, "Application Currency Code", N, C, 2, 2),
    e(
        0x9F43,
        "Application Reference Currency Exponent",
        N,
        C,
        1,
        4,
    ),
    e(0x9F44, "Application Currency Exponent", N, C, 1, 1),
    e(0x9F45, "Data Authentication Code", B, C, 2, 2),
    e(0x9F46, "ICC Public Key Certificate", B, C, 0, 0),
    e(0x9F47, "ICC Public Key Exponent", B, C, 1, 3),
    e(0x9F48, "ICC Public Key Remainder", B, C, 0, 0),
    e(
        0x9F49,
        "Dynamic Data Authentication Data Object List (DDOL)",
        B,
        C,
        0,
        252,
    ),
    e(0x9F4A, "Static Data Authentication Tag List", B, C, 0, 0),
    e(0x9F4B, "Signed Dynamic Application Data", B, C, 0, 0),
    e(0x9F4C, "ICC Dynamic Number", B, C, 2, 8),
    e(0x9F4D, "Log Entry", B, C, 2, 2),
    e(0x9F4E, "Merchant Name and Location", Ans, R, 0, 0),
    e(0x9F4F, "Log Format", B, C, 0, 0),
    e(0x9F53, "Transaction Category Code", An, R, 1, 1),
    e(
        0x9F5A,
        "Application Program Identifier (Program ID)",
        B,
        C,
        1,
        16,
    ),
    e(
        0x9F5D,
        "Available Offline Spending Amount (C-3) / Application Capabilities Information (C-2)",
        B,
        C,
        3,
        6,
    ),
    e(0x9F66, "Terminal Transaction Qualifiers (TTQ)", B, R, 4, 4),
    e(0x9F69, "Card Authentication Related Data", B, C, 5, 16),
    e(0x9F6A, "Unpredictable Number (Numeric)", N, R, 4, 4),
    e(0x9F6B, "Track 2 Data", B, C, 0, 19).with_secret(),
    e(
        0x9F6C,
        "Card Transaction Qualifiers (CTQ) (C-3) / Mag-stripe Application Version Number - card (C-2)",
        B,
        C,
        2,
        2,
    ),
    e(
        0x9F6D,
        "Mag-stripe Application Version Number - reader",
        B,
        R,
        2,
        2,
    ),
    e(
        0x9F6E,
        "Form Factor Indicator (C-3) / Third Party Data (C-2)",
        B,
        C,
        4,
        32,
    ),
    e(
        0x9F7C,
        "Customer Exclusive Data (C-3) / Merchant Custom Data (C-2)",
        B,
        C,
        0,
        32,
    ),
    e(
        0xBF0C,
        "File Control Information (FCI) Issuer Discretionary Data",
        T,
        C,
        0,
        222,
    ),
    e(0xDF810C, "Kernel ID", B, R, 1, 1),
    e(0xDF8115, "Error Indication", B, R, 6, 6),
    e(0xDF8116, "User Interface Request Data", B, R, 22, 22),
    e(0xDF8117, "Card Data Input Capability", B, R, 1, 1),
    e(0xDF8118, "CVM Capability - CVM Required", B, R, 1, 1),
    e(0xDF8119, "CVM Capability - No CVM Required", B, R, 1, 1),
    e(0xDF811B, "Kernel Configuration", B, R, 1, 1),
    e(0xDF811F, "Security Capability", B, R, 1, 1),
    e(0xDF8120, "Terminal Action Code - Default", B, R, 5, 5),
    e(0xDF8121, "Terminal Action Code - Denial", B, R, 5, 5),
    e(0xDF8122, "Terminal Action Code - Online", B, R, 5, 5),
    e(0xDF8123, "Reader Contactless Floor Limit", N, R, 6, 6),
    e(
        0xDF8124,
        "Reader Contactless Transaction Limit (No On-device CVM)",
        N,
        R,
        6,
        6,
    ),
    e(
        0xDF8125,
        "Reader Contactless Transaction Limit (On-device CVM)",
        N,
        R,
        6,
        6,
    ),
    e(0xDF8126, "Reader CVM Required Limit", N, R, 6, 6),
    e(0xDF8129, "Outcome Parameter Set", B, R, 8, 8),
];

impl TagInfo {
    /// The same entry, marked as card data to mask.
    const fn with_secret(mut self) -> TagInfo {
        self.sensitive = true;
        self
    }
}

/// The dictionary entry for `tag`, if the tag is known.
pub fn lookup(tag: Tag) -> Option<&'static TagInfo> {
    TAGS.binary_search_by_key(&tag, |i| i.tag)
        .ok()
        .and_then(|i| TAGS.get(i))
}

/// The EMV name of `tag`, if known.
pub fn name(tag: Tag) -> Option<&'static str> {
    lookup(tag).map(|i| i.name)
}

/// The format of `tag`: from the dictionary; constructed tags are templates; otherwise binary.
pub fn format_of(tag: Tag) -> Format {
    match lookup(tag) {
        Some(i) => i.format,
        None if tag.is_constructed() => Format::Template,
        None => Format::B,
    }
}

/// Whether `tag` holds card data that must be masked.
pub fn is_sensitive(tag: Tag) -> bool {
    lookup(tag).is_some_and(|i| i.sensitive)
}

/// Named constants for the tags the kernel and engine refer to by name.
pub mod known {
    use crate::tlv::Tag;

    /// `4F` Application Identifier (AID) - card.
    pub const AID: Tag = Tag(0x4F);
    /// `50` Application Label.
    pub const APPLICATION_LABEL: Tag = Tag(0x50);
    /// `56` Track 1 Data.
    pub const TRACK1: Tag = Tag(0x56);
    /// `57` Track 2 Equivalent Data.
    pub const TRACK2_EQUIVALENT: Tag = Tag(0x57);
    /// `5A` Application PAN.
    pub const PAN: Tag = Tag(0x5A);
    /// `5F20` Cardholder Name.
    pub const CARDHOLDER_NAME: Tag = Tag(0x5F20);
    /// `5F24` Application Expiration Date.
    pub const EXPIRY_DATE: Tag = Tag(0x5F24);
    /// `5F34` PAN Sequence Number.
    pub const PAN_SEQUENCE_NUMBER: Tag = Tag(0x5F34);
    /// `61` Application Template.
    pub const APPLICATION_TEMPLATE: Tag = Tag(0x61);
    /// `6F` FCI Template.
    pub const FCI_TEMPLATE: Tag = Tag(0x6F);
    /// `70` READ RECORD Response Message Template.
    pub const RECORD_TEMPLATE: Tag = Tag(0x70);
    /// `77` Response Message Template Format 2.
    pub const RESPONSE_FORMAT2: Tag = Tag(0x77);
    /// `80` Response Message Template Format 1.
    pub const RESPONSE_FORMAT1: Tag = Tag(0x80);
    /// `82` Application Interchange Profile.
    pub const AIP: Tag = Tag(0x82);
    /// `84` DF Name.
    pub const DF_NAME: Tag = Tag(0x84);
    /// `87` Application Priority Indicator.
    pub const PRIORITY: Tag = Tag(0x87);
    /// `8C` CDOL1.
    pub const CDOL1: Tag = Tag(0x8C);
    /// `8D` CDOL2.
    pub const CDOL2: Tag = Tag(0x8D);
    /// `94` Application File Locator.
    pub const AFL: Tag = Tag(0x94);
    /// `97` TDOL.
    pub const TDOL: Tag = Tag(0x97);
    /// `9F10` Issuer Application Data.
    pub const IAD: Tag = Tag(0x9F10);
    /// `9F26` Application Cryptogram.
    pub const APPLICATION_CRYPTOGRAM: Tag = Tag(0x9F26);
    /// `9F27` Cryptogram Information Data.
    pub const CID: Tag = Tag(0x9F27);
    /// `9F36` Application Transaction Counter.
    pub const ATC: Tag = Tag(0x9F36);
    /// `9F38` PDOL.
    pub const PDOL: Tag = Tag(0x9F38);
    /// `9F49` DDOL.
    pub const DDOL: Tag = Tag(0x9F49);
    /// `9F6B` Track 2 Data (C-2).
    pub const TRACK2_DATA: Tag = Tag(0x9F6B);
    /// `A5` FCI Proprietary Template.
    pub const FCI_PROPRIETARY: Tag = Tag(0xA5);
    /// `BF0C` FCI Issuer Discretionary Data.
    pub const FCI_ISSUER_DISCRETIONARY: Tag = Tag(0xBF0C);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in TAGS.windows(2) {
            assert!(
                pair[0].tag < pair[1].tag,
                "{} before {}",
                pair[0].tag,
                pair[1].tag
            );
        }
        for i in TAGS {
            assert!(i.tag.is_valid(), "{}", i.tag);
            assert_eq!(
                i.tag.is_constructed(),
                i.format == Format::Template,
                "{}",
                i.tag
            );
            assert!(i.max_len == 0 || i.min_len <= i.max_len, "{}", i.tag);
            assert!(!i.name.is_empty());
        }
    }

    #[test]
    fn brief_tags_are_all_present() {
        let wanted = [
            0x4F, 0x50, 0x56, 0x57, 0x5A, 0x5F20, 0x5F24, 0x5F25, 0x5F28, 0x5F2A, 0x5F2D, 0x5F30,
            0x5F34, 0x61, 0x6F, 0x70, 0x77, 0x80, 0x82, 0x84, 0x87, 0x88, 0x8A, 0x8C, 0x8D, 0x8E,
            0x8F, 0x90, 0x91, 0x92, 0x94, 0x95, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F02, 0x9F03, 0x9F06,
            0x9F07, 0x9F08, 0x9F09, 0x9F0D, 0x9F0E, 0x9F0F, 0x9F10, 0x9F12, 0x9F1A, 0x9F1E, 0x9F21,
            0x9F26, 0x9F27, 0x9F32, 0x9F33, 0x9F34, 0x9F35, 0x9F36, 0x9F37, 0x9F38, 0x9F41, 0x9F42,
            0x9F46, 0x9F47, 0x9F48, 0x9F4A, 0x9F4B, 0x9F4C, 0x9F4D, 0x9F4E, 0x9F5D, 0x9F66, 0x9F6C,
            0x9F6E, 0x9F7C, 0xA5, 0xBF0C,
        ];
        for t in wanted {
            assert!(lookup(Tag(t)).is_some(), "{:X} missing", t);
        }
    }

    #[test]
    fn sensitive_flags() {
        for t in [
            0x5A, 0x57, 0x56, 0x9F6B, 0x5F20, 0x9F0B, 0x9F1F, 0x9F20, 0x99,
        ] {
            assert!(is_sensitive(Tag(t)), "{t:X}");
        }
        for t in [0x84, 0x5F24, 0x9F26, 0x50] {
            assert!(!is_sensitive(Tag(t)), "{t:X}");
        }
        assert!(!is_sensitive(Tag(0xDF7F)));
    }

    #[test]
    fn lookups() {
        assert_eq!(name(Tag(0x9F02)), Some("Amount, Authorised (Numeric)"));
        assert_eq!(format_of(Tag(0x9F02)), Format::N);
        assert_eq!(format_of(Tag(0x5A)), Format::Cn);
        assert_eq!(format_of(Tag(0xDF7F)), Format::B);
        assert_eq!(format_of(Tag(0xFF20)), Format::Template);
        assert_eq!(lookup(Tag(0x5F20)).map(|i| i.source), Some(Source::Card));
        assert_eq!(Format::Ans.as_str(), "ans");
        assert!(Format::An.is_text() && !Format::B.is_text());
    }
}
