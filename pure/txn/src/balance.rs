//! Field 54, "additional amounts": the balances a balance inquiry's answer carries.
//!
//! Layout (ISO 8583:1987 data element 54, `an..120`; the UnionPay POS terminal specification
//! 中国银联 POS 终端规范 uses the same 20-character set for the balance of a balance inquiry,
//! one set, `ans..020` in the `cup` dialect table): up to six sets of 20 characters, each
//!
//! | positions | length | content |
//! |---|---|---|
//! | 1-2 | n2 | account type (as in processing code positions 3-4: `10` savings, `20` cheque, `30` credit, `00` unspecified) |
//! | 3-4 | n2 | amount type (`01` ledger balance, `02` available balance, ...) |
//! | 5-7 | n3 | currency, ISO 4217 numeric |
//! | 8 | a1 | sign: `C` credit (in the cardholder's favour), `D` debit |
//! | 9-20 | n12 | amount in the currency's minor units |
//!
//! A host's field is untrusted input: every set is checked before anything is returned.

use thiserror::Error;

/// Length of one amount set.
const SET_LEN: usize = 20;
/// ISO 8583:1987 allows six sets (`an..120`).
const MAX_SETS: usize = 6;

/// One amount set of field 54.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdditionalAmount {
    /// Account type, two digits (`10` savings, `20` cheque, `30` credit, `00` unspecified).
    pub account_type: String,
    /// Amount type, two digits (`01` ledger balance, `02` available balance, ...).
    pub amount_type: String,
    /// Currency, ISO 4217 numeric.
    pub currency: u16,
    /// Amount in minor units: positive for `C` (credit), negative for `D` (debit).
    pub amount: i64,
}

impl AdditionalAmount {
    /// The amount type in words, for the types a balance inquiry returns; `None` for others.
    pub fn amount_type_name(&self) -> Option<&'static str> {
        match self.amount_type.as_str() {
            "01" => Some("ledger balance"),
            "02" => Some("available balance"),
            _ => None,
        }
    }
}

/// Why field 54 could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AmountsError {
    /// The length is not a whole number of 20-character sets, or there are more than six.
    #[error("field 54 has {len} characters: expected 1 to 6 sets of 20")]
    Length {
        /// Characters received.
        len: usize,
    },
    /// A set has a non-digit where digits belong, or a sign other than `C`/`D`.
    #[error("field 54 set {set} is malformed at position {position}")]
    Malformed {
        /// Set number, from 1.
        set: usize,
        /// Position in the set, from 1.
        position: usize,
    },
}

fn digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

/// Parses field 54 (see the module documentation for the layout).
pub fn parse_additional_amounts(field: &str) -> Result<Vec<AdditionalAmount>, AmountsError> {
    let bytes = field.as_bytes();
    let len = bytes.len();
    if len == 0 || !len.is_multiple_of(SET_LEN) || len / SET_LEN > MAX_SETS {
        return Err(AmountsError::Length { len });
    }
    bytes
        .chunks_exact(SET_LEN)
        .enumerate()
        .map(|(i, set)| {
            let bad = |position| AmountsError::Malformed {
                set: i + 1,
                position,
            };
            let (account, rest) = set.split_at(2);
            let (kind, rest) = rest.split_at(2);
            let (currency, rest) = rest.split_at(3);
            let (sign, amount) = rest.split_at(1);
            if !digits(account) {
                return Err(bad(1));
            }
            if !digits(kind) {
                return Err(bad(3));
            }
            if !digits(currency) {
                return Err(bad(5));
            }
            if !digits(amount) {
                return Err(bad(9));
            }
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let currency: u16 = text(currency).parse().map_err(|_| bad(5))?;
            // 12 digits fit an i64 (at most 999,999,999,999).
            let magnitude: i64 = text(amount).parse().map_err(|_| bad(9))?;
            let amount = match sign {
                b"C" => magnitude,
                b"D" => -magnitude,
                _ => return Err(bad(8)),
            };
            Ok(AdditionalAmount {
                account_type: text(account),
                amount_type: text(kind),
                currency,
                amount,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_simulators_balance_reads_as_a_ledger_balance_of_1000_cny() {
        let a = parse_additional_amounts("1001156C000000100000").unwrap();
        assert_eq!(
            a,
            vec![AdditionalAmount {
                account_type: "10".into(),
                amount_type: "01".into(),
                currency: 156,
                amount: 100_000,
            }]
        );
        assert_eq!(a[0].amount_type_name(), Some("ledger balance"));
    }

    #[test]
    fn several_sets_and_a_debit_balance() {
        let a = parse_additional_amounts("3001840D0000000012343002840C000000500000").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].currency, a[0].amount), (840, -1234));
        assert_eq!(a[1].amount_type_name(), Some("available balance"));
        assert_eq!(a[1].amount, 500_000);
    }

    #[test]
    fn malformed_fields_are_refused() {
        assert_eq!(
            parse_additional_amounts(""),
            Err(AmountsError::Length { len: 0 })
        );
        assert_eq!(
            parse_additional_amounts("1001156C00000010000"),
            Err(AmountsError::Length { len: 19 })
        );
        assert_eq!(
            parse_additional_amounts(&"1001156C000000100000".repeat(7)),
            Err(AmountsError::Length { len: 140 })
        );
        assert_eq!(
            parse_additional_amounts("1001156X000000100000"),
            Err(AmountsError::Malformed {
                set: 1,
                position: 8
            })
        );
        assert_eq!(
            parse_additional_amounts("1001156C0000001000001001156C00000010000A"),
            Err(AmountsError::Malformed {
                set: 2,
                position: 9
            })
        );
        // Multi-byte characters never panic a split.
        assert!(parse_additional_amounts("é001156C00000010000").is_err());
    }
}
