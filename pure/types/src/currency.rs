//! [`Currency`]: an ISO 4217 numeric currency code, typed (field 49, the journal's `currency`).

use std::fmt;
use std::str::FromStr;

/// An ISO 4217 numeric currency code, `000`..=`999` (`156` CNY, `840` USD, `344` HKD). Shown and
/// stored as exactly three digits; parsed only from exactly three ASCII digits, so a bad stored
/// or configured value is an error instead of a silent default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(u16);

/// A currency code that is not three ASCII digits. Carries nothing of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("currency must be an ISO 4217 numeric code (3 digits)")]
pub struct CurrencyError;

impl Currency {
    /// `156`, the Chinese yuan (CNY).
    pub const CNY: Currency = Currency(156);

    /// The currency with numeric code `code` (at most 999).
    pub const fn new(code: u16) -> Option<Currency> {
        if code <= 999 {
            Some(Currency(code))
        } else {
            None
        }
    }

    /// Parses exactly three ASCII digits (`"156"`; not `"15"`, `" 156"` or `"+56"`).
    pub fn parse(s: &str) -> Result<Currency, CurrencyError> {
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CurrencyError);
        }
        s.parse::<u16>().map(Currency).map_err(|_| CurrencyError)
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Currency, CurrencyError> {
        Currency::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_digits_round_trip_and_anything_else_is_refused() {
        for s in ["156", "840", "008", "000", "999"] {
            assert_eq!(Currency::parse(s).map(|c| c.to_string()).as_deref(), Ok(s));
        }
        assert_eq!(Currency::parse("008").map(Currency::code), Ok(8));
        for s in [
            "",
            "15",
            "1560",
            " 156",
            "+56",
            "-56",
            "1a6",
            "CNY",
            "１５６",
        ] {
            assert_eq!(Currency::parse(s), Err(CurrencyError), "{s:?}");
        }
        assert_eq!(Currency::new(1000), None);
        assert_eq!(Currency::new(156), Some(Currency::CNY));
        assert_eq!("840".parse::<Currency>().map(Currency::code), Ok(840));
    }
}
