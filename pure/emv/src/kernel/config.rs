//! What the kernel is told before a card is read: the terminal's configuration
//! ([`KernelConfig`], stable across transactions) and the transaction ([`KernelTxn`]).

use crate::tlv::Tag;
use std::collections::BTreeMap;

/// Visa AID (RID A000000003, PIX 1010), from the EMVCo registered AID list.
pub const AID_VISA: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
/// Mastercard AID (RID A000000004, PIX 1010).
pub const AID_MASTERCARD: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];
/// UnionPay debit AID (RID A000000333, PIX 010101).
pub const AID_UNIONPAY_DEBIT: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01];
/// UnionPay credit AID (RID A000000333, PIX 010102).
pub const AID_UNIONPAY_CREDIT: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02];

/// Largest amount `n12` can carry (9F02 / 9F03 are 6 bytes of BCD).
pub const MAX_AMOUNT: u64 = 999_999_999_999;

/// Contactless limits, in minor units of the transaction currency (EMV Contactless Book A §5.2
/// "Reader Contactless Transaction Limit", "Reader CVM Required Limit", "Reader Contactless
/// Floor Limit"). The default is no limit and zero CVM/floor limits (always CVM, always
/// over the floor limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContactlessLimits {
    /// Amounts at or above this are refused before the card is asked anything (`None`: no
    /// limit). Per my reading of Book B §3.1.1 (pre-processing) the test is "greater than or
    /// equal to".
    pub transaction_limit: Option<u64>,
    /// Amounts at or above this need cardholder verification (Book B §3.1.1: sets TTQ byte 2
    /// bit 7 "CVM required").
    pub cvm_required_limit: u64,
    /// Amounts above this exceed the floor limit (TVR byte 4 bit 8). This kernel always asks
    /// for an online cryptogram (TTQ byte 2 bit 8), so the floor limit is only recorded.
    pub floor_limit: u64,
}

/// Limits for the applications whose AID is, or begins with, [`AidParams::aid`] (EMV
/// Contactless Book A §5.2: the reader limits are configured per AID and kernel combination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AidParams {
    /// An AID, or its first bytes (for example the RID `A000000333` for every UnionPay
    /// application). An empty value matches nothing.
    pub aid: Vec<u8>,
    /// The limits of those applications, in place of [`KernelConfig::limits`].
    pub limits: ContactlessLimits,
}

/// Terminal configuration for the contactless kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// AIDs the terminal accepts, in no particular order. A directory entry matches when its
    /// ADF name equals a configured AID or begins with it (partial selection, Book B §3.3.2).
    pub supported_aids: Vec<Vec<u8>>,
    /// Terminal Transaction Qualifiers (9F66) before per-transaction bits are set: byte 1 bit 6
    /// EMV mode supported, bit 5 contact chip supported, bit 3 online PIN supported, bit 2
    /// signature supported; byte 3 bit 7 consumer-device CVM supported (Book C-3 Annex A,
    /// per my reading). Byte 2 bits 8 and 7 are set by the kernel per transaction.
    pub ttq: [u8; 4],
    /// Terminal Capabilities (9F33), sent in field 55.
    pub terminal_capabilities: [u8; 3],
    /// Terminal Type (9F35), e.g. `0x22` attended, online only, merchant.
    pub terminal_type: u8,
    /// Contactless limits of the applications [`KernelConfig::aid_params`] does not cover.
    pub limits: ContactlessLimits,
    /// Limits per AID (see [`KernelConfig::limits_for`]); empty by default.
    pub aid_params: Vec<AidParams>,
    /// Terminal country code (9F1A), ISO 3166 numeric; `156` (China) by default. The kernel
    /// sends [`KernelTxn::country`]: the terminal runtime fills that field from this one, so
    /// the country is configured apart from the transaction currency.
    pub country: u16,
    /// Any other terminal data a card may ask for in a DOL or that field 55 carries
    /// (9F1E IFD serial number, 9F09 application version, 9F41 sequence counter, 9F4E merchant
    /// name, ...). Values the kernel computes itself (amounts, TVR, UN, ...) take precedence.
    pub extra_tags: BTreeMap<Tag, Vec<u8>>,
}

impl Default for KernelConfig {
    /// Visa, Mastercard and UnionPay; TTQ `36 00 40 00` (EMV mode, contact chip, online PIN
    /// and signature supported; CDCVM supported); no transaction limit.
    fn default() -> Self {
        KernelConfig {
            supported_aids: vec![
                AID_VISA.to_vec(),
                AID_MASTERCARD.to_vec(),
                AID_UNIONPAY_DEBIT.to_vec(),
                AID_UNIONPAY_CREDIT.to_vec(),
            ],
            ttq: [0x36, 0x00, 0x40, 0x00],
            terminal_capabilities: [0xE0, 0xF0, 0xC8],
            terminal_type: 0x22,
            limits: ContactlessLimits::default(),
            aid_params: Vec::new(),
            country: 156,
            extra_tags: BTreeMap::new(),
        }
    }
}

impl KernelConfig {
    /// The limits of the application `aid`: those of the [`AidParams`] entry whose AID is the
    /// longest one that equals `aid` or begins it (the first of equal length wins), else
    /// [`KernelConfig::limits`].
    pub fn limits_for(&self, aid: &[u8]) -> ContactlessLimits {
        let mut best: Option<&AidParams> = None;
        for p in &self.aid_params {
            let longer = best.is_none_or(|b| p.aid.len() > b.aid.len());
            if !p.aid.is_empty() && aid.starts_with(&p.aid) && longer {
                best = Some(p);
            }
        }
        best.map_or(self.limits, |p| p.limits)
    }
}

/// One transaction, as the engine sees it. Time and randomness are passed in (sans-IO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelTxn {
    /// Amount, authorised (9F02), minor units; at most [`MAX_AMOUNT`].
    pub amount: u64,
    /// Amount, other (9F03, cashback), minor units; at most [`MAX_AMOUNT`].
    pub other_amount: u64,
    /// Transaction currency code (5F2A), ISO 4217 numeric, e.g. `156`.
    pub currency: u16,
    /// Terminal country code (9F1A), ISO 3166 numeric, e.g. `156`: the kernel sends this
    /// value. The terminal runtime copies it from [`KernelConfig::country`] (not from the
    /// currency: a terminal in China may sell in HKD).
    pub country: u16,
    /// Transaction type (9C): `0x00` goods and services, `0x01` cash, `0x09` cashback,
    /// `0x20` refund.
    pub txn_type: u8,
    /// Transaction date (9A) as six digits `YYMMDD`.
    pub date: String,
    /// Unpredictable number (9F37), from the caller's random source.
    pub unpredictable_number: [u8; 4],
    /// The caller's clock when the card entered the field (milliseconds, any epoch): the
    /// start of the card-in-field time.
    pub now_ms: u64,
}

/// Encodes `value` as `bytes` bytes of BCD (right-justified, leading zeros). `None` if it does
/// not fit.
pub(crate) fn bcd(value: u64, bytes: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; bytes];
    let mut v = value;
    for slot in out.iter_mut().rev() {
        let lo = (v % 10) as u8;
        v /= 10;
        let hi = (v % 10) as u8;
        v /= 10;
        *slot = (hi << 4) | lo;
    }
    (v == 0).then_some(out)
}

/// Parses `YYMMDD` text into its three BCD bytes, checking month and day ranges.
pub(crate) fn date_bcd(date: &str) -> Option<[u8; 3]> {
    let b = date.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let d = |i: usize| b.get(i).map_or(0, |c| c - b'0');
    let out = [(d(0) << 4) | d(1), (d(2) << 4) | d(3), (d(4) << 4) | d(5)];
    let month = d(2) * 10 + d(3);
    let day = d(4) * 10 + d(5);
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_encodes_right_justified() {
        assert_eq!(bcd(2000, 6), Some(vec![0, 0, 0, 0, 0x20, 0x00]));
        assert_eq!(bcd(156, 2), Some(vec![0x01, 0x56]));
        assert_eq!(bcd(MAX_AMOUNT, 6), Some(vec![0x99; 6]));
        assert_eq!(bcd(MAX_AMOUNT + 1, 6), None);
        assert_eq!(bcd(1000, 1), None);
    }

    #[test]
    fn limits_for_takes_the_longest_matching_aid_else_the_default() {
        let l = |cvm| ContactlessLimits {
            transaction_limit: None,
            cvm_required_limit: cvm,
            floor_limit: 0,
        };
        let cfg = KernelConfig {
            limits: l(1),
            aid_params: vec![
                AidParams {
                    aid: Vec::new(),
                    limits: l(2),
                },
                AidParams {
                    aid: AID_UNIONPAY_DEBIT[..5].to_vec(),
                    limits: l(3),
                },
                AidParams {
                    aid: AID_UNIONPAY_CREDIT.to_vec(),
                    limits: l(4),
                },
                AidParams {
                    aid: AID_UNIONPAY_CREDIT.to_vec(),
                    limits: l(5),
                },
            ],
            ..KernelConfig::default()
        };
        assert_eq!(cfg.limits_for(AID_UNIONPAY_DEBIT), l(3), "RID prefix");
        assert_eq!(
            cfg.limits_for(AID_UNIONPAY_CREDIT),
            l(4),
            "exact, first wins"
        );
        assert_eq!(
            cfg.limits_for(AID_VISA),
            l(1),
            "default; empty AID matches nothing"
        );
        assert_eq!(
            cfg.limits_for(&AID_UNIONPAY_DEBIT[..4]),
            l(1),
            "shorter than the entry"
        );
        assert_eq!(cfg.limits_for(&[]), l(1));
        assert_eq!(KernelConfig::default().country, 156);
    }

    #[test]
    fn date_is_checked() {
        assert_eq!(date_bcd("260315"), Some([0x26, 0x03, 0x15]));
        assert_eq!(date_bcd("261315"), None);
        assert_eq!(date_bcd("260300"), None);
        assert_eq!(date_bcd("26031"), None);
        assert_eq!(date_bcd("26O315"), None);
    }
}
